#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/config.h"

namespace feedpipe {

void setup_logging(const std::string& level, const std::string& format) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    throw ConfigError("--log-level must be trace, debug, info, warn or error, not '" + level + "'");
  auto logger = spdlog::stderr_color_mt("feedpipe");
  spdlog::set_default_logger(logger);
  spdlog::set_level(lvl);
  if (format == "json") {
    spdlog::set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","thread":%t,"message":"%v"})",
        spdlog::pattern_time_type::utc);
  } else if (format == "text") {
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  } else {
    throw ConfigError("--log-format must be text or json, not '" + format + "'");
  }
}

}  // namespace feedpipe
