#pragma once
// The inside of the stream front (broadcaster/stream_server.h), shared by the files that
// implement it, each one job: the event loop and its connections (stream_server.cpp), the streams
// and their fan-out (stream_server_streams.cpp: a batch's streams, streams of many batches,
// history reads, admission), and the forwarding of other requests to the API server
// (stream_server_forwarding.cpp). Not a public header: nothing outside those files includes it.
//
// Threading: everything here belongs to the loop's thread, except what the members say
// (stopping, stream_count, fan_out_visits; loads_done under loads_mu; Wakeup under its mutex).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <optional>
#include <queue>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broadcaster/batch_log.h"
#include "broadcaster/delivery_metrics.h"
#include "broadcaster/growth_queue.h"
#include "broadcaster/http_request_parser.h"
#include "broadcaster/multi_batch_stream.h"
#include "broadcaster/sse.h"
#include "broadcaster/stream_server.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/open_files.h"
#include "common/rate_limiter.h"
#include "common/stream_token.h"
#include "common/thread_name.h"

namespace feedpipe {
namespace stream_front {

inline metrics::Gauge& streams_open_gauge() {
  static auto& g = metrics::gauge("feedpipe_sse_streams_open", "SSE streams open on this process.");
  return g;
}

using Clock = std::chrono::steady_clock;
inline constexpr size_t kRelayBufferBytes = 256 * 1024;  // proxy buffering in each direction
inline constexpr size_t kReadChunk = 16 * 1024;
inline constexpr auto kFanOutTurn = std::chrono::milliseconds(50);  // fan-out before the loop's other work gets a turn
// A stream of many batches re-labels its frames, so they are copied: at most this much (plus one
// frame) waits in its buffer for the kernel; the rest stays in the batches' shared logs.
inline constexpr size_t kMultiFillBytes = 16 * 1024;

// The hub's growth listener writes here; it may outlive the server (the hub keeps the listener).
struct Wakeup {
  int fd = -1;
  std::mutex mu;
  GrowthQueue grown;
  bool closed = false;

  Wakeup() : fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  }
  ~Wakeup() { ::close(fd); }
  void poke() const {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
  }
  void batch_grew(const std::string& batch_id) {
    std::lock_guard lock(mu);
    if (closed) return;
    bool first = grown.empty();
    grown.add(batch_id);
    if (first) poke();
  }
  void clear_signal() const {
    uint64_t value = 0;
    [[maybe_unused]] ssize_t n = ::read(fd, &value, sizeof value);
  }
  std::optional<std::string> next() {
    std::lock_guard lock(mu);
    return grown.take_oldest();
  }
};

inline std::optional<int64_t> parse_seq(const std::string& text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

inline const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

inline std::string error_response(int status, const std::string& code, const std::string& message,
                           const std::string& extra_headers = "") {
  std::string body = nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n" + extra_headers + "Connection: close\r\n\r\n";
  out += body;
  return out;
}

// `extra_headers`: complete header lines (the CORS headers), or empty.
inline std::string stream_head(const std::string& extra_headers) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
         "X-Accel-Buffering: no\r\n" + extra_headers + "Connection: close\r\n\r\n";
}

// /v1/batches/{id}/events → id, else empty.
inline std::string events_batch_id(const std::string& path) {
  static const std::string prefix = "/v1/batches/", suffix = "/events";
  if (path.size() <= prefix.size() + suffix.size() || path.compare(0, prefix.size(), prefix) != 0 ||
      path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
    return "";
  std::string id = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
  return id.find('/') == std::string::npos ? id : "";
}

inline bool wants_json(const http1::RequestHead& head) {
  const std::string* accept = head.header("Accept");
  return accept && accept->find("application/json") != std::string::npos &&
         accept->find("text/event-stream") == std::string::npos;
}

inline std::string peer_ip(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown";
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
  else if (ss.ss_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
  return buf;
}

}  // namespace stream_front

struct StreamServer::Impl {
  using Clock = stream_front::Clock;
  using Wakeup = stream_front::Wakeup;
  enum class Kind : uint8_t { listener, wakeup, client, backend };
  // waiting: a stream request whose batch's history is being read off the loop (async_first_read)
  enum class State : uint8_t { head, proxy, stream, closing, waiting };

  struct Handle {
    explicit Handle(Kind k) : kind(k) {}
    virtual ~Handle() = default;
    Kind kind;
    int fd = -1;
    uint32_t interest = 0;  // the epoll events registered
    bool closed = false;
  };
  struct Group;
  struct Backend;
  struct Client : Handle {
    Client() : Handle(Kind::client) {}
    State state = State::head;
    bool close_after_flush = false;
    bool linger = false;  // after the response, read (and drop) what the client still sends
    std::string cors;     // CORS header lines for this request's answers (empty: none)
    std::string address;  // streams: the client address counted against max_streams_per_ip
    std::string in;   // the request head while it arrives
    std::string out;  // output the kernel has not taken yet
    uint64_t timer_token = 0;
    // streams: the group's log is shared; a stream only remembers how far it got
    Group* group = nullptr;
    size_t group_index = 0;
    size_t sent = 0;         // bytes of the group's log written to this stream
    size_t floor = 0;        // the log's size when the stream joined (its catch-up is not lag)
    int64_t skip_to = 0;     // Last-Event-ID beyond the log: send nothing up to this seq
    int64_t wait_cursor = 0;  // waiting: the stream's Last-Event-ID
    Clock::time_point last_write{};
    // streams of many batches (GET /v1/events): their cursors into the groups' logs; `group` stays null
    std::unique_ptr<MultiBatchStream> multi;
    bool multi_dirty = false;  // listed in dirty_multi: writes at the end of this fan-out turn
    // proxied requests
    Backend* backend = nullptr;
    uint64_t body_left = 0;
  };
  struct Backend : Handle {
    Backend() : Handle(Kind::backend) {}
    Client* client = nullptr;
    std::string out;  // request bytes for the backend
    bool connected = false;
    bool relayed = false;  // response bytes went to the client
  };
  // One watched batch: its events as SSE frames (the BatchLog) and the streams watching it.
  struct Group : BatchLog {
    std::string batch_id;
    std::shared_ptr<Subscription> sub;
    std::vector<Client*> streams;
    // Streams of many batches watching this one: the stream and its member index for this batch.
    std::vector<std::pair<Client*, size_t>> multi;
    std::vector<int64_t> fresh_ts;  // ts of the events the last pull() added (latency metric)
    // async_first_read: the history is being read on a loader thread; these streams wait for it.
    bool loading = false;
    uint64_t load_id = 0;
    std::vector<Client*> waiting;
    bool unwatched() const { return streams.empty() && multi.empty() && waiting.empty(); }
  };
  struct Timer {
    Clock::time_point when;
    int fd;
    uint64_t token;
    bool operator>(const Timer& o) const { return when > o.when; }
  };

  Impl(EventHub& h, StreamServerSettings s)
      : hub(h),
        settings(std::move(s)),
        wakeup(std::make_shared<Wakeup>()),
        stream_limiter(settings.stream_rate_per_minute, settings.rate_limit_max_clients) {
    std::weak_ptr<Wakeup> weak = wakeup;
    listener_id = hub.add_growth_listener([weak](const std::string& batch_id) {
      if (auto w = weak.lock()) w->batch_grew(batch_id);
    });
  }
  ~Impl() { hub.remove_growth_listener(listener_id); }

  EventHub& hub;
  StreamServerSettings settings;
  std::shared_ptr<Wakeup> wakeup;
  uint64_t listener_id = 0;
  RateLimiter stream_limiter;                         // stream opens per client address
  std::unordered_map<std::string, size_t> streams_by_address;  // open streams; no zero entries
  int epfd = -1;
  Handle listener{Kind::listener};
  Handle wake_handle{Kind::wakeup};
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> stream_count{0};
  std::atomic<uint64_t> fan_out_visits{0};
  std::mutex stop_mu;
  bool stopped = false;

  std::vector<Client*> by_fd;
  std::unordered_map<std::string, std::unique_ptr<Group>> groups;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers;
  uint64_t next_token = 1;
  std::vector<Handle*> graveyard;
  std::vector<std::string> emptied_groups;  // erased in bury() unless someone joined again
  Clock::time_point now = Clock::now();
  Clock::time_point listen_paused_until{};
  bool listen_paused = false;
  uint64_t delivered = 0;  // events written since the last add to the counter (one add per loop turn)
  sockaddr_storage backend_addr{};
  socklen_t backend_addr_len = 0;
  // First reads off the loop: one loader thread per batch being read, its result handed back
  // through loads_done and the wakeup eventfd.
  struct Loaded {
    std::string batch_id;
    uint64_t load_id = 0;
    std::shared_ptr<Subscription> sub;
    int status = 200;  // 404 unknown batch, 503 source unavailable, 500 other failure
  };
  std::mutex loads_mu;
  std::vector<Loaded> loads_done;  // guarded by loads_mu
  std::unordered_map<uint64_t, std::thread> loaders;  // loop thread only
  uint64_t next_load_id = 1;
  // Streams of many batches with new events in this fan-out turn, and the ts of those events
  // that no batch's own stream wrote yet (the latency metric).
  std::vector<Client*> dirty_multi;
  std::vector<int64_t> multi_fresh_ts;

  // ---- the loop (stream_server.cpp): epoll bookkeeping ----
  void watch(Handle* h, uint32_t events);
  void schedule(Client* c, Clock::time_point when);

  // ---- lifecycle ----
  int listen(const std::string& host, int port);
  void resolve_backend();
  void start();
  void stop();
  void run();
  void shutdown_all();
  void bury();
  void dispatch(Handle* h, uint32_t ev);
  // Heartbeats of idle streams, head and linger timeouts.
  void run_timers();

  // ---- accepting ----
  void accept_all();

  // ---- clients ----
  void on_client(Client* c, uint32_t ev);
  void discard_input(Client* c);
  void read_head(Client* c);
  // Queues a complete response and closes once it is written.
  void respond(Client* c, std::string response);
  // Writes c->out, then (streams) the group's log after c->sent; closes the client when that ends
  // a closing connection or a completed stream.
  void flush(Client* c);
  uint32_t client_interest(Client* c) const;
  void close_client(Client* c);

  // ---- streams (stream_server_streams.cpp) ----
  // The access checks of a stream request, in order: open rate, signed token, total streams,
  // streams of this client address. False when `c` was answered with the refusal.
  // `tokens`: the request's token= values, one per batch (in order) when tokens are on.
  bool admit_stream(Client* c, const std::vector<std::string>& batch_ids, const std::vector<std::string>& tokens,
                    const std::string& address);
  void open_stream(Client* c, const http1::RequestHead& head, const std::string& batch_id);
  // A stream of group `g` from the event after `cursor`: the head, `retry:`, the backlog.
  void join_stream(Client* c, Group* g, int64_t cursor, std::string address);
  void count_stream(const std::string& address);
  void uncount_stream(const std::string& address);
  void leave_waiting(Client* c);
  // Reads the batch's history on a thread of its own (async_first_read): a slow event source
  // (an API) must not stall the loop. finish_loads() takes the result.
  void start_load(Group& g);
  // The history reads that ended: their waiting streams start, or get the refusal.
  void finish_loads();
  // The answer to a stream whose batch's history read failed (finish_loads()).
  static std::string load_refusal(int status, const std::string& batch_id, const std::string& cors);

  // ---- streams of many batches (GET /v1/events?batch=…&batch=…) ----
  // The same checks and answers as a batch's stream, for every batch named, plus the batch list's
  // own refusals (broadcaster/multi_batch_stream.h). Each batch joins its group (made and read as
  // for a batch's stream); the stream starts once every group's history is loaded.
  void open_multi_stream(Client* c, const http1::RequestHead& head);
  // A stream of many batches whose groups are all loaded: the head, `retry:`, the backlog.
  void join_multi(Client* c);
  void leave_multi(Client* c);
  void leave_multi_waiting(Client* c);
  // A stream of many batches, one of whose batches grew: as push() for a batch's stream.
  void push_multi(Client* c);
  void leave_group(Client* c);
  // Takes the batch's new events from the hub into the group's log.
  bool pull(Group& g);
  // The group's log grew: send the stream its new frames, or drop it when it lags too far.
  void push(Client* c);
  // Serves the batches with new events one at a time, longest-waiting first, including those that
  // grow meanwhile; after kFanOutTurn it lets the loop's other work in and comes back.
  void fan_out_dirty();
  // Writes the streams of many batches that fan_out_dirty() listed.
  void flush_dirty_multi();

  // ---- forwarding (stream_server_forwarding.cpp) ----
  void forward(Client* c, const http1::RequestHead& head);
  void read_body(Client* c);
  void on_backend(Backend* b, uint32_t ev);
  void backend_failed(Backend* b);
  uint32_t backend_interest(Backend* b) const;
  void backend_flush(Backend* b);
  void backend_read(Backend* b);
  // The client drained its output: read more of the response.
  void backend_resume(Backend* b);
  void close_backend(Backend* b);
};

}  // namespace feedpipe
