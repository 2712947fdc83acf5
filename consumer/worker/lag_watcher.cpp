#include "consumer/worker/lag_watcher.h"

#include <spdlog/spdlog.h>

#include <vector>

#include "common/thread_name.h"

namespace feedpipe::consumer {
namespace {

struct Partitions {
  std::vector<RdKafka::TopicPartition*> list;
  ~Partitions() { RdKafka::TopicPartition::destroy(list); }
};

}  // namespace

std::optional<int64_t> measure_lag(RdKafka::KafkaConsumer& kafka, std::chrono::milliseconds timeout,
                                   const std::function<bool()>& stopping) {
  Partitions parts;
  if (kafka.assignment(parts.list) != RdKafka::ERR_NO_ERROR) return std::nullopt;
  if (parts.list.empty()) return 0;
  const int timeout_ms = static_cast<int>(timeout.count());
  // A partition the group never committed comes back with an invalid offset (and maybe an error).
  if (kafka.committed(parts.list, timeout_ms) != RdKafka::ERR_NO_ERROR) return std::nullopt;
  int64_t total = 0;
  for (const RdKafka::TopicPartition* tp : parts.list) {
    if (stopping()) return std::nullopt;
    int64_t low = 0, high = 0;
    if (kafka.query_watermark_offsets(tp->topic(), tp->partition(), &low, &high, timeout_ms) !=
        RdKafka::ERR_NO_ERROR)
      return std::nullopt;
    const int64_t from = tp->err() == RdKafka::ERR_NO_ERROR && tp->offset() >= 0 ? tp->offset() : low;
    if (high > from) total += high - from;
  }
  return total;
}

LagWatcher::LagWatcher(RdKafka::KafkaConsumer& kafka, metrics::Gauge& gauge, std::chrono::milliseconds interval)
    : kafka_(kafka), gauge_(gauge) {
  thread_ = named_thread("fp-lag", [this, interval] {
    std::unique_lock lock(mu_);
    while (!wake_.wait_for(lock, interval, [this] { return stop_.load(); })) {
      lock.unlock();
      auto lag = measure_lag(kafka_, kRequestTimeout, [this] { return stop_.load(); });
      lock.lock();
      if (stop_) break;
      if (lag) report(*lag);
      else spdlog::debug("consumer lag not measured: a broker did not answer within {} ms", kRequestTimeout.count());
    }
    report(0);
  });
}

LagWatcher::~LagWatcher() { stop(); }

void LagWatcher::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }  // under the lock: the thread cannot miss the wake-up between its check and its wait
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LagWatcher::report(int64_t lag) {
  gauge_.add(lag - reported_);
  reported_ = lag;
}

}  // namespace feedpipe::consumer
