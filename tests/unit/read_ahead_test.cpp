// Reading at the pace of the work (ReadAhead through a GroupMember) on the embedded broker: a full
// backlog pauses the partitions and every message is still read once there is room; a partition
// given up while paused and assigned again is read (librdkafka keeps its pause flag through the
// unassignment, so one paused then was never read again).
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "common/kafka.h"
#include "common/model.h"
#include "consumer/worker/group_member.h"

namespace feedpipe::consumer {
namespace {

using namespace std::chrono_literals;

constexpr int kPartitions = 4;
constexpr int kMessages = 400;
const std::string kTopic(kJobsTopic);

void produce_messages(const std::string& brokers) {
  KafkaSettings k;
  k.brokers = brokers;
  KafkaProducer producer(k, "test producer", nullptr);
  for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(producer.produce(kTopic, "key-" + std::to_string(i), "m"));
  ASSERT_TRUE(producer.flush(10000));
}

std::unique_ptr<GroupMember> member(const std::string& brokers, OffsetTracker& offsets, size_t max_read_ahead) {
  KafkaSettings k;
  k.brokers = brokers;
  k.session_timeout_ms = 6000;
  return std::make_unique<GroupMember>(k, GroupMemberOptions{"test", kTopic, "read-ahead-test", "test consumer", max_read_ahead, "", nullptr}, offsets);
}

using Taken = std::set<std::pair<int32_t, int64_t>>;

bool read_until(GroupMember& m, bool room, Taken& taken, const std::function<bool()>& done,
                std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline)
    m.read(20, [&] { return room; }, [&](RdKafka::Message& msg) { taken.insert({msg.partition(), msg.offset()}); });
  return done();
}

class ReadAheadTest : public ::testing::Test {
 protected:
  void SetUp() override { produce_messages(broker_.bootstrap()); }

  EmbeddedBroker broker_{kPartitions};
};

TEST_F(ReadAheadTest, AFullBacklogPausesThePartitionsAndEveryMessageIsReadOnceThereIsRoom) {
  OffsetTracker offsets;
  auto a = member(broker_.bootstrap(), offsets, 20);
  Taken taken;
  ASSERT_TRUE(read_until(*a, false, taken, [&] { return a->read_ahead().paused_partitions() > 0; }, 20s))
      << "waiting " << a->read_ahead().waiting();
  EXPECT_TRUE(taken.empty());
  EXPECT_TRUE(a->read_ahead().holding());
  ASSERT_TRUE(read_until(*a, true, taken, [&] { return taken.size() == kMessages; }, 20s)) << taken.size();
  EXPECT_EQ(a->read_ahead().paused_partitions(), 0u);
  EXPECT_FALSE(a->read_ahead().holding());
  a->close(5s);
}

TEST_F(ReadAheadTest, APartitionGivenUpWhilePausedIsReadWhenAssignedAgain) {
  OffsetTracker offsets_a, offsets_b;
  auto a = member(broker_.bootstrap(), offsets_a, 20);
  Taken taken_a, taken_b;
  ASSERT_TRUE(read_until(*a, false, taken_a,
                         [&] { return a->read_ahead().paused_partitions() == static_cast<size_t>(kPartitions); }, 30s))
      << "paused " << a->read_ahead().paused_partitions();

  // A second member joins: the paused member gives up half its partitions, still holding.
  auto b = member(broker_.bootstrap(), offsets_b, 20);
  auto b_assigned = [&] {
    std::vector<RdKafka::TopicPartition*> parts;
    b->kafka().assignment(parts);
    size_t n = parts.size();
    RdKafka::TopicPartition::destroy(parts);
    return n;
  };
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (b_assigned() == 0 && std::chrono::steady_clock::now() < deadline) {
    read_until(*a, false, taken_a, [] { return false; }, 50ms);
    read_until(*b, false, taken_b, [] { return false; }, 50ms);
  }
  ASSERT_GT(b_assigned(), 0u);
  EXPECT_LT(a->read_ahead().paused_partitions(), static_cast<size_t>(kPartitions));

  // It leaves without reading; the first member gets every partition back and reads them all.
  std::thread leave([&] { b->close(10s); });
  read_until(*a, false, taken_a, [] { return false; }, 3s);
  leave.join();
  ASSERT_TRUE(read_until(*a, true, taken_a, [&] { return taken_a.size() == kMessages; }, 30s))
      << "read " << taken_a.size() << " of " << kMessages << "; paused " << a->read_ahead().paused_partitions();
  a->close(5s);
}

}  // namespace
}  // namespace feedpipe::consumer
