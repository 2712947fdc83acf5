// The event hub against a fake EventSource (one read at a time per batch, ordering with a source
// that lags or is down), and ApiEventSource against a local cpp-httplib server (paging, 404,
// stream tokens, an API that is down and comes back).
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "broadcaster/api_event_source.h"
#include "broadcaster/event_hub.h"
#include "common/config.h"
#include "common/queries.h"
#include "common/stream_token.h"

namespace {

using namespace std::chrono_literals;
using feedpipe::ApiEventSource;
using feedpipe::ApiSourceSettings;
using feedpipe::EventHub;
using feedpipe::EventMessage;
using feedpipe::EventPage;
using feedpipe::EventSource;
using feedpipe::SourceUnavailable;
using feedpipe::Subscription;

EventMessage event(const std::string& batch, int64_t seq, int64_t total) {
  const bool last = seq == total + 1;
  return {batch, seq, last ? "batch.completed" : "job.completed",
          R"({"batch_id":")" + batch + R"(","seq":)" + std::to_string(seq) + "}"};
}

std::vector<int64_t> seqs(const std::vector<EventMessage>& events) {
  std::vector<int64_t> out;
  for (const auto& e : events) out.push_back(e.seq);
  return out;
}

std::vector<int64_t> range(int64_t first, int64_t last) {
  std::vector<int64_t> out;
  for (int64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

std::vector<EventMessage> drain(Subscription& sub, size_t want, std::chrono::milliseconds deadline = 3s) {
  std::vector<EventMessage> got;
  auto until = std::chrono::steady_clock::now() + deadline;
  while (got.size() < want && std::chrono::steady_clock::now() < until) {
    auto more = sub.next(20ms);
    got.insert(got.end(), more.begin(), more.end());
  }
  return got;
}

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 5s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Batches whose committed events the test controls; reads may be held at a gate or fail.
class FakeSource : public EventSource {
 public:
  void add_batch(const std::string& id, int64_t total) {
    std::lock_guard lock(mu_);
    batches_[id] = {total, {}};
  }
  // Commits events up to `seq` (in order, as the recording transaction does).
  void commit_up_to(const std::string& id, int64_t seq) {
    std::lock_guard lock(mu_);
    auto& b = batches_.at(id);
    for (int64_t s = static_cast<int64_t>(b.events.size()) + 1; s <= seq; ++s) b.events.push_back(event(id, s, b.total));
  }
  void hold(bool on) {
    {
      std::lock_guard lock(mu_);
      held_ = on;
    }
    cv_.notify_all();
  }
  void set_down(bool down) { down_ = down; }
  int reads() const { return reads_.load(); }
  int waiting() const { return waiting_.load(); }

  std::optional<EventPage> read_after(const std::string& id, int64_t after, int limit) override {
    ++reads_;
    std::unique_lock lock(mu_);
    ++waiting_;
    cv_.wait(lock, [&] { return !held_; });
    --waiting_;
    if (down_) throw SourceUnavailable("the fake source is down");
    auto it = batches_.find(id);
    if (it == batches_.end()) return std::nullopt;
    const auto& b = it->second;
    EventPage page;
    for (const auto& e : b.events)
      if (e.seq > after && static_cast<int>(page.events.size()) < limit) page.events.push_back(e);
    page.next_after = page.events.empty() ? after : page.events.back().seq;
    page.done = static_cast<int64_t>(b.events.size()) == b.total + 1 && page.next_after == b.total + 1;
    return page;
  }
  std::string describe() const override { return "fake"; }
  bool remote() const override { return remote_; }
  bool remote_ = false;

 private:
  struct Batch {
    int64_t total;
    std::vector<EventMessage> events;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Batch> batches_;
  bool held_ = false;
  std::atomic<bool> down_{false};
  std::atomic<int> reads_{0}, waiting_{0};
};

class HubWithFakeSource : public ::testing::Test {
 protected:
  std::shared_ptr<FakeSource> source = std::make_shared<FakeSource>();
  EventHub hub{{"", 60s, source}};  // no sweep unless a test calls sweep()
};

TEST_F(HubWithFakeSource, ConcurrentSubscribersOfOneBatchShareOneRead) {
  source->add_batch("b", 40);
  source->commit_up_to("b", 30);
  source->hold(true);
  constexpr int kSubscribers = 64;
  std::vector<std::shared_ptr<Subscription>> subs(kSubscribers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kSubscribers; ++i)
    threads.emplace_back([&, i] { subs[i] = hub.subscribe("b", i % 20); });
  ASSERT_TRUE(wait_for([&] { return source->waiting() == 1; }));
  std::this_thread::sleep_for(50ms);  // let the others reach the in-flight read (holds either way)
  source->hold(false);
  for (auto& t : threads) t.join();
  EXPECT_EQ(source->reads(), 1);
  EXPECT_EQ(hub.history_reads(), 1u);
  // Live events reach every subscriber, each from its own cursor, in order, once.
  source->commit_up_to("b", 41);
  for (int64_t s = 31; s <= 41; ++s) hub.on_event(event("b", s, 40));
  for (int i = 0; i < kSubscribers; ++i) {
    ASSERT_NE(subs[i], nullptr);
    EXPECT_EQ(seqs(drain(*subs[i], 41 - i % 20)), range(i % 20 + 1, 41)) << "subscriber " << i;
    EXPECT_TRUE(subs[i]->finished());
  }
  EXPECT_EQ(source->reads(), 1) << "events in order need no read";
}

TEST_F(HubWithFakeSource, UnknownBatchIsNullAndEverySubscriberWaitingForTheReadHearsIt) {
  source->hold(true);
  std::vector<std::shared_ptr<Subscription>> subs(8);
  std::vector<std::thread> threads;
  std::atomic<int> returned{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      subs[i] = hub.subscribe("nope", 0);
      ++returned;
    });
  ASSERT_TRUE(wait_for([&] { return source->waiting() == 1; }));
  source->hold(false);
  for (auto& t : threads) t.join();
  for (auto& s : subs) EXPECT_EQ(s, nullptr);
  EXPECT_EQ(hub.watched_batches(), 0u);
}

TEST_F(HubWithFakeSource, EarlyArrivalWaitsForTheGapWhichIsReadFromTheSource) {
  source->add_batch("b", 5);
  source->commit_up_to("b", 2);
  auto sub = hub.subscribe("b", 0);
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(seqs(drain(*sub, 2)), range(1, 2));
  source->commit_up_to("b", 5);
  hub.on_event(event("b", 5, 5));  // 3 and 4 have not come from Kafka: read them
  EXPECT_EQ(seqs(drain(*sub, 3)), range(3, 5));
  hub.on_event(event("b", 3, 5));  // late duplicates change nothing
  hub.on_event(event("b", 4, 5));
  EXPECT_TRUE(sub->next(30ms).empty());
  EXPECT_EQ(source->reads(), 2);
}

TEST_F(HubWithFakeSource, WhileTheSourceIsDownKafkaEventsStillFlowInOrderAndGapsFillWhenItReturns) {
  source->add_batch("b", 6);
  source->commit_up_to("b", 1);
  auto sub = hub.subscribe("b", 0);
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(seqs(drain(*sub, 1)), range(1, 1));
  source->set_down(true);
  source->commit_up_to("b", 7);
  hub.on_event(event("b", 2, 6));
  hub.on_event(event("b", 4, 6));  // early; its gap cannot be read now: held back
  hub.on_event(event("b", 3, 6));  // fills the gap from Kafka: 3 and the held 4 go out
  EXPECT_EQ(seqs(drain(*sub, 3)), range(2, 4));
  hub.on_event(event("b", 7, 6));  // 5 and 6 never come from Kafka
  hub.sweep();                      // still down: nothing, no harm
  EXPECT_TRUE(sub->next(30ms).empty());
  source->set_down(false);
  hub.sweep();
  EXPECT_EQ(seqs(drain(*sub, 3)), range(5, 7));
  EXPECT_TRUE(sub->finished());
}

TEST_F(HubWithFakeSource, AFailedHistoryReadFailsItsWaitersAndTheNextSubscriberReadsAgain) {
  source->add_batch("b", 2);
  source->commit_up_to("b", 3);
  source->set_down(true);
  EXPECT_THROW(hub.subscribe("b", 0), SourceUnavailable);
  EXPECT_EQ(hub.watched_batches(), 0u);
  source->set_down(false);
  auto sub = hub.subscribe("b", 1);
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(seqs(drain(*sub, 2)), range(2, 3));
}

TEST_F(HubWithFakeSource, ASweepOrGapWhileAReadIsInFlightMakesNoSecondRead) {
  source->add_batch("b", 10);
  source->commit_up_to("b", 1);
  auto sub = hub.subscribe("b", 0);
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(source->reads(), 1);
  source->commit_up_to("b", 6);
  source->hold(true);
  std::thread sweeper([&] { hub.sweep(); });  // reads, held at the gate
  ASSERT_TRUE(wait_for([&] { return source->waiting() == 1; }));
  hub.sweep();                      // the read in flight does the work
  hub.on_event(event("b", 6, 10));  // early: asks the read in flight to read on
  EXPECT_EQ(source->reads(), 2);
  EXPECT_EQ(seqs(drain(*sub, 6, 50ms)), range(1, 1)) << "nothing before the read returns";
  source->hold(false);
  sweeper.join();
  EXPECT_EQ(seqs(drain(*sub, 5)), range(2, 6));
  EXPECT_LE(source->reads(), 3);
}

TEST(HubWithRemoteSource, AGapIsReadOnTheSweepThreadNotOnTheThreadThatDeliversKafkaEvents) {
  auto source = std::make_shared<FakeSource>();
  source->remote_ = true;
  EventHub hub({"", 60s, source});  // the sweep itself will not run during the test
  hub.start();
  source->add_batch("b", 5);
  source->commit_up_to("b", 1);
  auto sub = hub.subscribe("b", 0);
  ASSERT_NE(sub, nullptr);
  source->commit_up_to("b", 6);
  source->hold(true);
  hub.on_event(event("b", 4, 5));  // returns at once: the held read is the sweep thread's
  ASSERT_TRUE(wait_for([&] { return source->waiting() == 1; }));
  hub.on_event(event("b", 2, 5));  // in order: delivered while the gap read is held
  EXPECT_EQ(seqs(drain(*sub, 2)), range(1, 2));
  source->hold(false);
  EXPECT_EQ(seqs(drain(*sub, 4)), range(3, 6));
  EXPECT_TRUE(sub->finished());
  hub.stop();
}

// ApiEventSource against a local server that answers the JSON page of one batch of 2,500 events
// (pages of 1,000, as the producer does), 404 for others, 403 without the right token.
class ApiSourceTest : public ::testing::Test {
 protected:
  static constexpr int64_t kTotal = 2499;  // seqs 1 … 2500
  const std::string secret = "s3cret";

  void SetUp() override {
    for (int64_t s = 1; s <= kTotal + 1; ++s) events_.push_back(event("b1", s, kTotal));
    server_.Get(R"(/v1/batches/([^/]+)/events)", [this](const httplib::Request& req, httplib::Response& res) {
      ++pages_;
      const std::string id = req.matches[1];
      if (req.get_header_value("Accept") != "application/json") {
        res.status = 406;
        return;
      }
      if (!req.has_param("token") || !feedpipe::stream_token_valid(secret, id, req.get_param_value("token"))) {
        res.status = 403;
        return;
      }
      if (id != "b1") {
        res.status = 404;
        res.set_content(R"({"error":{"code":"batch_not_found","message":"no"}})", "application/json");
        return;
      }
      const int64_t after = std::stoll(req.get_param_value("after"));
      EventPage page;
      for (const auto& e : events_)
        if (e.seq > after && page.events.size() < 1000) page.events.push_back(e);
      page.next_after = page.events.empty() ? after : page.events.back().seq;
      page.done = page.next_after == kTotal + 1;
      res.set_content(feedpipe::event_page_json(page).dump(), "application/json");
    });
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  ApiSourceSettings settings(int port) {
    ApiSourceSettings s;
    s.url = "http://127.0.0.1:" + std::to_string(port);
    s.connect_timeout = 500ms;
    s.read_timeout = 2s;
    s.stream_token_secret = secret;
    s.retry_min = 300ms;
    s.retry_max = 300ms;
    return s;
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::vector<EventMessage> events_;
  std::atomic<int> pages_{0};
};

TEST_F(ApiSourceTest, PagesTheHistoryInOrderWithTheTokenAndKnowsUnknownBatches) {
  auto source = std::make_shared<ApiEventSource>(settings(port_));
  auto page = source->read_after("b1", 998, 1000);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->events.size(), 1000u);
  EXPECT_EQ(page->events.front().seq, 999);
  EXPECT_EQ(page->next_after, 1998);
  EXPECT_FALSE(page->done);
  EXPECT_EQ(page->events.front().data, events_[998].data);
  EXPECT_EQ(page->events.front().type, "job.completed");
  EXPECT_EQ(source->read_after("b2", 0, 1000), std::nullopt);

  EventHub hub({"", 60s, source});
  pages_ = 0;
  auto sub = hub.subscribe("b1", 10);
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(pages_.load(), 3) << "2,500 events in pages of 1,000";
  auto got = drain(*sub, kTotal + 1 - 10);
  EXPECT_EQ(seqs(got), range(11, kTotal + 1));
  EXPECT_TRUE(sub->finished());
  EXPECT_EQ(got.back().type, "batch.completed");
  EXPECT_EQ(hub.subscribe("b2", 0), nullptr);
  EXPECT_EQ(source->readiness(), "");
}

TEST_F(ApiSourceTest, AWrongSecretIsAFailureNotAnUnknownBatch) {
  auto s = settings(port_);
  s.stream_token_secret = "other";
  ApiEventSource source(s);
  EXPECT_THROW(source.read_after("b1", 0, 1000), SourceUnavailable);
}

TEST_F(ApiSourceTest, ADownApiFailsFastDuringTheBackoffAndIsReadAgainWhenItReturns) {
  const int port = port_;
  server_.stop();
  thread_.join();
  ApiEventSource source(settings(port));
  EXPECT_THROW(source.read_after("b1", 0, 1000), SourceUnavailable);
  EXPECT_NE(source.readiness(), "");
  const uint64_t sent = source.requests();
  EXPECT_THROW(source.read_after("b1", 0, 1000), SourceUnavailable);
  EXPECT_EQ(source.requests(), sent) << "no request during the backoff";

  // The API comes back on the same port.
  httplib::Server again;
  again.Get(R"(/v1/batches/([^/]+)/events)", [this](const httplib::Request&, httplib::Response& res) {
    EventPage page{{events_[0], events_[1]}, 2, false};
    res.set_content(feedpipe::event_page_json(page).dump(), "application/json");
  });
  ASSERT_TRUE(again.bind_to_port("127.0.0.1", port));
  std::thread t([&] { again.listen_after_bind(); });
  while (!again.is_running()) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(350ms);  // past the backoff
  auto page = source.read_after("b1", 0, 1000);
  again.stop();
  t.join();
  ASSERT_TRUE(page);
  EXPECT_EQ(seqs(page->events), range(1, 2));
}

TEST(ApiSourceSettings, RefusesWhatIsNotAnHttpUrl) {
  for (std::string url : {"127.0.0.1:8080", "ftp://x", "http://", "http://h:80/x?y=1"}) {
    ApiSourceSettings s;
    s.url = url;
    EXPECT_THROW(ApiEventSource{s}, feedpipe::ConfigError) << url;
  }
  ApiSourceSettings s;
  s.url = "http://127.0.0.1:8080/";
  EXPECT_NO_THROW(ApiEventSource{s});
}

}  // namespace
