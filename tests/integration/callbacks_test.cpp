// Callbacks end to end (DESIGN.md, Callbacks): `feedpipe standalone` (and the roles shape with a
// recorder) POSTing to a local receiver that checks the signature; retries with the same
// Feedpipe-Delivery id; a kill -9 with a callback pending; hostile receivers; the SSRF guard on
// loopback spellings; a non-http(s) callback_url refused at submit. Retry settings are short.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <map>
#include <set>

#include "common/hmac.h"
#include "tests/support/harness.h"
#include "tests/support/raw_server.h"

namespace feedpipe::testing {
namespace {

using namespace std::chrono_literals;

const char* const kSecret = "whsec_integration";

// One POST as the receiver saw it.
struct Received {
  std::string delivery_id, signature, body;
  bool signature_ok = false;
  int answered = 0;
};

// Checks Feedpipe-Signature as a receiver would: t=UNIX,v1=HEX, HEX = HMAC-SHA256(secret, t.body),
// t no older than five minutes.
bool signature_valid(const std::string& header, const std::string& body) {
  auto comma = header.find(",v1=");
  if (header.rfind("t=", 0) != 0 || comma == std::string::npos) return false;
  const std::string t = header.substr(2, comma - 2), v1 = header.substr(comma + 4);
  const long long age = static_cast<long long>(std::time(nullptr)) - std::atoll(t.c_str());
  if (age < -60 || age > 300) return false;
  return constant_time_equal(to_hex(hmac_sha256(kSecret, t + "." + body)), v1);
}

// A cpp-httplib server on 127.0.0.1 that records every POST to /hook and answers `failures`
// times 500, then 200.
class Receiver {
 public:
  Receiver() {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      Received r{req.get_header_value("Feedpipe-Delivery"), req.get_header_value("Feedpipe-Signature"), req.body};
      r.signature_ok = signature_valid(r.signature, r.body);
      r.answered = failures_ > 0 ? 500 : 200;
      if (failures_ > 0) --failures_;
      res.status = r.answered;
      res.set_content("{}", "application/json");
      received_.push_back(std::move(r));
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });

  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& host = "127.0.0.1") const {
    return "http://" + host + ":" + std::to_string(port_) + "/hook";
  }
  void fail_next(int n) {
    std::lock_guard lock(mu_);
    failures_ = n;
  }
  std::vector<Received> received() {
    std::lock_guard lock(mu_);
    return received_;
  }
  size_t count() { return received().size(); }
  size_t delivered() {
    size_t n = 0;
    for (const auto& r : received()) n += r.answered == 200;
    return n;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  int failures_ = 0;
  std::vector<Received> received_;
};

// POST /v1/batches {"feeds":…,"callback_url":…}; the answer's status and JSON.
nlohmann::json submit_with_callback(int port, const std::vector<std::string>& feeds, const nlohmann::json& callback_url,
                                    int* status) {
  httplib::Client client("127.0.0.1", port);
  auto res = client.Post("/v1/batches", nlohmann::json{{"feeds", feeds}, {"callback_url", callback_url}}.dump(),
                         "application/json");
  *status = res ? res->status : 0;
  return res ? nlohmann::json::parse(res->body, nullptr, false) : nlohmann::json();
}

std::string submit_callback_batch(int port, const std::vector<std::string>& feeds, const std::string& callback_url) {
  int status = 0;
  auto body = submit_with_callback(port, feeds, callback_url, &status);
  EXPECT_EQ(status, 202) << body.dump();
  return body.value("batch_id", "");
}

nlohmann::json callback_of(int port, const std::string& batch) {
  auto snap = get_json(port, "/v1/batches/" + batch);
  return snap.is_object() && snap.contains("callback") ? snap["callback"] : nlohmann::json();
}

bool callback_status_is(int port, const std::string& batch, const std::string& status) {
  auto cb = callback_of(port, batch);
  return cb.is_object() && cb["status"] == status;
}

std::string metrics_text(int port) {
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/metrics");
  return res ? res->body : "";
}

// The short retry settings every test uses.
std::vector<std::string> fast_callbacks(std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--callback-secret",       kSecret, "--callback-retry-min-ms",   "100",
                                "--callback-retry-max-ms",  "400",   "--callback-poll-ms",        "50",
                                "--callback-timeout-ms",    "2000",  "--callback-claim-lease-ms", "3000"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

class CallbacksTest : public ::testing::Test {
 protected:
  void start(const std::vector<std::string>& extra) {
    port_ = free_port();
    std::vector<std::string> args{"--consumers", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    process_ = start_standalone(dir_, port_, args);
    ASSERT_TRUE(wait_ready(port_)) << process_->log();
  }

  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
  Receiver receiver_;
  FeedServer feeds_;
};

TEST_F(CallbacksTest, EachCompletedBatchGetsOneSignedPostWithItsCompletedEvent) {
  start(fast_callbacks({"--allow-private-networks"}));
  const std::string a = submit_callback_batch(port_, {feeds_.url(1), feeds_.url(2)}, receiver_.url());
  const std::string b = submit_callback_batch(port_, {"not a url"}, receiver_.url());  // completes at submit
  ASSERT_TRUE(wait_until([&] { return receiver_.count() >= 2; }, 30s)) << process_->log();
  ASSERT_TRUE(wait_until([&] { return callback_status_is(port_, a, "delivered") && callback_status_is(port_, b, "delivered"); }, 10s));
  std::this_thread::sleep_for(1s);  // nothing more comes
  auto got = receiver_.received();
  ASSERT_EQ(got.size(), 2u);
  std::set<std::string> batches, ids;
  for (const auto& r : got) {
    EXPECT_TRUE(r.signature_ok) << r.signature << " " << r.body;
    EXPECT_EQ(r.delivery_id.size(), 32u);
    ids.insert(r.delivery_id);
    auto body = nlohmann::json::parse(r.body);
    batches.insert(body["batch_id"].get<std::string>());
    EXPECT_EQ(body["event"], "batch.completed");
    EXPECT_EQ(body["status"], "completed");
    EXPECT_EQ(body["progress"]["done"], body["progress"]["total"]);
  }
  EXPECT_EQ(batches, (std::set<std::string>{a, b}));
  EXPECT_EQ(ids.size(), 2u);
  auto cb = callback_of(port_, a);
  EXPECT_EQ(cb["url"], receiver_.url());
  EXPECT_EQ(cb["attempts"], 1);
  EXPECT_TRUE(cb["last_error"].is_null());
  EXPECT_NE(metrics_text(port_).find("feedpipe_callback_attempts_total{result=\"delivered\"} 2"), std::string::npos);
}

TEST_F(CallbacksTest, AFailingReceiverIsRetriedWithTheSameDeliveryIdUntilA2xx) {
  receiver_.fail_next(2);
  start(fast_callbacks({"--allow-private-networks"}));
  const std::string batch = submit_callback_batch(port_, {"not a url"}, receiver_.url());
  ASSERT_TRUE(wait_until([&] { return callback_status_is(port_, batch, "delivered"); }, 30s)) << process_->log();
  auto got = receiver_.received();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].answered, 500);
  EXPECT_EQ(got[1].answered, 500);
  EXPECT_EQ(got[2].answered, 200);
  for (const auto& r : got) {
    EXPECT_EQ(r.delivery_id, got[0].delivery_id);
    EXPECT_EQ(r.body, got[0].body);
    EXPECT_TRUE(r.signature_ok);
  }
  auto cb = callback_of(port_, batch);
  EXPECT_EQ(cb["attempts"], 3);
  const std::string metrics = metrics_text(port_);
  EXPECT_NE(metrics.find("feedpipe_callback_attempts_total{result=\"retry\"} 2"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("feedpipe_callback_attempts_total{result=\"delivered\"} 1"), std::string::npos);
  EXPECT_NE(process_->log().find("delivered to " + receiver_.url()), std::string::npos);
}

TEST_F(CallbacksTest, AKill9WithACallbackPendingLosesNothingAndKeepsTheDeliveryId) {
  receiver_.fail_next(1000000);
  start(fast_callbacks({"--allow-private-networks"}));
  const std::string batch = submit_callback_batch(port_, {feeds_.url(1)}, receiver_.url());
  ASSERT_TRUE(wait_until([&] { return receiver_.count() >= 2; }, 30s)) << process_->log();
  process_->kill(SIGKILL);
  process_->wait_exit(10s);
  EXPECT_EQ(query_int(dir_.file("feedpipe.db"), "SELECT count(*) FROM callbacks WHERE status = 'pending'"), 1);
  receiver_.fail_next(0);

  port_ = free_port();
  std::vector<std::string> args{"standalone", "--http", "127.0.0.1:" + std::to_string(port_), "--db",
                                dir_.file("feedpipe.db")};
  args.insert(args.end(), {"--consumers", "1", "--allow-private-networks"});
  for (auto& a : fast_callbacks()) args.push_back(a);
  process_ = std::make_unique<Process>("standalone", args, dir_.file("standalone-restarted.log"));
  ASSERT_TRUE(wait_ready(port_)) << process_->log();
  // A claim the killed process held expires after its lease (3 s here).
  ASSERT_TRUE(wait_until([&] { return callback_status_is(port_, batch, "delivered"); }, 30s)) << process_->log();
  std::this_thread::sleep_for(1s);
  auto got = receiver_.received();
  EXPECT_EQ(receiver_.delivered(), 1u);
  for (const auto& r : got) EXPECT_EQ(r.delivery_id, got[0].delivery_id);
  EXPECT_EQ(got.back().answered, 200);
  EXPECT_GE(callback_of(port_, batch)["attempts"].get<int>(), 2);
}

TEST_F(CallbacksTest, ANonHttpCallbackUrlIsRefusedAtSubmit) {
  start(fast_callbacks());
  for (const nlohmann::json& url : {nlohmann::json("ftp://127.0.0.1/hook"), nlohmann::json("javascript:alert(1)"),
                                    nlohmann::json(42)}) {
    int status = 0;
    auto body = submit_with_callback(port_, {"http://feeds.test/a"}, url, &status);
    EXPECT_EQ(status, 422) << url;
    EXPECT_EQ(body["error"]["code"], "invalid_callback_url") << body.dump();
  }
  EXPECT_EQ(query_int(dir_.file("feedpipe.db"), "SELECT count(*) FROM batches"), 0);
}

TEST_F(CallbacksTest, LoopbackCallbackUrlsAreRefusedWithoutAllowPrivateNetworks) {
  start(fast_callbacks());
  std::vector<std::string> batches;
  std::vector<std::string> urls{receiver_.url("localhost"), receiver_.url("127.1"), receiver_.url("[::1]")};
  for (const auto& url : urls) batches.push_back(submit_callback_batch(port_, {"not a url"}, url));
  for (size_t i = 0; i < batches.size(); ++i) {
    ASSERT_TRUE(wait_until([&] { return callback_status_is(port_, batches[i], "failed"); }, 30s))
        << urls[i] << " " << callback_of(port_, batches[i]).dump() << process_->log();
    auto cb = callback_of(port_, batches[i]);
    EXPECT_EQ(cb["attempts"], 1);
    EXPECT_NE(cb["last_error"].get<std::string>().find("refused address"), std::string::npos) << cb.dump();
  }
  EXPECT_EQ(receiver_.count(), 0u);
  EXPECT_NE(metrics_text(port_).find("feedpipe_callback_attempts_total{result=\"refused\"} 3"), std::string::npos);
}

TEST_F(CallbacksTest, AllowNetworksLetsTheListedLoopbackBlockThrough) {
  start(fast_callbacks({"--allow-networks", "127.0.0.0/8"}));
  const std::string batch = submit_callback_batch(port_, {"not a url"}, receiver_.url("127.0.0.1"));
  ASSERT_TRUE(wait_until([&] { return callback_status_is(port_, batch, "delivered"); }, 30s)) << process_->log();
  EXPECT_EQ(receiver_.count(), 1u);
}

TEST_F(CallbacksTest, HostileReceiversCostBoundedTimeAndEndRetriedOrFailedWithAReason) {
  RawServer raw;
  raw.on("/silent", [](const std::string&, RawServer::Connection& c) {
    while (!c.stopping()) std::this_thread::sleep_for(50ms);
  });
  raw.on("/trickle", [](const std::string&, RawServer::Connection& c) {
    const std::string head = response_head(200, "OK", "Content-Length: 10\r\n");
    for (size_t i = 0; i < head.size() && c.send(head.substr(i, 1)); ++i)
      for (int t = 0; t < 10 && !c.stopping(); ++t) std::this_thread::sleep_for(100ms);
  });
  raw.on("/endless-200", [](const std::string&, RawServer::Connection& c) {
    c.send(response_head(200, "OK", "Content-Type: text/plain\r\n"));
    const std::string chunk(16384, 'x');
    while (c.send(chunk)) {}
  });
  raw.on("/huge-500", [](const std::string&, RawServer::Connection& c) {
    c.send(response_head(500, "Internal Server Error", "Content-Length: 1073741824\r\n"));
    const std::string chunk(16384, 'x');
    while (c.send(chunk)) {}
  });
  const std::string other_spelling = "http://localhost:" + std::to_string(raw.port()) + "/target";
  raw.on("/redirect", [other_spelling](const std::string&, RawServer::Connection& c) {
    c.send(response_head(302, "Found", "Location: " + other_spelling + "\r\nContent-Length: 0\r\n"));
  });
  raw.on("/target", [](const std::string&, RawServer::Connection& c) {
    c.send(response_head(200, "OK", "Content-Length: 0\r\n"));
  });
  start(fast_callbacks({"--allow-private-networks", "--callback-low-speed-seconds",
                        "1", "--callback-max-age", "4s", "--callback-max-response-bytes", "65536"}));
  std::map<std::string, std::string> batch_of;
  for (const char* path : {"/silent", "/trickle", "/endless-200", "/huge-500", "/redirect"})
    batch_of[path] = submit_callback_batch(port_, {"not a url"}, raw.url(path));

  ASSERT_TRUE(wait_until(
      [&] {
        for (auto& [path, batch] : batch_of)
          if (callback_status_is(port_, batch, "pending")) return false;
        return true;
      },
      60s))
      << process_->log();
  auto cb = [&](const char* path) { return callback_of(port_, batch_of[path]); };
  EXPECT_EQ(cb("/endless-200")["status"], "delivered") << cb("/endless-200").dump();
  for (const char* path : {"/silent", "/trickle", "/huge-500", "/redirect"}) {
    auto state = cb(path);
    EXPECT_EQ(state["status"], "failed") << path << state.dump();
    EXPECT_GE(state["attempts"].get<int>(), 1) << path;
    ASSERT_TRUE(state["last_error"].is_string()) << path << state.dump();
    EXPECT_NE(state["last_error"].get<std::string>().find("gave up"), std::string::npos) << path << state.dump();
  }
  EXPECT_NE(cb("/silent")["last_error"].get<std::string>().find("timed out"), std::string::npos) << cb("/silent").dump();
  EXPECT_NE(cb("/huge-500")["last_error"].get<std::string>().find("HTTP 500"), std::string::npos);
  EXPECT_NE(cb("/redirect")["last_error"].get<std::string>().find("HTTP 302"), std::string::npos);
  EXPECT_EQ(raw.requests("/target"), 0);  // the redirect was not followed
  EXPECT_TRUE(process_->running());
  EXPECT_TRUE(wait_ready(port_, 5s));
}

// The many-hosts shape: consumers without a database, the recorder on the store side sends.
TEST(CallbacksRolesTest, TheRecorderSendsCallbacksForConsumersWithoutADatabase) {
  TempDir dir;
  Receiver receiver;
  FeedServer feeds;
  Process broker("kafka-mock", {"kafka-mock"}, dir.file("kafka-mock.log"));
  const std::string brokers = broker.first_line(10s);
  ASSERT_FALSE(brokers.empty()) << broker.log();
  const std::string db = dir.file("feedpipe.db");
  ASSERT_TRUE(run_migrate(dir, db));
  const int producer_port = free_port(), recorder_port = free_port();
  Process producer("producer", {"producer", "--brokers", brokers, "--db", db, "--http", "127.0.0.1:" + std::to_string(producer_port)},
                   dir.file("producer.log"));
  Process consumer("consumer", {"consumer", "--brokers", brokers, "--allow-private-networks"}, dir.file("consumer.log"));
  std::vector<std::string> recorder_args{"recorder", "--brokers", brokers, "--db", db, "--http",
                                         "127.0.0.1:" + std::to_string(recorder_port), "--allow-private-networks"};
  for (auto& a : fast_callbacks()) recorder_args.push_back(a);
  Process recorder("recorder", recorder_args, dir.file("recorder.log"));
  ASSERT_TRUE(wait_ready(producer_port)) << producer.log();
  ASSERT_TRUE(wait_ready(recorder_port)) << recorder.log();

  const std::string batch = submit_callback_batch(producer_port, {feeds.url(1), feeds.url(2)}, receiver.url());
  ASSERT_TRUE(wait_until([&] { return callback_status_is(producer_port, batch, "delivered"); }, 60s))
      << recorder.log() << consumer.log();
  auto got = receiver.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].signature_ok);
  EXPECT_EQ(nlohmann::json::parse(got[0].body)["progress"]["done"], 2);
  EXPECT_NE(recorder.log().find("callback of batch " + batch + " delivered"), std::string::npos) << recorder.log();
  EXPECT_EQ(consumer.log().find("callback"), std::string::npos) << consumer.log();
}

}  // namespace
}  // namespace feedpipe::testing
