// EventHub against a real SQLite file: events are written by record_outcomes and delivered to
// the hub as Kafka would (on_event), out of order, twice, or never.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "broadcaster/event_hub.h"
#include "broadcaster_test_util.h"

namespace {

using namespace std::chrono_literals;
using feedpipe::EventHub;
using feedpipe::EventMessage;
using feedpipe::Subscription;
using feedpipe::testing::BroadcasterDb;

std::vector<int64_t> seqs(const std::vector<EventMessage>& events) {
  std::vector<int64_t> out;
  for (const auto& e : events) out.push_back(e.seq);
  return out;
}

// Everything a subscription hands out until `want` events or the deadline.
std::vector<EventMessage> drain(Subscription& sub, size_t want, std::chrono::milliseconds deadline = 3s) {
  std::vector<EventMessage> got;
  auto until = std::chrono::steady_clock::now() + deadline;
  while (got.size() < want && std::chrono::steady_clock::now() < until) {
    auto more = sub.next(50ms);
    got.insert(got.end(), more.begin(), more.end());
  }
  return got;
}

class EventHubTest : public ::testing::Test {
 protected:
  BroadcasterDb tmp;
  EventHub hub{{tmp.path(), 60s}};  // no sweep unless a test asks for one
};

TEST_F(EventHubTest, UnknownBatchIsNull) {
  EXPECT_EQ(hub.subscribe("no-such-batch", 0), nullptr);
  EXPECT_EQ(hub.watched_batches(), 0u);
}

TEST_F(EventHubTest, OutOfOrderArrivalIsDeliveredInSeqOrder) {
  auto jobs = tmp.create_batch("b1", 3);
  auto sub = hub.subscribe("b1", 0);
  ASSERT_NE(sub, nullptr);
  auto e1 = tmp.finish_job(jobs[0]);
  auto e2 = tmp.finish_job(jobs[1]);
  hub.on_event(e1[0]);
  EXPECT_EQ(seqs(sub->next(1s)), (std::vector<int64_t>{1}));
  // Kafka hands over seq 3 before seq 2 (both committed): 2 comes from SQLite first.
  auto e3 = tmp.finish_job(jobs[2]);  // seq 3 and batch.completed (4)
  ASSERT_EQ(e3.size(), 2u);
  hub.on_event(e3[0]);
  hub.on_event(e2[0]);  // late: already delivered
  hub.on_event(e3[1]);  // already read with the gap
  auto rest = drain(*sub, 3);
  EXPECT_EQ(seqs(rest), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(rest.back().type, "batch.completed");
  EXPECT_TRUE(sub->finished());
  EXPECT_TRUE(sub->next(20ms).empty());
}

TEST_F(EventHubTest, DuplicateSeqIsDropped) {
  auto jobs = tmp.create_batch("b1", 2);
  auto sub = hub.subscribe("b1", 0);
  auto e1 = tmp.finish_job(jobs[0]);
  hub.on_event(e1[0]);
  hub.on_event(e1[0]);
  EXPECT_EQ(seqs(sub->next(1s)), (std::vector<int64_t>{1}));
  hub.on_event(e1[0]);
  EXPECT_TRUE(sub->next(50ms).empty());
  EXPECT_FALSE(sub->finished());
}

TEST_F(EventHubTest, GapIsFilledFromSqliteWhenKafkaNeverDeliversAnEvent) {
  auto jobs = tmp.create_batch("b1", 4);
  auto sub = hub.subscribe("b1", 0);
  auto e1 = tmp.finish_job(jobs[0]);
  tmp.finish_job(jobs[1]);  // seq 2: never on Kafka
  auto e3 = tmp.finish_job(jobs[2]);
  hub.on_event(e1[0]);
  hub.on_event(e3[0]);
  EXPECT_EQ(seqs(drain(*sub, 3)), (std::vector<int64_t>{1, 2, 3}));
}

TEST_F(EventHubTest, PayloadIsDeliveredAsPublished) {
  auto jobs = tmp.create_batch("b1", 2);
  auto sub = hub.subscribe("b1", 0);
  auto e1 = tmp.finish_job(jobs[0]);
  hub.on_event(e1[0]);
  auto got = sub->next(1s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].batch_id, "b1");
  EXPECT_EQ(got[0].type, "job.failed");
  EXPECT_EQ(got[0].data, e1[0].data);
}

TEST_F(EventHubTest, SweepDeliversAnEventThatNeverCameFromKafka) {
  auto jobs = tmp.create_batch("b1", 2);
  auto sub = hub.subscribe("b1", 0);
  tmp.finish_job(jobs[0]);
  EXPECT_TRUE(sub->next(50ms).empty());
  hub.sweep();
  EXPECT_EQ(seqs(sub->next(1s)), (std::vector<int64_t>{1}));
}

TEST(EventHubSweep, SweepThreadDeliversLostEvents) {
  BroadcasterDb tmp;
  EventHub hub({tmp.path(), 50ms});
  hub.start();
  auto jobs = tmp.create_batch("b1", 2);
  auto sub = hub.subscribe("b1", 0);
  tmp.finish_job(jobs[0]);
  tmp.finish_job(jobs[1]);
  auto got = drain(*sub, 3);
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(sub->finished());
  hub.stop();
}

TEST_F(EventHubTest, LateSubscriberGetsFullHistory) {
  auto jobs = tmp.create_batch("b1", 3);
  for (auto id : jobs) tmp.finish_job(id);
  auto sub = hub.subscribe("b1", 0);
  EXPECT_FALSE(sub->finished());
  auto got = sub->next(0ms);
  EXPECT_EQ(seqs(got), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(got.back().type, "batch.completed");
  EXPECT_TRUE(sub->finished());
}

TEST_F(EventHubTest, SubscriberWithAfterSeqGetsOnlyTheRest) {
  auto jobs = tmp.create_batch("b1", 3);
  tmp.finish_job(jobs[0]);
  tmp.finish_job(jobs[1]);
  auto sub = hub.subscribe("b1", 1);
  EXPECT_EQ(seqs(sub->next(0ms)), (std::vector<int64_t>{2}));
  EXPECT_EQ(sub->cursor(), 2);
  auto e = tmp.finish_job(jobs[2]);
  for (const auto& ev : e) hub.on_event(ev);
  EXPECT_EQ(seqs(drain(*sub, 2)), (std::vector<int64_t>{3, 4}));
  // Starting past batch.completed: finished at once.
  auto past = hub.subscribe("b1", 4);
  EXPECT_TRUE(past->next(0ms).empty());
  EXPECT_TRUE(past->finished());
}

TEST_F(EventHubTest, FinishedOnlyOnceBatchCompletedIsHandedOut) {
  auto jobs = tmp.create_batch("b1", 1);
  auto sub = hub.subscribe("b1", 0);
  EXPECT_FALSE(sub->finished());
  auto e = tmp.finish_job(jobs[0]);
  ASSERT_EQ(e.size(), 2u);
  hub.on_event(e[0]);
  hub.on_event(e[1]);
  EXPECT_FALSE(sub->finished());  // not handed out yet
  EXPECT_EQ(seqs(sub->next(1s)), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(sub->finished());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(sub->next(5s).empty());  // returns at once
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST_F(EventHubTest, CacheIsDroppedWithTheLastSubscriber) {
  tmp.create_batch("b1", 1);
  auto a = hub.subscribe("b1", 0);
  auto b = hub.subscribe("b1", 0);
  EXPECT_EQ(hub.watched_batches(), 1u);
  a.reset();
  EXPECT_EQ(hub.watched_batches(), 1u);
  b.reset();
  EXPECT_EQ(hub.watched_batches(), 0u);
}

TEST_F(EventHubTest, StopWakesSubscribers) {
  tmp.create_batch("b1", 1);
  auto sub = hub.subscribe("b1", 0);
  std::thread stopper([&] {
    std::this_thread::sleep_for(100ms);
    hub.stop();
  });
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(sub->next(10s).empty());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_TRUE(sub->stopped());
  stopper.join();
}

TEST_F(EventHubTest, ReadPageFromSqlite) {
  auto jobs = tmp.create_batch("b1", 3);
  EXPECT_FALSE(hub.read_page("nope", 0, 10).has_value());
  auto empty = hub.read_page("b1", 0, 10);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->events.empty());
  EXPECT_EQ(empty->next_after, 0);
  EXPECT_FALSE(empty->done);
  for (auto id : jobs) tmp.finish_job(id);
  auto first = hub.read_page("b1", 0, 2);
  EXPECT_EQ(seqs(first->events), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(first->next_after, 2);
  EXPECT_FALSE(first->done);
  auto last = hub.read_page("b1", 2, 2);
  EXPECT_EQ(seqs(last->events), (std::vector<int64_t>{3, 4}));
  EXPECT_TRUE(last->done);
  auto after_end = hub.read_page("b1", 4, 2);
  EXPECT_TRUE(after_end->events.empty());
  EXPECT_EQ(after_end->next_after, 4);
  EXPECT_TRUE(after_end->done);
}

// Many subscribers on many threads while Kafka delivers the events shuffled, duplicated and
// with some missing, and the sweep runs: each subscriber sees 1..total+1 exactly once, in order.
TEST(EventHubConcurrency, FiftySubscribersReceiveEveryEventExactlyOnce) {
  BroadcasterDb tmp;
  EventHub hub({tmp.path(), 20ms});
  hub.start();
  constexpr int kJobs = 40, kSubscribers = 50;
  auto jobs = tmp.create_batch("b1", kJobs);

  std::atomic<int> subscribed{0}, failures{0}, done{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < kSubscribers; ++i) {
    readers.emplace_back([&, i] {
      auto sub = hub.subscribe("b1", 0);
      ++subscribed;
      if (!sub) {
        ++failures;
        return;
      }
      int64_t expect = 1;
      auto until = std::chrono::steady_clock::now() + 10s;
      while (!sub->finished() && std::chrono::steady_clock::now() < until) {
        for (const auto& e : sub->next(i % 2 ? 10ms : 100ms)) {
          if (e.seq != expect) ++failures;
          expect = e.seq + 1;
        }
      }
      if (expect != kJobs + 2 || !sub->finished()) ++failures;
      ++done;
    });
  }
  while (subscribed < kSubscribers / 2) std::this_thread::sleep_for(1ms);

  std::mt19937 rng(42);
  std::vector<EventMessage> in_flight;
  for (int64_t id : jobs) {
    for (auto& e : tmp.finish_job(id)) in_flight.push_back(e);
    // Deliver a random part of what is in flight, in random order, some twice, some never.
    std::shuffle(in_flight.begin(), in_flight.end(), rng);
    while (in_flight.size() > 2) {
      const auto e = in_flight.back();
      in_flight.pop_back();
      if (rng() % 10 == 0) continue;  // lost
      hub.on_event(e);
      if (rng() % 5 == 0) hub.on_event(e);  // duplicate
    }
  }
  for (const auto& e : in_flight) hub.on_event(e);
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(done.load(), kSubscribers);
  hub.stop();
  EXPECT_EQ(hub.watched_batches(), 0u);
}

}  // namespace
