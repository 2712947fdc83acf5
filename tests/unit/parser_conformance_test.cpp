// Conformance with Python feedparser's own test suite (../shared/corpus/feedparser/). Each of its
// files states, in an `Expect:` comment, what a correct parser extracts, as a Python expression.
// tests/conformance/translate_expectations.py translates the parts of those expressions that
// concern fields feedpipe keeps into checks (tests/conformance/feedparser_checks.json); this test
// evaluates them against parse_feed() and prints the pass rate per folder. A file passes when
// all of its translated checks pass; files with no check on a kept field are skipped, never passed.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "consumer/parser/parser.h"
#include "consumer/parser/text.h"
#include "tests/unit/parser_test_util.h"

namespace feedpipe::parser {
namespace {

namespace fs = std::filesystem;
using test::plain_text;
using test::read_file;

// "wellformed/rss/x.xml" -> "wellformed/rss"; "entities/x.xml" -> "entities"; "illformed/x.xml" -> "illformed".
std::string folder_of(const std::string& file) {
  auto first = file.find('/');
  if (first == std::string::npos) return ".";
  std::string top = file.substr(0, first);
  auto second = file.find('/', first + 1);
  if ((top == "wellformed" || top == "illformed") && second != std::string::npos) return file.substr(0, second);
  return top;
}

const std::string* field_of(const Feed& feed, const Item* item, const std::string& name) {
  if (item) {
    if (name == "title") return &item->title;
    if (name == "link") return &item->link;
    if (name == "guid") return &item->guid;
    if (name == "author") return &item->author;
    if (name == "published") return &item->published;
    if (name == "updated") return &item->updated;
    if (name == "summary") return &item->summary;
    if (name == "content") return &item->content;
    return nullptr;
  }
  if (name == "title") return &feed.title;
  if (name == "link") return &feed.link;
  return nullptr;
}

// "" when the check passes, else what went wrong.
std::string evaluate(const ParseResult& r, const nlohmann::json& check) {
  const std::string compare = check["compare"];
  if (compare == "parses") return r ? "" : "not parsed: " + r.error;
  if (!r) return "not parsed: " + r.error;
  const Feed& feed = *r.feed;
  if (compare == "count") {
    size_t want = check["value"].get<size_t>();
    return feed.items.size() == want ? "" : "item count " + std::to_string(feed.items.size());
  }
  const Item* item = nullptr;
  if (check["scope"] == "entry") {
    size_t index = check["index"].get<size_t>();
    if (index >= feed.items.size()) {
      return compare == "absent" ? "" : "no item " + std::to_string(index);
    }
    item = &feed.items[index];
  }
  const std::string* got = field_of(feed, item, check["field"]);
  if (!got) return "unknown field " + check["field"].get<std::string>();
  if (compare == "absent") return got->empty() ? "" : check["field"].get<std::string>() + " present";
  const std::string want = check["value"];
  if (*got == want) return "";
  // Titles are plain text in feedpipe: equal when feedparser's value, read as HTML, is
  // feedpipe's text, or when both read as HTML say the same.
  if (compare == "text" && (*got == plain_text(want) || plain_text(*got) == plain_text(want))) return "";
  return check["field"].get<std::string>() + ": got \"" + *got + "\", want \"" + want + "\"";
}

struct Tally {
  int files = 0, applicable = 0, passed = 0, checks = 0, checks_passed = 0, untranslated = 0;
};

// The folders the issue sets a target for, with the floor this test enforces (a little below
// the rate reached, so that a regression fails).
// Reached (2026-11): rss 44/45, rdf 8/8, atom 51/51, atom10 62/63, base 41/42, amp 70/70,
// entities 256/256, encoding 8/9.
const std::map<std::string, double> kFloors = {
    {"wellformed/rss", 0.95},    {"wellformed/rdf", 0.99},  {"wellformed/atom", 0.97},
    {"wellformed/atom10", 0.95}, {"wellformed/base", 0.95}, {"wellformed/amp", 0.99},
    {"entities", 0.99},          {"encoding", 0.85},
};

TEST(ParserConformance, FeedparserSuite) {
  const fs::path corpus = fs::path(FEEDPIPE_SHARED_DIR) / "corpus" / "feedparser";
  if (!fs::is_directory(corpus)) GTEST_SKIP() << corpus << " is missing";
  const fs::path fixture =
      fs::path(__FILE__).parent_path().parent_path() / "conformance" / "feedparser_checks.json";
  if (!fs::exists(fixture)) GTEST_SKIP() << fixture << " is missing";
  const char* verbose_env = std::getenv("FEEDPIPE_CONFORMANCE_VERBOSE");
  const std::string verbose = verbose_env ? verbose_env : "";  // "1": every failure; else a folder

  nlohmann::json fixture_json = nlohmann::json::parse(read_file(fixture));
  std::map<std::string, Tally> tallies;
  std::map<std::string, std::vector<std::string>> failures;
  for (const auto& f : fixture_json["files"]) {
    const std::string file = f["file"];
    std::string folder = folder_of(file);
    Tally& t = tallies[folder];
    ++t.files;
    if (f["checks"].empty()) continue;
    fs::path path = corpus / file;
    if (!fs::exists(path)) continue;
    ++t.applicable;
    t.untranslated += static_cast<int>(f["untranslated"].size());
    ParseOptions options;
    options.base_url = f.value("base", "");
    options.http_charset = f.value("charset", "");
    ParseResult r = parse_feed(read_file(path), options);
    std::string why;
    for (const auto& check : f["checks"]) {
      ++t.checks;
      std::string problem = evaluate(r, check);
      if (problem.empty()) ++t.checks_passed;
      else if (why.empty()) why = problem;
    }
    if (why.empty()) ++t.passed;
    else failures[folder].push_back(file + ": " + why);
  }

  std::printf("\nfeedparser suite conformance (files whose expectations concern kept fields)\n");
  std::printf("%-28s %6s %6s %6s %8s %9s\n", "folder", "files", "apply", "pass", "rate", "checks");
  Tally all;
  for (const auto& [folder, t] : tallies) {
    double rate = t.applicable ? 100.0 * t.passed / t.applicable : 0.0;
    std::printf("%-28s %6d %6d %6d %7.1f%% %4d/%-4d%s\n", folder.c_str(), t.files, t.applicable, t.passed,
                rate, t.checks_passed, t.checks, kFloors.count(folder) ? "  *" : "");
    all.files += t.files, all.applicable += t.applicable, all.passed += t.passed;
    all.checks += t.checks, all.checks_passed += t.checks_passed;
  }
  std::printf("%-28s %6d %6d %6d %7.1f%% %4d/%-4d\n", "total", all.files, all.applicable, all.passed,
              all.applicable ? 100.0 * all.passed / all.applicable : 0.0, all.checks_passed, all.checks);
  Tally target;
  for (const auto& [folder, floor] : kFloors) {
    const Tally& t = tallies[folder];
    target.applicable += t.applicable, target.passed += t.passed;
  }
  std::printf("%-28s %6s %6d %6d %7.1f%%\n", "target folders (*)", "", target.applicable, target.passed,
              target.applicable ? 100.0 * target.passed / target.applicable : 0.0);
  std::printf("(files - apply = skipped: no expectation on a field feedpipe keeps; "
              "FEEDPIPE_CONFORMANCE_VERBOSE=1 or =FOLDER lists the failures of other folders)\n");

  for (const auto& [folder, list] : failures) {
    bool target = kFloors.count(folder) > 0;
    if (!(verbose == "1" || verbose == folder || target)) continue;
    std::printf("failures in %s:\n", folder.c_str());
    for (const auto& line : list) std::printf("  %s\n", line.c_str());
  }

  for (const auto& [folder, floor] : kFloors) {
    const Tally& t = tallies[folder];
    if (t.applicable == 0) continue;
    EXPECT_GE(static_cast<double>(t.passed) / t.applicable, floor) << folder;
  }
}

}  // namespace
}  // namespace feedpipe::parser
