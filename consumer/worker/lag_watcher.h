#pragma once
// A group member's lag as Kafka's own tools report it (the LAG of kafka-consumer-groups.sh): on
// each partition assigned to it, the log end offset less the group's committed offset, or less
// the log start before the group has committed one (the member then reads from the start). It
// counts every message not yet finished: those not read yet, and those read and still in flight.
//
// Asked of the brokers (OffsetFetch, ListOffsets) every `interval` on a thread of its own.
// librdkafka's cached watermarks move only with fetch responses, so they stood still for a
// partition paused by a full read-ahead or not fetched yet: when the backlog grows, the lag froze.
// The members of one process add their lags into one gauge; a failed measurement keeps the last.
//
// Thread-safe: librdkafka's calls used here may run beside the member's loop.
#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "common/metrics.h"

namespace feedpipe::consumer {

// The lag over the consumer's current assignment; nullopt when a broker did not answer within
// `timeout` (per request), the assignment could not be read, or `stopping()` turned true between
// two requests.
std::optional<int64_t> measure_lag(RdKafka::KafkaConsumer& kafka, std::chrono::milliseconds timeout,
                                   const std::function<bool()>& stopping = [] { return false; });

class LagWatcher {
 public:
  static constexpr std::chrono::milliseconds kRequestTimeout{500};

  LagWatcher(RdKafka::KafkaConsumer& kafka, metrics::Gauge& gauge, std::chrono::milliseconds interval);
  ~LagWatcher();  // stop()
  // Ends the thread (within one request's timeout: it stops between requests) and takes this member's lag out of the gauge.
  // Before the consumer closes.
  void stop();

  LagWatcher(const LagWatcher&) = delete;
  LagWatcher& operator=(const LagWatcher&) = delete;

 private:
  void report(int64_t lag);

  RdKafka::KafkaConsumer& kafka_;
  metrics::Gauge& gauge_;
  int64_t reported_ = 0;  // this member's part of the gauge; the watcher's thread only
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace feedpipe::consumer
