#pragma once
// Prometheus metrics, written by hand (no exporter library in Debian): counters, gauges and
// histograms registered once per process, rendered in the text exposition format 0.0.4.
// All updates are lock-free atomics; rendering takes the registry lock. Thread-safe.
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace feedpipe::metrics {

class Counter {
 public:
  void add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  const std::vector<double>& bounds() const { return bounds_; }
  uint64_t bucket(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }  // not cumulative
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_micro_.load(std::memory_order_relaxed) / 1e6; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micro_{0};
};

// Registration returns an object that lives as long as the process. `labels` is the label set
// as Prometheus writes it, e.g. R"(status="ok")", or empty.
Counter& counter(const std::string& name, const std::string& help, const std::string& labels = "");
Gauge& gauge(const std::string& name, const std::string& help, const std::string& labels = "");
Histogram& histogram(const std::string& name, const std::string& help,
                     std::vector<double> bounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});

// Every registered metric plus process_resident_memory_bytes, process_cpu_seconds_total,
// process_open_fds and feedpipe_sqlite_busy_retries_total.
std::string render();

}  // namespace feedpipe::metrics
