#pragma once
// One member of a Kafka consumer group that reads one topic at the pace of its work: what the
// job consumer and the recorder share. It joins with cooperative-sticky assignment, reads through
// a ReadAhead, commits the offsets an OffsetTracker releases (asynchronously as work finishes,
// synchronously when partitions move away), and leaves the group within a bound.
//
// Threading: one thread, the owner's loop, calls read(), commit_finished() and close(); the
// rebalance callback runs inside read() on that thread. joined() may be read from any thread.
// Errors: the constructor throws ConfigError (bad client settings) or KafkaError.
#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/kafka.h"
#include "common/metrics.h"
#include "consumer/worker/lag_watcher.h"
#include "consumer/worker/offset_tracker.h"
#include "consumer/worker/read_ahead.h"

namespace feedpipe::consumer {

struct GroupMemberOptions {
  std::string role;            // in logs: "consumer", "recorder"
  std::string topic;           // the one topic it reads
  std::string group_id;
  std::string client_name;     // for --kafka-config's sections and errors
  size_t max_read_ahead = 16384;
  std::string redelivery_note;  // what a failed commit means, for the log
  std::function<void(int64_t)> on_partitions_changed;  // +n assigned, -n revoked
  metrics::Gauge* lag_gauge = nullptr;  // where its lag goes (see LagWatcher); none: not measured
  std::chrono::milliseconds lag_interval{2000};
};

class GroupMember : public RdKafka::RebalanceCb {
 public:
  GroupMember(const KafkaSettings& kafka, GroupMemberOptions options, OffsetTracker& offsets);
  ~GroupMember() override;

  // ReadAhead::read: messages to `take` while `has_room()`.
  void read(int timeout_ms, const ReadAhead::HasRoom& has_room, const ReadAhead::Take& take) {
    read_ahead_.read(timeout_ms, has_room, take);
  }
  void commit_finished() { commit(offsets_.to_commit(), false); }
  // Before close(), on stop: librdkafka before 2.3 aborts (its issue #4312) when a
  // cooperative-sticky consumer is destroyed between its group's JoinGroup and SyncGroup answers,
  // so a member stopped before its first assignment lets the join finish, reading nothing.
  void finish_joining(std::chrono::steady_clock::time_point deadline);
  // Commits what is finished and leaves the group, within `timeout` (see close_consumer).
  void close(std::chrono::milliseconds timeout);

  bool joined() const { return joined_; }
  const ReadAhead& read_ahead() const { return read_ahead_; }
  RdKafka::KafkaConsumer& kafka() { return *kafka_; }

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override;

 private:
  void commit(const std::vector<PartitionOffset>& offsets, bool sync);

  GroupMemberOptions options_;
  OffsetTracker& offsets_;
  ReadAhead read_ahead_;
  std::unique_ptr<RdKafka::KafkaConsumer> kafka_;
  std::unique_ptr<LagWatcher> lag_;  // after kafka_, which it uses
  std::atomic<bool> joined_{false};
  bool closing_ = false;  // the loop's thread only (rebalance_cb runs there)
};

}  // namespace feedpipe::consumer
