// libFuzzer target: any bytes as a message of feed.refresh.outcomes. read_outcome_message() must
// either refuse it with one of its three reasons or read an outcome that writes back to exactly
// the same bytes (the format has one spelling per outcome).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/outcome_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view payload(reinterpret_cast<const char*>(data), size);
  feedpipe::OutcomeMessage m;
  try {
    m = feedpipe::read_outcome_message(payload);
  } catch (const feedpipe::OutcomeMessageError& e) {
    const std::string& r = e.reason();
    if (r != "malformed" && r != "unknown_version" && r != "bad_fields") __builtin_trap();
    if (std::string_view(e.what()).empty()) __builtin_trap();
    return 0;
  }
  const std::string again = feedpipe::serialize_outcome(m.batch_id, m.outcome);
  feedpipe::OutcomeMessage twice = feedpipe::read_outcome_message(again);
  if (feedpipe::serialize_outcome(twice.batch_id, twice.outcome) != again) __builtin_trap();
  return 0;
}
