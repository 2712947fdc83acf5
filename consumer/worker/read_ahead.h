#pragma once
// Reading a group member's partitions at the pace of its work. Messages go to the caller while it
// has room; what is read meanwhile waits here, and only when max_read_ahead messages wait are the
// partitions paused. Kafka is polled at every read, whatever is waiting: a rebalance waits until
// every member has served its callback, and a member that stopped polling while busy held a new
// replica's join up until the broker gave up on it. Pausing at every full backlog instead dropped
// librdkafka's prefetch each time (resuming fetches it again), which cut a 304 pass to a third.
//
// Pause and resume are asked of exactly the partitions that need them, never around an assignment:
// in librdkafka 2.0 each one bumps the partition's op version, and one that raced the start of a
// newly assigned partition could make the start outdated and leave the partition assigned but
// never fetched (fixed upstream in 2.5 by making a resume of an unpaused partition a no-op). So a
// partition is paused only once it has delivered a message (it has started), only paused ones are
// resumed, and a paused partition is resumed before it is given up (the pause flag outlives an
// unassignment, and a partition assigned again would stay paused).
//
// One thread: the one that calls read(), whose consume() also runs the rebalance callback, which
// calls on_assign() and on_revoke().
#include <librdkafka/rdkafkacpp.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace feedpipe::consumer {

class ReadAhead {
 public:
  explicit ReadAhead(size_t max_read_ahead) : max_(max_read_ahead > 0 ? max_read_ahead : 1) {}
  void attach(RdKafka::KafkaConsumer* kafka) { kafka_ = kafka; }

  using HasRoom = std::function<bool()>;
  using Take = std::function<void(RdKafka::Message&)>;
  // Hands waiting messages, then new ones, to `take` while `has_room()`; reads at most `batch`
  // messages, waiting up to `timeout_ms` for the first.
  void read(int timeout_ms, const HasRoom& has_room, const Take& take, size_t batch = 512);

  // From the rebalance callback, after the assignment: no call to Kafka here.
  void on_assign(const std::vector<RdKafka::TopicPartition*>& partitions);
  // From the rebalance callback, before the unassignment: resumes the revoked partitions this
  // paused, and drops their waiting messages, which were never taken and go back to Kafka with
  // the partition.
  void on_revoke(const std::vector<RdKafka::TopicPartition*>& partitions);

  size_t waiting() const { return waiting_.size(); }
  bool holding() const { return holding_; }
  size_t paused_partitions() const;

 private:
  struct Partition {
    bool assigned = false;
    bool started = false;  // has delivered a message since it was assigned
    bool paused = false;   // paused by this
  };
  Partition& partition(int32_t id);
  void hold(bool hold);
  void set_paused(const std::vector<int32_t>& ids, bool pause);

  size_t max_;
  RdKafka::KafkaConsumer* kafka_ = nullptr;
  std::string topic_;
  std::deque<std::unique_ptr<RdKafka::Message>> waiting_;
  std::vector<Partition> partitions_;  // by partition id
  bool holding_ = false;               // the backlog is full: started partitions are paused
};

}  // namespace feedpipe::consumer
