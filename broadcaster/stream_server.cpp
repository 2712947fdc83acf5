#include "broadcaster/stream_server.h"

#include "common/metrics.h"

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

#include "broadcaster/delivery_metrics.h"
#include "broadcaster/growth_queue.h"
#include "broadcaster/http_request_parser.h"
#include "broadcaster/multi_batch_stream.h"
#include "broadcaster/sse.h"
#include "common/clock.h"
#include "common/open_files.h"
#include "common/rate_limiter.h"
#include "common/stream_token.h"
#include "common/thread_name.h"

namespace feedpipe {
namespace {

metrics::Gauge& streams_open_gauge() {
  static auto& g = metrics::gauge("feedpipe_sse_streams_open", "SSE streams open on this process.");
  return g;
}


using Clock = std::chrono::steady_clock;
constexpr size_t kRelayBufferBytes = 256 * 1024;  // proxy buffering in each direction
constexpr size_t kReadChunk = 16 * 1024;
constexpr auto kFanOutTurn = std::chrono::milliseconds(50);  // fan-out before the loop's other work gets a turn
// A stream of many batches re-labels its frames, so they are copied: at most this much (plus one
// frame) waits in its buffer for the kernel; the rest stays in the batches' shared logs.
constexpr size_t kMultiFillBytes = 8 * 1024;

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

std::optional<int64_t> parse_seq(const std::string& text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

const char* reason_phrase(int status) {
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

std::string error_response(int status, const std::string& code, const std::string& message,
                           const std::string& extra_headers = "") {
  std::string body = nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump();
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n" + extra_headers + "Connection: close\r\n\r\n";
  out += body;
  return out;
}

// `extra_headers`: complete header lines (the CORS headers), or empty.
std::string stream_head(const std::string& extra_headers) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
         "X-Accel-Buffering: no\r\n" + extra_headers + "Connection: close\r\n\r\n";
}

// /v1/batches/{id}/events → id, else empty.
std::string events_batch_id(const std::string& path) {
  static const std::string prefix = "/v1/batches/", suffix = "/events";
  if (path.size() <= prefix.size() + suffix.size() || path.compare(0, prefix.size(), prefix) != 0 ||
      path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
    return "";
  std::string id = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
  return id.find('/') == std::string::npos ? id : "";
}

bool wants_json(const http1::RequestHead& head) {
  const std::string* accept = head.header("Accept");
  return accept && accept->find("application/json") != std::string::npos &&
         accept->find("text/event-stream") == std::string::npos;
}

std::string peer_ip(int fd) {
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

}  // namespace

struct StreamServer::Impl {
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

  // ---- epoll bookkeeping ----
  void watch(Handle* h, uint32_t events) {
    if (h->interest == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = h;
    int op = h->interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (events == 0) {
      ::epoll_ctl(epfd, EPOLL_CTL_DEL, h->fd, nullptr);
    } else if (::epoll_ctl(epfd, op, h->fd, &ev) != 0) {
      spdlog::warn("epoll_ctl: {}", std::strerror(errno));
    }
    h->interest = events;
  }

  void schedule(Client* c, Clock::time_point when) {
    c->timer_token = next_token++;
    timers.push({when, c->fd, c->timer_token});
  }

  // ---- lifecycle ----
  int listen(const std::string& host, int port) {
    try {
      raise_open_file_limit();
    } catch (const std::exception& e) {
      spdlog::warn("{}", e.what());
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port);
    int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
    if (rc != 0) throw std::runtime_error("cannot resolve " + host + ": " + ::gai_strerror(rc));
    std::string error = "no address";
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
      int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) continue;
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (settings.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        error = std::string("SO_REUSEPORT: ") + std::strerror(errno);
        ::close(fd);
        continue;
      }
      if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, settings.backlog) == 0) {
        listener.fd = fd;
        break;
      }
      error = std::strerror(errno);
      ::close(fd);
    }
    ::freeaddrinfo(res);
    if (listener.fd < 0)
      throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " + error);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&ss), &len);
    int bound = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    if (settings.backend_port > 0) resolve_backend();
    return bound;
  }

  void resolve_backend() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string service = std::to_string(settings.backend_port);
    int rc = ::getaddrinfo(settings.backend_host.c_str(), service.c_str(), &hints, &res);
    if (rc != 0 || !res) throw std::runtime_error("cannot resolve backend " + settings.backend_host);
    std::memcpy(&backend_addr, res->ai_addr, res->ai_addrlen);
    backend_addr_len = res->ai_addrlen;
    ::freeaddrinfo(res);
  }

  void start() {
    if (listener.fd < 0) throw std::runtime_error("StreamServer::start() before listen()");
    epfd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    wake_handle.fd = wakeup->fd;
    watch(&listener, EPOLLIN);
    watch(&wake_handle, EPOLLIN);
    thread = named_thread("fp-streams", [this] { run(); });
  }

  void stop() {
    {
      std::lock_guard lock(stop_mu);
      if (stopped) return;
      stopped = true;
    }
    stopping = true;
    wakeup->poke();
    if (thread.joinable()) thread.join();
    {
      std::lock_guard lock(wakeup->mu);
      wakeup->closed = true;
    }
    if (listener.fd >= 0) ::close(listener.fd);
    listener.fd = -1;
    if (epfd >= 0) ::close(epfd);
    epfd = -1;
  }

  void run() {
    std::vector<epoll_event> events(1024);
    while (!stopping.load()) {
      now = Clock::now();
      int timeout_ms = 1000;
      if (!timers.empty()) {
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(timers.top().when - now).count() + 1;
        timeout_ms = static_cast<int>(std::clamp<int64_t>(wait, 0, 1000));
      }
      if (listen_paused) timeout_ms = std::min(timeout_ms, 100);
      int n = ::epoll_wait(epfd, events.data(), static_cast<int>(events.size()), timeout_ms);
      if (n < 0 && errno != EINTR) {
        spdlog::error("epoll_wait: {}", std::strerror(errno));
        break;
      }
      now = Clock::now();
      for (int i = 0; i < n; ++i) dispatch(static_cast<Handle*>(events[i].data.ptr), events[i].events);
      run_timers();
      if (delivered > 0) {
        delivery::events_delivered().add(delivered);
        delivered = 0;
      }
      if (listen_paused && now >= listen_paused_until) {
        listen_paused = false;
        watch(&listener, EPOLLIN);
      }
      bury();
    }
    shutdown_all();
  }

  void shutdown_all() {
    const std::string bye = sse::format_retry(settings.retry_ms);
    for (Client* c : by_fd) {
      if (!c || c->closed) continue;
      if (c->state == State::stream && !(c->interest & EPOLLOUT)) {
        c->out += bye;
        c->close_after_flush = true;
        flush(c);
      }
      close_client(c);
    }
    groups.clear();
    bury();
    for (auto& [id, loader] : loaders) loader.join();  // each ends within the source's timeouts
    loaders.clear();
  }

  void bury() {
    for (Handle* h : graveyard) delete h;
    graveyard.clear();
    for (const std::string& id : emptied_groups) {
      auto it = groups.find(id);
      if (it != groups.end() && it->second->unwatched()) groups.erase(it);
    }
    emptied_groups.clear();
  }

  void dispatch(Handle* h, uint32_t ev) {
    if (h->closed) return;
    switch (h->kind) {
      case Kind::listener: accept_all(); break;
      case Kind::wakeup: fan_out_dirty(); break;
      case Kind::client: on_client(static_cast<Client*>(h), ev); break;
      case Kind::backend: on_backend(static_cast<Backend*>(h), ev); break;
    }
  }

  // ---- accepting ----
  void accept_all() {
    for (int i = 0; i < 512; ++i) {
      int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          spdlog::warn("accept: {} (pausing new connections for 100 ms)", std::strerror(errno));
          watch(&listener, 0);
          listen_paused = true;
          listen_paused_until = now + std::chrono::milliseconds(100);
        }
        return;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto* c = new Client;
      c->fd = fd;
      if (by_fd.size() <= static_cast<size_t>(fd)) by_fd.resize(static_cast<size_t>(fd) + 1024, nullptr);
      by_fd[static_cast<size_t>(fd)] = c;
      watch(c, EPOLLIN | EPOLLRDHUP);
      schedule(c, now + settings.head_timeout);
    }
  }

  // ---- clients ----
  void on_client(Client* c, uint32_t ev) {
    if (ev & (EPOLLERR | EPOLLHUP)) return close_client(c);
    if (ev & EPOLLOUT) {
      flush(c);
      if (c->closed) return;
    }
    if (ev & (EPOLLIN | EPOLLRDHUP)) {
      switch (c->state) {
        case State::head: read_head(c); break;
        case State::proxy: read_body(c); break;
        case State::stream:
        case State::waiting:
        case State::closing: discard_input(c); break;
      }
    }
  }

  void discard_input(Client* c) {
    char buf[4096];
    while (true) {
      ssize_t n = ::recv(c->fd, buf, sizeof buf, 0);
      if (n > 0) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      // The client is gone (or half-closed: an SSE client never sends more).
      if (c->state == State::closing && !c->out.empty()) {
        watch(c, EPOLLOUT);
        return;
      }
      return close_client(c);
    }
  }

  void read_head(Client* c) {
    char buf[kReadChunk];
    bool peer_eof = false;
    while (true) {
      ssize_t n = ::recv(c->fd, buf, sizeof buf, 0);
      if (n > 0) {
        c->in.append(buf, static_cast<size_t>(n));
        if (c->in.size() > settings.max_head_bytes) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) return close_client(c);
      peer_eof = true;  // half-closed after its request, perhaps: serve what came
      break;
    }
    http1::RequestHead head;
    switch (http1::parse_request_head(c->in, settings.max_head_bytes, head)) {
      case http1::ParseStatus::incomplete:
        if (peer_eof) close_client(c);
        return;
      case http1::ParseStatus::too_large:
        return respond(c, error_response(431, "headers_too_large", "the request head exceeds the server's limit"));
      case http1::ParseStatus::bad_request:
        return respond(c, error_response(400, "bad_request", "the request could not be read"));
      case http1::ParseStatus::complete: break;
    }
    if (settings.cors.enabled()) {
      if (const std::string* origin = head.header("Origin"))
        if (auto allowed = settings.cors.allowed(*origin))
          c->cors = CorsPolicy::as_lines(CorsPolicy::response_headers(*allowed));
    }
    std::string batch_id = events_batch_id(head.path);
    if (head.method == "GET" && !batch_id.empty() && !wants_json(head)) return open_stream(c, head, batch_id);
    if (head.method == "GET" && head.path == "/v1/events" && !wants_json(head)) return open_multi_stream(c, head);
    forward(c, head);
  }

  // Queues a complete response and closes once it is written.
  void respond(Client* c, std::string response) {
    c->state = State::closing;
    c->close_after_flush = true;
    c->linger = true;
    std::string().swap(c->in);
    c->out += response;
    flush(c);
  }

  // Writes c->out, then (streams) the group's log after c->sent; closes the client when that ends
  // a closing connection or a completed stream.
  void flush(Client* c) {
    bool blocked = false;
    auto write_some = [&](const char* data, size_t size) -> ssize_t {
      while (true) {
        ssize_t n = ::send(c->fd, data, size, MSG_NOSIGNAL);
        if (n > 0) {
          c->last_write = now;
          return n;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          blocked = true;
          return 0;
        }
        return -1;
      }
    };
    while (!c->out.empty() && !blocked) {
      ssize_t n = write_some(c->out.data(), c->out.size());
      if (n < 0) return close_client(c);
      c->out.erase(0, static_cast<size_t>(n));
    }
    if (c->state == State::stream && c->multi) {
      while (!blocked) {  // refill the stream's buffer from its batches' logs while the kernel takes it
        if (c->out.empty()) {
          delivered += c->multi->fill(c->out, kMultiFillBytes);
          if (c->out.empty()) break;
        }
        ssize_t n = write_some(c->out.data(), c->out.size());
        if (n < 0) return close_client(c);
        c->out.erase(0, static_cast<size_t>(n));
      }
    } else if (c->state == State::stream && c->skip_to == 0) {
      const Group& g = *c->group;
      const std::string& log = g.log;
      const size_t started = c->sent;
      while (!blocked && c->sent < log.size()) {
        ssize_t n = write_some(log.data() + c->sent, log.size() - c->sent);
        if (n < 0) return close_client(c);
        c->sent += static_cast<size_t>(n);
      }
      if (c->sent != started) delivered += static_cast<uint64_t>(g.frames_within(c->sent) - g.frames_within(started));
    }
    if (blocked) {
      watch(c, client_interest(c) | EPOLLOUT);
      return;
    }
    std::string().swap(c->out);  // an idle stream keeps no buffer
    if (c->close_after_flush && c->linger) {
      // A refused request may still be sending its body: closing now would reset the
      // connection and lose the answer. Half-close, drop what comes, close at EOF or in 2 s.
      c->linger = false;
      ::shutdown(c->fd, SHUT_WR);
      watch(c, EPOLLIN | EPOLLRDHUP);
      schedule(c, now + std::chrono::seconds(2));
      return;
    }
    if (c->close_after_flush) return close_client(c);
    if (c->state == State::stream && (c->multi ? c->multi->finished() : c->group->completed)) return close_client(c);
    watch(c, client_interest(c));
    if (c->backend && !c->backend->closed) backend_resume(c->backend);
  }

  uint32_t client_interest(Client* c) const {
    switch (c->state) {
      case State::head: return EPOLLIN | EPOLLRDHUP;
      case State::stream: return EPOLLIN | EPOLLRDHUP;
      case State::waiting: return EPOLLIN | EPOLLRDHUP;
      case State::proxy:
        return (c->body_left > 0 && c->backend && c->backend->out.size() < kRelayBufferBytes) ? static_cast<uint32_t>(EPOLLIN) : 0u;
      case State::closing: return EPOLLIN | EPOLLRDHUP;
    }
    return 0;
  }

  void close_client(Client* c) {
    if (c->closed) return;
    c->closed = true;
    if (c->state == State::stream && c->group) leave_group(c);
    if (c->state == State::waiting && c->group) leave_waiting(c);
    if (c->state == State::stream && c->multi) leave_multi(c);
    if (c->state == State::waiting && c->multi) leave_multi_waiting(c);
    if (c->backend) close_backend(c->backend);
    c->backend = nullptr;
    // Unread input would make close() reset the connection and lose what is still unsent.
    char buf[4096];
    while (::recv(c->fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    ::close(c->fd);
    by_fd[static_cast<size_t>(c->fd)] = nullptr;
    graveyard.push_back(c);
  }

  // ---- streams ----
  // The access checks of a stream request, in order: open rate, signed token, total streams,
  // streams of this client address. False when `c` was answered with the refusal.
  // `tokens`: the request's token= values, one per batch (in order) when tokens are on.
  bool admit_stream(Client* c, const std::vector<std::string>& batch_ids, const std::vector<std::string>& tokens,
                    const std::string& address) {
    if (stream_limiter.enabled()) {
      auto decision = stream_limiter.acquire(address);
      if (!decision.allowed) {
        respond(c, error_response(429, "rate_limited",
                                  "more than " + std::to_string(settings.stream_rate_per_minute) +
                                      " stream opens per minute from this address; retry in " +
                                      std::to_string(decision.retry_after_s) + " s",
                                  "Retry-After: " + std::to_string(decision.retry_after_s) + "\r\n" + c->cors));
        return false;
      }
    }
    if (!settings.stream_token_secret.empty()) {
      const bool many = batch_ids.size() > 1;
      if (tokens.size() != batch_ids.size()) {
        respond(c, error_response(403, "stream_token_required",
                                  many ? "this stream needs one ?token= per batch=, in the same order (the stream_token "
                                         "answered with each batch): " + std::to_string(batch_ids.size()) +
                                             " batches, " + std::to_string(tokens.size()) + " tokens"
                                       : "this stream needs ?token= (the stream_token answered with the batch)",
                                  c->cors));
        return false;
      }
      for (size_t i = 0; i < batch_ids.size(); ++i) {
        if (stream_token_valid(settings.stream_token_secret, batch_ids[i], tokens[i])) continue;
        respond(c, error_response(403, "invalid_stream_token",
                                  many ? "the stream token of batch " + batch_ids[i] + " (token " + std::to_string(i + 1) +
                                             ") does not match it"
                                       : "the stream token does not match this batch",
                                  c->cors));
        return false;
      }
    }
    if (stream_count.load() >= settings.max_streams) {
      respond(c, error_response(503, "too_many_streams", "this server holds its maximum of open streams; retry later",
                                "Retry-After: 5\r\n" + c->cors));
      return false;
    }
    if (settings.max_streams_per_ip > 0) {
      auto it = streams_by_address.find(address);
      if (it != streams_by_address.end() && it->second >= settings.max_streams_per_ip) {
        respond(c, error_response(429, "too_many_streams_from_address",
                                  "this address holds its maximum of " + std::to_string(settings.max_streams_per_ip) +
                                      " open streams; close some or retry later",
                                  "Retry-After: 5\r\n" + c->cors));
        return false;
      }
    }
    return true;
  }

  void open_stream(Client* c, const http1::RequestHead& head, const std::string& batch_id) {
    const std::string* forwarded = head.header("X-Forwarded-For");
    std::string address = settings.trusted_proxies.client_address(peer_ip(c->fd), forwarded ? *forwarded : "");
    std::vector<std::string> tokens;
    if (auto token = http1::query_param(head.query, "token")) tokens.push_back(std::move(*token));
    if (!admit_stream(c, {batch_id}, tokens, address)) return;
    int64_t cursor = 0;
    std::string text;
    if (const std::string* h = head.header("Last-Event-ID")) text = *h;
    if (text.empty()) text = http1::query_param(head.query, "last_event_id").value_or("");
    if (!text.empty()) {
      auto seq = parse_seq(text);
      if (!seq)
        return respond(c, error_response(400, "invalid_last_event_id",
                                         "Last-Event-ID must be a non-negative integer (an event id)", c->cors));
      cursor = *seq;
    }
    Group* g = nullptr;
    auto it = groups.find(batch_id);
    if (it != groups.end()) {
      g = it->second.get();
    } else if (settings.async_first_read) {
      auto group = std::make_unique<Group>();
      group->batch_id = batch_id;
      g = group.get();
      groups.emplace(batch_id, std::move(group));
      start_load(*g);
    } else {
      std::shared_ptr<Subscription> sub;
      try {
        sub = hub.subscribe(batch_id, 0);
      } catch (const SourceUnavailable& e) {  // the API is down: the client retries (with Last-Event-ID)
        spdlog::debug("GET /v1/batches/{}/events: {}", batch_id, e.what());
        return respond(c, error_response(503, "events_unavailable",
                                         "the batch's events cannot be read right now; retry shortly",
                                         "Retry-After: 2\r\n" + c->cors));
      } catch (const std::exception& e) {
        spdlog::error("GET /v1/batches/{}/events: {}", batch_id, e.what());
        return respond(c, error_response(500, "internal", "cannot read the batch's events; try again", c->cors));
      }
      if (!sub) return respond(c, error_response(404, "batch_not_found", "no batch with id " + batch_id, c->cors));
      auto group = std::make_unique<Group>();
      group->batch_id = batch_id;
      group->sub = std::move(sub);
      g = group.get();
      groups.emplace(batch_id, std::move(group));
      pull(*g);
    }
    if (g->loading) {  // wait for the read in flight, counted against the stream caps meanwhile
      std::string().swap(c->in);
      c->state = State::waiting;
      c->group = g;
      c->wait_cursor = cursor;
      c->address = std::move(address);
      count_stream(c->address);
      g->waiting.push_back(c);
      watch(c, client_interest(c));
      return;
    }
    join_stream(c, g, cursor, std::move(address));
  }

  // A stream of group `g` from the event after `cursor`: the head, `retry:`, the backlog.
  void join_stream(Client* c, Group* g, int64_t cursor, std::string address) {
    std::string().swap(c->in);
    c->state = State::stream;
    c->group = g;
    c->group_index = g->streams.size();
    g->streams.push_back(c);
    streams_open_gauge().add(1);
    c->address = std::move(address);
    count_stream(c->address);
    if (cursor <= g->last) {
      c->sent = g->offset_after(cursor);
    } else {
      c->sent = g->log.size();
      c->skip_to = cursor;
    }
    c->floor = g->log.size();
    c->out = stream_head(c->cors);
    std::string().swap(c->cors);
    c->out += sse::format_retry(settings.retry_ms);
    c->last_write = now;
    schedule(c, now + settings.heartbeat);
    flush(c);
  }

  void count_stream(const std::string& address) {
    ++stream_count;
    ++streams_by_address[address];
  }
  void uncount_stream(const std::string& address) {
    --stream_count;
    if (auto it = streams_by_address.find(address); it != streams_by_address.end() && --it->second == 0)
      streams_by_address.erase(it);
  }

  void leave_waiting(Client* c) {
    Group* g = c->group;
    c->group = nullptr;
    uncount_stream(c->address);
    g->waiting.erase(std::find(g->waiting.begin(), g->waiting.end(), c));
    if (g->unwatched()) emptied_groups.push_back(g->batch_id);
  }

  // Reads the batch's history on a thread of its own (async_first_read): a slow event source
  // (an API) must not stall the loop. finish_loads() takes the result.
  void start_load(Group& g) {
    g.loading = true;
    g.load_id = next_load_id++;
    loaders.emplace(g.load_id, named_thread("fp-stream-load", [this, batch_id = g.batch_id, id = g.load_id] {
      Loaded r{batch_id, id, nullptr, 200};
      try {
        r.sub = hub.subscribe(batch_id, 0);
        if (!r.sub) r.status = 404;
      } catch (const SourceUnavailable& e) {
        spdlog::debug("GET /v1/batches/{}/events: {}", batch_id, e.what());
        r.status = 503;
      } catch (const std::exception& e) {
        spdlog::error("GET /v1/batches/{}/events: {}", batch_id, e.what());
        r.status = 500;
      }
      {
        std::lock_guard lock(loads_mu);
        loads_done.push_back(std::move(r));
      }
      wakeup->poke();
    }));
  }

  // The history reads that ended: their waiting streams start, or get the refusal.
  void finish_loads() {
    std::vector<Loaded> done;
    {
      std::lock_guard lock(loads_mu);
      done.swap(loads_done);
    }
    for (Loaded& r : done) {
      if (auto t = loaders.find(r.load_id); t != loaders.end()) {
        t->second.join();
        loaders.erase(t);
      }
      auto it = groups.find(r.batch_id);
      if (it == groups.end() || !it->second->loading || it->second->load_id != r.load_id) continue;  // all left
      Group* g = it->second.get();
      std::vector<Client*> waiting, still_waiting;
      waiting.swap(g->waiting);
      if (r.status == 200) {
        g->sub = std::move(r.sub);
        g->loading = false;
        pull(*g);
      }
      for (Client* c : waiting) {
        if (c->multi) {  // a stream of many batches starts once all their reads are done
          if (r.status == 200 && --c->multi->loads_pending > 0) {
            still_waiting.push_back(c);  // keeps this group alive while it waits for the others
            continue;
          }
          leave_multi_waiting(c);
          if (r.status == 200)
            join_multi(c);
          else
            respond(c, load_refusal(r.status, r.batch_id, c->cors));
          continue;
        }
        c->group = nullptr;
        uncount_stream(c->address);
        if (r.status == 200)
          join_stream(c, g, c->wait_cursor, c->address);
        else
          respond(c, load_refusal(r.status, r.batch_id, c->cors));
      }
      g->waiting.insert(g->waiting.end(), still_waiting.begin(), still_waiting.end());
      if (g->unwatched()) groups.erase(it);  // refused, or all gone already
    }
  }

  // The answer to a stream whose batch's history read failed (finish_loads()).
  static std::string load_refusal(int status, const std::string& batch_id, const std::string& cors) {
    if (status == 404) return error_response(404, "batch_not_found", "no batch with id " + batch_id, cors);
    if (status == 503)
      return error_response(503, "events_unavailable", "the batch's events cannot be read right now; retry shortly",
                            "Retry-After: 2\r\n" + cors);
    return error_response(500, "internal", "cannot read the batch's events; try again", cors);
  }

  // ---- streams of many batches (GET /v1/events?batch=…&batch=…) ----
  // The same checks and answers as a batch's stream, for every batch named, plus the batch list's
  // own refusals (broadcaster/multi_batch_stream.h). Each batch joins its group (made and read as
  // for a batch's stream); the stream starts once every group's history is loaded.
  void open_multi_stream(Client* c, const http1::RequestHead& head) {
    BatchList list = parse_batch_list(head.query, settings.max_stream_batches, "--max-stream-batches");
    if (list.refusal)
      return respond(c, error_response(list.refusal->status, list.refusal->code, list.refusal->message, c->cors));
    const std::string* forwarded = head.header("X-Forwarded-For");
    std::string address = settings.trusted_proxies.client_address(peer_ip(c->fd), forwarded ? *forwarded : "");
    if (!admit_stream(c, list.batch_ids, http1::query_params(head.query, "token"), address)) return;
    std::string text;
    if (const std::string* h = head.header("Last-Event-ID")) text = *h;
    if (text.empty()) text = http1::query_param(head.query, "last_event_id").value_or("");
    auto cursors = parse_stream_id(text, list.batch_ids.size());
    if (!cursors)
      return respond(c, error_response(400, "invalid_last_event_id",
                                       "Last-Event-ID must be an event id of this stream (as sent in its id: lines)",
                                       c->cors));
    auto stream = std::make_unique<MultiBatchStream>(std::move(*cursors));
    for (size_t i = 0; i < list.batch_ids.size(); ++i) {
      const std::string& batch_id = list.batch_ids[i];
      Group* g = nullptr;
      if (auto it = groups.find(batch_id); it != groups.end()) {
        g = it->second.get();
      } else if (settings.async_first_read) {
        auto group = std::make_unique<Group>();
        group->batch_id = batch_id;
        g = group.get();
        groups.emplace(batch_id, std::move(group));
        emptied_groups.push_back(batch_id);  // dropped at the turn's end unless a stream holds it
        start_load(*g);
      } else {
        std::shared_ptr<Subscription> sub;
        int status = 200;
        try {
          sub = hub.subscribe(batch_id, 0);
          if (!sub) status = 404;
        } catch (const SourceUnavailable& e) {
          spdlog::debug("GET /v1/events: batch {}: {}", batch_id, e.what());
          status = 503;
        } catch (const std::exception& e) {
          spdlog::error("GET /v1/events: batch {}: {}", batch_id, e.what());
          status = 500;
        }
        // The groups made for this request so far go at the turn's end (nobody else holds them).
        if (status != 200) return respond(c, load_refusal(status, batch_id, c->cors));
        auto group = std::make_unique<Group>();
        group->batch_id = batch_id;
        group->sub = std::move(sub);
        g = group.get();
        groups.emplace(batch_id, std::move(group));
        emptied_groups.push_back(batch_id);
        pull(*g);
      }
      if (g->loading) ++stream->loads_pending;
      stream->members()[i].log = g;
    }
    c->multi = std::move(stream);
    c->address = std::move(address);
    if (c->multi->loads_pending == 0) return join_multi(c);
    // Wait for the reads in flight, counted against the stream caps meanwhile; every group of the
    // stream lists it as waiting, so that none goes while it waits.
    std::string().swap(c->in);
    c->state = State::waiting;
    count_stream(c->address);
    for (auto& m : c->multi->members()) static_cast<Group*>(m.log)->waiting.push_back(c);
    watch(c, client_interest(c));
  }

  // A stream of many batches whose groups are all loaded: the head, `retry:`, the backlog.
  void join_multi(Client* c) {
    std::string().swap(c->in);
    c->state = State::stream;
    auto& members = c->multi->members();
    for (size_t i = 0; i < members.size(); ++i) {
      Group* g = static_cast<Group*>(members[i].log);
      members[i].slot = g->multi.size();
      g->multi.emplace_back(c, i);
    }
    c->multi->start();
    streams_open_gauge().add(1);
    count_stream(c->address);
    c->out = stream_head(c->cors);
    std::string().swap(c->cors);
    c->out += sse::format_retry(settings.retry_ms);
    c->last_write = now;
    schedule(c, now + settings.heartbeat);
    flush(c);
  }

  void leave_multi(Client* c) {
    auto& members = c->multi->members();
    for (auto& m : members) {
      Group* g = static_cast<Group*>(m.log);
      const auto moved = g->multi.back();
      g->multi[m.slot] = moved;
      moved.first->multi->members()[moved.second].slot = m.slot;
      g->multi.pop_back();
      if (g->unwatched()) emptied_groups.push_back(g->batch_id);
    }
    uncount_stream(c->address);
    streams_open_gauge().add(-1);
  }

  void leave_multi_waiting(Client* c) {
    for (auto& m : c->multi->members()) {
      Group* g = static_cast<Group*>(m.log);
      if (auto it = std::find(g->waiting.begin(), g->waiting.end(), c); it != g->waiting.end()) g->waiting.erase(it);
      if (g->unwatched()) emptied_groups.push_back(g->batch_id);
    }
    uncount_stream(c->address);
  }

  // A stream of many batches, one of whose batches grew: as push() for a batch's stream.
  void push_multi(Client* c) {
    if (!(c->interest & EPOLLOUT)) {
      flush(c);
      if (c->closed) return;
    }
    if (c->multi->lag() + c->out.size() > settings.stream_buffer_bytes) {
      spdlog::debug("stream of {} batches dropped: the client is not reading", c->multi->members().size());
      close_client(c);
    }
  }

  void leave_group(Client* c) {
    Group* g = c->group;
    c->group = nullptr;
    uncount_stream(c->address);
    streams_open_gauge().add(-1);
    Client* moved = g->streams.back();
    g->streams[c->group_index] = moved;
    moved->group_index = c->group_index;
    g->streams.pop_back();
    if (g->unwatched()) emptied_groups.push_back(g->batch_id);
  }

  // Takes the batch's new events from the hub into the group's log.
  bool pull(Group& g) {
    if (!g.sub) return false;  // its history is still being read
    std::vector<EventMessage> events = g.sub->next(std::chrono::milliseconds(0));
    g.fresh_ts.clear();
    for (const EventMessage& e : events) {
      if (!g.append(e)) continue;  // the hub hands out seq order; never expected otherwise
      if (auto ts = delivery::event_ts_ms(e.data)) g.fresh_ts.push_back(*ts);
    }
    if (g.sub->finished()) g.completed = true;
    return !events.empty();
  }

  // The group's log grew: send the stream its new frames, or drop it when it lags too far.
  void push(Client* c) {
    Group& g = *c->group;
    if (c->skip_to > 0) {
      if (g.last < c->skip_to && !g.completed) {
        c->sent = g.log.size();
        return;
      }
      c->sent = std::max(c->sent, g.offset_after(c->skip_to));
      c->skip_to = 0;
    }
    if (!(c->interest & EPOLLOUT)) {  // not blocked: hand the kernel what it takes
      flush(c);
      if (c->closed) return;
    }
    // What the kernel did not take is this stream's buffer (the log is shared, so it costs no
    // copy; the bound is on how far behind the live events the client may fall).
    size_t lag = g.log.size() - std::max(c->sent, c->floor) + c->out.size();
    if (lag > settings.stream_buffer_bytes) {
      spdlog::debug("stream of batch {} dropped: the client is not reading", g.batch_id);
      close_client(c);
    }
  }

  // Serves the batches with new events one at a time, longest-waiting first, including those that
  // grow meanwhile; after kFanOutTurn it lets the loop's other work in and comes back.
  void fan_out_dirty() {
    wakeup->clear_signal();
    finish_loads();
    const Clock::time_point turn_ends = Clock::now() + kFanOutTurn;
    while (true) {
      if (Clock::now() >= turn_ends) {
        wakeup->poke();  // the eventfd brings the loop back for what is left
        return;
      }
      std::optional<std::string> batch_id = wakeup->next();
      if (!batch_id) return;
      auto it = groups.find(*batch_id);
      if (it == groups.end()) continue;
      Group& g = *it->second;
      if (!pull(g)) continue;
      const uint64_t delivered_before = delivered;
      // Backwards: closing a stream moves the last one into its slot (groups go in bury()).
      fan_out_visits.fetch_add(g.streams.size() + g.multi.size(), std::memory_order_relaxed);
      for (size_t i = g.streams.size(); i-- > 0;)
        if (i < g.streams.size()) push(g.streams[i]);
      for (size_t i = g.multi.size(); i-- > 0;)  // streams of many batches watching this one
        if (i < g.multi.size()) push_multi(g.multi[i].first);
      if (delivered != delivered_before) {  // live events reached a socket: once per event
        const int64_t written_at = now_ms();
        for (int64_t ts : g.fresh_ts) delivery::observe_latency(ts, written_at);
      }
    }
  }

  void run_timers() {
    while (!timers.empty() && timers.top().when <= now) {
      Timer t = timers.top();
      timers.pop();
      Client* c = static_cast<size_t>(t.fd) < by_fd.size() ? by_fd[static_cast<size_t>(t.fd)] : nullptr;
      if (!c || c->timer_token != t.token) continue;
      if (c->state == State::head || c->state == State::closing) {
        close_client(c);
      } else if (c->state == State::stream) {
        if (now - c->last_write >= settings.heartbeat) {
          c->last_write = now;
          schedule(c, now + settings.heartbeat);
          if (!(c->interest & EPOLLOUT)) {  // a blocked stream needs no ping
            c->out += sse::format_comment("ping");
            flush(c);
          }
        } else {
          schedule(c, c->last_write + settings.heartbeat);
        }
      }
    }
  }

  // ---- forwarding ----
  void forward(Client* c, const http1::RequestHead& head) {
    if (settings.backend_port <= 0)
      return respond(c, error_response(404, "not_found", "no such resource: " + head.path, c->cors));
    uint64_t length = 0;
    if (const std::string* te = head.header("Transfer-Encoding"); te && !http1::iequals(*te, "identity"))
      return respond(c, error_response(411, "length_required", "send the request body with a Content-Length", c->cors));
    if (const std::string* cl = head.header("Content-Length")) {
      auto value = parse_seq(*cl);
      if (!value) return respond(c, error_response(400, "bad_request", "invalid Content-Length", c->cors));
      length = static_cast<uint64_t>(*value);
      if (length > settings.max_body_bytes)
        return respond(c, error_response(413, "body_too_large", "the request body exceeds the server's limit", c->cors));
    }
    std::string request = head.method + " " + head.target + " HTTP/1.1\r\n";
    std::string forwarded_for;
    for (const auto& [name, value] : head.headers) {
      if (http1::iequals(name, "Connection") || http1::iequals(name, "Keep-Alive") ||
          http1::iequals(name, "Proxy-Connection") || http1::iequals(name, "Upgrade") ||
          http1::iequals(name, "TE") || http1::iequals(name, "Transfer-Encoding"))
        continue;
      if (http1::iequals(name, "X-Forwarded-For")) {
        forwarded_for += value + ", ";
        continue;
      }
      request += name + ": " + value + "\r\n";
    }
    request += "X-Forwarded-For: " + forwarded_for + peer_ip(c->fd) + "\r\nConnection: close\r\n\r\n";
    std::string_view body(c->in);
    body.remove_prefix(head.head_bytes);
    if (body.size() > length) body = body.substr(0, length);  // pipelined requests are not served
    request.append(body);
    c->body_left = length - body.size();
    std::string().swap(c->in);

    int fd = ::socket(backend_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return respond(c, error_response(502, "bad_gateway", "cannot reach the API server", c->cors));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&backend_addr), backend_addr_len) != 0 && errno != EINPROGRESS) {
      ::close(fd);
      return respond(c, error_response(502, "bad_gateway", "cannot reach the API server", c->cors));
    }
    auto* b = new Backend;
    b->fd = fd;
    b->client = c;
    b->out = std::move(request);
    c->backend = b;
    c->state = State::proxy;
    c->timer_token = 0;  // no head timeout any more
    watch(c, client_interest(c));
    watch(b, EPOLLOUT);
  }

  void read_body(Client* c) {
    Backend* b = c->backend;
    if (!b || c->body_left == 0) return watch(c, client_interest(c));
    char buf[kReadChunk];
    while (c->body_left > 0 && b->out.size() < kRelayBufferBytes) {
      size_t want = std::min<uint64_t>(c->body_left, sizeof buf);
      ssize_t n = ::recv(c->fd, buf, want, 0);
      if (n > 0) {
        b->out.append(buf, static_cast<size_t>(n));
        c->body_left -= static_cast<uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return close_client(c);  // gone before its body arrived
    }
    watch(c, client_interest(c));
    if (b->connected) backend_flush(b);
  }

  void on_backend(Backend* b, uint32_t ev) {
    Client* c = b->client;
    if (!b->connected && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return backend_failed(b);
      b->connected = true;
    }
    if (ev & EPOLLOUT) {
      backend_flush(b);
      if (b->closed) return;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) backend_read(b);
    (void)c;
  }

  void backend_failed(Backend* b) {
    Client* c = b->client;
    bool relayed = b->relayed;
    close_backend(b);
    c->backend = nullptr;
    if (relayed) return close_client(c);
    c->body_left = 0;
    respond(c, error_response(502, "bad_gateway", "the API server did not answer", c->cors));
  }

  uint32_t backend_interest(Backend* b) const {
    uint32_t ev = 0;
    if (!b->out.empty()) ev |= EPOLLOUT;
    if (b->client->out.size() < kRelayBufferBytes) ev |= EPOLLIN;
    return ev;
  }

  void backend_flush(Backend* b) {
    while (!b->out.empty()) {
      ssize_t n = ::send(b->fd, b->out.data(), b->out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        b->out.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return backend_failed(b);
    }
    if (b->out.empty()) std::string().swap(b->out);
    watch(b, backend_interest(b));
    Client* c = b->client;
    if (c->state == State::proxy) watch(c, client_interest(c) | (c->out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT)));
  }

  void backend_read(Backend* b) {
    Client* c = b->client;
    char buf[kReadChunk];
    while (c->out.size() < kRelayBufferBytes) {
      ssize_t n = ::recv(b->fd, buf, sizeof buf, 0);
      if (n > 0) {
        c->out.append(buf, static_cast<size_t>(n));
        b->relayed = true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) return backend_failed(b);
      // The backend closed: the response is complete.
      if (!b->relayed) return backend_failed(b);
      close_backend(b);
      c->backend = nullptr;
      c->state = State::closing;
      c->close_after_flush = true;
      return flush(c);
    }
    watch(b, backend_interest(b));
    flush(c);
  }

  // The client drained its output: read more of the response.
  void backend_resume(Backend* b) { watch(b, backend_interest(b)); }

  void close_backend(Backend* b) {
    if (b->closed) return;
    b->closed = true;
    ::close(b->fd);
    graveyard.push_back(b);
  }
};

StreamServer::StreamServer(EventHub& hub, StreamServerSettings settings)
    : impl_(std::make_unique<Impl>(hub, std::move(settings))) {}

StreamServer::~StreamServer() { stop(); }

int StreamServer::listen(const std::string& host, int port) { return impl_->listen(host, port); }

void StreamServer::start() { impl_->start(); }

void StreamServer::stop() { impl_->stop(); }

size_t StreamServer::open_streams() const { return impl_->stream_count.load(); }

uint64_t StreamServer::fan_out_visits() const { return impl_->fan_out_visits.load(); }

}  // namespace feedpipe
