// Parse benchmark: times feedpipe's parse_feed() (normalization included) and pugixml's bare
// load_buffer() over every file of the directories given, read into memory first.
//
//   parse_bench [--runs N] [--base URL] LABEL=DIR...
//
// --base gives every document a URL to resolve relative links against, as the consumer gives the
// feed's URL; without it relative links are left as they are (less work than in the service).
//
// For each directory and each parser it prints one line per run and then the median:
//   median LABEL PARSER files bytes seconds MB/s files/s      (MB = 10^6 bytes, CPU seconds)
// bench/parse/run.sh runs it next to feedparser_bench.py and prints the comparison.
#include <pugixml.hpp>

#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "consumer/parser/parser.h"

namespace {

namespace fs = std::filesystem;

std::vector<std::string> load_dir(const fs::path& dir) {
  std::vector<fs::path> paths;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::string name = e.path().filename().string();
    if (name.rfind("LICENSE", 0) == 0 || name.rfind("README", 0) == 0) continue;
    paths.push_back(e.path());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<std::string> files;
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    files.push_back(s.str());
  }
  return files;
}

// CPU time of this process: on a machine shared with other work (builds, other benchmarks) it
// varies far less than wall time. feedparser_bench.py measures the same (time.process_time()).
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double run_once(const std::vector<std::string>& files, const std::function<bool(const std::string&)>& parse,
                size_t& failures) {
  double start = cpu_seconds();
  failures = 0;
  for (const auto& f : files)
    if (!parse(f)) ++failures;
  return cpu_seconds() - start;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  feedpipe::parser::ParseOptions options;
  std::vector<std::pair<std::string, fs::path>> sets;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
      continue;
    }
    if (std::strcmp(argv[i], "--base") == 0 && i + 1 < argc) {
      options.base_url = argv[++i];
      continue;
    }
    std::string arg = argv[i];
    auto eq = arg.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "usage: parse_bench [--runs N] [--base URL] LABEL=DIR...\n");
      return 2;
    }
    sets.emplace_back(arg.substr(0, eq), arg.substr(eq + 1));
  }
  if (sets.empty()) {
    std::fprintf(stderr, "usage: parse_bench [--runs N] [--base URL] LABEL=DIR...\n");
    return 2;
  }

  volatile size_t sink = 0;  // keeps the work from being optimized away
  const std::vector<std::pair<std::string, std::function<bool(const std::string&)>>> parsers = {
      {"feedpipe",
       [&](const std::string& doc) {
         feedpipe::parser::ParseResult r = feedpipe::parser::parse_feed(doc, options);
         if (r) sink = sink + r.feed->items.size();
         return static_cast<bool>(r);
       }},
      {"pugixml",
       [&](const std::string& doc) {
         pugi::xml_document d;
         pugi::xml_parse_result r = d.load_buffer(doc.data(), doc.size(), pugi::parse_default);
         sink = sink + (d.first_child() ? 1 : 0);
         return static_cast<bool>(r);
       }},
  };

  for (const auto& [label, dir] : sets) {
    if (!fs::is_directory(dir)) {
      std::printf("skip %s: %s is missing\n", label.c_str(), dir.c_str());
      continue;
    }
    std::vector<std::string> files = load_dir(dir);
    size_t bytes = 0;
    for (const auto& f : files) bytes += f.size();
    for (const auto& [name, parse] : parsers) {
      size_t failures = 0;
      run_once(files, parse, failures);  // warm-up
      std::vector<double> times;
      for (int r = 0; r < runs; ++r) times.push_back(run_once(files, parse, failures));
      std::sort(times.begin(), times.end());
      double t = times[times.size() / 2];
      std::printf("median %s %s %zu %zu %.6f %.2f %.1f failures=%zu\n", label.c_str(), name.c_str(),
                  files.size(), bytes, t, bytes / t / 1e6, files.size() / t, failures);
    }
  }
  return 0;
}
