#include "broadcaster/delivery_metrics.h"

#include <charconv>
#include <chrono>
#include <vector>

namespace feedpipe::delivery {

metrics::Counter& events_delivered() {
  static auto& c = metrics::counter("feedpipe_events_delivered_total",
                                    "Events written to SSE streams (replays included).");
  return c;
}

namespace {
const std::vector<double> kLatencyBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

metrics::Histogram& delivery_latency() {
  static auto& h = metrics::histogram(
      "feedpipe_event_delivery_latency_seconds",
      "From an event's commit (its ts) to its first write to an SSE stream, live events only.", kLatencyBuckets);
  return h;
}

std::optional<int64_t> event_ts_ms(std::string_view data) {
  // Inside a JSON string a quote is escaped, so `"ts":` only matches a key. Nested objects of
  // event data (progress) have no "ts".
  static constexpr std::string_view key = "\"ts\":";
  size_t at = data.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  const char* p = data.data() + at + key.size();
  const char* end = data.data() + data.size();
  while (p < end && *p == ' ') ++p;
  int64_t value = 0;
  auto [stop, ec] = std::from_chars(p, end, value);
  if (ec != std::errc() || stop == p) return std::nullopt;
  return value;
}

void observe_arrival(std::string_view event_data) {
  static auto& lag = metrics::histogram(
      "feedpipe_event_arrival_lag_seconds",
      "From an event's commit (its ts) to its arrival at the broadcaster's hub (through Kafka, or in process).",
      kLatencyBuckets);
  auto ts = event_ts_ms(event_data);
  if (!ts) return;
  const int64_t now = unix_now_ms();
  lag.observe(now > *ts ? static_cast<double>(now - *ts) / 1000.0 : 0.0);
}

void observe_latency(int64_t ts_ms, int64_t now_ms) {
  delivery_latency().observe(now_ms > ts_ms ? static_cast<double>(now_ms - ts_ms) / 1000.0 : 0.0);
}

}  // namespace feedpipe::delivery
