// libFuzzer target: any bytes as a feed document. parse_feed() must return (a feed or an error,
// never a crash, hang or leak), and a parsed feed must print as JSON: nlohmann's dump() throws
// on invalid UTF-8, and every stored feed and event goes through it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "consumer/parser/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view document(reinterpret_cast<const char*>(data), size);
  feedpipe::parser::ParseOptions options;
  // The first byte, when it is one of these, picks a charset as an HTTP header would give it.
  static constexpr const char* kCharsets[] = {"", "utf-8", "iso-8859-1", "windows-1252", "utf-16", "koi8-r"};
  if (size > 0 && data[0] < sizeof kCharsets / sizeof kCharsets[0]) {
    options.http_charset = kCharsets[data[0]];
    document.remove_prefix(1);
  }
  options.base_url = "http://example.test/feeds/index.xml";
  auto result = feedpipe::parser::parse_feed(document, options);
  if (result) {
    (void)feedpipe::parser::to_json(*result.feed).dump();  // throws (and so aborts) on invalid UTF-8
  } else if (result.error.empty()) {
    __builtin_trap();  // a failure must say why
  }
  return 0;
}
