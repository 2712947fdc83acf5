#include "common/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "common/db.h"

namespace feedpipe::metrics {
namespace {

enum class Kind { counter, gauge, histogram };

struct Series {
  std::string labels;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
};

struct Family {
  Kind kind;
  std::string help;
  std::vector<std::unique_ptr<Series>> series;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, Family> families;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: metrics outlive every thread
  return *r;
}

Series& series(const std::string& name, Kind kind, const std::string& help, const std::string& labels) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto [it, inserted] = r.families.try_emplace(name, Family{kind, help, {}});
  for (auto& s : it->second.series)
    if (s->labels == labels) return *s;
  it->second.series.push_back(std::make_unique<Series>());
  it->second.series.back()->labels = labels;
  return *it->second.series.back();
}

std::string with_labels(const std::string& name, const std::string& labels, const std::string& extra = "") {
  std::string all = labels;
  if (!extra.empty()) all += (all.empty() ? "" : ",") + extra;
  return all.empty() ? name : name + "{" + all + "}";
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

void process_metrics(std::ostringstream& out) {
  long page = sysconf(_SC_PAGESIZE);
  long ticks = sysconf(_SC_CLK_TCK);
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  out << "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
      << "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes "
      << resident * page << "\n";
  std::ifstream stat("/proc/self/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), {});
  auto close = content.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(content.substr(close + 2));
    std::string f;
    double utime = 0, stime = 0;
    for (int i = 3; fields >> f; ++i) {
      if (i == 14) utime = std::stod(f);
      if (i == 15) {
        stime = std::stod(f);
        break;
      }
    }
    out << "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        << "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "
        << number((utime + stime) / ticks) << "\n";
  }
  int fds = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++fds;
    closedir(d);
    fds -= 3;  // ".", ".." and the directory itself
  }
  out << "# HELP process_open_fds Number of open file descriptors.\n"
      << "# TYPE process_open_fds gauge\nprocess_open_fds " << fds << "\n";
  out << "# HELP feedpipe_sqlite_busy_retries_total Write transactions retried because the database was busy.\n"
      << "# TYPE feedpipe_sqlite_busy_retries_total counter\nfeedpipe_sqlite_busy_retries_total "
      << Database::busy_retries() << "\n";
  out << "# HELP feedpipe_sqlite_busy_wait_seconds_total Time spent waiting for SQLite locks held by other "
         "connections (other processes' writers, mostly).\n"
      << "# TYPE feedpipe_sqlite_busy_wait_seconds_total counter\nfeedpipe_sqlite_busy_wait_seconds_total "
      << number(Database::busy_wait_seconds()) << "\n";
  out << "# HELP feedpipe_sqlite_checkpoints_total WAL checkpoints run by this process's connections.\n"
      << "# TYPE feedpipe_sqlite_checkpoints_total counter\nfeedpipe_sqlite_checkpoints_total "
      << Database::checkpoints() << "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micro_.fetch_add(static_cast<uint64_t>(value * 1e6), std::memory_order_relaxed);
}

Counter& counter(const std::string& name, const std::string& help, const std::string& labels) {
  Series& s = series(name, Kind::counter, help, labels);
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& gauge(const std::string& name, const std::string& help, const std::string& labels) {
  Series& s = series(name, Kind::gauge, help, labels);
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> bounds) {
  Series& s = series(name, Kind::histogram, help, "");
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(std::move(bounds));
  return *s.histogram;
}

std::string render() {
  std::ostringstream out;
  Registry& r = registry();
  {
    std::lock_guard lock(r.mu);
    for (const auto& [name, family] : r.families) {
      const char* type = family.kind == Kind::counter ? "counter" : family.kind == Kind::gauge ? "gauge" : "histogram";
      out << "# HELP " << name << " " << family.help << "\n# TYPE " << name << " " << type << "\n";
      for (const auto& s : family.series) {
        if (s->counter) out << with_labels(name, s->labels) << " " << s->counter->value() << "\n";
        if (s->gauge) out << with_labels(name, s->labels) << " " << s->gauge->value() << "\n";
        if (s->histogram) {
          const Histogram& h = *s->histogram;
          uint64_t cumulative = 0;
          for (size_t i = 0; i < h.bounds().size(); ++i) {
            cumulative += h.bucket(i);
            out << with_labels(name + "_bucket", s->labels, "le=\"" + number(h.bounds()[i]) + "\"") << " "
                << cumulative << "\n";
          }
          cumulative += h.bucket(h.bounds().size());
          out << with_labels(name + "_bucket", s->labels, "le=\"+Inf\"") << " " << cumulative << "\n";
          out << with_labels(name + "_sum", s->labels) << " " << number(h.sum()) << "\n";
          out << with_labels(name + "_count", s->labels) << " " << h.count() << "\n";
        }
      }
    }
  }
  process_metrics(out);
  return out.str();
}

}  // namespace feedpipe::metrics
