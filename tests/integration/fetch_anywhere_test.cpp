// The many-hosts shape on one machine: kafka-mock, a producer and two recorders on one SQLite
// file, consumers WITHOUT a database (each in an empty working directory of its own) that publish
// their outcomes to feed.refresh.outcomes, and a broadcaster.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/kafka.h"
#include "common/model.h"
#include "common/outcome_message.h"
#include "tests/support/harness.h"

namespace feedpipe::testing {
namespace {

using namespace std::chrono_literals;

class FetchAnywhereTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<Process>("kafka-mock", std::vector<std::string>{"kafka-mock"},
                                        dir_.file("kafka-mock.log"));
    brokers_ = broker_->first_line(10s);
    ASSERT_FALSE(brokers_.empty()) << broker_->log();
    ASSERT_TRUE(run_migrate(dir_, db()));

    producer_port_ = free_port();
    producer_ = start("producer", {"--db", db(), "--http", address(producer_port_)});
    for (int i = 0; i < 2; ++i) {
      recorder_ports_.push_back(free_port());
      recorders_.push_back(start("recorder", {"--db", db(), "--http", address(recorder_ports_.back())}));
    }
    broadcaster_port_ = free_port();
    broadcaster_ = start("broadcaster", {"--db", db(), "--http", address(broadcaster_port_), "--heartbeat-ms", "500"});
    for (int port : {producer_port_, broadcaster_port_, recorder_ports_[0], recorder_ports_[1]})
      ASSERT_TRUE(wait_ready(port)) << "port " << port;
  }

  std::string db() const { return dir_.file("feedpipe.db"); }
  static std::string address(int port) { return "127.0.0.1:" + std::to_string(port); }

  std::unique_ptr<Process> start(const std::string& role, std::vector<std::string> extra, const std::string& cwd = "") {
    std::vector<std::string> args{role, "--brokers", brokers_, "--log-level", "info"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(role, args, dir_.file(role + std::to_string(++started_) + ".log"), "", cwd);
  }

  // A consumer without --db, in an empty working directory of its own; returns once it has
  // joined its group (a rebalance with jobs in flight would fetch some of them twice: without a
  // database a consumer cannot tell that a redelivered job was recorded already).
  void start_consumer(std::vector<std::string> extra = {}) {
    consumer_dirs_.push_back(std::make_unique<TempDir>());
    const int port = free_port();
    std::vector<std::string> args{"--http", address(port), "--allow-private-networks", "--fetch-retry-delay-ms", "50",
                                  "--fetch-max-host-connections", "1000",
                                  // Held requests are slow on purpose; they must not time out.
                                  "--fetch-low-speed-seconds", "50", "--fetch-timeout-ms", "55000"};
    args.insert(args.end(), extra.begin(), extra.end());
    consumers_.push_back(start("consumer", args, consumer_dirs_.back()->path()));
    consumer_ports_.push_back(port);
    ASSERT_TRUE(wait_ready(port)) << consumers_.back()->log();
  }

  // Waits until the consumers share the 12 partitions, each with some: a consumer is ready after
  // the first round of a cooperative rebalance, and the second round may still move partitions.
  void wait_group_settled() {
    ASSERT_TRUE(wait_until([&] {
      int total = 0;
      for (int port : consumer_ports_) {
        int n = metric_value(port, "feedpipe_consumer_assigned_partitions");
        if (n == 0) return false;
        total += n;
      }
      return total == 12;
    }, 30s));
  }

  std::vector<std::string> feed_urls(int first, int count) {
    std::vector<std::string> urls;
    for (int i = first; i < first + count; ++i) urls.push_back(feeds_.url(i));
    return urls;
  }

  SseResult watch(const std::string& batch, std::chrono::milliseconds timeout = 90s) {
    return read_sse(broadcaster_port_, "/v1/batches/" + batch + "/events", timeout);
  }

  int count(const std::string& sql) { return query_int(db(), sql); }

  std::string metrics(int port) {
    auto res = httplib::Client("127.0.0.1", port).Get("/metrics");
    return res ? res->body : "";
  }

  // A counter's value on /metrics (0 when absent).
  int metric_value(int port, const std::string& series) {
    std::string text = "\n" + metrics(port);
    auto pos = text.find("\n" + series + " ");  // a sample line, not the # HELP line
    return pos == std::string::npos ? 0 : std::atoi(text.c_str() + pos + series.size() + 2);
  }

  // Every job of the batch once in the events table, and as `status` in the snapshot.
  void expect_recorded_once(const std::string& batch, size_t total, const std::string& status) {
    EXPECT_EQ(count("SELECT count(*) FROM events WHERE batch_id = '" + batch + "'"), static_cast<int>(total + 1));
    EXPECT_EQ(count("SELECT count(*) FROM (SELECT job_id FROM events WHERE job_id IS NOT NULL "
                    "GROUP BY job_id HAVING count(*) > 1)"), 0);
    auto snap = get_json(producer_port_, "/v1/batches/" + batch);
    EXPECT_EQ(snap["status"], "completed");
    EXPECT_EQ(snap["done"], total);
    for (const auto& job : snap["jobs"]) EXPECT_EQ(job["status"], status) << job.dump();

  }

  TempDir dir_;
  FeedServer feeds_;
  std::string brokers_;
  int started_ = 0;
  int producer_port_ = 0, broadcaster_port_ = 0;
  std::vector<int> recorder_ports_, consumer_ports_;
  std::unique_ptr<Process> broker_, producer_, broadcaster_;
  std::vector<std::unique_ptr<Process>> recorders_, consumers_;
  std::vector<std::unique_ptr<TempDir>> consumer_dirs_;
};

TEST_F(FetchAnywhereTest, ConsumersWithoutADatabaseFetchAndRecordersRecordEachJobOnceThenA304Pass) {
  start_consumer();
  start_consumer();
  wait_group_settled();
  const size_t n = 300;
  std::string first = submit_batch(producer_port_, feed_urls(0, n));
  SseResult stream = watch(first);
  expect_complete_stream(stream, n);
  expect_recorded_once(first, n, "ok");
  EXPECT_EQ(count("SELECT count(*) FROM items"), static_cast<int>(n * 5));
  EXPECT_EQ(count("SELECT count(*) FROM jobs WHERE batch_id = '" + first + "' AND items_new = 5"), static_cast<int>(n));
  for (const auto& ev : stream.events) {
    if (ev.event == "batch.completed") continue;
    EXPECT_EQ(ev.data["items_new"], 5) << ev.data.dump();
  }

  // The validators travelled in the job messages: every feed answers 304 this time.
  std::string second = submit_batch(producer_port_, feed_urls(0, n));
  expect_complete_stream(watch(second), n);
  expect_recorded_once(second, n, "not_modified");
  EXPECT_EQ(count("SELECT count(*) FROM items"), static_cast<int>(n * 5));
  // One conditional GET per job (a rebalance could add a few: at least once).
  EXPECT_GE(feeds_.total_requests(), static_cast<int>(2 * n));

  for (auto& c : consumers_) {
    EXPECT_TRUE(c->running()) << c->log();
    EXPECT_NE(c->log().find("a `feedpipe recorder --db FILE` must run"), std::string::npos) << c->log();
  }
  for (auto& d : consumer_dirs_)
    EXPECT_TRUE(std::filesystem::is_empty(d->path())) << "a consumer without --db created a file in " << d->path();
  for (auto& r : recorders_) EXPECT_TRUE(r->running()) << r->log();
  // The recorders (one database) recorded each job once between them.
  auto recorded = [&](const std::string& status) {
    int total = 0;
    for (int port : recorder_ports_) total += metric_value(port, "feedpipe_jobs_total{status=\"" + status + "\"}");
    return total;
  };
  EXPECT_EQ(recorded("ok"), static_cast<int>(n));
  EXPECT_EQ(recorded("not_modified"), static_cast<int>(n));
  EXPECT_EQ(integrity_check(db()), "ok");
}

TEST_F(FetchAnywhereTest, GarbageRedeliveredAndUnknownOutcomesChangeNothingAndTheRecorderGoesOn) {
  start_consumer();
  std::string first = submit_batch(producer_port_, feed_urls(100, 20));
  expect_complete_stream(watch(first), 20);
  const int events_before = count("SELECT count(*) FROM events");
  const int first_job = count("SELECT min(id) FROM jobs WHERE batch_id = '" + first + "'");

  // Straight onto every partition of the outcomes topic.
  KafkaSettings kafka;
  kafka.brokers = brokers_;
  {
    KafkaProducer producer(kafka, "test producer", nullptr);
    JobOutcome late;
    late.job_id = first_job;
    late.status = JobStatus::failed;
    late.http_status = 500;
    late.duration_ms = 1;
    late.error = "late duplicate";
    const std::string redelivered = serialize_outcome(first, late);
    JobOutcome stranger;
    stranger.job_id = 987654321;
    stranger.status = JobStatus::ok;
    stranger.http_status = 200;
    stranger.fetch = FeedFetch{"http://x.test/", "", "", "", "", {}};
    stranger.fetch->items.push_back({"g", "", "", "", "", "", "", ""});
    const std::string unknown = serialize_outcome("nosuchbatch", stranger);
    for (int32_t p = 0; p < 12; ++p) {
      for (const std::string& payload : {std::string("{not an outcome"), std::string("FPO\x63\x02", 5),
                                         redelivered, unknown}) {
        auto rc = producer.handle().produce(std::string(kOutcomesTopic), p, RdKafka::Producer::RK_MSG_COPY,
                                            const_cast<char*>(payload.data()), payload.size(), nullptr, 0, 0, nullptr);
        ASSERT_EQ(rc, RdKafka::ERR_NO_ERROR);
      }
    }
    ASSERT_TRUE(producer.flush(10000));
  }
  auto skipped = [&](const std::string& reason) {
    int total = 0;
    for (int port : recorder_ports_)
      total += metric_value(port, "feedpipe_outcomes_skipped_total{reason=\"" + reason + "\"}");
    return total;
  };
  EXPECT_TRUE(wait_until([&] { return skipped("malformed") == 12 && skipped("unknown_version") == 12; }, 30s))
      << skipped("malformed") << " " << skipped("unknown_version");

  // The partitions still move: a new batch completes behind those messages.
  std::string second = submit_batch(producer_port_, feed_urls(200, 20));
  expect_complete_stream(watch(second), 20);
  expect_recorded_once(first, 20, "ok");
  expect_recorded_once(second, 20, "ok");
  EXPECT_EQ(count("SELECT count(*) FROM events"), events_before + 21);
  EXPECT_EQ(count("SELECT count(*) FROM feeds WHERE url = 'http://x.test/'"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM items"), 40 * 5);
  EXPECT_EQ(count("SELECT count(*) FROM jobs WHERE error = 'late duplicate'"), 0);
  for (auto& r : recorders_) EXPECT_TRUE(r->running()) << r->log();
}

TEST_F(FetchAnywhereTest, AConsumerStoppedMidBatchPublishesWhatItFetchedAndARecorderStopsCleanly) {
  start_consumer();
  start_consumer();
  wait_group_settled();
  feeds_.hold_requests(true);
  std::string batch = submit_batch(producer_port_, feed_urls(400, 100));
  ASSERT_TRUE(wait_until([&] { return feeds_.total_requests() >= 50; }, 30s)) << feeds_.total_requests();
  consumers_[0]->kill(SIGTERM);
  std::this_thread::sleep_for(500ms);
  feeds_.hold_requests(false);
  EXPECT_EQ(consumers_[0]->wait_exit(30s), 0) << consumers_[0]->log();
  expect_complete_stream(watch(batch), 100);
  expect_recorded_once(batch, 100, "ok");
  EXPECT_EQ(count("SELECT count(*) FROM items"), 100 * 5);

  recorders_[0]->kill(SIGTERM);
  EXPECT_EQ(recorders_[0]->wait_exit(30s), 0) << recorders_[0]->log();
  // The other recorder takes its partitions over.
  std::string next = submit_batch(producer_port_, feed_urls(500, 20));
  expect_complete_stream(watch(next), 20);
  expect_recorded_once(next, 20, "ok");
}

TEST_F(FetchAnywhereTest, JobsOfTheSameFeedInFlightTogetherShareOneFetch) {
  start_consumer();
  feeds_.hold_requests(true);
  std::vector<std::string> urls = feed_urls(600, 10);
  urls.push_back(urls[0]);  // the same feed twice in one batch
  std::string a = submit_batch(producer_port_, urls);
  ASSERT_TRUE(wait_until([&] { return feeds_.total_requests() >= 10; }, 30s)) << feeds_.total_requests();
  std::string b = submit_batch(producer_port_, feed_urls(600, 10));  // and in a second batch
  std::this_thread::sleep_for(1s);  // its jobs join the fetches in flight
  feeds_.hold_requests(false);
  expect_complete_stream(watch(a), 11);
  expect_complete_stream(watch(b), 10);
  expect_recorded_once(a, 11, "ok");
  expect_recorded_once(b, 10, "ok");
  EXPECT_EQ(feeds_.total_requests(), 10);
  EXPECT_EQ(count("SELECT count(*) FROM items"), 10 * 5);
}

TEST_F(FetchAnywhereTest, AnOutcomeOverTheMessageLimitFailsItsJobWithTheReason) {
  // 1000 bytes (librdkafka's least) is below a 20-item feed's outcome, and above a failure's.
  start_consumer({"--kafka-max-message-bytes", "1000"});
  std::vector<std::string> urls = feed_urls(300, 5);
  for (std::string& url : urls) url += "?items=20";
  std::string batch = submit_batch(producer_port_, urls);
  SseResult stream = watch(batch, 60s);
  expect_complete_stream(stream, 5);
  auto snap = get_json(producer_port_, "/v1/batches/" + batch);
  EXPECT_EQ(snap["failed"], 5);
  for (const auto& job : snap["jobs"]) {
    EXPECT_EQ(job["status"], "failed");
    const std::string error = job["error"].is_string() ? job["error"].get<std::string>() : "";
    EXPECT_NE(error.find("exceeds the outcome topic's limit of 1000 bytes"), std::string::npos) << error;
    EXPECT_EQ(error.rfind("outcome of ", 0), 0u) << error;
  }
  EXPECT_EQ(count("SELECT count(*) FROM items"), 0);
  EXPECT_TRUE(consumers_[0]->running()) << consumers_[0]->log();
}

TEST(FetchAnywhere, ABroadcasterWithoutADatabaseExitsWithStatus2AndSaysWhy) {
  TempDir dir;
  Process broadcaster("broadcaster", {"broadcaster", "--brokers", "127.0.0.1:1"}, dir.file("b.log"), "", dir.path());
  EXPECT_EQ(broadcaster.wait_exit(10s), 2);
  EXPECT_NE(broadcaster.log().find("a broadcaster needs exactly one of --db"), std::string::npos) << broadcaster.log();
  Process help("recorder", {"recorder", "--help"}, dir.file("help.log"));
  EXPECT_EQ(help.wait_exit(10s), 0);
  EXPECT_NE(help.output().find("usage: feedpipe recorder"), std::string::npos) << help.output();
}

}  // namespace
}  // namespace feedpipe::testing
