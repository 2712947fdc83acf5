// The event-loop front (broadcaster/stream_server.h) against a real EventHub on a temp SQLite
// file, over raw loopback sockets: stream order and resume, heartbeats, slow readers, the stream
// limit, forwarding to a cpp-httplib backend, and a thousand streams on one batch.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broadcaster/delivery_metrics.h"
#include "broadcaster/event_hub.h"
#include "broadcaster/growth_queue.h"
#include "broadcaster/http_request_parser.h"
#include "broadcaster/stream_routes.h"
#include "broadcaster/stream_server.h"
#include "broadcaster_test_util.h"
#include "common/cors.h"
#include "common/stream_token.h"

namespace {

using namespace std::chrono_literals;
using feedpipe::EventHub;
using feedpipe::EventMessage;
using feedpipe::StreamServer;
using feedpipe::StreamServerSettings;
using feedpipe::testing::BroadcasterDb;
using Clock = std::chrono::steady_clock;

// A blocking loopback client that reads with a deadline.
class RawClient {
 public:
  explicit RawClient(int port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  void send_all(const std::string& text) {
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = ::send(fd_, text.data() + off, text.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  // One read if anything is there; false at EOF or error.
  bool read_once() {
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      data.append(buf, static_cast<size_t>(n));
      return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    eof = true;
    return false;
  }
  // Reads until `done(data)`, EOF or the timeout; true when done() or EOF came.
  bool read_until(const std::function<bool(const std::string&)>& done, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (!done(data)) {
      if (eof) return true;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100))) > 0 && !read_once()) return true;
    }
    return true;
  }
  bool read_to_eof(std::chrono::milliseconds timeout) {
    return read_until([this](const std::string&) { return eof; }, timeout) && eof;
  }

  std::string data;
  bool eof = false;

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string stream_request(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n" + extra + "\r\n";
}

struct Response {
  int status = 0;
  std::string head, body;
};
Response split_response(const std::string& data) {
  Response r;
  size_t end = data.find("\r\n\r\n");
  if (data.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return r;
  r.status = std::stoi(data.substr(9, 3));
  r.head = data.substr(0, end);
  r.body = data.substr(end + 4);
  return r;
}

struct Sse {
  std::vector<int64_t> ids;
  std::vector<std::string> types;
  int pings = 0, retries = 0;
  bool retry_first = false;
};
Sse parse_sse(const std::string& body) {
  Sse out;
  size_t pos = 0;
  bool first = true;
  for (size_t end; (end = body.find("\n\n", pos)) != std::string::npos; pos = end + 2) {
    std::string frame = body.substr(pos, end - pos);
    if (frame.rfind("retry: ", 0) == 0) {
      ++out.retries;
      if (first) out.retry_first = true;
    } else if (frame == ": ping") {
      ++out.pings;
    } else if (frame.rfind("id: ", 0) == 0) {
      out.ids.push_back(std::stoll(frame.substr(4)));
      size_t ev = frame.find("\nevent: ");
      out.types.push_back(ev == std::string::npos ? "" : frame.substr(ev + 8, frame.find('\n', ev + 1) - ev - 8));
    }
    first = false;
  }
  return out;
}

// Reads every client until the server has closed them all or `timeout` passes; returns how many
// are still open.
size_t read_until_closed(std::vector<std::unique_ptr<RawClient>>& clients, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  size_t open = clients.size();
  std::vector<pollfd> fds(clients.size());
  while (open > 0 && Clock::now() < deadline) {
    for (size_t i = 0; i < clients.size(); ++i) fds[i] = {clients[i]->eof ? -1 : clients[i]->fd(), POLLIN, 0};
    if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
    for (size_t i = 0; i < clients.size(); ++i)
      if (fds[i].revents && !clients[i]->read_once()) --open;
  }
  return open;
}

std::vector<int64_t> seq_range(int64_t from, int64_t to) {
  std::vector<int64_t> v;
  for (int64_t i = from; i <= to; ++i) v.push_back(i);
  return v;
}

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!cond()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class StreamServerTest : public ::testing::Test {
 protected:
  void start(StreamServerSettings s = {}) {
    if (s.heartbeat == 15000ms) s.heartbeat = 10s;
    server = std::make_unique<StreamServer>(hub, s);
    port = server->listen("127.0.0.1", 0);
    server->start();
  }
  void TearDown() override {
    if (server) server->stop();
  }
  // Finishes every job and hands the events to the hub as Kafka would.
  void finish_all(const std::vector<int64_t>& jobs) {
    for (int64_t id : jobs)
      for (const EventMessage& e : tmp.finish_job(id)) hub.on_event(e);
  }

  BroadcasterDb tmp;
  EventHub hub{{tmp.path(), 1000ms}};
  std::unique_ptr<StreamServer> server;
  int port = 0;
};

// ---- streams of many batches: frames carry the stream's id and the batch in their data ----
struct ManyFrame {
  std::string id, type, batch;
  int64_t seq = 0;
};
std::vector<ManyFrame> parse_many(const std::string& body) {
  std::vector<ManyFrame> out;
  size_t pos = 0;
  for (size_t end; (end = body.find("\n\n", pos)) != std::string::npos; pos = end + 2) {
    std::string frame = body.substr(pos, end - pos);
    if (frame.rfind("id: ", 0) != 0) continue;
    ManyFrame f;
    f.id = frame.substr(4, frame.find('\n') - 4);
    size_t ev = frame.find("\nevent: ");
    if (ev != std::string::npos) f.type = frame.substr(ev + 8, frame.find('\n', ev + 1) - ev - 8);
    size_t data = frame.find("\ndata: ");
    auto json = nlohmann::json::parse(frame.substr(data + 7, frame.find('\n', data + 1) - data - 7));
    f.batch = json["batch_id"];
    f.seq = json["seq"];
    out.push_back(f);
  }
  return out;
}
std::vector<int64_t> id_seqs(const std::string& id) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (true) {
    size_t dot = id.find('.', pos);
    out.push_back(std::stoll(id.substr(pos, dot - pos)));
    if (dot == std::string::npos) return out;
    pos = dot + 1;
  }
}
// Each batch's seqs as received, appended to `seqs`; checks that every id names, for each batch
// (in `order`), the last seq of it received so far.
void collect(const std::vector<ManyFrame>& frames, const std::vector<std::string>& order,
             std::map<std::string, std::vector<int64_t>>& seqs) {
  for (const ManyFrame& f : frames) {
    seqs[f.batch].push_back(f.seq);
    std::vector<int64_t> ids = id_seqs(f.id);
    ASSERT_EQ(ids.size(), order.size()) << f.id;
    for (size_t i = 0; i < order.size(); ++i) {
      const auto& got = seqs[order[i]];
      EXPECT_EQ(ids[i], got.empty() ? ids[i] : got.back()) << "id " << f.id << " batch " << order[i];
    }
  }
}
size_t count_frames(const std::string& data) {
  size_t n = 0;
  for (size_t pos = 0; (pos = data.find("\nid: ", pos)) != std::string::npos; ++pos) ++n;
  return n;
}

TEST_F(StreamServerTest, StreamsLiveEventsInOrderWithoutGapsOrRepeats) {
  start();
  auto jobs = tmp.create_batch("b1", 6);
  RawClient c(port);
  ASSERT_TRUE(c.connected());
  c.send_all(stream_request("/v1/batches/b1/events"));
  ASSERT_TRUE(c.read_until([](const std::string& d) { return d.find("retry: ") != std::string::npos; }, 5s));
  ASSERT_TRUE(wait_for([&] { return server->open_streams() == 1; }, 5s));
  // Two in order, then one out of order (the hub fills the gap from SQLite), then the rest.
  for (const EventMessage& e : tmp.finish_job(jobs[0])) hub.on_event(e);
  auto e2 = tmp.finish_job(jobs[1]);
  auto e3 = tmp.finish_job(jobs[2]);
  for (const EventMessage& e : e3) hub.on_event(e);
  for (const EventMessage& e : e2) hub.on_event(e);
  finish_all({jobs[3], jobs[4], jobs[5]});
  ASSERT_TRUE(c.read_to_eof(10s)) << "the server closes the stream after batch.completed";
  Response r = split_response(c.data);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_NE(r.head.find("Cache-Control: no-cache"), std::string::npos);
  Sse sse = parse_sse(r.body);
  EXPECT_TRUE(sse.retry_first);
  EXPECT_EQ(sse.ids, seq_range(1, 7));
  EXPECT_EQ(sse.types.back(), "batch.completed");
  EXPECT_TRUE(wait_for([&] { return server->open_streams() == 0 && hub.watched_batches() == 0; }, 5s));
}

TEST_F(StreamServerTest, CountsDeliveredEventsAndTheLatencyOfLiveOnes) {
  auto& delivered = feedpipe::delivery::events_delivered();
  auto& latency = feedpipe::delivery::delivery_latency();
  const uint64_t delivered_before = delivered.value(), observed_before = latency.count();
  start();
  auto jobs = tmp.create_batch("b1", 3);
  RawClient live(port);
  live.send_all(stream_request("/v1/batches/b1/events"));
  ASSERT_TRUE(wait_for([&] { return server->open_streams() == 1; }, 5s));
  finish_all(jobs);
  ASSERT_TRUE(live.read_to_eof(10s));
  ASSERT_EQ(parse_sse(split_response(live.data).body).ids, seq_range(1, 4));
  // A replay after the end counts as delivered too, but has no delivery latency.
  ASSERT_TRUE(wait_for([&] { return hub.watched_batches() == 0; }, 5s));
  RawClient replay(port);
  replay.send_all(stream_request("/v1/batches/b1/events", "Last-Event-ID: 1\r\n"));
  ASSERT_TRUE(replay.read_to_eof(5s));
  ASSERT_EQ(parse_sse(split_response(replay.data).body).ids, seq_range(2, 4));
  EXPECT_TRUE(wait_for([&] { return delivered.value() - delivered_before == 7; }, 5s))
      << delivered.value() - delivered_before;
  // Once per live event at most (one stream); at least one fan-out wrote live events.
  uint64_t observed = latency.count() - observed_before;
  EXPECT_GE(observed, 1u);
  EXPECT_LE(observed, 4u);
  std::string text = feedpipe::metrics::render();
  EXPECT_NE(text.find("feedpipe_events_delivered_total "), std::string::npos);
  EXPECT_NE(text.find("feedpipe_event_delivery_latency_seconds_bucket{le=\"+Inf\"}"), std::string::npos) << text;
}

TEST(DeliveryMetrics, FindsTheTopLevelTsOfEventData) {
  using feedpipe::delivery::event_ts_ms;
  EXPECT_EQ(event_ts_ms(R"({"batch_id":"b","error":"say \"ts\": 5","progress":{"done":1},"seq":2,"ts":1767225600123})"),
            1767225600123);
  EXPECT_EQ(event_ts_ms(R"({"ts": 42})"), 42);
  EXPECT_FALSE(event_ts_ms(R"({"seq":1})").has_value());
  EXPECT_FALSE(event_ts_ms(R"({"ts":"soon"})").has_value());
}

TEST_F(StreamServerTest, ResumesFromLastEventIdHeaderOrQuery) {
  start();
  auto jobs = tmp.create_batch("b1", 4);
  finish_all(jobs);
  {
    RawClient c(port);
    c.send_all(stream_request("/v1/batches/b1/events", "Last-Event-ID: 2\r\n"));
    ASSERT_TRUE(c.read_to_eof(5s));
    EXPECT_EQ(parse_sse(split_response(c.data).body).ids, seq_range(3, 5));
  }
  {
    RawClient c(port);
    c.send_all(stream_request("/v1/batches/b1/events?last_event_id=4"));
    ASSERT_TRUE(c.read_to_eof(5s));
    EXPECT_EQ(parse_sse(split_response(c.data).body).ids, seq_range(5, 5));
  }
  {
    RawClient c(port);  // past the end of a completed batch: nothing, and closed
    c.send_all(stream_request("/v1/batches/b1/events", "Last-Event-ID: 99\r\n"));
    ASSERT_TRUE(c.read_to_eof(5s));
    EXPECT_TRUE(parse_sse(split_response(c.data).body).ids.empty());
  }
  {
    RawClient c(port);
    c.send_all(stream_request("/v1/batches/b1/events", "Last-Event-ID: x\r\n"));
    ASSERT_TRUE(c.read_to_eof(5s));
    EXPECT_EQ(split_response(c.data).status, 400);
  }
  {
    RawClient c(port);
    c.send_all(stream_request("/v1/batches/nope/events"));
    ASSERT_TRUE(c.read_to_eof(5s));
    Response r = split_response(c.data);
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "batch_not_found");
  }
}

TEST_F(StreamServerTest, ResumeAheadOfLiveEventsWaitsForThem) {
  start();
  auto jobs = tmp.create_batch("b1", 4);
  finish_all({jobs[0]});
  RawClient c(port);
  c.send_all(stream_request("/v1/batches/b1/events", "Last-Event-ID: 3\r\n"));
  ASSERT_TRUE(wait_for([&] { return server->open_streams() == 1; }, 5s));
  finish_all({jobs[1], jobs[2], jobs[3]});
  ASSERT_TRUE(c.read_to_eof(5s));
  EXPECT_EQ(parse_sse(split_response(c.data).body).ids, seq_range(4, 5));
}

TEST_F(StreamServerTest, SendsHeartbeatsWhenSilent) {
  StreamServerSettings s;
  s.heartbeat = 100ms;
  start(s);
  tmp.create_batch("b1", 2);
  RawClient c(port);
  c.send_all(stream_request("/v1/batches/b1/events"));
  c.read_until([](const std::string& d) { return parse_sse(d.substr(std::min(d.size(), d.find("\r\n\r\n") + 4))).pings >= 3; }, 2s);
  Sse sse = parse_sse(split_response(c.data).body);
  EXPECT_GE(sse.pings, 3);
  EXPECT_TRUE(sse.ids.empty());
}

TEST_F(StreamServerTest, DropsASlowReaderWithoutSlowingOthers) {
  StreamServerSettings s;
  s.stream_buffer_bytes = 64 * 1024;
  start(s);
  constexpr int kEvents = 800;
  tmp.create_batch("b1", kEvents);
  RawClient slow(port, 4096);
  slow.send_all(stream_request("/v1/batches/b1/events"));
  RawClient fast(port);
  fast.send_all(stream_request("/v1/batches/b1/events"));
  ASSERT_TRUE(wait_for([&] { return server->open_streams() == 2; }, 5s));
  // Rounds of 64 KiB that a reading client keeps up with; the slow one falls behind.
  const std::string data(16 * 1024, 'x');
  for (int seq = 1; seq <= kEvents; ++seq) {
    hub.on_event({"b1", seq, "job.failed", data});
    if (seq % 4 == 0) {
      std::string frame = "id: " + std::to_string(seq) + "\n";
      auto has_frame = [&](const std::string& d) {
        size_t at = d.rfind(frame);
        return at != std::string::npos && d.find("\n\n", at) != std::string::npos;
      };
      ASSERT_TRUE(fast.read_until(has_frame, 5s))
          << "the fast reader stalled at " << seq;
    }
  }
  Sse sse = parse_sse(split_response(fast.data).body);
  EXPECT_EQ(sse.ids, seq_range(1, kEvents)) << "the fast reader gets everything";
  EXPECT_TRUE(wait_for([&] { return server->open_streams() == 1; }, 5s)) << "the slow reader is dropped";
  // The slow client sees its stream end (after what the kernel had buffered).
  EXPECT_TRUE(slow.read_to_eof(10s));
  EXPECT_LT(parse_sse(split_response(slow.data).body).ids.size(), static_cast<size_t>(kEvents));
}

TEST_F(StreamServerTest, RefusesStreamsBeyondTheLimit) {
  StreamServerSettings s;
  s.max_streams = 2;
  start(s);
  tmp.create_batch("b1", 2);
  RawClient a(port), b(port), c(port);
  a.send_all(stream_request("/v1/batches/b1/events"));
  b.send_all(stream_request("/v1/batches/b1/events"));
  ASSERT_TRUE(wait_for([&] { return server->open_streams() == 2; }, 5s));
  c.send_all(stream_request("/v1/batches/b1/events"));
  ASSERT_TRUE(c.read_to_eof(5s));
  Response r = split_response(c.data);
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.head.find("Retry-After: "), std::string::npos);
}

TEST_F(StreamServerTest, RejectsOversizedAndMalformedHeads) {
  start();
  {
    RawClient c(port);
    c.send_all("GET / HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
    ASSERT_TRUE(c.read_to_eof(5s));
    EXPECT_EQ(split_response(c.data).status, 431);
  }
  {
    RawClient c(port);
    c.send_all("NOT A REQUEST\r\n\r\n");
    ASSERT_TRUE(c.read_to_eof(5s));
    EXPECT_EQ(split_response(c.data).status, 400);
  }
}

TEST_F(StreamServerTest, ForwardsOtherRequestsToTheBackend) {
  httplib::Server backend;
  backend.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 201;
    res.set_header("X-Seen-Forwarded-For", req.get_header_value("X-Forwarded-For"));
    res.set_header("X-Seen-Connection", req.get_header_value("Connection"));
    res.set_content(req.body, "application/octet-stream");
  });
  backend.Get("/hello", [](const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Custom", "yes");
    res.set_content("hello " + req.get_param_value("name"), "text/plain");
  });
  feedpipe::register_stream_routes(backend, hub, {});
  int backend_port = backend.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { backend.listen_after_bind(); });
  StreamServerSettings s;
  s.backend_port = backend_port;
  s.max_body_bytes = 1 << 20;
  start(s);
  auto jobs = tmp.create_batch("b1", 3);
  finish_all(jobs);

  httplib::Client client("127.0.0.1", port);
  std::string body;
  for (int i = 0; i < 300000; ++i) body += static_cast<char>('a' + i % 26);
  auto post = client.Post("/echo", body, "application/octet-stream");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 201);
  EXPECT_EQ(post->body, body);
  EXPECT_EQ(post->get_header_value("X-Seen-Forwarded-For"), "127.0.0.1");
  EXPECT_EQ(post->get_header_value("X-Seen-Connection"), "close");

  auto get = client.Get("/hello?name=world");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->get_header_value("X-Custom"), "yes");
  EXPECT_EQ(get->get_header_value("Content-Type"), "text/plain");
  EXPECT_EQ(get->body, "hello world");

  auto page = client.Get("/v1/batches/b1/events?after=2", {{"Accept", "application/json"}});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  auto json = nlohmann::json::parse(page->body);
  EXPECT_EQ(json["events"].size(), 2u);
  EXPECT_EQ(json["done"], true);

  auto missing = client.Get("/nowhere");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  auto too_big = client.Post("/echo", std::string((1 << 20) + 1, 'x'), "application/octet-stream");
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);

  RawClient chunked(port);
  chunked.send_all("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  ASSERT_TRUE(chunked.read_to_eof(5s));
  EXPECT_EQ(split_response(chunked.data).status, 411);

  backend.stop();
  serving.join();
  auto gone = client.Get("/hello");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 502);
}

TEST_F(StreamServerTest, AThousandStreamsOnOneBatchReceiveEveryEvent) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  constexpr size_t kStreams = 1000;
  if (rl.rlim_cur < 2 * kStreams + 100) GTEST_SKIP() << "open-file limit " << rl.rlim_cur << " too low";
  start();
  auto jobs = tmp.create_batch("b1", 30);
  finish_all({jobs[0], jobs[1]});  // a history to replay, then live events
  std::vector<std::unique_ptr<RawClient>> clients;
  for (size_t i = 0; i < kStreams; ++i) {
    clients.push_back(std::make_unique<RawClient>(port));
    ASSERT_TRUE(clients.back()->connected());
    clients.back()->send_all(stream_request("/v1/batches/b1/events"));
  }
  ASSERT_TRUE(wait_for([&] { return server->open_streams() == kStreams; }, 20s)) << server->open_streams();
  std::thread publisher([&] {
    std::vector<int64_t> rest(jobs.begin() + 2, jobs.end());
    finish_all(rest);
  });
  size_t open = read_until_closed(clients, 30s);
  publisher.join();
  EXPECT_EQ(open, 0u) << "every stream is closed after batch.completed";
  size_t complete = 0;
  for (auto& c : clients)
    if (parse_sse(split_response(c->data).body).ids == seq_range(1, 31)) ++complete;
  EXPECT_EQ(complete, kStreams);
}

// A thundering herd after a broadcaster restart: a thousand clients reconnect at once, each with
// its own Last-Event-ID. One read of the batch's history serves them all, and each client gets
// exactly the events after its cursor, then the live ones.
TEST_F(StreamServerTest, AThousandReconnectsAtOnceShareOneHistoryReadAndResumeExactly) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  constexpr size_t kStreams = 1000;
  if (rl.rlim_cur < 2 * kStreams + 100) GTEST_SKIP() << "open-file limit " << rl.rlim_cur << " too low";
  auto jobs = tmp.create_batch("b1", 30);
  finish_all(std::vector<int64_t>(jobs.begin(), jobs.begin() + 20));  // seqs 1..20 before the restart
  start();
  std::vector<std::unique_ptr<RawClient>> clients;
  for (size_t i = 0; i < kStreams; ++i) {
    clients.push_back(std::make_unique<RawClient>(port));
    ASSERT_TRUE(clients.back()->connected());
  }
  for (size_t i = 0; i < kStreams; ++i) {
    std::string request = "GET /v1/batches/b1/events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n"
                          "Last-Event-ID: " + std::to_string(i % 21) + "\r\n\r\n";
    clients[i]->send_all(request);
  }
  ASSERT_TRUE(wait_for([&] { return server->open_streams() == kStreams; }, 20s)) << server->open_streams();
  EXPECT_EQ(hub.history_reads(), 1u);
  std::thread publisher([&] { finish_all(std::vector<int64_t>(jobs.begin() + 20, jobs.end())); });
  size_t open = read_until_closed(clients, 30s);
  publisher.join();
  EXPECT_EQ(open, 0u) << "every stream is closed after batch.completed";
  size_t exact = 0;
  for (size_t i = 0; i < kStreams; ++i)
    if (parse_sse(split_response(clients[i]->data).body).ids == seq_range(static_cast<int64_t>(i % 21) + 1, 31)) ++exact;
  EXPECT_EQ(exact, kStreams);
  EXPECT_EQ(hub.history_reads(), 1u);
}

TEST_F(StreamServerTest, ManyBatchesOnOneStreamEachInSeqOrderOnceEndingWhenAllComplete) {
  start();
  auto a = tmp.create_batch("a", 3);
  auto b = tmp.create_batch("b", 2);
  auto c = tmp.create_batch("c", 1);
  finish_all({a[0]});  // history before the stream opens
  RawClient client(port);
  client.send_all(stream_request("/v1/events?batch=a&batch=b&batch=c"));
  ASSERT_TRUE(client.read_until([](const std::string& d) { return d.find("retry: ") != std::string::npos; }, 5s));
  ASSERT_TRUE(wait_for([&] { return server->open_streams() == 1; }, 5s));
  // b's second event arrives before its first (the hub fills the gap); the others interleave.
  auto b1 = tmp.finish_job(b[0]);
  auto b2 = tmp.finish_job(b[1]);
  for (const EventMessage& e : b2) hub.on_event(e);
  finish_all({a[1], c[0]});
  for (const EventMessage& e : b1) hub.on_event(e);
  finish_all({a[2]});
  ASSERT_TRUE(client.read_to_eof(10s)) << "the stream ends once every batch has completed";
  Response r = split_response(client.data);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_TRUE(parse_sse(r.body).retry_first);
  std::map<std::string, std::vector<int64_t>> seqs;
  auto frames = parse_many(r.body);
  collect(frames, {"a", "b", "c"}, seqs);
  EXPECT_EQ(seqs["a"], seq_range(1, 4));
  EXPECT_EQ(seqs["b"], seq_range(1, 3));
  EXPECT_EQ(seqs["c"], seq_range(1, 2));
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().id, "4.3.2");
  EXPECT_TRUE(wait_for([&] { return server->open_streams() == 0 && hub.watched_batches() == 0; }, 5s));
}

TEST_F(StreamServerTest, ManyBatchesResumeFromTheStreamsIdAfterADropAndOnARestartedServer) {
  start();
  auto a = tmp.create_batch("a", 3);
  auto b = tmp.create_batch("b", 3);
  const std::vector<std::string> order{"b", "a"};
  std::map<std::string, std::vector<int64_t>> seqs;
  finish_all({a[0], b[0]});
  std::string last_id;
  {
    RawClient c1(port);
    c1.send_all(stream_request("/v1/events?batch=b&batch=a"));
    ASSERT_TRUE(c1.read_until([](const std::string& d) { return count_frames(d) >= 2; }, 5s));
    auto frames = parse_many(split_response(c1.data).body);
    collect(frames, order, seqs);
    last_id = frames.back().id;
  }  // dropped
  finish_all({a[1]});
  {
    RawClient c2(port);
    c2.send_all(stream_request("/v1/events?batch=b&batch=a", "Last-Event-ID: " + last_id + "\r\n"));
    ASSERT_TRUE(wait_for([&] { return server->open_streams() >= 1; }, 5s));
    finish_all({b[1]});
    ASSERT_TRUE(c2.read_until([](const std::string& d) { return count_frames(d) >= 2; }, 5s));
    auto frames = parse_many(split_response(c2.data).body);
    collect(frames, order, seqs);
    last_id = frames.back().id;
  }
  // The broadcaster restarts: a new hub and server read the history from the database.
  server->stop();
  server.reset();
  finish_all({a[2], b[2]});  // nobody watches: these reach no hub
  EventHub restarted_hub{{tmp.path(), 1000ms}};
  StreamServerSettings settings;
  settings.heartbeat = 10s;
  StreamServer restarted(restarted_hub, settings);
  const int restarted_port = restarted.listen("127.0.0.1", 0);
  restarted.start();
  RawClient c3(restarted_port);
  c3.send_all(stream_request("/v1/events?batch=b&batch=a&last_event_id=" + last_id));
  ASSERT_TRUE(c3.read_to_eof(5s));
  collect(parse_many(split_response(c3.data).body), order, seqs);
  EXPECT_EQ(seqs["a"], seq_range(1, 4)) << "no gap and no repeat across the drop and the restart";
  EXPECT_EQ(seqs["b"], seq_range(1, 4));
  restarted.stop();
}

TEST_F(StreamServerTest, RefusesBadManyBatchRequestsWithJsonErrors) {
  StreamServerSettings s;
  s.max_stream_batches = 3;
  start(s);
  tmp.create_batch("a", 1);
  tmp.create_batch("b", 1);
  auto refusal = [&](const std::string& target, const std::string& extra = "") {
    RawClient c(port);
    c.send_all(stream_request(target, extra));
    EXPECT_TRUE(c.read_to_eof(5s)) << target;
    Response r = split_response(c.data);
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    return std::make_pair(r.status, body.is_discarded() ? std::string("<no json>") : body["error"]["code"].get<std::string>());
  };
  EXPECT_EQ(refusal("/v1/events"), std::make_pair(400, std::string("batch_required")));
  EXPECT_EQ(refusal("/v1/events?batch=a&batch=b&batch=c&batch=d"), std::make_pair(400, std::string("too_many_batches")));
  EXPECT_EQ(refusal("/v1/events?batch=a&batch=b&batch=a"), std::make_pair(400, std::string("duplicate_batch")));
  EXPECT_EQ(refusal("/v1/events?batch=a&batch="), std::make_pair(400, std::string("invalid_batch_id")));
  EXPECT_EQ(refusal("/v1/events?batch=a&batch=nope"), std::make_pair(404, std::string("batch_not_found")));
  EXPECT_EQ(refusal("/v1/events?batch=a&batch=b", "Last-Event-ID: 1\r\n"),
            std::make_pair(400, std::string("invalid_last_event_id")));
  EXPECT_EQ(server->open_streams(), 0u);
  EXPECT_TRUE(wait_for([&] { return hub.watched_batches() == 0; }, 5s)) << "a refused stream leaves no batch watched";
}

TEST_F(StreamServerTest, ManyBatchesNeedOneStreamTokenPerBatchInOrderAndAnswerCors) {
  StreamServerSettings s;
  s.stream_token_secret = "secret";
  s.cors = feedpipe::CorsPolicy::parse("https://app.example");
  start(s);
  finish_all(tmp.create_batch("a", 1));
  finish_all(tmp.create_batch("b", 1));
  const std::string ta = feedpipe::stream_token("secret", "a"), tb = feedpipe::stream_token("secret", "b");
  const std::string origin = "Origin: https://app.example\r\n";
  auto get = [&](const std::string& target) {
    RawClient c(port);
    c.send_all(stream_request(target, origin));
    EXPECT_TRUE(c.read_to_eof(5s)) << target;
    return split_response(c.data);
  };
  Response none = get("/v1/events?batch=a&batch=b");
  EXPECT_EQ(none.status, 403);
  EXPECT_EQ(nlohmann::json::parse(none.body)["error"]["code"], "stream_token_required");
  EXPECT_NE(none.head.find("Access-Control-Allow-Origin: https://app.example"), std::string::npos) << none.head;
  Response one = get("/v1/events?batch=a&batch=b&token=" + ta);
  EXPECT_EQ(one.status, 403);
  EXPECT_EQ(nlohmann::json::parse(one.body)["error"]["code"], "stream_token_required");
  Response swapped = get("/v1/events?batch=a&batch=b&token=" + tb + "&token=" + ta);
  EXPECT_EQ(swapped.status, 403);
  EXPECT_EQ(nlohmann::json::parse(swapped.body)["error"]["code"], "invalid_stream_token");
  Response ok = get("/v1/events?batch=a&token=" + ta + "&batch=b&token=" + tb);
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.head.find("Access-Control-Allow-Origin: https://app.example"), std::string::npos) << ok.head;
  std::map<std::string, std::vector<int64_t>> seqs;
  collect(parse_many(ok.body), {"a", "b"}, seqs);
  EXPECT_EQ(seqs["a"], seq_range(1, 2));
  EXPECT_EQ(seqs["b"], seq_range(1, 2));
}

TEST_F(StreamServerTest, DropsASlowManyBatchReaderWithoutSlowingOthers) {
  StreamServerSettings s;
  s.stream_buffer_bytes = 64 * 1024;
  start(s);
  constexpr int kEvents = 800;
  tmp.create_batch("b1", kEvents);
  tmp.create_batch("b2", 1);
  RawClient slow(port, 4096);
  slow.send_all(stream_request("/v1/events?batch=b1&batch=b2"));
  RawClient fast(port);
  fast.send_all(stream_request("/v1/events?batch=b1&batch=b2"));
  ASSERT_TRUE(wait_for([&] { return server->open_streams() == 2; }, 5s));
  const std::string data(16 * 1024, 'x');
  for (int seq = 1; seq <= kEvents; ++seq) {
    hub.on_event({"b1", seq, "job.failed", data});
    if (seq % 4 == 0) {
      std::string frame = "id: " + std::to_string(seq) + ".0\n";
      auto has_frame = [&](const std::string& d) {
        size_t at = d.rfind(frame);
        return at != std::string::npos && d.find("\n\n", at) != std::string::npos;
      };
      // A generous bound: sanitizer builds on a loaded machine are slow, a stall is forever.
      ASSERT_TRUE(fast.read_until(has_frame, 20s)) << "the fast reader stalled at " << seq;
    }
  }
  std::vector<int64_t> ids;
  const std::string body = split_response(fast.data).body;
  for (size_t at = 0; (at = body.find("id: ", at)) != std::string::npos; at += 4)
    ids.push_back(std::stoll(body.substr(at + 4)));
  EXPECT_EQ(ids, seq_range(1, kEvents)) << "the fast reader gets everything";
  EXPECT_TRUE(wait_for([&] { return server->open_streams() == 1; }, 5s)) << "the slow reader is dropped";
  EXPECT_TRUE(slow.read_to_eof(10s));
}

TEST_F(StreamServerTest, AnEventVisitsOnlyTheStreamsOfItsBatch) {
  start();
  auto x = tmp.create_batch("x", 3);
  auto y = tmp.create_batch("y", 3);
  auto a = tmp.create_batch("a", 3);
  tmp.create_batch("b", 3);
  constexpr size_t kEach = 20;
  std::vector<std::unique_ptr<RawClient>> xy, ys;
  for (size_t i = 0; i < kEach; ++i) {
    xy.push_back(std::make_unique<RawClient>(port));
    xy.back()->send_all(stream_request("/v1/events?batch=x&batch=y"));
    ys.push_back(std::make_unique<RawClient>(port));
    ys.back()->send_all(stream_request("/v1/batches/y/events"));
  }
  RawClient ab(port);
  ab.send_all(stream_request("/v1/events?batch=a&batch=b"));
  ASSERT_TRUE(wait_for([&] { return server->open_streams() == 2 * kEach + 1; }, 10s));
  auto visits_for = [&](const std::function<void()>& finish, RawClient& watcher) {
    const uint64_t before = server->fan_out_visits();
    const size_t frames = count_frames(watcher.data);
    finish();
    EXPECT_TRUE(watcher.read_until([&](const std::string& d) { return count_frames(d) > frames; }, 5s));
    return server->fan_out_visits() - before;
  };
  EXPECT_EQ(visits_for([&] { finish_all({a[0]}); }, ab), 1u) << "a's event visits the one stream watching a";
  EXPECT_EQ(visits_for([&] { finish_all({x[0]}); }, *xy.front()), kEach);
  EXPECT_EQ(visits_for([&] { finish_all({y[0]}); }, *ys.front()), 2 * kEach);
}

TEST(EventHubGrowthListener, IsToldWhenAWatchedBatchGrows) {
  BroadcasterDb tmp;
  EventHub hub({tmp.path(), 1000ms});
  std::vector<std::string> told;
  std::mutex mu;
  hub.add_growth_listener([&](const std::string& id) {
    std::lock_guard lock(mu);
    told.push_back(id);
  });
  auto jobs = tmp.create_batch("b1", 2);
  auto sub = hub.subscribe("b1", 0);
  ASSERT_TRUE(sub);
  for (const EventMessage& e : tmp.finish_job(jobs[0])) hub.on_event(e);
  for (const EventMessage& e : tmp.finish_job(jobs[0])) hub.on_event(e);  // nothing new: not told
  auto late = tmp.finish_job(jobs[1]);  // never delivered by "Kafka": the sweep finds it
  hub.sweep();
  std::lock_guard lock(mu);
  EXPECT_EQ(told, (std::vector<std::string>{"b1", "b1"}));
  EXPECT_EQ(sub->next(0ms).size(), 3u);
}

// The loop serves grown batches from this queue: the one that has waited longest first, each
// once however often it grew, and again when it grows after being taken.
TEST(GrowthQueue, ServesTheLongestWaitingBatchFirstAndEachOnce) {
  feedpipe::GrowthQueue queue;
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.take_oldest(), std::nullopt);
  for (const char* id : {"b", "a", "b", "c", "a"}) queue.add(id);
  EXPECT_EQ(queue.take_oldest(), "b");
  queue.add("b");  // grew again after it was taken: it waits behind a and c
  queue.add("a");  // still waiting: keeps its place
  EXPECT_EQ(queue.take_oldest(), "a");
  EXPECT_EQ(queue.take_oldest(), "c");
  EXPECT_EQ(queue.take_oldest(), "b");
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.take_oldest(), std::nullopt);
}

TEST(StreamServerRequestParser, ParsesHeadsAndQueries) {
  using namespace feedpipe::http1;
  RequestHead h;
  std::string raw = "GET /v1/batches/a%2Db/events?last_event_id=4&x=a+b HTTP/1.1\r\nHost: h\r\nLast-Event-ID:  7 \r\n\r\nrest";
  ASSERT_EQ(parse_request_head(raw, 1024, h), ParseStatus::complete);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.path, "/v1/batches/a-b/events");
  EXPECT_EQ(*h.header("last-event-id"), "7");
  EXPECT_EQ(h.head_bytes, raw.size() - 4);
  EXPECT_EQ(query_param(h.query, "last_event_id"), "4");
  EXPECT_EQ(query_param(h.query, "x"), "a b");
  EXPECT_EQ(query_param(h.query, "y"), std::nullopt);
  EXPECT_EQ(parse_request_head("GET / HTTP/1.1\r\nHost", 1024, h), ParseStatus::incomplete);
  EXPECT_EQ(parse_request_head("GET / HTTP/1.1\r\nHost: " + std::string(2000, 'a'), 1024, h), ParseStatus::too_large);
  EXPECT_EQ(parse_request_head("GET / HTTP/2.0\r\n\r\n", 1024, h), ParseStatus::bad_request);
  EXPECT_EQ(parse_request_head("GET / HTTP/1.1\r\n folded\r\n\r\n", 1024, h), ParseStatus::bad_request);
  EXPECT_EQ(parse_request_head("GET /%zz HTTP/1.1\r\n\r\n", 1024, h), ParseStatus::bad_request);
}

// Found by fuzz/fuzz_request_head: control bytes in the target or a field value were accepted, and
// the front copies both into the request it sends the API server.
TEST(StreamServerRequestParser, RefusesControlBytesInTargetAndValues) {
  using namespace feedpipe::http1;
  using namespace std::string_literals;
  RequestHead h;
  const std::string fuzzer_found =
      "GET /v1\0\0`0\0\0\x33@/abc/ev$nts?last_event_id=13&after=3 HTTP/1.1\r\nHos-: 127.0.0.1\r\n"
      "Accept: text/event-s\x01\0\0\0m\r\nLast-EventI-D: 12\r\n\r\n"s;
  EXPECT_EQ(parse_request_head(fuzzer_found, 1024, h), ParseStatus::bad_request);
  for (const std::string& target : {"/a\0b"s, "/a\rb"s, "/a\tb"s, "/a\x7f"s, "/a?b\x01"s})
    EXPECT_EQ(parse_request_head("GET " + target + " HTTP/1.1\r\n\r\n", 1024, h), ParseStatus::bad_request)
        << "target " << target.size();
  for (const std::string& value : {"a\0b"s, "a\x1b[2J"s, "a\x7f"s, "a\rb"s})
    EXPECT_EQ(parse_request_head("GET / HTTP/1.1\r\nX: " + value + "\r\n\r\n", 1024, h), ParseStatus::bad_request)
        << "value " << value.size();
  // A tab inside a value and bytes beyond ASCII (obs-text) are allowed.
  ASSERT_EQ(parse_request_head("GET /caf%C3%A9 HTTP/1.1\r\nX: a\tb \xc3\xa9\r\n\r\n", 1024, h), ParseStatus::complete);
  EXPECT_EQ(*h.header("x"), "a\tb \xc3\xa9");
  EXPECT_EQ(h.path, "/caf\xc3\xa9");
}

// With async_first_read (a broadcaster with --api), a batch whose history read is slow holds only
// its own streams: the loop serves every other batch meanwhile.
class HeldSource : public feedpipe::EventSource {
 public:
  HeldSource(std::string path, std::string held) : sqlite_(std::move(path)), held_id_(std::move(held)) {}
  std::optional<feedpipe::EventPage> read_after(const std::string& id, int64_t after, int limit) override {
    if (id == held_id_) {
      std::unique_lock lock(mu_);
      ++waiting;
      cv_.wait(lock, [&] { return !held_; });
    }
    return sqlite_.read_after(id, after, limit);
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }
  std::string describe() const override { return "held"; }
  std::atomic<int> waiting{0};

 private:
  feedpipe::SqliteEventSource sqlite_;
  std::string held_id_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = true;
};

TEST(StreamServerAsyncFirstRead, AHeldHistoryReadHoldsOnlyItsOwnBatch) {
  BroadcasterDb tmp;
  auto source = std::make_shared<HeldSource>(tmp.path(), "slow");
  EventHub hub({"", 60s, source});
  StreamServerSettings settings;
  settings.async_first_read = true;
  settings.heartbeat = 10s;
  StreamServer server(hub, settings);
  const int port = server.listen("127.0.0.1", 0);
  server.start();
  auto fast_jobs = tmp.create_batch("fast", 2);
  auto slow_jobs = tmp.create_batch("slow", 1);
  for (const EventMessage& e : tmp.finish_job(slow_jobs[0])) hub.on_event(e);  // nobody watches yet

  RawClient slow(port), slow_too(port);
  slow.send_all(stream_request("/v1/batches/slow/events"));
  ASSERT_TRUE(wait_for([&] { return source->waiting.load() == 1; }, 5s));
  slow_too.send_all(stream_request("/v1/batches/slow/events", "Last-Event-ID: 1\r\n"));
  RawClient fast(port);
  fast.send_all(stream_request("/v1/batches/fast/events"));
  ASSERT_TRUE(wait_for([&] { return server.open_streams() == 3; }, 5s));
  for (int64_t id : fast_jobs)
    for (const EventMessage& e : tmp.finish_job(id)) hub.on_event(e);
  ASSERT_TRUE(fast.read_to_eof(5s)) << "the fast batch streams while the slow one's read is held";
  EXPECT_EQ(parse_sse(split_response(fast.data).body).ids, seq_range(1, 3));
  RawClient unknown(port);
  unknown.send_all(stream_request("/v1/batches/nope/events"));
  ASSERT_TRUE(unknown.read_to_eof(5s));
  EXPECT_EQ(split_response(unknown.data).status, 404);

  source->release();
  ASSERT_TRUE(slow.read_to_eof(5s));
  ASSERT_TRUE(slow_too.read_to_eof(5s));
  EXPECT_EQ(parse_sse(split_response(slow.data).body).ids, seq_range(1, 2));
  EXPECT_EQ(parse_sse(split_response(slow_too.data).body).ids, seq_range(2, 2));
  EXPECT_EQ(source->waiting.load(), 1) << "one read of the slow batch for both of its streams";
  EXPECT_TRUE(wait_for([&] { return server.open_streams() == 0; }, 5s));
  server.stop();
}

TEST(StreamServerAsyncFirstRead, AStreamOfManyBatchesStartsOnceEveryReadEnds) {
  BroadcasterDb tmp;
  auto source = std::make_shared<HeldSource>(tmp.path(), "slow");
  EventHub hub({"", 60s, source});
  StreamServerSettings settings;
  settings.async_first_read = true;
  settings.heartbeat = 10s;
  StreamServer server(hub, settings);
  const int port = server.listen("127.0.0.1", 0);
  server.start();
  for (int64_t id : tmp.create_batch("fast", 1)) tmp.finish_job(id);
  for (int64_t id : tmp.create_batch("slow", 1)) tmp.finish_job(id);

  RawClient many(port);
  many.send_all(stream_request("/v1/events?batch=fast&batch=slow"));
  ASSERT_TRUE(wait_for([&] { return source->waiting.load() == 1; }, 5s));
  // The loop serves the others meanwhile; the fast batch's own stream comes and goes.
  RawClient fast(port);
  fast.send_all(stream_request("/v1/batches/fast/events"));
  ASSERT_TRUE(fast.read_to_eof(5s));
  EXPECT_EQ(parse_sse(split_response(fast.data).body).ids, seq_range(1, 2));
  RawClient unknown(port);
  unknown.send_all(stream_request("/v1/events?batch=fast&batch=nope"));
  ASSERT_TRUE(unknown.read_to_eof(5s));
  EXPECT_EQ(split_response(unknown.data).status, 404);
  EXPECT_TRUE(many.data.empty()) << "the stream waits for the slow batch's history";

  source->release();
  ASSERT_TRUE(many.read_to_eof(5s));
  std::map<std::string, std::vector<int64_t>> seqs;
  collect(parse_many(split_response(many.data).body), {"fast", "slow"}, seqs);
  EXPECT_EQ(seqs["fast"], seq_range(1, 2));
  EXPECT_EQ(seqs["slow"], seq_range(1, 2));
  EXPECT_TRUE(wait_for([&] { return server.open_streams() == 0 && hub.watched_batches() == 0; }, 5s));
  server.stop();
}

}  // namespace
