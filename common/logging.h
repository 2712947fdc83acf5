#pragma once
// Process-wide logging setup (spdlog): human-readable lines on stderr, or JSON lines.
#include <spdlog/formatter.h>

#include <memory>
#include <string>
#include <string_view>

namespace feedpipe {

// level: trace|debug|info|warn|error; format: text|json. Throws ConfigError on unknown values.
void setup_logging(const std::string& level, const std::string& format);

// The formatter of --log-format json: one JSON object per line,
//   {"ts":"2026-11-29T05:35:15.123Z","level":"info","logger":"feedpipe","thread":1234,"msg":"…"}
// with the message escaped (quotes, backslashes, control characters; invalid UTF-8 becomes U+FFFD),
// so every line parses whatever a message contains.
std::unique_ptr<spdlog::formatter> json_log_formatter();

// Appends `text` to `out` as the inside of a JSON string (no surrounding quotes).
void append_json_escaped(std::string& out, std::string_view text);

}  // namespace feedpipe
