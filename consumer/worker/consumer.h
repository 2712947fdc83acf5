#pragma once
// The consumer role: one member of the consumer group "feedpipe-consumers". It reads job
// messages, fetches their feeds (many at once, one libcurl multi handle), parses them and hands
// the outcomes to its writer thread, which records them in SQLite and publishes their events.
// Without a database (db_path empty) it opens none: the job message carries what the fetch
// needs, and the outcomes go to feed.refresh.outcomes for a recorder (recorder.h), each job's
// offset released once Kafka acknowledged its outcome.
// Offsets are committed only up to the lowest job still in flight, so a crash redelivers
// unfinished jobs; recording is idempotent, so a redelivered job that is already final changes
// nothing. Jobs of the same feed that are in flight together share one fetch.
//
// Threads: start() runs the fetch loop and the writer on threads of their own; ready(), stats
// and stop() may be called from any thread.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/kafka.h"
#include "common/model.h"
#include "consumer/fetcher/fetcher.h"

namespace feedpipe::consumer {

struct ConsumerSettings {
  std::string db_path;  // empty: no database, outcomes published for a recorder
  KafkaSettings kafka;
  fetcher::FetchSettings fetch;
  std::string group_id = "feedpipe-consumers";
  size_t max_backlog = 1024;         // jobs taken but not yet recorded; beyond it, jobs read wait
  size_t max_read_ahead = 16384;     // jobs read and waiting for room in the backlog; beyond it, fetching pauses
  size_t max_write_group = 512;      // outcomes per SQLite transaction
  // A job taken this long without an outcome is written as running (see OutcomeWriter).
  std::chrono::milliseconds mark_running_after{250};
  std::chrono::milliseconds commit_interval{500};
  std::chrono::milliseconds drain_timeout{10000};  // on stop: time to finish jobs in flight
  // On stop, after the drain: time for Kafka to take the last commits and the group leave, and
  // the outcome events. Past it the consumer gives up on Kafka (see common/shutdown_wait.h).
  std::chrono::milliseconds kafka_close_timeout{1000};
  // Same-process subscribers of committed events (standalone: the broadcaster's hub), so that
  // they need not wait for the round trip through Kafka; Kafka still carries every event.
  std::function<void(const std::vector<EventMessage>&)> on_events_committed;
  // False when every broadcaster is in this process and hears of events through the listener
  // above (standalone on its embedded broker, which keeps every message in memory).
  bool publish_events = true;
};

struct ConsumerStats {
  uint64_t jobs_taken = 0, jobs_recorded = 0, fetches = 0;
};

class Consumer {
 public:
  explicit Consumer(ConsumerSettings settings);
  ~Consumer();
  void start();
  // Stops reading, finishes (or gives up after drain_timeout on) the jobs in flight, records
  // them, commits offsets and leaves the group.
  void stop();
  // Tells the consumer to stop without waiting: several consumers of one process then drain
  // side by side, and stop() waits for each.
  void begin_stop();
  // Empty when the group has been joined and partitions assigned; else the reason.
  std::string readiness() const;
  ConsumerStats stats() const;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace feedpipe::consumer
