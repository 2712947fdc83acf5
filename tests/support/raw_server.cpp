#include "tests/support/raw_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace feedpipe::testing {

bool RawServer::Connection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    if (stopping_) return false;
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

RawServer::RawServer(const std::string& host) : host_(host) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 || (ntohl(addr.sin_addr.s_addr) >> 24) != 127)
    throw std::runtime_error("RawServer: " + host + " is not a loopback IPv4 address");
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("RawServer: cannot listen on " + host);
  port_ = ntohs(addr.sin_port);
  listen_fds_.push_back(fd);
  if (host != "127.0.0.1") {
    for (int l : listen_fds_) acceptors_.emplace_back([this, l] { accept_loop(l); });
    return;
  }
  // The same port on [::1], so that a test can tell whether an IPv6 loopback URL got through.
  int fd6 = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 addr6{};
  addr6.sin6_family = AF_INET6;
  addr6.sin6_addr = in6addr_loopback;
  addr6.sin6_port = htons(static_cast<uint16_t>(port_));
  int one = 1;
  if (fd6 >= 0 && ::setsockopt(fd6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0 &&
      ::bind(fd6, reinterpret_cast<sockaddr*>(&addr6), sizeof addr6) == 0 && ::listen(fd6, 128) == 0)
    listen_fds_.push_back(fd6);
  else if (fd6 >= 0)
    ::close(fd6);
  for (int l : listen_fds_) acceptors_.emplace_back([this, l] { accept_loop(l); });
}

RawServer::~RawServer() {
  stopping_ = true;
  for (int l : listen_fds_) ::shutdown(l, SHUT_RDWR);
  for (auto& t : acceptors_) t.join();
  for (int l : listen_fds_) ::close(l);
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void RawServer::on(const std::string& path, Handler handler) {
  std::lock_guard lock(mu_);
  handlers_[path] = std::move(handler);
}

std::string RawServer::url(const std::string& path) const {
  return "http://" + host_ + ":" + std::to_string(port_) + path;
}

int RawServer::requests(const std::string& path) {
  std::lock_guard lock(mu_);
  return counts_[path];
}

void RawServer::accept_loop(int listen_fd) {
  while (!stopping_) {
    pollfd p{listen_fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    std::lock_guard lock(mu_);
    if (stopping_) {
      ::close(fd);
      break;
    }
    open_fds_.push_back(fd);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

void RawServer::serve(int fd) {
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536 && !stopping_) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  std::string path;
  size_t sp1 = head.find(' ');
  size_t sp2 = sp1 == std::string::npos ? sp1 : head.find(' ', sp1 + 1);
  if (sp2 != std::string::npos) path = head.substr(sp1 + 1, sp2 - sp1 - 1);
  Handler handler;
  {
    std::lock_guard lock(mu_);
    ++counts_[path];
    if (auto it = handlers_.find(path); it != handlers_.end()) handler = it->second;
  }
  Connection connection(fd, stopping_);
  if (handler)
    handler(path, connection);
  else
    connection.send(response_head(404, "Not Found", "Content-Length: 0\r\n"));
  ::shutdown(fd, SHUT_WR);
  std::lock_guard lock(mu_);
  open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
  ::close(fd);
}

std::string response_head(int status, const std::string& reason, const std::string& headers) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nConnection: close\r\n" + headers + "\r\n";
}

}  // namespace feedpipe::testing
