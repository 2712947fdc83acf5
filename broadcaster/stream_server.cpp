#include "broadcaster/stream_server_impl.h"

// The event loop and its connections: listening, epoll, accepting, reading request heads,
// writing and closing, heartbeat and head timers. What runs on it lives in
// stream_server_streams.cpp and stream_server_forwarding.cpp.

namespace feedpipe {

using namespace stream_front;

void StreamServer::Impl::watch(Handle* h, uint32_t events) {
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

void StreamServer::Impl::schedule(Client* c, Clock::time_point when) {
  c->timer_token = next_token++;
  timers.push({when, c->fd, c->timer_token});
}

int StreamServer::Impl::listen(const std::string& host, int port) {
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

void StreamServer::Impl::resolve_backend() {
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

void StreamServer::Impl::start() {
  if (listener.fd < 0) throw std::runtime_error("StreamServer::start() before listen()");
  epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
  wake_handle.fd = wakeup->fd;
  watch(&listener, EPOLLIN);
  watch(&wake_handle, EPOLLIN);
  thread = named_thread("fp-streams", [this] { run(); });
}

void StreamServer::Impl::stop() {
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

void StreamServer::Impl::run() {
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

void StreamServer::Impl::shutdown_all() {
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

void StreamServer::Impl::bury() {
  for (Handle* h : graveyard) delete h;
  graveyard.clear();
  for (const std::string& id : emptied_groups) {
    auto it = groups.find(id);
    if (it != groups.end() && it->second->unwatched()) groups.erase(it);
  }
  emptied_groups.clear();
}

void StreamServer::Impl::dispatch(Handle* h, uint32_t ev) {
  if (h->closed) return;
  switch (h->kind) {
    case Kind::listener: accept_all(); break;
    case Kind::wakeup: fan_out_dirty(); break;
    case Kind::client: on_client(static_cast<Client*>(h), ev); break;
    case Kind::backend: on_backend(static_cast<Backend*>(h), ev); break;
  }
}

void StreamServer::Impl::accept_all() {
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

void StreamServer::Impl::on_client(Client* c, uint32_t ev) {
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

void StreamServer::Impl::discard_input(Client* c) {
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

void StreamServer::Impl::read_head(Client* c) {
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
void StreamServer::Impl::respond(Client* c, std::string response) {
  c->state = State::closing;
  c->close_after_flush = true;
  c->linger = true;
  std::string().swap(c->in);
  c->out += response;
  flush(c);
}

// Writes c->out, then (streams) the group's log after c->sent; closes the client when that ends
// a closing connection or a completed stream.
void StreamServer::Impl::flush(Client* c) {
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

uint32_t StreamServer::Impl::client_interest(Client* c) const {
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

void StreamServer::Impl::close_client(Client* c) {
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

void StreamServer::Impl::run_timers() {
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

StreamServer::StreamServer(EventHub& hub, StreamServerSettings settings)
    : impl_(std::make_unique<Impl>(hub, std::move(settings))) {}

StreamServer::~StreamServer() { stop(); }

int StreamServer::listen(const std::string& host, int port) { return impl_->listen(host, port); }

void StreamServer::start() { impl_->start(); }

void StreamServer::stop() { impl_->stop(); }

size_t StreamServer::open_streams() const { return impl_->stream_count.load(); }

uint64_t StreamServer::fan_out_visits() const { return impl_->fan_out_visits.load(); }

}  // namespace feedpipe
