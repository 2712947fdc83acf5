#pragma once
// A loopback TCP server that answers each request path with raw bytes chosen by the test: for
// servers that misbehave in ways an HTTP library will not (endless or lying bodies, a byte a
// second, garbage). Listens on 127.0.0.1 and, when the host has IPv6, on [::1] at the same port;
// or on another loopback address (127.0.0.2) alone.
// One thread per connection; the destructor closes every connection and joins every thread.
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace feedpipe::testing {

class RawServer {
 public:
  // What a handler writes to: send() is false once the client is gone or the server stops.
  class Connection {
   public:
    explicit Connection(int fd, const std::atomic<bool>& stopping) : fd_(fd), stopping_(stopping) {}
    bool send(std::string_view bytes);
    bool stopping() const { return stopping_.load(); }

   private:
    int fd_;
    const std::atomic<bool>& stopping_;
  };
  // Called with the request's path (query included); the connection closes when it returns.
  using Handler = std::function<void(const std::string& path, Connection&)>;

  explicit RawServer(const std::string& host = "127.0.0.1");
  ~RawServer();
  RawServer(const RawServer&) = delete;
  RawServer& operator=(const RawServer&) = delete;

  // Registers the answer for one exact path; other paths get a 404. Call before requests arrive.
  void on(const std::string& path, Handler handler);
  int port() const { return port_; }
  bool has_ipv6() const { return listen_fds_.size() > 1; }
  std::string url(const std::string& path) const;
  int connections() const { return connections_.load(); }  // accepted, on any address
  int requests(const std::string& path);

 private:
  void accept_loop(int listen_fd);
  void serve(int fd);

  std::vector<int> listen_fds_;
  std::string host_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::vector<std::thread> acceptors_;
  std::mutex mu_;
  std::map<std::string, Handler> handlers_;
  std::map<std::string, int> counts_;
  std::vector<std::thread> workers_;
  std::vector<int> open_fds_;
};

// An HTTP/1.1 response head ending in the blank line; `headers` is "Name: value\r\n" lines.
std::string response_head(int status, const std::string& reason, const std::string& headers = "");

}  // namespace feedpipe::testing
