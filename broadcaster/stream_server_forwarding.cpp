#include "broadcaster/stream_server_impl.h"

// Every request that is not a stream, relayed to the API server behind the front (cpp-httplib on
// a loopback port): the head with X-Forwarded-For and Connection: close, the body bounded by
// Content-Length, the response bytes back until the backend closes.

namespace feedpipe {

using namespace stream_front;

void StreamServer::Impl::forward(Client* c, const http1::RequestHead& head) {
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

void StreamServer::Impl::read_body(Client* c) {
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

void StreamServer::Impl::on_backend(Backend* b, uint32_t ev) {
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

void StreamServer::Impl::backend_failed(Backend* b) {
  Client* c = b->client;
  bool relayed = b->relayed;
  close_backend(b);
  c->backend = nullptr;
  if (relayed) return close_client(c);
  c->body_left = 0;
  respond(c, error_response(502, "bad_gateway", "the API server did not answer", c->cors));
}

uint32_t StreamServer::Impl::backend_interest(Backend* b) const {
  uint32_t ev = 0;
  if (!b->out.empty()) ev |= EPOLLOUT;
  if (b->client->out.size() < kRelayBufferBytes) ev |= EPOLLIN;
  return ev;
}

void StreamServer::Impl::backend_flush(Backend* b) {
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

void StreamServer::Impl::backend_read(Backend* b) {
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
void StreamServer::Impl::backend_resume(Backend* b) { watch(b, backend_interest(b)); }

void StreamServer::Impl::close_backend(Backend* b) {
  if (b->closed) return;
  b->closed = true;
  ::close(b->fd);
  graveyard.push_back(b);
}

}  // namespace feedpipe
