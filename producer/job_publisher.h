#pragma once
// The outbox: publishes job messages to feed.refresh.jobs and records in SQLite which ones Kafka
// acknowledged. Jobs that were never acknowledged (broker down, process died) are published
// again by a background sweep, so an accepted batch is never lost. Thread-safe.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "common/kafka.h"
#include "common/model.h"

namespace feedpipe::producer {

struct PublisherSettings {
  std::string db_path;
  KafkaSettings kafka;
  std::chrono::milliseconds sweep_interval{5000};  // how often unacknowledged jobs are looked for
  // On start, publish every job that is not final, acknowledged or not (an embedded broker keeps
  // messages in memory only, so after a restart they are gone).
  bool republish_open_jobs_on_start = false;
  // A job running longer than this (its consumer vanished after taking it, and Kafka will not
  // redeliver it, e.g. after an embedded broker restarted) is published again. Well above the
  // fetch deadline, so a live job is not duplicated; a duplicate would be harmless anyway.
  std::chrono::milliseconds running_lease{300000};
  // On stop, how long Kafka gets to acknowledge the jobs sent; the outbox sweep publishes the
  // others again.
  std::chrono::milliseconds flush_timeout{10000};
};

class JobPublisher {
 public:
  // librdkafka's partitioner function type (rd_kafka_msg_partitioner_consistent and its kin).
  using PartitionerFn = int32_t (*)(const rd_kafka_topic_t*, const void*, size_t, int32_t, void*, void*);

  explicit JobPublisher(PublisherSettings settings);
  ~JobPublisher();

  void start();  // the start-up republish, then the sweep thread
  void stop();

  // Queues the messages for Kafka; acknowledgements are recorded asynchronously.
  void publish(const std::vector<JobMessage>& jobs);
  // Publishes events that were written with a batch (failed jobs of unfetchable URLs).
  void publish_events(const std::vector<EventMessage>& events);

  bool broker_reachable();

  // Where the jobs producer's partitioner (librdkafka's `partitioner`, as configured) puts the job
  // message of a feed URL, from the partition count last read from the broker; empty while that
  // is not known, or when placement is random.
  std::function<int32_t(const std::string& url)> partitioner() const;
  int32_t job_partitions() const { return job_partitions_; }  // 0 until read from the broker
  uint64_t acknowledged() const { return acknowledged_; }

 private:
  void on_delivery(uint64_t job_id, RdKafka::ErrorCode err);
  void run();
  void record_acknowledgements();
  void republish(bool all_open);
  void refresh_partition_count();

  PublisherSettings settings_;
  std::unique_ptr<KafkaProducer> kafka_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<int64_t> acked_;                // acknowledged, not yet recorded
  std::unordered_set<int64_t> in_flight_;     // produced, no delivery report yet
  std::atomic<uint64_t> acknowledged_{0};
  std::atomic<int32_t> job_partitions_{0};  // 0: not read yet
  // librdkafka's partitioner function as configured; nullptr when placement is random.
  PartitionerFn place_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace feedpipe::producer
