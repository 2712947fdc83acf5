// Access control of a `feedpipe standalone` process, each setting turned on by its flag: bearer
// tokens and the submit rate limit, signed stream tokens, CORS, and the stream server's
// per-address limits (open rate and concurrent streams).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "tests/support/harness.h"

namespace feedpipe::testing {
namespace {

using namespace std::chrono_literals;

// A raw HTTP/1.1 GET whose connection stays open after the response head (an SSE stream).
class RawRequest {
 public:
  RawRequest(int port, const std::string& target, const std::string& extra_headers = "") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n" +
                          extra_headers + "\r\n";
    if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (head_.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      head_.append(buf, static_cast<size_t>(n));
    }
    head_ = head_.substr(0, head_.find("\r\n\r\n") + 2);
  }
  ~RawRequest() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int status() const { return head_.size() > 12 ? std::atoi(head_.c_str() + 9) : 0; }
  const std::string& head() const { return head_; }
  bool has_header(const std::string& line) const { return head_.find("\r\n" + line + "\r\n") != std::string::npos; }

 private:
  int fd_ = -1;
  std::string head_;
};

class AccessTest : public ::testing::Test {
 protected:
  void start(const std::vector<std::string>& extra) {
    port_ = free_port();
    std::vector<std::string> args{"--allow-private-networks", "--consumers", "1", "--log-level", "debug"};
    args.insert(args.end(), extra.begin(), extra.end());
    process_ = start_standalone(dir_, port_, args);
    ASSERT_TRUE(wait_ready(port_)) << process_->log();
  }

  httplib::Result post_batch(const std::vector<std::string>& feeds, const httplib::Headers& headers = {}) {
    httplib::Client client("127.0.0.1", port_);
    return client.Post("/v1/batches", headers, nlohmann::json{{"feeds", feeds}}.dump(), "application/json");
  }

  static std::string error_code(const httplib::Result& res) {
    auto body = nlohmann::json::parse(res->body, nullptr, false);
    return body.is_object() && body.contains("error") ? body["error"].value("code", "") : "";
  }

  TempDir dir_;
  FeedServer feeds_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

TEST_F(AccessTest, SubmittingNeedsAValidBearerTokenAndIsRateLimitedPerToken) {
  std::string tokens_file = dir_.file("tokens.txt");
  std::ofstream(tokens_file) << "# issued 2024\n\nfile-token-7f3a\n";
  start({"--api-tokens", "list-token-91c2,other-token-55d0", "--api-tokens-file", tokens_file,
         "--submit-rate-limit", "2"});
  std::vector<std::string> feeds{feeds_.url(1)};

  auto none = post_batch(feeds);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("WWW-Authenticate").rfind("Bearer", 0), 0u);
  EXPECT_EQ(error_code(none), "unauthorized");
  auto wrong = post_batch(feeds, {{"Authorization", "Bearer wrong-token-3b1e"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(wrong->get_header_value("WWW-Authenticate").rfind("Bearer", 0), 0u);
  EXPECT_EQ(error_code(wrong), "unauthorized");
  auto basic = post_batch(feeds, {{"Authorization", "Basic bGlzdC10b2tlbi05MWMyOg=="}});
  ASSERT_TRUE(basic);
  EXPECT_EQ(basic->status, 401);

  // Tokens from the list and from the file are accepted; reads need none.
  auto ok = post_batch(feeds, {{"Authorization", "Bearer list-token-91c2"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 202) << ok->body;
  auto from_file = post_batch(feeds, {{"Authorization", "Bearer file-token-7f3a"}});
  ASSERT_TRUE(from_file);
  EXPECT_EQ(from_file->status, 202) << from_file->body;
  int status = 0;
  get_json(port_, "/v1/batches", &status);
  EXPECT_EQ(status, 200);

  // Two batches per minute per token: the third is refused with Retry-After; another token is not.
  auto second = post_batch(feeds, {{"Authorization", "Bearer list-token-91c2"}});
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 202);
  auto third = post_batch(feeds, {{"Authorization", "Bearer list-token-91c2"}});
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, 429);
  EXPECT_EQ(error_code(third), "rate_limited");
  int retry_after = std::atoi(third->get_header_value("Retry-After").c_str());
  EXPECT_GE(retry_after, 1) << third->get_header_value("Retry-After");
  EXPECT_LE(retry_after, 60);
  auto other = post_batch(feeds, {{"Authorization", "Bearer other-token-55d0"}});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 202);

  // feedpipe submit sends --token; without it, it explains what is missing.
  std::string api = "http://127.0.0.1:" + std::to_string(port_);
  Process with_token("submit", {"submit", "--api", api, "--token", "other-token-55d0", feeds_.url(2)},
                     dir_.file("submit-token.log"));
  EXPECT_EQ(with_token.wait_exit(30s), 0) << with_token.log();
  Process without("submit", {"submit", "--api", api, feeds_.url(2)}, dir_.file("submit-none.log"));
  EXPECT_EQ(without.wait_exit(30s), 2) << without.log();
  EXPECT_NE(without.log().find("--token"), std::string::npos) << without.log();

  // No token, valid or not, reaches the log, though the refusals are logged (debug level).
  std::string log = process_->log();
  EXPECT_NE(log.find("invalid bearer token"), std::string::npos) << log;
  for (const char* secret : {"list-token-91c2", "other-token-55d0", "file-token-7f3a", "wrong-token-3b1e"})
    EXPECT_EQ(log.find(secret), std::string::npos) << secret << " in the log:\n" << log;
}

TEST_F(AccessTest, SignedStreamTokensGuardTheEventsAndComeWithTheBatch) {
  start({"--stream-token-secret", "test-secret-42"});
  auto res = post_batch({feeds_.url(1), feeds_.url(2)});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  auto body = nlohmann::json::parse(res->body);
  std::string batch = body["batch_id"], token = body["stream_token"];
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(body["events_url"], "/v1/batches/" + batch + "/events?token=" + token);

  std::string events = "/v1/batches/" + batch + "/events";
  EXPECT_EQ(read_sse(port_, events, 10s).status, 403);
  EXPECT_EQ(read_sse(port_, events + "?token=" + std::string(64, '0'), 10s).status, 403);
  // Another batch's token does not open this one.
  auto other = post_batch({feeds_.url(3)});
  ASSERT_TRUE(other);
  std::string other_token = nlohmann::json::parse(other->body)["stream_token"];
  EXPECT_EQ(read_sse(port_, events + "?token=" + other_token, 10s).status, 403);
  RawRequest refused(port_, events);
  EXPECT_EQ(refused.status(), 403);
  EXPECT_TRUE(refused.has_header("Content-Type: application/json")) << refused.head();

  auto stream = read_sse(port_, body["events_url"], 30s);
  EXPECT_EQ(stream.status, 200);
  expect_complete_stream(stream, 2);

  // The polling page (served by the API server, not the stream front) checks the token too.
  httplib::Client client("127.0.0.1", port_);
  auto page = client.Get(events, {{"Accept", "application/json"}});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 403);
  EXPECT_EQ(error_code(page), "stream_token_required");
  auto with_token = client.Get(events + "?token=" + token, {{"Accept", "application/json"}});
  ASSERT_TRUE(with_token);
  EXPECT_EQ(with_token->status, 200);
  // The web page is reached with the token in its URL, which batch.js passes on.
  auto html = client.Get("/batches/" + batch + "?token=" + token);
  ASSERT_TRUE(html);
  EXPECT_EQ(html->status, 200);
  auto script = client.Get("/assets/batch.js");
  ASSERT_TRUE(script);
  EXPECT_NE(script->body.find("get('token')"), std::string::npos);
}

TEST_F(AccessTest, CorsAdmitsConfiguredOriginsOnApiAndStreamsAndAnswersPreflight) {
  start({"--cors-origins", "https://app.example,http://localhost:3000"});
  httplib::Client client("127.0.0.1", port_);

  auto preflight = client.Options("/v1/batches", {{"Origin", "https://app.example"},
                                                  {"Access-Control-Request-Method", "POST"},
                                                  {"Access-Control-Request-Headers", "authorization, idempotency-key"}});
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 204);
  EXPECT_EQ(preflight->get_header_value("Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(preflight->get_header_value("Vary"), "Origin");
  std::string allowed_headers = preflight->get_header_value("Access-Control-Allow-Headers");
  for (const char* h : {"Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"})
    EXPECT_NE(allowed_headers.find(h), std::string::npos) << h << " in " << allowed_headers;
  EXPECT_NE(preflight->get_header_value("Access-Control-Allow-Methods").find("POST"), std::string::npos);

  auto foreign = client.Options("/v1/batches", {{"Origin", "https://evil.example"},
                                                {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(foreign);
  EXPECT_EQ(foreign->status, 403);
  EXPECT_FALSE(foreign->has_header("Access-Control-Allow-Origin"));

  auto posted = post_batch({feeds_.url(1)}, {{"Origin", "http://localhost:3000"}});
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->status, 202);
  EXPECT_EQ(posted->get_header_value("Access-Control-Allow-Origin"), "http://localhost:3000");
  EXPECT_EQ(posted->get_header_value("Vary"), "Origin");
  std::string batch = nlohmann::json::parse(posted->body)["batch_id"];

  auto read_foreign = client.Get("/v1/batches/" + batch, {{"Origin", "https://evil.example"}});
  ASSERT_TRUE(read_foreign);
  EXPECT_EQ(read_foreign->status, 200);
  EXPECT_FALSE(read_foreign->has_header("Access-Control-Allow-Origin"));
  auto not_found = client.Get("/v1/batches/no-such-batch", {{"Origin", "https://app.example"}});
  ASSERT_TRUE(not_found);
  EXPECT_EQ(not_found->status, 404);
  EXPECT_EQ(not_found->get_header_value("Access-Control-Allow-Origin"), "https://app.example");

  // Streams are written by the event-loop front: its responses carry the headers too.
  RawRequest stream(port_, "/v1/batches/" + batch + "/events", "Origin: https://app.example\r\n");
  EXPECT_EQ(stream.status(), 200) << stream.head();
  EXPECT_TRUE(stream.has_header("Access-Control-Allow-Origin: https://app.example")) << stream.head();
  EXPECT_TRUE(stream.has_header("Vary: Origin")) << stream.head();
  RawRequest foreign_stream(port_, "/v1/batches/" + batch + "/events", "Origin: https://evil.example\r\n");
  EXPECT_EQ(foreign_stream.status(), 200);
  EXPECT_EQ(foreign_stream.head().find("Access-Control-Allow-Origin"), std::string::npos) << foreign_stream.head();
  RawRequest missing(port_, "/v1/batches/no-such-batch/events", "Origin: https://app.example\r\n");
  EXPECT_EQ(missing.status(), 404);
  EXPECT_TRUE(missing.has_header("Access-Control-Allow-Origin: https://app.example")) << missing.head();

  // Every preflight the OpenAPI document describes answers as it says: 204 or 403.
  auto doc = get_json(port_, "/openapi.json");
  int preflights = 0;
  for (const auto& [path, operations] : doc["paths"].items()) {
    if (!operations.contains("options")) continue;
    std::string target = path;
    if (auto at = target.find("{id}"); at != std::string::npos) target.replace(at, 4, batch);
    auto admitted = client.Options(target, {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "GET"}});
    ASSERT_TRUE(admitted) << target;
    EXPECT_EQ(admitted->status, 204) << target;
    auto refused = client.Options(target, {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "GET"}});
    ASSERT_TRUE(refused) << target;
    EXPECT_EQ(refused->status, 403) << target;
    ++preflights;
  }
  EXPECT_GE(preflights, 2);
}

TEST_F(AccessTest, StreamServerCapsStreamsAndStreamOpensPerAddress) {
  start({"--max-streams-per-ip", "2", "--stream-rate-limit", "4"});
  feeds_.hold_requests(true);  // the batch stays open, so its streams do
  auto res = post_batch({feeds_.url(1)});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202);
  std::string events = "/v1/batches/" + nlohmann::json::parse(res->body)["batch_id"].get<std::string>() + "/events";

  auto a = std::make_unique<RawRequest>(port_, events);
  RawRequest b(port_, events);
  EXPECT_EQ(a->status(), 200) << a->head();
  EXPECT_EQ(b.status(), 200) << b.head();
  RawRequest third(port_, events);  // open 3: over the per-address cap
  EXPECT_EQ(third.status(), 429) << third.head();
  EXPECT_NE(third.head().find("Retry-After: "), std::string::npos) << third.head();
  EXPECT_NE(third.head().find("application/json"), std::string::npos);

  // A closed stream frees its place.
  a->close();
  ASSERT_TRUE(wait_until([&] {
    httplib::Client client("127.0.0.1", port_);
    auto metrics = client.Get("/metrics");
    return metrics && metrics->body.find("feedpipe_sse_streams_open 1\n") != std::string::npos;
  }, 10s));
  RawRequest fourth(port_, events);  // open 4: within the rate, under the cap again
  EXPECT_EQ(fourth.status(), 200) << fourth.head();

  // Open 5 exceeds four per minute, whatever the batch: 429 with a whole number of seconds.
  RawRequest fifth(port_, "/v1/batches/no-such-batch/events");
  EXPECT_EQ(fifth.status(), 429) << fifth.head();
  auto at = fifth.head().find("Retry-After: ");
  ASSERT_NE(at, std::string::npos) << fifth.head();
  EXPECT_GE(std::atoi(fifth.head().c_str() + at + 13), 1);
  feeds_.hold_requests(false);
}

// A proxy named by a CIDR block (compose's nginx has an address Docker assigns) in front of the
// stream front: the submit limit is per client behind both hops. The list does not name the
// front's own hop to the API (loopback), which stays trusted anyway. "nginx" is the test itself,
// connecting from 127.0.0.2.
TEST_F(AccessTest, TrustedProxiesTakeCidrBlocksAndTheFrontsHopStaysTrusted) {
  start({"--trusted-proxies", "127.0.0.2/31", "--submit-rate-limit", "1"});
  auto post_via_proxy = [&](const std::string& client) {
    httplib::Client proxy("127.0.0.1", port_);
    proxy.set_interface("127.0.0.2");
    return proxy.Post("/v1/batches", {{"X-Forwarded-For", client}},
                      nlohmann::json{{"feeds", {feeds_.url(1)}}}.dump(), "application/json");
  };
  auto first = post_via_proxy("198.51.100.1");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 202) << first->body;
  auto again = post_via_proxy("198.51.100.1");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 429) << again->body;  // one per minute for that client
  auto other = post_via_proxy("198.51.100.2");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 202) << "another client behind the same proxy has its own allowance: " << other->body;
  // A client that is not a proxy cannot pick its address.
  auto direct = post_batch({feeds_.url(1)}, {{"X-Forwarded-For", "198.51.100.3"}});
  ASSERT_TRUE(direct);
  EXPECT_EQ(direct->status, 202) << direct->body;
  auto direct_again = post_batch({feeds_.url(1)}, {{"X-Forwarded-For", "198.51.100.4"}});
  ASSERT_TRUE(direct_again);
  EXPECT_EQ(direct_again->status, 429) << "127.0.0.1 is not a trusted proxy: its X-Forwarded-For is ignored";
}

TEST_F(AccessTest, AMistakeInTheAccessSettingsStopsTheCommandAtStart) {
  struct Case {
    std::vector<std::string> args;
    std::string named;
  };
  for (const Case& c : std::vector<Case>{{{"standalone", "--api-tokens-file", dir_.file("missing.txt")}, "missing.txt"},
                                         {{"producer", "--api-tokens", "good,bad token"}, "--api-tokens"},
                                         {{"broadcaster", "--cors-origins", "app.example"}, "--cors-origins"},
                                         {{"standalone", "--trusted-proxies", "localhost"}, "--trusted-proxies"},
                                         {{"producer", "--trusted-proxies", "10.0.0.0/33"}, "--trusted-proxies: prefix length 33"},
                                         {{"standalone", "--allow-networks", "intranet"}, "--allow-networks: 'intranet' is not an IP address"},
                                         {{"consumer", "--allow-networks", "10.1.2.3/16"},
                                          "--allow-networks: '10.1.2.3/16' has host bits set: did you mean 10.1.0.0/16?"}}) {
    // An unreachable broker: the command would hang in its start-up if it got that far.
    std::vector<std::string> args = c.args;
    for (const std::string& a : {std::string("--db"), dir_.file("config-error.db"), std::string("--http"),
                                 std::string("127.0.0.1:0"), std::string("--brokers"), std::string("127.0.0.1:1")})
      args.push_back(a);
    Process p(c.args[0], args, dir_.file("config-error-" + c.args[0] + c.args[1].substr(2) + ".log"));
    EXPECT_EQ(p.wait_exit(10s), 2) << p.log();  // 2: a usage error
    EXPECT_NE(p.log().find(c.named), std::string::npos) << p.log();
  }
}

}  // namespace
}  // namespace feedpipe::testing
