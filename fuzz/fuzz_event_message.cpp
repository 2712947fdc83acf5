// libFuzzer target: any bytes as a message of feed.refresh.events. event_message_from_json() reads
// the messages feedpipe writes without a JSON tree and leaves the rest to nlohmann's parser; it
// must take exactly what that parser takes, with the same fields and the same data.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/model.h"

namespace {

// What nlohmann's tree makes of the message, the way event_message_from_json's full path reads it.
std::optional<feedpipe::EventMessage> reference(std::string_view payload, nlohmann::json* data) {
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  try {
    const auto& seq = j.at("seq");
    if (!seq.is_number_integer() || (seq.is_number_unsigned() && seq.get<uint64_t>() > INT64_MAX))
      return std::nullopt;
    feedpipe::EventMessage m{j.at("batch_id").get<std::string>(), seq.get<int64_t>(),
                             j.at("event").get<std::string>(), ""};
    *data = j.at("data");
    return m;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  std::string_view payload(reinterpret_cast<const char*>(bytes), size);
  nlohmann::json expected_data;
  auto expected = reference(payload, &expected_data);
  std::optional<feedpipe::EventMessage> read;
  try {
    read = feedpipe::event_message_from_json(payload);
  } catch (const std::invalid_argument&) {
  }
  if (expected.has_value() != read.has_value()) __builtin_trap();
  if (!read) return 0;
  if (read->batch_id != expected->batch_id || read->seq != expected->seq || read->type != expected->type)
    __builtin_trap();
  auto data = nlohmann::json::parse(read->data, nullptr, false);
  if (data.is_discarded() || data != expected_data) __builtin_trap();
  return 0;
}
