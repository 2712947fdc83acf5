// What `feedpipe submit` reads and prints (commands/submit_progress.h).
#include <gtest/gtest.h>

#include <sstream>

#include "commands/submit_progress.h"

namespace feedpipe::commands {
namespace {

TEST(SubmitUrlList, SkipsBlankLinesAndCommentsAndTrims) {
  std::istringstream in("# my feeds\n\nhttps://a.test/1\n  https://a.test/2 \r\n\t\n  # indented comment\nhttps://a.test/3");
  EXPECT_EQ(read_url_list(in), (std::vector<std::string>{"https://a.test/1", "https://a.test/2", "https://a.test/3"}));
  std::istringstream empty("# nothing\n\n");
  EXPECT_TRUE(read_url_list(empty).empty());
}

TEST(SubmitProgress, BarShowsCountsRateAndEta) {
  WatchProgress p{30, 15, 1, 2.0};
  EXPECT_EQ(progress_bar_line(p, 10), "[#####.....] 15/30 done, 1 failed, 7.5 feeds/s, ETA 2s");
  p = {1000, 0, 0, 1.0};
  EXPECT_EQ(progress_bar_line(p, 4), "[....] 0/1000 done, 0 failed, 0.0 feeds/s, ETA ?");
  p = {10, 10, 0, 4.0};
  EXPECT_EQ(progress_bar_line(p, 4), "[####] 10/10 done, 0 failed, 2.5 feeds/s, ETA 0s");
}

TEST(SubmitProgress, EtaIsHumanReadable) {
  EXPECT_EQ(format_eta(0.4), "0s");
  EXPECT_EQ(format_eta(59), "59s");
  EXPECT_EQ(format_eta(185), "3m05s");
  EXPECT_EQ(format_eta(3720), "1h02m");
  EXPECT_EQ(format_eta(-1), "?");
}

TEST(SubmitProgress, PlainLinesOneJobEach) {
  EXPECT_EQ(job_line({{"status", "ok"}, {"url", "https://a.test/1"}, {"error", nullptr}}), "ok\thttps://a.test/1");
  EXPECT_EQ(job_line({{"status", "not_modified"}, {"url", "https://a.test/1"}}), "not_modified\thttps://a.test/1");
  EXPECT_EQ(job_line({{"status", "failed"}, {"url", "x"}, {"error", "HTTP 404\nNot Found"}}), "failed\tx\tHTTP 404 Not Found");
  EXPECT_EQ(summary_line({30, 30, 2, 2.4}), "30/30 done, 2 failed in 2.4 s (12.5 feeds/s)");
}

}  // namespace
}  // namespace feedpipe::commands
