// The many-hosts shape: a broadcaster with --api and no database reads batch history and gaps
// from the producer's JSON events page. Real processes: kafka-mock, producer --db, consumer --db
// and broadcaster --api http://127.0.0.1:PRODUCER, with stream tokens on (the broadcaster signs
// its page reads itself).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <algorithm>
#include <set>

#include "common/stream_token.h"
#include "tests/support/harness.h"

namespace feedpipe::testing {
namespace {

using namespace std::chrono_literals;

const std::string kSecret = "api-broadcaster-test-secret";

class ApiBroadcasterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<Process>("kafka-mock", std::vector<std::string>{"kafka-mock"}, dir_.file("kafka-mock.log"));
    brokers_ = broker_->first_line(10s);
    ASSERT_FALSE(brokers_.empty()) << broker_->log();
    ASSERT_TRUE(run_migrate(dir_, db()));
    producer_port_ = free_port();
    start_producer();
    consumer_ = std::make_unique<Process>(
        "consumer",
        std::vector<std::string>{"consumer", "--brokers", brokers_, "--db", db(), "--allow-private-networks",
                                 "--fetch-max-host-connections", "1000", "--fetch-low-speed-seconds", "50",
                                 "--fetch-timeout-ms", "55000"},
        dir_.file("consumer.log"));
    broadcaster_port_ = free_port();
    start_broadcaster();
    ASSERT_TRUE(wait_ready(producer_port_)) << producer_->log();
    ASSERT_TRUE(wait_ready(broadcaster_port_)) << broadcaster_->log();
  }

  void start_producer() {
    producer_ = std::make_unique<Process>(
        "producer",
        std::vector<std::string>{"producer", "--brokers", brokers_, "--db", db(), "--http", address(producer_port_),
                                 "--stream-token-secret", kSecret, "--shutdown-grace-ms", "200"},
        dir_.file("producer" + std::to_string(++producers_started_) + ".log"));
  }

  // No --db: history and gaps over the API. A long sweep interval, so that every page read the
  // producer counts is a history or gap read.
  void start_broadcaster() {
    broadcaster_ = std::make_unique<Process>(
        "broadcaster",
        std::vector<std::string>{"broadcaster", "--brokers", brokers_, "--api",
                                 "http://127.0.0.1:" + std::to_string(producer_port_), "--http",
                                 address(broadcaster_port_), "--stream-token-secret", kSecret, "--heartbeat-ms", "500",
                                 "--sweep-ms", "60000", "--max-streams-per-ip", "0"},
        dir_.file("broadcaster" + std::to_string(++broadcasters_started_) + ".log"));
  }

  std::string db() const { return dir_.file("feedpipe.db"); }
  static std::string address(int port) { return "127.0.0.1:" + std::to_string(port); }
  static std::string events_path(const std::string& batch) {
    return "/v1/batches/" + batch + "/events?token=" + stream_token(kSecret, batch);
  }
  std::vector<std::string> feed_urls(int first, int count) {
    std::vector<std::string> urls;
    for (int i = first; i < first + count; ++i) urls.push_back(feeds_.url(i));
    return urls;
  }
  long done(const std::string& batch) { return get_json(producer_port_, "/v1/batches/" + batch).value("done", -1L); }
  // The counter appears with the first page read.
  long page_reads() { return std::max<int64_t>(0, metric(producer_port_, "feedpipe_events_page_requests_total")); }

  TempDir dir_;
  FeedServer feeds_;
  std::string brokers_;
  int producer_port_ = 0, broadcaster_port_ = 0, broadcasters_started_ = 0, producers_started_ = 0;
  std::unique_ptr<Process> broker_, producer_, consumer_, broadcaster_;
};

TEST_F(ApiBroadcasterTest, StreamsEveryEventOnceInOrderAndAMidBatchResumeGetsExactlyTheRest) {
  feeds_.hold_requests_after(120);
  std::string batch = submit_batch(producer_port_, feed_urls(0, 200));
  SseResult whole, rest;
  std::thread first([&] { whole = read_sse(broadcaster_port_, events_path(batch), 90s); });
  ASSERT_TRUE(wait_until([&] { return done(batch) >= 100; }, 30s)) << done(batch);
  std::thread second([&] {
    rest = read_sse(broadcaster_port_, events_path(batch), 90s, {{"Last-Event-ID", "80"}});
  });
  ASSERT_TRUE(wait_until([&] { return metric(broadcaster_port_, "feedpipe_sse_streams_open") == 2; }, 10s));
  feeds_.hold_requests(false);
  first.join();
  second.join();
  expect_complete_stream(whole, 200);
  ASSERT_EQ(rest.events.size(), 121u) << "events 81 … 201";
  for (size_t i = 0; i < rest.events.size(); ++i) EXPECT_EQ(rest.events[i].id, static_cast<int64_t>(81 + i));
  EXPECT_EQ(rest.events.back().event, "batch.completed");
  EXPECT_TRUE(rest.closed_by_server);

  // The producer's JSON page: the same access rules, and no streams.
  httplib::Client api("127.0.0.1", producer_port_);
  auto page = api.Get(events_path(batch) + "&after=195", {{"Accept", "application/json"}});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->status, 200) << page->body;
  auto body = nlohmann::json::parse(page->body);
  EXPECT_EQ(body["events"].size(), 6u);
  EXPECT_EQ(body["events"][0]["id"], 196);
  EXPECT_EQ(body["next_after"], 201);
  EXPECT_EQ(body["done"], true);
  auto refused = api.Get("/v1/batches/" + batch + "/events?after=0", {{"Accept", "application/json"}});
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  auto unknown = api.Get(events_path("no-such-batch"), {{"Accept", "application/json"}});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  auto stream = api.Get(events_path(batch), {{"Accept", "text/event-stream"}});
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream->status, 406);
  // An unknown batch is 404 on the broadcaster too, as with --db.
  EXPECT_EQ(read_sse(broadcaster_port_, events_path("no-such-batch"), 5s).status, 404);
}

TEST_F(ApiBroadcasterTest, AReconnectHerdAfterARestartCostsAboutOneApiReadPerBatchAndResumesExactly) {
  constexpr int kBatches = 2, kFeeds = 60, kClients = 200;
  // Both batches stop part way: fewer answers than either batch has feeds (the consumer may well
  // fetch all of one batch before the other).
  feeds_.hold_requests_after(40);
  std::vector<std::string> batches;
  for (int b = 0; b < kBatches; ++b) batches.push_back(submit_batch(producer_port_, feed_urls(1000 + b * kFeeds, kFeeds)));
  ASSERT_TRUE(wait_until([&] { return done(batches[0]) + done(batches[1]) >= 40; }, 60s));

  // 200 clients watch; the broadcaster restarts; each reconnects with the last id it got.
  std::vector<std::vector<SseEvent>> got(kClients);
  std::atomic<bool> reconnect{false};
  std::atomic<int> reconnected{0};
  std::vector<std::thread> clients;
  // A failed check below must end the test, not std::terminate it on joinable threads: let the
  // clients go (their reads end by their own timeouts) and wait for them.
  struct JoinAll {
    std::vector<std::thread>& threads;
    std::atomic<bool>& reconnect;
    ~JoinAll() {
      reconnect = true;
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
  } join_all{clients, reconnect};
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&, i] {
      const std::string path = events_path(batches[i % kBatches]);
      SseResult before = read_sse(broadcaster_port_, path, 60s);
      got[i] = before.events;
      while (!reconnect) std::this_thread::sleep_for(10ms);
      httplib::Headers headers;
      if (!got[i].empty()) headers.emplace("Last-Event-ID", std::to_string(got[i].back().id));
      ++reconnected;
      SseResult after = read_sse(broadcaster_port_, path, 60s, headers);
      got[i].insert(got[i].end(), after.events.begin(), after.events.end());
    });
  ASSERT_TRUE(wait_until([&] { return metric(broadcaster_port_, "feedpipe_sse_streams_open") == kClients; }, 60s))
      << metric(broadcaster_port_, "feedpipe_sse_streams_open") << " open, jobs done " << done(batches[0]) << " + "
      << done(batches[1]) << "\n--- broadcaster\n" << broadcaster_->log() << "--- producer\n" << producer_->log();
  broadcaster_->kill(SIGTERM);
  EXPECT_EQ(broadcaster_->wait_exit(15s), 0) << broadcaster_->log();
  start_broadcaster();
  ASSERT_TRUE(wait_ready(broadcaster_port_)) << broadcaster_->log();
  const long reads_before = page_reads();
  reconnect = true;
  ASSERT_TRUE(wait_until([&] { return metric(broadcaster_port_, "feedpipe_sse_streams_open") == kClients; }, 60s))
      << reconnected.load() << " reconnected, " << metric(broadcaster_port_, "feedpipe_sse_streams_open")
      << " open\n" << broadcaster_->log();
  const long herd_reads = page_reads() - reads_before;
  feeds_.hold_requests(false);
  for (auto& t : clients) t.join();

  std::printf("page reads for %d reconnecting clients of %d batches: %ld\n", kClients, kBatches, herd_reads);
  EXPECT_GE(herd_reads, kBatches);
  EXPECT_LE(herd_reads, kBatches + 4) << "one read per batch (plus a gap or two), not one per client";
  for (int i = 0; i < kClients; ++i) {
    ASSERT_EQ(got[i].size(), static_cast<size_t>(kFeeds + 1)) << "client " << i;
    for (size_t k = 0; k < got[i].size(); ++k) ASSERT_EQ(got[i][k].id, static_cast<int64_t>(k + 1)) << "client " << i;
    EXPECT_EQ(got[i].back().event, "batch.completed");
  }
}

TEST_F(ApiBroadcasterTest, WhileTheApiIsDownStreamsGoOnWithKafkasEventsAndReadinessFollowsTheApi) {
  feeds_.hold_requests_after(20);
  std::string batch = submit_batch(producer_port_, feed_urls(3000, 60));
  ASSERT_TRUE(wait_until([&] { return done(batch) >= 20; }, 30s));
  SseResult stream;
  std::thread reader([&] { stream = read_sse(broadcaster_port_, events_path(batch), 90s); });
  ASSERT_TRUE(wait_until([&] { return metric(broadcaster_port_, "feedpipe_sse_streams_open") == 1; }, 10s));
  producer_->kill(SIGTERM);
  ASSERT_EQ(producer_->wait_exit(15s), 0) << producer_->log();
  int status = 0;
  EXPECT_TRUE(wait_until([&] {
    get_json(broadcaster_port_, "/readyz", &status);
    return status == 503;
  }, 10s)) << "not ready while the API is down";
  feeds_.hold_requests(false);  // the rest of the batch is recorded and published meanwhile
  reader.join();
  expect_complete_stream(stream, 60);

  start_producer();
  ASSERT_TRUE(wait_ready(broadcaster_port_)) << broadcaster_->log();
  SseResult rest = read_sse(broadcaster_port_, events_path(batch), 30s, {{"Last-Event-ID", "30"}});
  ASSERT_EQ(rest.events.size(), 31u);
  EXPECT_EQ(rest.events.front().id, 31);
  EXPECT_EQ(rest.events.back().event, "batch.completed");
}

TEST(ApiBroadcasterSettings, ABroadcasterNeedsExactlyOneOfDbAndApi) {
  TempDir dir;
  for (auto extra : std::vector<std::vector<std::string>>{
           {}, {"--db", dir.file("feedpipe.db"), "--api", "http://127.0.0.1:1"}}) {
    std::vector<std::string> args{"broadcaster", "--brokers", "127.0.0.1:1", "--http", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    Process p("broadcaster", args, dir.file("broadcaster" + std::to_string(extra.size()) + ".log"));
    EXPECT_EQ(p.wait_exit(10s), 2) << p.log();
    EXPECT_NE(p.log().find("exactly one of --db"), std::string::npos) << p.log();
  }
}

}  // namespace
}  // namespace feedpipe::testing
