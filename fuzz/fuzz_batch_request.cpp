// libFuzzer target: any bytes as a POST /v1/batches body. parse_batch_request() must answer a
// batch or a refusal with a DESIGN.md status and a message; every accepted feed string then goes
// through normalize_feed_url() as batch intake does, and a normalized URL is http(s).
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/url.h"
#include "producer/batch_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  auto result = feedpipe::producer::parse_batch_request(body, feedpipe::producer::BatchRequestLimits{50, 8});
  if (auto* refusal = std::get_if<feedpipe::producer::Refusal>(&result)) {
    if (refusal->status != 400 && refusal->status != 413 && refusal->status != 422) __builtin_trap();
    if (refusal->code.empty() || refusal->message.empty()) __builtin_trap();
    return 0;
  }
  const auto& request = std::get<feedpipe::producer::BatchRequest>(result);
  if (request.feeds.empty() || request.feeds.size() > 50) __builtin_trap();
  for (const std::string& feed : request.feeds) {
    std::string why;
    auto url = feedpipe::normalize_feed_url(feed, &why);
    if (url) {
      if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0) __builtin_trap();
      // Normalizing is idempotent: the stored URL identifies the feed.
      auto again = feedpipe::normalize_feed_url(*url);
      if (!again || *again != *url) __builtin_trap();
    } else if (why.empty()) {
      __builtin_trap();
    }
  }
  return 0;
}
