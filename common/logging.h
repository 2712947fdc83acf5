#pragma once
// Process-wide logging setup (spdlog): human-readable lines on stderr, or JSON lines.
#include <string>

namespace feedpipe {

// level: trace|debug|info|warn|error; format: text|json. Throws ConfigError on unknown values.
void setup_logging(const std::string& level, const std::string& format);

}  // namespace feedpipe
