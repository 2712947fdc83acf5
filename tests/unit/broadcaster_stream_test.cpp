// The broadcaster end to end: an embedded Kafka broker, events written by record_outcomes and
// published to feed.refresh.events, an httplib server with the broadcaster's routes, and SSE
// readers over httplib::Client.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "broadcaster/broadcaster.h"
#include "broadcaster/delivery_metrics.h"
#include "broadcaster_test_util.h"
#include "common/http.h"
#include "common/kafka.h"

namespace {

using namespace std::chrono_literals;
using feedpipe::Broadcaster;
using feedpipe::BroadcasterSettings;
using feedpipe::EmbeddedBroker;
using feedpipe::EventMessage;
using feedpipe::KafkaProducer;
using feedpipe::testing::BroadcasterDb;

struct SseEvent {
  int64_t id = 0;
  std::string event, data;
};

// Parses complete frames of a text/event-stream; `retry` and `pings` count the other frames.
struct SseParse {
  std::vector<SseEvent> events;
  int pings = 0;
  int retry = -1;
};
SseParse parse_sse(const std::string& text) {
  SseParse out;
  size_t pos = 0;
  while (true) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::istringstream frame(text.substr(pos, end - pos));
    pos = end + 2;
    SseEvent e;
    bool is_event = false;
    std::string line;
    while (std::getline(frame, line)) {
      if (line.rfind("id: ", 0) == 0) e.id = std::stoll(line.substr(4)), is_event = true;
      else if (line.rfind("event: ", 0) == 0) e.event = line.substr(7);
      else if (line.rfind("data: ", 0) == 0) e.data += (e.data.empty() ? "" : "\n") + line.substr(6);
      else if (line.rfind("retry: ", 0) == 0) out.retry = std::stoi(line.substr(7));
      else if (line == ": ping") ++out.pings;
    }
    if (is_event) out.events.push_back(e);
  }
  return out;
}

class BroadcasterTest : public ::testing::Test {
 protected:
  // One broker for the suite: creating and destroying the mock cluster takes seconds. Each test
  // has its own database; the reader starts at the end of the topic, so earlier tests' events
  // are not read.
  static void SetUpTestSuite() { broker = new EmbeddedBroker(4); }
  static void TearDownTestSuite() {
    delete broker;
    broker = nullptr;
  }

  void start(BroadcasterSettings settings = {}) {
    settings.db_path = tmp.path();
    settings.kafka.brokers = broker->bootstrap();
    settings.kafka.partitions = 4;
    if (settings.heartbeat == 15000ms) settings.heartbeat = 200ms;
    broadcaster = std::make_unique<Broadcaster>(settings);
    server.new_task_queue = [] { return new httplib::ThreadPool(64); };
    broadcaster->register_routes(server);
    port = server.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port, 0);
    // httplib listens with a backlog of 5: 30 readers connecting at once on a loaded machine
    // overflow it, and a dropped SYN is retried only after 1 s, then 3 s.
    feedpipe::raise_listen_backlog(port, 1024);
    listener = std::thread([this] { server.listen_after_bind(); });
    broadcaster->start();
    auto until = std::chrono::steady_clock::now() + 10s;
    while (!broadcaster->ready() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(broadcaster->ready());
    producer = std::make_unique<KafkaProducer>(settings.kafka, "test producer", [](uint64_t, RdKafka::ErrorCode) {});
  }

  void TearDown() override {
    if (broadcaster) broadcaster->stop();  // ends open streams first
    server.stop();
    if (listener.joinable()) listener.join();
    producer.reset();
    broadcaster.reset();
  }

  // Records one job's outcome and publishes its events as the consumer does.
  void finish_and_publish(int64_t job_id) {
    for (const EventMessage& e : tmp.finish_job(job_id))
      ASSERT_TRUE(producer->produce(feedpipe::kEventsTopic, e.batch_id, feedpipe::serialize(e)));
  }

  httplib::Client client() {
    httplib::Client cli("127.0.0.1", port);
    cli.set_read_timeout(5, 0);
    cli.set_connection_timeout(10, 0);
    return cli;
  }

  static inline EmbeddedBroker* broker = nullptr;
  BroadcasterDb tmp;
  httplib::Server server;
  int port = 0;
  std::thread listener;
  std::unique_ptr<Broadcaster> broadcaster;
  std::unique_ptr<KafkaProducer> producer;
};

// An SSE reader on a thread of its own; stop_when decides (under the lock) when to hang up.
class StreamReader {
 public:
  StreamReader(httplib::Client cli, std::string path, httplib::Headers headers,
               std::function<bool(const std::string&)> stop_when = nullptr)
      : cli_(std::move(cli)) {
    headers.emplace("Accept", "text/event-stream");
    thread_ = std::thread([this, path, headers, stop_when] {
      auto res = cli_.Get(path.c_str(), headers, [&](const char* data, size_t n) {
        std::lock_guard lock(mu_);
        text_.append(data, n);
        return !hang_up_ && !(stop_when && stop_when(text_));
      });
      std::lock_guard lock(mu_);
      ok_ = static_cast<bool>(res);
      if (res) status_ = res->status, content_type_ = res->get_header_value("Content-Type"),
               cache_control_ = res->get_header_value("Cache-Control"),
               accel_ = res->get_header_value("X-Accel-Buffering");
      finished_ = true;
    });
  }
  // Hangs up at the next frame (heartbeats come every 200 ms), so that a failed assertion
  // ends the test instead of waiting on a stream that never ends.
  ~StreamReader() {
    {
      std::lock_guard lock(mu_);
      hang_up_ = true;
    }
    join();
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  bool wait_for_text(const std::string& needle, std::chrono::milliseconds timeout = 5s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (text().find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  std::string text() {
    std::lock_guard lock(mu_);
    return text_;
  }
  bool ok_ = false, finished_ = false;
  int status_ = 0;
  std::string content_type_, cache_control_, accel_;

 private:
  httplib::Client cli_;
  std::mutex mu_;
  std::string text_;
  bool hang_up_ = false;
  std::thread thread_;
};

void expect_ids(const std::vector<SseEvent>& events, int64_t from, int64_t to) {
  ASSERT_EQ(events.size(), static_cast<size_t>(to - from + 1));
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].id, from + static_cast<int64_t>(i));
}

TEST_F(BroadcasterTest, StreamDeliversEveryEventInOrderThenCloses) {
  const uint64_t delivered_before = feedpipe::delivery::events_delivered().value();
  const uint64_t observed_before = feedpipe::delivery::delivery_latency().count();
  BroadcasterSettings s;
  s.sweep_interval = 60s;  // live events must come through Kafka
  start(s);
  constexpr int kJobs = 12;
  auto jobs = tmp.create_batch("b1", kJobs);
  StreamReader reader(client(), "/v1/batches/b1/events", {});
  ASSERT_TRUE(reader.wait_for_text("retry: "));  // subscribed
  for (int64_t id : jobs) {
    finish_and_publish(id);
    std::this_thread::sleep_for(5ms);
  }
  reader.join();
  EXPECT_TRUE(reader.ok_);
  EXPECT_EQ(reader.status_, 200);
  EXPECT_EQ(reader.content_type_, "text/event-stream");
  EXPECT_EQ(reader.cache_control_, "no-cache");
  EXPECT_EQ(reader.accel_, "no");
  auto parsed = parse_sse(reader.text());
  EXPECT_EQ(parsed.retry, 3000);
  EXPECT_EQ(reader.text().rfind("retry: 3000\n\n", 0), 0u);  // the hint comes first
  expect_ids(parsed.events, 1, kJobs + 1);
  std::set<int64_t> positions;
  for (int i = 0; i < kJobs; ++i) {
    EXPECT_EQ(parsed.events[i].event, "job.failed");
    auto data = nlohmann::json::parse(parsed.events[i].data);
    EXPECT_EQ(data["seq"], i + 1);
    EXPECT_EQ(data["batch_id"], "b1");
    positions.insert(data["position"].get<int64_t>());
  }
  EXPECT_EQ(positions.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(parsed.events.back().event, "batch.completed");
  // The thread-per-stream route counts what it wrote, and the latency of the live events.
  EXPECT_EQ(feedpipe::delivery::events_delivered().value() - delivered_before, static_cast<uint64_t>(kJobs + 1));
  EXPECT_GE(feedpipe::delivery::delivery_latency().count() - observed_before, 1u);
  EXPECT_LE(feedpipe::delivery::delivery_latency().count() - observed_before, static_cast<uint64_t>(kJobs + 1));
}

TEST_F(BroadcasterTest, ReconnectWithLastEventIdGetsTheRestWithoutRepeats) {
  start();
  auto jobs = tmp.create_batch("b1", 6);
  for (int i = 0; i < 3; ++i) finish_and_publish(jobs[i]);
  {
    // The first connection hangs up after three events.
    StreamReader first(client(), "/v1/batches/b1/events", {},
                       [](const std::string& t) { return parse_sse(t).events.size() >= 3; });
    first.join();
    expect_ids(parse_sse(first.text()).events, 1, 3);
  }
  StreamReader second(client(), "/v1/batches/b1/events", {{"Last-Event-ID", "3"}});
  ASSERT_TRUE(second.wait_for_text("retry: "));
  for (int i = 3; i < 6; ++i) finish_and_publish(jobs[i]);
  second.join();
  auto events = parse_sse(second.text()).events;
  expect_ids(events, 4, 7);
  EXPECT_EQ(events.back().event, "batch.completed");

  // ?last_event_id= works too, and the header wins over it.
  StreamReader by_query(client(), "/v1/batches/b1/events?last_event_id=5", {});
  by_query.join();
  expect_ids(parse_sse(by_query.text()).events, 6, 7);
  StreamReader both(client(), "/v1/batches/b1/events?last_event_id=5", {{"Last-Event-ID", "2"}});
  both.join();
  expect_ids(parse_sse(both.text()).events, 3, 7);
}

TEST_F(BroadcasterTest, InvalidLastEventIdIs400) {
  start();
  tmp.create_batch("b1", 1);
  auto cli = client();
  auto res = cli.Get("/v1/batches/b1/events", {{"Last-Event-ID", "abc"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(nlohmann::json::parse(res->body)["error"]["code"], "invalid_last_event_id");
  res = cli.Get("/v1/batches/b1/events?last_event_id=-1");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
}

TEST_F(BroadcasterTest, UnknownBatchIs404) {
  start();
  auto cli = client();
  for (const char* accept : {"text/event-stream", "application/json"}) {
    auto res = cli.Get("/v1/batches/nope/events", {{"Accept", accept}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404);
    auto body = nlohmann::json::parse(res->body);
    EXPECT_EQ(body["error"]["code"], "batch_not_found");
    EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
  }
}

TEST_F(BroadcasterTest, JsonPollingPages) {
  BroadcasterSettings s;
  s.poll_page_limit = 3;
  start(s);
  auto jobs = tmp.create_batch("b1", 4);
  auto cli = client();
  httplib::Headers json{{"Accept", "application/json"}};

  auto res = cli.Get("/v1/batches/b1/events", json);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  auto body = nlohmann::json::parse(res->body);
  EXPECT_TRUE(body["events"].empty());
  EXPECT_EQ(body["next_after"], 0);
  EXPECT_EQ(body["done"], false);

  for (int64_t id : jobs) tmp.finish_job(id);
  std::vector<int64_t> ids;
  int64_t after = 0;
  bool done = false;
  for (int page = 0; page < 5 && !done; ++page) {
    res = cli.Get(("/v1/batches/b1/events?after=" + std::to_string(after)).c_str(), json);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    body = nlohmann::json::parse(res->body);
    EXPECT_LE(body["events"].size(), 3u);
    for (const auto& e : body["events"]) {
      ids.push_back(e["id"].get<int64_t>());
      EXPECT_TRUE(e["data"].is_object());  // an object, not a string
      EXPECT_EQ(e["data"]["seq"], e["id"]);
    }
    after = body["next_after"].get<int64_t>();
    done = body["done"].get<bool>();
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(body["events"].back()["event"], "batch.completed");
  // Past the end: nothing more, still done.
  res = cli.Get("/v1/batches/b1/events?after=5", json);
  body = nlohmann::json::parse(res->body);
  EXPECT_TRUE(body["events"].empty());
  EXPECT_EQ(body["next_after"], 5);
  EXPECT_EQ(body["done"], true);
  res = cli.Get("/v1/batches/b1/events?after=x", json);
  EXPECT_EQ(res->status, 400);
}

TEST_F(BroadcasterTest, HeartbeatPingOnASilentStream) {
  start();  // heartbeat 200 ms
  tmp.create_batch("b1", 2);
  auto t0 = std::chrono::steady_clock::now();
  StreamReader reader(client(), "/v1/batches/b1/events", {},
                      [](const std::string& t) { return parse_sse(t).pings >= 2; });
  reader.join();
  EXPECT_GE(parse_sse(reader.text()).pings, 2);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST_F(BroadcasterTest, LostKafkaEventReachesStreamThroughTheSweep) {
  BroadcasterSettings s;
  s.sweep_interval = 100ms;
  start(s);
  auto jobs = tmp.create_batch("b1", 2);
  StreamReader reader(client(), "/v1/batches/b1/events", {});
  ASSERT_TRUE(reader.wait_for_text("retry: "));
  finish_and_publish(jobs[0]);
  ASSERT_TRUE(reader.wait_for_text("id: 1\n"));
  tmp.finish_job(jobs[1]);  // seq 2 and 3 committed, never published (the producer crashed)
  reader.join();
  expect_ids(parse_sse(reader.text()).events, 1, 3);
}

TEST_F(BroadcasterTest, StopEndsOpenStreams) {
  start();
  tmp.create_batch("b1", 2);
  StreamReader reader(client(), "/v1/batches/b1/events", {});
  ASSERT_TRUE(reader.wait_for_text("retry: "));
  auto t0 = std::chrono::steady_clock::now();
  broadcaster->stop();
  reader.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_TRUE(reader.ok_);  // a clean end of the chunked body
}

TEST_F(BroadcasterTest, ManyConcurrentStreams) {
  start();
  constexpr int kJobs = 8, kStreams = 30;
  auto jobs = tmp.create_batch("b1", kJobs);
  std::vector<std::unique_ptr<StreamReader>> readers;
  for (int i = 0; i < kStreams; ++i)
    readers.push_back(std::make_unique<StreamReader>(client(), "/v1/batches/b1/events", httplib::Headers{}));
  for (auto& r : readers) ASSERT_TRUE(r->wait_for_text("retry: ", 20s));
  for (int64_t id : jobs) finish_and_publish(id);
  for (auto& r : readers) {
    r->join();
    expect_ids(parse_sse(r->text()).events, 1, kJobs + 1);
  }
}

}  // namespace
