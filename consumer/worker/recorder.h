#pragma once
// The recorder: the consumer role's recording half run on its own, for consumers without a
// database. A member of the group "feedpipe-recorders", it reads feed.refresh.outcomes and hands
// each outcome to the same OutcomeWriter a local consumer uses (one transaction per group of
// outcomes, seq assignment, idempotency: an outcome of a final or unknown job changes nothing),
// which publishes the events and releases the offsets once the transaction committed. A message
// it cannot read is logged, counted (feedpipe_outcomes_skipped_total{reason}) and skipped.
//
// Threads: start() runs the Kafka loop and the writer on threads of their own; readiness(),
// stats() and stop() may be called from any thread.
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "common/kafka.h"
#include "common/model.h"

namespace feedpipe::consumer {

struct RecorderSettings {
  std::string db_path;
  KafkaSettings kafka;
  std::string group_id{kRecorderGroup};
  size_t max_backlog = 1024;     // outcomes taken but not yet recorded; beyond it, outcomes read wait
  size_t max_read_ahead = 16384; // outcomes read and waiting for room; beyond it, fetching pauses
  size_t max_write_group = 512;  // outcomes per SQLite transaction
  std::chrono::milliseconds commit_interval{500};
  std::chrono::milliseconds drain_timeout{10000};  // on stop: time to record what was read
  // On stop, after the drain: the bound on Kafka's last commits, the group leave and the events.
  std::chrono::milliseconds kafka_close_timeout{1000};
};

struct RecorderStats {
  uint64_t read = 0, recorded = 0, skipped = 0;
};

class Recorder {
 public:
  explicit Recorder(RecorderSettings settings);
  ~Recorder();
  void start();
  // Stops reading, records what was read, commits offsets and leaves the group.
  void stop();
  void begin_stop();
  // Empty when the group has been joined; else the reason.
  std::string readiness() const;
  RecorderStats stats() const;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace feedpipe::consumer
