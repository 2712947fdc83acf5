// sse_load: holds many Server-Sent Events streams on one epoll thread and measures what arrives.
//
//   sse_load -p PORT -u PATHFILE -n STREAMS [-h HOST=127.0.0.1] [-d SECONDS=120]
//            [-r CONNECTS_PER_SECOND=5000] [-e EXPECTED_EVENTS_PER_STREAM=0]
//
// Stream i requests line i mod lines of PATHFILE (for example /v1/batches/ID/events). An event's
// data is read for "seq" (its place in its batch: each stream must see 1, 2, 3, … of each batch
// once each, in order; a stream of many batches, /v1/events?batch=…, is checked per "batch_id") and
// "ts" (Unix milliseconds at which the server committed it). An event whose ts is later than the
// moment its stream was established is live and gives a latency sample (receipt − ts). A seq that
// skips ahead counts the skipped ones as missed, a seq at or below the last one seen as repeated;
// with -e, a stream that ends with fewer events than expected counts the rest as missed.
// Chunked transfer encoding (nginx) is decoded. The run ends when every stream has ended or
// failed, or after -d seconds.
//
// Prints one line: conns_ok failed ended_by_server events min_events_per_conn missed repeated
// live_samples p50_ms p99_ms max_ms.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/open_files.h"

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path_file;
  size_t streams = 0;
  double seconds = 120;
  double connects_per_second = 5000;
  int64_t expected_events = 0;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "sse_load: %s\nusage: sse_load -p PORT -u PATHFILE -n STREAMS [-h HOST] [-d SECONDS] "
               "[-r CONNECTS_PER_SECOND] [-e EXPECTED_EVENTS_PER_STREAM]\n",
               why);
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) usage("every option takes a value");
    const char* value = argv[++i];
    if (flag == "-p")
      o.port = std::atoi(value);
    else if (flag == "-u")
      o.path_file = value;
    else if (flag == "-n")
      o.streams = std::strtoul(value, nullptr, 10);
    else if (flag == "-h")
      o.host = value;
    else if (flag == "-d")
      o.seconds = std::atof(value);
    else if (flag == "-r")
      o.connects_per_second = std::atof(value);
    else if (flag == "-e")
      o.expected_events = std::atoll(value);
    else
      usage("unknown option");
  }
  if (o.port <= 0 || o.port > 65535) usage("-p PORT is required");
  if (o.path_file.empty()) usage("-u PATHFILE is required");
  if (o.streams == 0) usage("-n STREAMS must be at least 1");
  if (o.connects_per_second <= 0) usage("-r must be positive");
  return o;
}

std::vector<std::string> read_paths(const std::string& file) {
  std::ifstream in(file);
  if (!in) usage(("cannot read " + file).c_str());
  std::vector<std::string> paths;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) paths.push_back(line);
  }
  if (paths.empty()) usage("the path file holds no path");
  return paths;
}

double wall_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The number after "key": in a JSON text, or -1 when absent.
double json_number(std::string_view data, std::string_view key) {
  size_t at = data.find(key);
  if (at == std::string_view::npos) return -1;
  const char* p = data.data() + at + key.size();
  while (p < data.data() + data.size() && *p == ' ') ++p;
  char* end = nullptr;
  double v = std::strtod(p, &end);
  return end == p ? -1 : v;
}

// The string after "key" (which ends with the opening quote) in a JSON text, up to the closing
// quote (ids hold no escapes), or empty when absent.
std::string_view json_string(std::string_view data, std::string_view key) {
  size_t at = data.find(key);
  if (at == std::string_view::npos) return {};
  size_t start = at + key.size(), end = data.find('"', start);
  return end == std::string_view::npos ? std::string_view() : data.substr(start, end - start);
}

struct Totals {
  size_t ok = 0, failed = 0, ended_by_server = 0;
  int64_t events = 0, missed = 0, repeated = 0;
  std::vector<double> latencies_ms;
};

// One stream: connect, request, response head, then the body decoded (chunked or not) into SSE
// lines and events.
class Stream {
 public:
  enum class Phase { connecting, head, body, done };

  Stream(int fd, std::string request) : fd_(fd), request_(std::move(request)) {}
  int fd() const { return fd_; }
  Phase phase() const { return phase_; }
  int64_t events() const { return events_; }
  bool held() const { return held_; }

  // The socket is writable after a non-blocking connect: check it and send the request.
  bool on_connected() {
    int error = 0;
    socklen_t len = sizeof error;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) return false;
    established_ms_ = wall_ms();
    size_t sent = 0;
    while (sent < request_.size()) {
      ssize_t n = ::send(fd_, request_.data() + sent, request_.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;  // a request this small always fits a fresh socket's buffer
      sent += static_cast<size_t>(n);
    }
    std::string().swap(request_);
    phase_ = Phase::head;
    return true;
  }

  // Reads what is there. Returns false when the stream is over (server closed it, or an error).
  bool on_readable(char* buf, size_t cap, Totals& totals, bool& ended_by_server) {
    while (true) {
      ssize_t n = ::recv(fd_, buf, cap, 0);
      if (n > 0) {
        const double now = wall_ms();
        if (!consume(std::string_view(buf, static_cast<size_t>(n)), now, totals)) {
          ended_by_server = response_complete_;
          return false;
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      ended_by_server = (n == 0 && held_);
      return false;
    }
  }

  void finish() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    phase_ = Phase::done;
  }

 private:
  bool consume(std::string_view bytes, double now, Totals& totals) {
    if (phase_ == Phase::head) {
      head_.append(bytes);
      size_t end = head_.find("\r\n\r\n");
      if (end == std::string::npos) return head_.size() < 16384;
      if (head_.compare(0, 9, "HTTP/1.1 ") != 0 || head_.compare(9, 3, "200") != 0) return false;
      std::string lower(head_, 0, end);
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
      chunked_ = lower.find("\r\ntransfer-encoding: chunked") != std::string::npos;
      held_ = true;
      std::string rest = head_.substr(end + 4);
      std::string().swap(head_);
      phase_ = Phase::body;
      return body(rest, now, totals);
    }
    return body(bytes, now, totals);
  }

  bool body(std::string_view bytes, double now, Totals& totals) {
    if (!chunked_) return sse(bytes, now, totals);
    while (!bytes.empty()) {
      if (chunk_left_ > 0) {
        size_t take = std::min<size_t>(chunk_left_, bytes.size());
        if (!sse(bytes.substr(0, take), now, totals)) return false;
        chunk_left_ -= take;
        bytes.remove_prefix(take);
        if (chunk_left_ == 0) skip_crlf_ = 2;
        continue;
      }
      if (skip_crlf_ > 0) {
        bytes.remove_prefix(1);
        --skip_crlf_;
        continue;
      }
      size_t nl = bytes.find('\n');  // the chunk-size line
      chunk_line_.append(bytes.substr(0, nl));
      if (nl == std::string_view::npos) return chunk_line_.size() < 64;
      bytes.remove_prefix(nl + 1);
      char* end = nullptr;
      chunk_left_ = std::strtoull(chunk_line_.c_str(), &end, 16);
      if (end == chunk_line_.c_str()) return false;
      chunk_line_.clear();
      if (chunk_left_ == 0) {  // the last chunk: the server ended the response
        response_complete_ = true;
        return false;
      }
    }
    return true;
  }

  // SSE framing: lines end with \n (a \r before it is dropped); a blank line ends an event.
  bool sse(std::string_view bytes, double now, Totals& totals) {
    while (!bytes.empty()) {
      size_t nl = bytes.find('\n');
      if (nl == std::string_view::npos) {
        line_.append(bytes);
        return line_.size() < (1u << 20);
      }
      std::string_view line = bytes.substr(0, nl);
      if (!line_.empty()) {
        line_.append(line);
        line = line_;
      }
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {
        if (has_data_) dispatch(now, totals);
      } else if (line.substr(0, 5) == "data:") {
        data_.append(line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5));
        has_data_ = true;
      }
      line_.clear();
      bytes.remove_prefix(nl + 1);
    }
    return true;
  }

  void dispatch(double now, Totals& totals) {
    ++events_;
    ++totals.events;
    const double seq = json_number(data_, "\"seq\":");
    if (seq >= 0) {
      const auto s = static_cast<int64_t>(seq);
      int64_t& last = last_seq_of(json_string(data_, "\"batch_id\":\""));
      if (s <= last) {
        ++totals.repeated;
      } else {
        totals.missed += s - last - 1;
        last = s;
      }
    }
    const double ts = json_number(data_, "\"ts\":");
    if (ts >= established_ms_) totals.latencies_ms.push_back(now - ts);
    data_.clear();
    has_data_ = false;
  }

  int fd_;
  std::string request_;
  Phase phase_ = Phase::connecting;
  bool held_ = false;  // the 200 head arrived
  double established_ms_ = 0;
  std::string head_;
  bool chunked_ = false;
  bool response_complete_ = false;
  uint64_t chunk_left_ = 0;
  int skip_crlf_ = 0;
  std::string chunk_line_;
  std::string line_;  // a line split across reads
  std::string data_;
  bool has_data_ = false;
  int64_t events_ = 0;
  // The last seq seen of each batch of the stream (one for a batch's stream, a few for many).
  std::vector<std::pair<std::string, int64_t>> last_seqs_;

  int64_t& last_seq_of(std::string_view batch_id) {
    for (auto& [id, last] : last_seqs_)
      if (id == batch_id) return last;
    last_seqs_.emplace_back(std::string(batch_id), 0);
    return last_seqs_.back().second;
  }
};

void raise_fd_limit(size_t needed) {
  try {
    const rlim_t limit = feedpipe::raise_open_file_limit();
    if (limit != RLIM_INFINITY && limit < needed)
      std::fprintf(stderr, "sse_load: warning: open-file limit %llu is below the %zu streams asked for\n",
                   static_cast<unsigned long long>(limit), needed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sse_load: warning: %s\n", e.what());
  }
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return -1;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(static_cast<double>(sorted.size()) * p))];
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_options(argc, argv);
  const std::vector<std::string> paths = read_paths(opt.path_file);
  raise_fd_limit(opt.streams + 16);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(opt.port));
  if (::inet_pton(AF_INET, opt.host.c_str(), &addr.sin_addr) != 1) usage("-h must be an IPv4 address");
  const std::string host_header = opt.host + ":" + std::to_string(opt.port);

  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    std::perror("sse_load: epoll_create1");
    return 1;
  }
  std::vector<Stream> streams;
  streams.reserve(opt.streams);
  Totals totals;
  totals.latencies_ms.reserve(opt.streams * 32);
  size_t live = 0;  // streams not yet done

  auto open_stream = [&](size_t i) {
    const std::string& path = paths[i % paths.size()];
    std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host_header +
                          "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    streams.emplace_back(fd, std::move(request));
    if (fd < 0 || (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS)) {
      ++totals.failed;
      streams.back().finish();
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    ++live;
  };

  auto end_stream = [&](Stream& s, bool ended_by_server) {
    if (s.held()) {
      if (ended_by_server) ++totals.ended_by_server;
      if (opt.expected_events > s.events()) totals.missed += opt.expected_events - s.events();
    } else {
      ++totals.failed;
    }
    s.finish();
    --live;
  };

  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(opt.seconds);
  std::vector<epoll_event> ready(1024);
  std::vector<char> buf(64 * 1024);
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    const double elapsed = std::chrono::duration<double>(now - start).count();
    const auto due = std::min(opt.streams, static_cast<size_t>(elapsed * opt.connects_per_second) + 1);
    while (streams.size() < due) open_stream(streams.size());
    if (streams.size() == opt.streams && live == 0) break;
    const int timeout_ms = streams.size() < opt.streams ? 1 : 100;
    const int n = ::epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), timeout_ms);
    for (int k = 0; k < n; ++k) {
      Stream& s = streams[ready[k].data.u64];
      if (s.phase() == Stream::Phase::done) continue;
      if (s.phase() == Stream::Phase::connecting) {
        if (!s.on_connected()) {
          end_stream(s, false);
          continue;
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = ready[k].data.u64;
        ::epoll_ctl(ep, EPOLL_CTL_MOD, s.fd(), &ev);
        continue;
      }
      bool ended_by_server = false;
      if (!s.on_readable(buf.data(), buf.size(), totals, ended_by_server)) end_stream(s, ended_by_server);
    }
  }

  int64_t min_events = -1;
  for (Stream& s : streams) {
    if (s.held()) {
      ++totals.ok;
      if (min_events < 0 || s.events() < min_events) min_events = s.events();
      if (s.phase() != Stream::Phase::done && opt.expected_events > s.events())
        totals.missed += opt.expected_events - s.events();  // still open at the deadline
    } else if (s.phase() != Stream::Phase::done) {
      ++totals.failed;
    }
    s.finish();
  }
  ::close(ep);
  std::sort(totals.latencies_ms.begin(), totals.latencies_ms.end());
  const std::vector<double>& lat = totals.latencies_ms;
  std::printf(
      "conns_ok=%zu failed=%zu ended_by_server=%zu events=%lld min_events_per_conn=%lld missed=%lld repeated=%lld "
      "live_samples=%zu p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
      totals.ok, totals.failed, totals.ended_by_server, static_cast<long long>(totals.events),
      static_cast<long long>(min_events), static_cast<long long>(totals.missed),
      static_cast<long long>(totals.repeated), lat.size(), percentile(lat, 0.5), percentile(lat, 0.99),
      lat.empty() ? -1.0 : lat.back());
  return 0;
}
