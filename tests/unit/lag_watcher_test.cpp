// The lag a group member reports (LagWatcher, through GroupMember) on the embedded broker: what is
// not finished on its partitions, still growing while a full read-ahead has them paused (when
// librdkafka's cached watermarks stand still), back to zero once everything is committed, and
// summed over the members of one process.
#include <gtest/gtest.h>

#include <thread>

#include "common/kafka.h"
#include "common/metrics.h"
#include "common/model.h"
#include "consumer/worker/group_member.h"

namespace feedpipe::consumer {
namespace {

using namespace std::chrono_literals;

constexpr int kPartitions = 4;
const std::string kTopic(kJobsTopic);

void produce_messages(const std::string& brokers, int n) {
  KafkaSettings k;
  k.brokers = brokers;
  KafkaProducer producer(k, "test producer", nullptr);
  for (int i = 0; i < n; ++i) ASSERT_TRUE(producer.produce(kTopic, "key-" + std::to_string(i), "m"));
  ASSERT_TRUE(producer.flush(10000));
}

// Closes the member when the test ends early (a consumer destroyed without close() can hang in
// librdkafka's destructor).
struct Member {
  std::unique_ptr<GroupMember> m;
  GroupMember* operator->() { return m.get(); }
  GroupMember& operator*() { return *m; }
  void close(std::chrono::milliseconds timeout) {
    if (m) m->close(timeout);
    m.reset();
  }
  ~Member() { close(5s); }
};

Member member(const std::string& brokers, OffsetTracker& offsets, metrics::Gauge& lag) {
  KafkaSettings k;
  k.brokers = brokers;
  k.session_timeout_ms = 6000;
  GroupMemberOptions options{"test", kTopic, "lag-test", "test consumer", 20, "", nullptr};
  options.lag_gauge = &lag;
  options.lag_interval = 100ms;
  return Member{std::make_unique<GroupMember>(k, options, offsets)};
}

size_t assigned(GroupMember& m) {
  std::vector<RdKafka::TopicPartition*> parts;
  m.kafka().assignment(parts);
  size_t n = parts.size();
  RdKafka::TopicPartition::destroy(parts);
  return n;
}

// Reads (taking nothing while `room` is false) until `done()` or the timeout.
bool read_until(GroupMember& m, OffsetTracker& offsets, bool room, const std::function<bool()>& done,
                std::chrono::milliseconds timeout, bool finish = false) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    m.read(20, [&] { return room; }, [&](RdKafka::Message& msg) {
      offsets.taken(msg.partition(), msg.offset());
      if (finish) offsets.done(msg.partition(), msg.offset());
    });
    if (finish) m.commit_finished();
  }
  return done();
}

TEST(LagWatcherTest, CountsWhatIsNotFinishedGrowsWhilePausedAndFallsToZeroOnceCommitted) {
  EmbeddedBroker broker(kPartitions);
  produce_messages(broker.bootstrap(), 300);
  auto& lag = metrics::gauge("test_lag_one_member", "test");
  OffsetTracker offsets;
  auto m = member(broker.bootstrap(), offsets, lag);

  // A full read-ahead: every partition paused, nothing taken, nothing committed.
  ASSERT_TRUE(read_until(*m, offsets, false,
                         [&] { return m->read_ahead().paused_partitions() == static_cast<size_t>(kPartitions); }, 30s))
      << "paused " << m->read_ahead().paused_partitions();
  ASSERT_TRUE(read_until(*m, offsets, false, [&] { return lag.value() == 300; }, 10s)) << lag.value();

  // More jobs while paused: no fetch response tells librdkafka, the brokers do.
  produce_messages(broker.bootstrap(), 200);
  ASSERT_TRUE(read_until(*m, offsets, false, [&] { return lag.value() == 500; }, 10s)) << lag.value();

  // Taken and finished, offsets committed: nothing left.
  ASSERT_TRUE(read_until(*m, offsets, true, [&] { return lag.value() == 0; }, 30s, true))
      << lag.value() << " with " << offsets.in_flight() << " in flight";
  m.close(5s);
  EXPECT_EQ(lag.value(), 0);
}

TEST(LagWatcherTest, TheMembersOfAProcessAddTheirLagsAndAMemberThatLeavesTakesItsOwnOut) {
  EmbeddedBroker broker(kPartitions);
  produce_messages(broker.bootstrap(), 400);
  auto& lag = metrics::gauge("test_lag_two_members", "test");
  OffsetTracker offsets_a, offsets_b;
  auto a = member(broker.bootstrap(), offsets_a, lag);
  auto b = member(broker.bootstrap(), offsets_b, lag);
  auto both_assigned = [&] { return assigned(*a) > 0 && assigned(*b) > 0; };
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!both_assigned() && std::chrono::steady_clock::now() < deadline) {
    read_until(*a, offsets_a, false, [] { return false; }, 50ms);
    read_until(*b, offsets_b, false, [] { return false; }, 50ms);
  }
  ASSERT_TRUE(both_assigned());
  EXPECT_EQ(assigned(*a) + assigned(*b), static_cast<size_t>(kPartitions));
  // Each member measures its own partitions; the gauge shows them all, not the last one measured.
  ASSERT_TRUE(read_until(*a, offsets_a, false, [&] { return lag.value() == 400; }, 10s)) << lag.value();
  std::this_thread::sleep_for(300ms);  // a few more measurements of each: the sum holds
  EXPECT_EQ(lag.value(), 400);

  b.close(10s);
  EXPECT_LT(lag.value(), 400);  // b's part is out at once
  ASSERT_TRUE(read_until(*a, offsets_a, false, [&] { return lag.value() == 400; }, 30s))
      << "the remaining member, with every partition again, counts " << lag.value();
  a.close(5s);
  EXPECT_EQ(lag.value(), 0);
}

TEST(LagWatcherTest, AMemberWithoutPartitionsHasNoLag) {
  EmbeddedBroker broker(kPartitions);
  KafkaSettings k;
  k.brokers = broker.bootstrap();
  auto conf = make_conf(k, consumer_client(k, "test consumer", "lag-test-idle"));
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> kafka(RdKafka::KafkaConsumer::create(conf.get(), err));
  ASSERT_TRUE(kafka) << err;
  EXPECT_EQ(measure_lag(*kafka, 1s), std::optional<int64_t>(0));
  kafka->close();
}

}  // namespace
}  // namespace feedpipe::consumer
