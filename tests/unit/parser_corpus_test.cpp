// Every feed of the wild corpus (real documents collected by other feed parsers) must parse
// without crashing, and nearly all must parse.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "consumer/parser/parser.h"

namespace feedpipe::parser {
namespace {

TEST(ParserCorpus, WildFeedsParse) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(FEEDPIPE_SHARED_DIR) / "corpus" / "wild";
  if (!fs::is_directory(dir)) GTEST_SKIP() << dir << " is missing";
  int total = 0, ok = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::string name = entry.path().filename().string();
    if (name.rfind("LICENSE", 0) == 0 || name.rfind("README", 0) == 0) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    ++total;
    ParseResult r = parse_feed(bytes.str());
    if (r) {
      ++ok;
      (void)to_json(*r.feed).dump();  // every string must be valid UTF-8
    } else {
      std::cout << "  not parsed: " << entry.path().string() << ": " << r.error << "\n";
    }
  }
  std::cout << "wild corpus: " << ok << " of " << total << " feeds parsed\n";
  ASSERT_GT(total, 0);
  EXPECT_GE(ok * 10, total * 9);
}

}  // namespace
}  // namespace feedpipe::parser
