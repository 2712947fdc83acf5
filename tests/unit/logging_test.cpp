// --log-format json: every line is one JSON object, whatever the message holds.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "common/logging.h"

namespace feedpipe {
namespace {

std::vector<nlohmann::json> log_lines(const std::function<void(spdlog::logger&)>& write) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("feedpipe-test", sink);
  logger.set_level(spdlog::level::trace);
  logger.set_formatter(json_log_formatter());
  write(logger);
  logger.flush();
  std::vector<nlohmann::json> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) {
    auto parsed = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << line;
    lines.push_back(parsed);
  }
  return lines;
}

TEST(JsonLogs, EveryLineParsesWithTheSameMessage) {
  const std::string nasty = std::string("quote \" backslash \\ newline\nsecond line\r\ttab ") +
                            "bell \a nul " + std::string(1, '\0') + " esc \x1b[31m unicode é 🙂 {}";
  auto lines = log_lines([&](spdlog::logger& log) {
    log.info("{}", nasty);
    log.warn("plain");
    log.debug("job {} failed: {}", 7, "HTTP \"500\"");
  });
  ASSERT_EQ(lines.size(), 3u);  // the newline in the message did not split the line
  EXPECT_EQ(lines[0]["msg"], nasty);
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[0]["logger"], "feedpipe-test");
  std::string ts = lines[0]["ts"];
  EXPECT_EQ(ts.size(), 24u) << ts;  // 2026-11-29T05:35:15.123Z
  EXPECT_EQ(ts.back(), 'Z');
  EXPECT_EQ(lines[1]["level"], "warn");
  EXPECT_EQ(lines[1]["msg"], "plain");
  EXPECT_EQ(lines[2]["level"], "debug");
  EXPECT_EQ(lines[2]["msg"], "job 7 failed: HTTP \"500\"");
}

TEST(JsonLogs, InvalidUtf8BecomesReplacementCharacters) {
  auto lines = log_lines([](spdlog::logger& log) { log.error("{}", std::string("bad \xff\xfe end \xc3")); });
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["msg"], "bad \xEF\xBF\xBD\xEF\xBF\xBD end \xEF\xBF\xBD");
  EXPECT_EQ(lines[0]["level"], "error");
}

TEST(JsonLogs, EscapingKeepsValidTextAndEscapesControls) {
  std::string out;
  append_json_escaped(out, std::string("a\"b\\c\n\x01\x7f\xe2\x82\xac"));
  EXPECT_EQ(out, "a\\\"b\\\\c\\n\\u0001\\u007f\xe2\x82\xac");
}

}  // namespace
}  // namespace feedpipe
