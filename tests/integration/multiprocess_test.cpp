// Every role as a process of its own, as an operator runs them: kafka-mock, migrate, one
// producer, consumers and two broadcasters on one SQLite file.
#include <gtest/gtest.h>

#include "tests/support/harness.h"

namespace feedpipe::testing {
namespace {

using namespace std::chrono_literals;

class MultiProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<Process>("kafka-mock", std::vector<std::string>{"kafka-mock"},
                                        dir_.file("kafka-mock.log"));
    brokers_ = broker_->first_line(10s);
    ASSERT_FALSE(brokers_.empty()) << broker_->log();
    ASSERT_TRUE(run_migrate(dir_, db()));

    producer_port_ = free_port();
    producer_ = start("producer", {"--http", address(producer_port_)});
    consumers_.push_back(start("consumer", {}));
    consumers_.push_back(start("consumer", {}));
    for (int i = 0; i < 2; ++i) {
      broadcaster_ports_.push_back(free_port());
      broadcasters_.push_back(start("broadcaster", {"--http", address(broadcaster_ports_.back())}));
    }
    for (int port : {producer_port_, broadcaster_ports_[0], broadcaster_ports_[1]})
      ASSERT_TRUE(wait_ready(port)) << "port " << port;
  }

  std::string db() const { return dir_.file("feedpipe.db"); }
  // Every consumer leaves the group cleanly (exit 0): the jobs then wait in Kafka.
  void stop_consumers() {
    for (auto& c : consumers_) {
      c->kill(SIGTERM);
      EXPECT_EQ(c->wait_exit(30s), 0) << c->log();
    }
    consumers_.clear();
  }
  static std::string address(int port) { return "127.0.0.1:" + std::to_string(port); }

  std::unique_ptr<Process> start(const std::string& role, std::vector<std::string> extra) {
    std::vector<std::string> args{role, "--brokers", brokers_, "--db", db(), "--log-level", "info"};
    if (role == "consumer") {
      // Every test feed lives on one host: lift the per-host connection limit.
      args.insert(args.end(), {"--allow-private-networks", "--fetch-retry-delay-ms", "50",
                               "--fetch-max-host-connections", "1000",
                               // Held requests are slow on purpose; they must not time out.
                               "--fetch-low-speed-seconds", "50", "--fetch-timeout-ms", "55000",
                               // A consumer stopped mid-batch leaves the group cleanly (exit 0):
                               // under ASan on a loaded machine the mock broker took more than
                               // the default 1 s to answer a close. ShutdownTest bounds the close.
                               "--shutdown-grace-ms", "15000"});
    }
    if (role == "broadcaster") args.insert(args.end(), {"--heartbeat-ms", "500"});
    if (role == "producer") args.insert(args.end(), {"--shutdown-grace-ms", "3000"});
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(role, args, dir_.file(role + std::to_string(++started_) + ".log"));
  }

  std::vector<std::string> feed_urls(int first, int count) {
    std::vector<std::string> urls;
    for (int i = first; i < first + count; ++i) urls.push_back(feeds_.url(i));
    return urls;
  }

  // Reads the batch's stream from both broadcasters at once.
  std::vector<SseResult> watch_on_both(const std::string& batch, std::chrono::milliseconds timeout) {
    std::vector<SseResult> results(2);
    std::vector<std::thread> readers;
    for (int i = 0; i < 2; ++i)
      readers.emplace_back([&, i] {
        results[i] = read_sse(broadcaster_ports_[i], "/v1/batches/" + batch + "/events", timeout);
      });
    for (auto& t : readers) t.join();
    return results;
  }

  void expect_snapshot_agrees(const std::string& batch, const SseResult& stream) {
    auto snap = get_json(producer_port_, "/v1/batches/" + batch);
    EXPECT_EQ(snap["status"], "completed");
    EXPECT_EQ(snap["done"], snap["total"]);
    for (size_t i = 0; i + 1 < stream.events.size(); ++i) {
      const auto& data = stream.events[i].data;
      const auto& job = snap["jobs"][data["position"].get<size_t>()];
      EXPECT_EQ(job["status"], data["status"]);
      EXPECT_EQ(job["status"], "ok") << job.dump();
      EXPECT_EQ(job["items_new"], data["items_new"]);
    }
  }

  // Rows of the events table per job: exactly one each.
  int count(const std::string& sql) { return query_int(db(), sql); }

  TempDir dir_;
  FeedServer feeds_;
  std::string brokers_;
  int started_ = 0;
  int producer_port_ = 0;
  std::vector<int> broadcaster_ports_;
  std::unique_ptr<Process> broker_, producer_;
  std::vector<std::unique_ptr<Process>> consumers_, broadcasters_;
};

TEST_F(MultiProcessTest, BothBroadcastersStreamEveryJobOnceAndAThirdConsumerRebalancesMidBatch) {
  std::string first = submit_batch(producer_port_, feed_urls(0, 300));
  auto streams = watch_on_both(first, 90s);
  for (const auto& s : streams) expect_complete_stream(s, 300);
  expect_snapshot_agrees(first, streams[0]);

  // The feed server holds every request until a third consumer has joined: the rebalance
  // happens with jobs in flight.
  feeds_.hold_requests(true);
  std::string second = submit_batch(producer_port_, feed_urls(300, 300));
  ASSERT_TRUE(wait_until([&] { return feeds_.total_requests() >= 300 + 100; }, 30s));
  int third_port = free_port();
  consumers_.push_back(start("consumer", {"--http", address(third_port)}));
  // 60 s: CI once saw an ASan consumer not ready after 30 s here, its log still empty.
  ASSERT_TRUE(wait_ready(third_port, 60s)) << consumers_.back()->log();
  feeds_.hold_requests(false);
  streams = watch_on_both(second, 90s);
  for (const auto& s : streams) expect_complete_stream(s, 300);
  expect_snapshot_agrees(second, streams[0]);

  EXPECT_EQ(count("SELECT count(*) FROM events WHERE batch_id = '" + second + "'"), 301);
  EXPECT_EQ(count("SELECT count(*) FROM (SELECT job_id FROM events WHERE job_id IS NOT NULL "
                  "GROUP BY job_id HAVING count(*) > 1)"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM items"), 600 * 5);
  for (auto& c : consumers_) EXPECT_TRUE(c->running()) << c->log();
}

TEST_F(MultiProcessTest, AConsumerStoppedMidBatchHandsOverWithoutLossOrRepeat) {
  feeds_.hold_requests(true);
  std::string batch = submit_batch(producer_port_, feed_urls(7000, 200));
  ASSERT_TRUE(wait_until([&] { return feeds_.total_requests() >= 100; }, 30s)) << feeds_.total_requests();
  consumers_[0]->kill(SIGTERM);
  std::this_thread::sleep_for(500ms);
  feeds_.hold_requests(false);
  EXPECT_EQ(consumers_[0]->wait_exit(30s), 0) << consumers_[0]->log();
  auto streams = watch_on_both(batch, 90s);
  for (const auto& s : streams) expect_complete_stream(s, 200);
  expect_snapshot_agrees(batch, streams[0]);
  EXPECT_EQ(count("SELECT count(*) FROM events WHERE batch_id = '" + batch + "'"), 201);
  EXPECT_EQ(count("SELECT count(*) FROM items"), 200 * 5);
}

TEST_F(MultiProcessTest, SigtermEndsStreamsWithRetryAndTheProducerRefusesBatchesWhileItDrains) {
  feeds_.hold_requests(true);
  std::string batch = submit_batch(producer_port_, feed_urls(8000, 10));
  SseResult stream;
  std::thread reader([&] { stream = read_sse(broadcaster_ports_[0], "/v1/batches/" + batch + "/events", 30s); });
  ASSERT_TRUE(wait_until([&] {
    auto metrics = httplib::Client("127.0.0.1", broadcaster_ports_[0]).Get("/metrics");
    return metrics && metrics->body.find("feedpipe_sse_streams_open 1\n") != std::string::npos;
  }, 10s));
  broadcasters_[0]->kill(SIGTERM);
  reader.join();
  EXPECT_TRUE(stream.closed_by_server);
  EXPECT_EQ(stream.retry_lines, 2) << "one `retry:` when the stream opened, one when it was ended";
  EXPECT_EQ(broadcasters_[0]->wait_exit(10s), 0) << broadcasters_[0]->log();

  producer_->kill(SIGTERM);
  httplib::Client api("127.0.0.1", producer_port_);
  int refused_status = 0;
  std::string retry_after, body;
  EXPECT_TRUE(wait_until([&] {
    auto res = api.Post("/v1/batches", R"({"feeds":["http://127.0.0.1:1/f.xml"]})", "application/json");
    if (!res) return false;
    refused_status = res->status;
    retry_after = res->get_header_value("Retry-After");
    body = res->body;
    return refused_status == 503;
  }, 2500ms)) << refused_status;
  EXPECT_EQ(retry_after, "5");
  EXPECT_NE(body.find("shutting_down"), std::string::npos) << body;
  int status = 0;
  get_json(producer_port_, "/readyz", &status);
  EXPECT_EQ(status, 503);
  EXPECT_EQ(producer_->wait_exit(10s), 0) << producer_->log();
  feeds_.hold_requests(false);
  // What was accepted before still completes, streamed by the other broadcaster.
  expect_complete_stream(read_sse(broadcaster_ports_[1], "/v1/batches/" + batch + "/events", 60s), 10);
}

TEST_F(MultiProcessTest, BatchWaitsInKafkaUntilAConsumerStarts) {
  stop_consumers();
  std::string batch = submit_batch(producer_port_, feed_urls(5000, 50));
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(get_json(producer_port_, "/v1/batches/" + batch)["done"], 0);
  consumers_.push_back(start("consumer", {}));
  auto streams = watch_on_both(batch, 60s);
  for (const auto& s : streams) expect_complete_stream(s, 50);
}

// What an operator scales consumers on: a consumer's lag counts every job not finished on its
// partitions, keeps counting new ones while the consumer is saturated (its fetches held, its
// read-ahead full, its partitions paused: librdkafka's cached watermarks then stand still), and
// falls to zero once the jobs are done.
TEST_F(MultiProcessTest, AConsumersLagCountsItsBacklogWhileItIsSaturatedAndFallsToZeroWhenDone) {
  stop_consumers();
  feeds_.hold_requests(true);
  const int port = free_port();
  consumers_.push_back(start("consumer", {"--http", address(port), "--fetch-max-in-flight", "4",
                                          "--consumer-max-read-ahead", "4"}));
  ASSERT_TRUE(wait_ready(port)) << consumers_.back()->log();
  const std::string lag = "feedpipe_kafka_consumer_lag";
  std::string first = submit_batch(producer_port_, feed_urls(6000, 40));
  EXPECT_TRUE(wait_until([&] { return metric(port, lag) == 40; }, 10s)) << metric(port, lag);
  std::string second = submit_batch(producer_port_, feed_urls(6100, 60));
  EXPECT_TRUE(wait_until([&] { return metric(port, lag) == 100; }, 10s)) << metric(port, lag);
  feeds_.hold_requests(false);
  for (const auto& batch : {first, second})
    EXPECT_TRUE(wait_until([&] { return get_json(producer_port_, "/v1/batches/" + batch)["status"] == "completed"; }, 60s));
  EXPECT_TRUE(wait_until([&] { return metric(port, lag) == 0; }, 10s)) << metric(port, lag);
}

// A consumer reads its jobs' state from SQLite before it fetches them. When that read fails (here
// the table is briefly gone), the jobs it took from Kafka wait for its next read: none is lost, and
// none is fetched twice.
TEST_F(MultiProcessTest, JobsWhoseStateReadFailsWaitForTheConsumersNextRead) {
  stop_consumers();
  const int port = free_port();
  consumers_.push_back(start("consumer", {"--http", address(port)}));
  Process& consumer = *consumers_.back();
  ASSERT_TRUE(wait_ready(port, 60s)) << consumer.log();

  consumer.kill(SIGSTOP);  // takes the batch only once the table is gone
  const std::string batch = submit_batch(producer_port_, feed_urls(9000, 20));
  // The producer's outbox has recorded Kafka's acknowledgements (it writes to `jobs` too).
  ASSERT_TRUE(wait_until([&] { return count("SELECT count(*) FROM jobs WHERE published = 0") == 0; }, 30s));
  Database(db()).exec("ALTER TABLE jobs RENAME TO jobs_away");
  consumer.kill(SIGCONT);
  ASSERT_TRUE(wait_until([&] { return consumer.log().find("no such table: jobs") != std::string::npos; }, 30s))
      << consumer.log();
  std::this_thread::sleep_for(300ms);  // a few more failed reads
  Database(db()).exec("ALTER TABLE jobs_away RENAME TO jobs");

  auto streams = watch_on_both(batch, 60s);
  for (const auto& s : streams) expect_complete_stream(s, 20);
  expect_snapshot_agrees(batch, streams[0]);
  EXPECT_EQ(feeds_.total_requests(), 20);
  EXPECT_TRUE(consumer.running()) << consumer.log();
}

TEST_F(MultiProcessTest, EveryCommandListsItsSettings) {
  for (std::string role : {"standalone", "producer", "consumer", "broadcaster", "recorder", "migrate", "kafka-mock", "parse", "submit"}) {
    Process help(role, {role, "--help"}, dir_.file(role + "-help.log"));
    EXPECT_EQ(help.wait_exit(10s), 0);
    std::string out = help.first_line(2s);
    EXPECT_NE(out.find("usage: feedpipe " + role), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace feedpipe::testing
