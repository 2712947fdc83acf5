#pragma once
// The writer of a consumer without a database: publishes each job outcome (parsed items
// included) to feed.refresh.outcomes (key: batch id) for a recorder, and releases the job's
// offset only once Kafka has acknowledged the outcome. An outcome larger than the producer or
// the topic accepts fails its job instead: a small failed outcome with the reason goes out in
// its place. Thread-safe; delivery reports arrive on the Kafka producer's poll thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/job_outcomes.h"
#include "common/kafka.h"
#include "consumer/worker/offset_tracker.h"
#include "consumer/worker/outcome_writer.h"

namespace feedpipe::consumer {

class OutcomePublisher {
 public:
  OutcomePublisher(const KafkaSettings& kafka, OffsetTracker& offsets);
  ~OutcomePublisher();

  void submit(const std::string& batch_id, const JobOutcome& outcome, JobRef ref);
  // Waits for the acknowledgements of what was submitted; true when none is missing.
  bool flush(std::chrono::milliseconds timeout);
  uint64_t published() const;  // outcomes Kafka acknowledged
  // Stops: waits up to `timeout` for Kafka, then drops what it has not acknowledged (those jobs'
  // offsets stay uncommitted: they are redelivered).
  void close(std::chrono::milliseconds timeout);

  // The reason a job fails with when its outcome is too large to publish.
  static std::string too_large_reason(size_t bytes, int limit);

 private:
  struct Pending {
    std::string batch_id;
    std::string payload;
    JobOutcome summary;  // the outcome without its fetch (for the failed outcome sent instead)
    JobRef ref;
    bool replacement = false;  // already the small failed outcome of a too-large one
  };
  void send(uint64_t id, Pending& p);
  void replace_with_failure(uint64_t id, Pending& p, const std::string& reason);
  void on_delivery(uint64_t id, RdKafka::ErrorCode err);

  OffsetTracker& offsets_;
  const int max_message_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Pending> pending_;
  uint64_t next_id_ = 1;
  uint64_t published_ = 0;
  std::atomic<bool> closing_{false};
  std::unique_ptr<KafkaProducer> kafka_;  // last: destroyed (and flushed) first
};

}  // namespace feedpipe::consumer
