#include <gtest/gtest.h>

#include "common/metrics.h"

namespace feedpipe::metrics {
namespace {

TEST(Metrics, RendersPrometheusTextFormat) {
  counter("test_jobs_total", "Jobs.", "status=\"ok\"").add(3);
  counter("test_jobs_total", "Jobs.", "status=\"failed\"").add();
  gauge("test_open", "Open things.").set(7);
  auto& h = histogram("test_seconds", "Durations.", {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  std::string text = render();
  EXPECT_NE(text.find("# TYPE test_jobs_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("test_jobs_total{status=\"ok\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("test_jobs_total{status=\"failed\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("test_open 7\n"), std::string::npos);
  EXPECT_NE(text.find("test_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("test_seconds_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("test_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("test_seconds_count 3\n"), std::string::npos);
  EXPECT_NE(text.find("process_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(text.find("feedpipe_sqlite_busy_retries_total "), std::string::npos);
  EXPECT_NE(text.find("feedpipe_sqlite_checkpoints_total "), std::string::npos);
  EXPECT_NE(text.find("feedpipe_sqlite_busy_wait_seconds_total "), std::string::npos);
}

}  // namespace
}  // namespace feedpipe::metrics
