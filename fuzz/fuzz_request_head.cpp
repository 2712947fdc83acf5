// libFuzzer target: any bytes as the start of an HTTP/1.x request, as the event-loop front reads
// them. parse_request_head() must classify every buffer, a complete head must lie within the
// buffer and the head limit, and the query helpers must cope with whatever query it yields.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "broadcaster/http_request_parser.h"

using namespace feedpipe::http1;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view buffer(reinterpret_cast<const char*>(data), size);
  constexpr size_t kMaxHead = 2048;
  RequestHead head;
  ParseStatus status = parse_request_head(buffer, kMaxHead, head);
  if (status == ParseStatus::too_large && size <= kMaxHead) __builtin_trap();
  if (status != ParseStatus::complete) return 0;
  if (head.head_bytes == 0 || head.head_bytes > size || head.head_bytes > kMaxHead) __builtin_trap();
  if (head.method.empty() || head.target.empty()) __builtin_trap();
  // The front writes the target into the request it sends the backend: no space or control byte.
  for (unsigned char c : head.target)
    if (c <= ' ' || c == 0x7f) __builtin_trap();
  for (const auto& [name, value] : head.headers) {
    if (name.empty()) __builtin_trap();
    if (head.header(name) == nullptr) __builtin_trap();
    // The front copies names and values into the request it sends the backend: no control byte
    // but a tab (RFC 9110 section 5.5), so nothing that could split or smuggle a request.
    for (unsigned char c : value)
      if ((c < 0x20 && c != '\t') || c == 0x7f) __builtin_trap();
  }
  (void)query_param(head.query, "last_event_id");
  (void)query_param(head.query, "after");
  (void)percent_decode(head.query, true);
  return 0;
}
