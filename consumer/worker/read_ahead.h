#pragma once
// Reading a group member's partitions at the pace of its work. Messages go to the caller while it
// has room; what is read meanwhile waits here, and only when max_read_ahead messages wait are the
// partitions paused. Kafka is polled at every read, whatever is waiting: a rebalance waits until
// every member has served its callback, and a member that stopped polling while busy held a new
// replica's join up until the broker gave up on it. Pausing at every full backlog instead dropped
// librdkafka's prefetch each time (resuming fetches it again), which cut a 304 pass to a third.
//
// One thread: the one that calls read(), whose consume() also runs the rebalance callback, which
// calls on_assign() and on_revoke().
#include <librdkafka/rdkafkacpp.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
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

  // From the rebalance callback: new partitions are paused or resumed as the others are
  // (librdkafka keeps a partition's pause flag through an unassign, so a partition paused, lost
  // and assigned again stayed paused); revoked ones drop their waiting messages, which were never
  // taken and go back to Kafka with the partition.
  void on_assign(RdKafka::KafkaConsumer& kafka, const std::vector<RdKafka::TopicPartition*>& partitions);
  void on_revoke(const std::vector<int32_t>& partitions);

  size_t waiting() const { return waiting_.size(); }
  bool paused() const { return paused_; }

 private:
  void pause(bool pause);

  size_t max_;
  RdKafka::KafkaConsumer* kafka_ = nullptr;
  std::deque<std::unique_ptr<RdKafka::Message>> waiting_;
  bool paused_ = false;
};

}  // namespace feedpipe::consumer
