// The wild corpus (real feeds collected by two other parser projects) must read as Python's
// feedparser reads it: the feed title, the item count, and each item's title, link and
// published-or-updated time to the second. feedparser's view is kept as a fixture,
// tests/conformance/wild_expected.json, written by tests/conformance/feedparser_expectations.py.
// Both sides are compared after the same normalization: tags stripped, entities decoded,
// white space collapsed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "consumer/parser/parser.h"
#include "consumer/parser/text.h"
#include "tests/unit/parser_test_util.h"

namespace feedpipe::parser {
namespace {

namespace fs = std::filesystem;
using test::read_file;

// The fixture's normalization: `<…>` removed, entities decoded, runs of white space (and
// no-break spaces) made one space, trimmed.
std::string normalize(std::string_view text) {
  std::string decoded = test::plain_text(text);
  std::string out;
  bool space = false;
  for (size_t i = 0; i < decoded.size(); ++i) {
    char c = decoded[i];
    bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (!ws && c == '\xC2' && i + 1 < decoded.size() && decoded[i + 1] == '\xA0') ws = true, ++i;
    if (ws) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

fs::path fixture_path() {
  return fs::path(__FILE__).parent_path().parent_path() / "conformance" / "wild_expected.json";
}

// Every difference between feedpipe's reading of one file and feedparser's, one per line.
std::vector<std::string> disagreements(const std::string& document, const nlohmann::json& want) {
  std::vector<std::string> out;
  ParseResult r = parse_feed(document);
  if (!r) return {"not parsed: " + r.error};
  const Feed& feed = *r.feed;
  auto check = [&](const std::string& what, const std::string& got, const std::string& expected) {
    if (got != expected) out.push_back(what + ": feedpipe \"" + got + "\", feedparser \"" + expected + "\"");
  };
  check("feed title", normalize(feed.title), want["title"].get<std::string>());
  size_t count = want["count"].get<size_t>();
  if (feed.items.size() != count) {
    out.push_back("item count: feedpipe " + std::to_string(feed.items.size()) + ", feedparser " +
                  std::to_string(count));
  }
  const auto& items = want["items"];
  for (size_t i = 0; i < std::min(feed.items.size(), items.size()); ++i) {
    const Item& item = feed.items[i];
    const auto& w = items[i];
    std::string n = "item " + std::to_string(i) + " ";
    check(n + "title", normalize(item.title), w["title"].get<std::string>());
    check(n + "link", item.link, w["link"].get<std::string>());
    check(n + "time", item.published.empty() ? item.updated : item.published, w["time"].get<std::string>());
  }
  return out;
}

TEST(ParserWild, AgreesWithFeedparser) {
  const fs::path dir = fs::path(FEEDPIPE_SHARED_DIR) / "corpus" / "wild";
  if (!fs::is_directory(dir)) GTEST_SKIP() << dir << " is missing";
  const fs::path fixture = fixture_path();
  if (!fs::exists(fixture)) GTEST_SKIP() << fixture << " is missing";
  nlohmann::json expected = nlohmann::json::parse(read_file(fixture));
  int total = 0, agree = 0;
  for (const auto& [name, want] : expected["files"].items()) {
    fs::path path = dir / name;
    if (!fs::exists(path)) {
      std::cout << "  missing: " << name << "\n";
      continue;
    }
    ++total;
    std::vector<std::string> diffs = disagreements(read_file(path), want);
    if (diffs.empty()) {
      ++agree;
      continue;
    }
    std::cout << "  DISAGREES " << name << " (" << diffs.size() << " differences)\n";
    for (size_t k = 0; k < diffs.size() && k < 5; ++k) std::cout << "    " << diffs[k] << "\n";
  }
  std::cout << "wild corpus: " << agree << " of " << total << " files agree with feedparser\n";
  ASSERT_GT(total, 0);
  EXPECT_GE(agree * 100, total * 95);
}

TEST(ParserWild, NormalizationMatchesTheFixtureScript) {
  EXPECT_EQ(normalize("  <b>AT&amp;T</b>\n\t rocks&nbsp; "), "AT&T rocks");
  EXPECT_EQ(normalize("a < b"), "a < b");
  EXPECT_EQ(normalize("&lt;p&gt;x"), "<p>x");
}

}  // namespace
}  // namespace feedpipe::parser
