// GET /v1/events, one stream for many batches, as a user meets it: `feedpipe standalone` and the
// broadcaster role as real processes, a local feed server, real SSE clients; a resume across a
// kill -9 and restart, stream tokens, and the refusals.
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "tests/support/harness.h"

namespace feedpipe::testing {
namespace {

using namespace std::chrono_literals;

// The events of each batch, by batch id, in the order they came.
std::map<std::string, std::vector<int64_t>> seqs_by_batch(const std::vector<SseEvent>& events) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const SseEvent& e : events) out[e.data.value("batch_id", "")].push_back(e.data.value("seq", int64_t{-1}));
  return out;
}

void expect_every_batch_whole(const std::vector<SseEvent>& events, const std::vector<std::string>& batches,
                              int64_t jobs_each) {
  auto got = seqs_by_batch(events);
  EXPECT_EQ(got.size(), batches.size());
  std::vector<int64_t> whole;
  for (int64_t s = 1; s <= jobs_each + 1; ++s) whole.push_back(s);
  for (const std::string& b : batches) EXPECT_EQ(got[b], whole) << "batch " << b << ": each event once, in seq order";
}

std::string events_path(const std::vector<std::string>& batches, const std::vector<std::string>& tokens = {}) {
  std::string path = "/v1/events?";
  for (size_t i = 0; i < batches.size(); ++i) {
    path += (i ? "&batch=" : "batch=") + batches[i];
    if (i < tokens.size()) path += "&token=" + tokens[i];
  }
  return path;
}

std::string error_code(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get(path, {{"Accept", "text/event-stream"}});
  if (!res) return "no answer";
  auto body = nlohmann::json::parse(res->body, nullptr, false);
  return std::to_string(res->status) + " " + (body.is_object() ? body["error"].value("code", "") : res->body);
}

class ManyBatchesStandaloneTest : public ::testing::Test {
 protected:
  void SetUp() override { start(); }
  void start() {
    port_ = free_port();
    process_ = start_standalone(dir_, port_,
                                {"--allow-private-networks", "--consumers", "2", "--heartbeat-ms", "500",
                                 "--fetch-retry-delay-ms", "50", "--fetch-max-host-connections", "1000",
                                 "--max-stream-batches", "8"});
    ASSERT_TRUE(wait_ready(port_)) << process_->log();
  }
  std::vector<std::string> feed_urls(int first, int count) {
    std::vector<std::string> urls;
    for (int i = first; i < first + count; ++i) urls.push_back(feeds_.url(i));
    return urls;
  }

  TempDir dir_;
  FeedServer feeds_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

TEST_F(ManyBatchesStandaloneTest, EightBatchesOnOneStreamResumeAcrossAKillAndRestart) {
  feeds_.hold_requests(true);
  std::vector<std::string> batches;
  for (int b = 0; b < 8; ++b) batches.push_back(submit_batch(port_, feed_urls(100 * b, 10)));
  const std::string path = events_path(batches);
  std::thread release([&] {
    std::this_thread::sleep_for(300ms);
    feeds_.hold_requests(false);
  });
  auto first = read_sse(port_, path, 30s, {}, 30);
  release.join();
  ASSERT_EQ(first.status, 200);
  ASSERT_EQ(first.events.size(), 30u);
  const std::string last_id = first.events.back().raw_id;
  ASSERT_NE(last_id.find('.'), std::string::npos) << "an id of the stream, not a batch's seq: " << last_id;

  process_->kill(SIGKILL);  // the broadcaster goes away mid-stream and comes back on the same database
  process_->wait_exit(10s);
  start();
  auto rest = read_sse(port_, path, 60s, {{"Last-Event-ID", last_id}});
  EXPECT_EQ(rest.status, 200);
  EXPECT_TRUE(rest.closed_by_server) << "the stream ends once every batch has completed";
  std::vector<SseEvent> all = first.events;
  all.insert(all.end(), rest.events.begin(), rest.events.end());
  expect_every_batch_whole(all, batches, 10);
  EXPECT_EQ(rest.events.back().raw_id, "11.11.11.11.11.11.11.11");

  // The same through ?last_event_id=, from the middle of the stream.
  const std::string mid_id = all[40].raw_id;
  auto tail = read_sse(port_, path + "&last_event_id=" + mid_id, 30s);
  std::vector<SseEvent> head(all.begin(), all.begin() + 41);
  head.insert(head.end(), tail.events.begin(), tail.events.end());
  expect_every_batch_whole(head, batches, 10);
}

TEST_F(ManyBatchesStandaloneTest, RefusesPastTheBatchLimitAndBadOrUnknownBatches) {
  std::vector<std::string> nine;
  for (int b = 0; b < 9; ++b) nine.push_back(submit_batch(port_, feed_urls(1000 + b, 1)));
  EXPECT_EQ(error_code(port_, events_path(nine)), "400 too_many_batches");
  EXPECT_EQ(error_code(port_, "/v1/events"), "400 batch_required");
  EXPECT_EQ(error_code(port_, events_path({nine[0], nine[1], nine[0]})), "400 duplicate_batch");
  EXPECT_EQ(error_code(port_, events_path({nine[0], ""})), "400 invalid_batch_id");
  EXPECT_EQ(error_code(port_, events_path({nine[0], "no-such-batch"})), "404 batch_not_found");
  // The batches themselves stream fine, eight at once.
  nine.pop_back();
  auto stream = read_sse(port_, events_path(nine), 60s);
  EXPECT_TRUE(stream.closed_by_server);
  expect_every_batch_whole(stream.events, nine, 1);
}

// The broadcaster role as compose runs it (behind nginx, which sends /v1/events to it), with
// stream tokens: one token= per batch=, in the same order.
TEST(ManyBatchesRolesTest, TheBroadcasterServesManyBatchesWithOneTokenPerBatch) {
  TempDir dir;
  FeedServer feeds;
  Process broker("kafka-mock", {"kafka-mock"}, dir.file("kafka-mock.log"));
  const std::string brokers = broker.first_line(10s);
  ASSERT_FALSE(brokers.empty()) << broker.log();
  const std::string db = dir.file("feedpipe.db");
  ASSERT_TRUE(run_migrate(dir, db));
  const std::string secret = "many-batches-secret";
  const int producer_port = free_port(), broadcaster_port = free_port();
  auto address = [](int port) { return "127.0.0.1:" + std::to_string(port); };
  Process producer("producer", {"producer", "--brokers", brokers, "--db", db, "--http", address(producer_port),
                                "--stream-token-secret", secret},
                   dir.file("producer.log"));
  Process consumer("consumer", {"consumer", "--brokers", brokers, "--db", db, "--allow-private-networks",
                                "--fetch-max-host-connections", "1000"},
                   dir.file("consumer.log"));
  Process broadcaster("broadcaster", {"broadcaster", "--brokers", brokers, "--db", db, "--http",
                                      address(broadcaster_port), "--heartbeat-ms", "500",
                                      "--stream-token-secret", secret},
                      dir.file("broadcaster.log"));
  ASSERT_TRUE(wait_ready(producer_port)) << producer.log();
  ASSERT_TRUE(wait_ready(broadcaster_port)) << broadcaster.log();

  std::vector<std::string> batches, tokens;
  httplib::Client api("127.0.0.1", producer_port);
  for (int b = 0; b < 3; ++b) {
    std::vector<std::string> urls;
    for (int i = 0; i < 5; ++i) urls.push_back(feeds.url(50 * b + i));
    auto res = api.Post("/v1/batches", nlohmann::json{{"feeds", urls}}.dump(), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 202) << res->body;
    auto body = nlohmann::json::parse(res->body);
    batches.push_back(body["batch_id"]);
    tokens.push_back(body["stream_token"]);
  }
  EXPECT_EQ(error_code(broadcaster_port, events_path(batches)), "403 stream_token_required");
  EXPECT_EQ(error_code(broadcaster_port, events_path(batches, {tokens[1], tokens[0], tokens[2]})),
            "403 invalid_stream_token");
  auto stream = read_sse(broadcaster_port, events_path(batches, tokens), 60s);
  EXPECT_EQ(stream.status, 200);
  EXPECT_TRUE(stream.closed_by_server);
  expect_every_batch_whole(stream.events, batches, 5);
}

TEST(ManyBatchesSettings, TheBatchLimitIsASettingOfEveryCommandThatServesStreams) {
  TempDir dir;
  for (std::string role : {"standalone", "broadcaster"}) {
    Process help(role, {role, "--help"}, dir.file(role + "-help.log"));
    EXPECT_EQ(help.wait_exit(10s), 0);
    EXPECT_TRUE(wait_until([&] { return help.output().find("--max-stream-batches") != std::string::npos; }, 2s))
        << role << ": " << help.output();
    EXPECT_NE(help.output().find("FEEDPIPE_MAX_STREAM_BATCHES"), std::string::npos) << help.output();
  }
}

}  // namespace
}  // namespace feedpipe::testing
