// loopback_floor: the kernel's floor cost of an SSE-style fan-out on this machine.
//
// It measures what it costs to write one frame to each of N already-open loopback
// TCP connections (the "server" side, this process's main thread), and what it costs
// a load-generator-like reader (one thread, one epoll set over all N client sockets)
// to receive them. No server, no HTTP, no parsing: only send(), epoll_wait() and
// read(). Whatever a real server does on top of this can only add to it.
//
// Built with the project (BUILD_DIR/bench/sse/loopback_floor; Linux only):
//   loopback_floor [-n STREAMS=10000] [-b BYTES=3400] [-r ROUNDS=7] [-c]
//   -c additionally ends every stream (shutdown(SHUT_WR) + close()) after the last
//      round and reports what that costs per stream.
// It needs 2*STREAMS+16 file descriptors in one process (it raises the soft
// RLIMIT_NOFILE to the hard limit). Without -n it takes as many streams as that allows, up to
// 10,000; with an -n that does not fit it exits with code 2.
//
// Reading the result (the last line, medians over rounds):
//   send_cpu_us        writer CPU per stream for one frame (send(), retries included)
//   recv_cpu_us        reader CPU per stream per frame (epoll wake-up + reads)
//   write_pass_ms      wall time of one send() to every stream
//   delivered_pass_ms  wall time from the first send() to the reader having every byte
//   per_stream_total_cpu_us = send_cpu_us + recv_cpu_us
//   cpu_floor_ms       per_stream_total_cpu_us * streams / online CPUs
//   end_cpu_us         (-c) writer CPU per stream for shutdown(SHUT_WR) + close()
//   end_recv_cpu_us    (-c) reader CPU per stream to see EOF and close its socket
// When sender and receiver share the machine, per_stream_total_cpu_us * streams /
// cores is a lower bound for delivering one write to every stream. On loopback the
// receiving TCP stack mostly runs inside the sender's send() (softirq on the sending
// CPU), so the send/recv split says less than the total does.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/open_files.h"

namespace {

constexpr int kExitError = 1;
constexpr int kExitTooFewFds = 2;
constexpr int kSpareFds = 16;
constexpr int kConnectBatch = 256;  // well below somaxconn, so no SYN is ever dropped
constexpr size_t kReadBufferBytes = 16 * 1024;
constexpr int kEpollBatch = 1024;
constexpr int64_t kNsPerMs = 1000 * 1000;
constexpr int64_t kNsPerSec = 1000 * kNsPerMs;
constexpr int64_t kIdleBeforeRoundNs = 200 * kNsPerMs;
constexpr int64_t kWaitLimitNs = 10 * kNsPerSec;
constexpr int64_t kRunBudgetNs = 55 * kNsPerSec;

struct TooFewFds : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::runtime_error(what + " failed: " + std::strerror(errno));
}

int64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

int64_t monotonic_ns() { return clock_ns(CLOCK_MONOTONIC); }
int64_t thread_cpu_ns() { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

void sleep_ns(int64_t ns) { std::this_thread::sleep_for(std::chrono::nanoseconds(ns)); }

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void close_or_throw() {
    int fd = std::exchange(fd_, -1);
    if (fd >= 0 && ::close(fd) != 0) throw_errno("close");
  }

 private:
  int fd_ = -1;
};

// A point in time past which the whole run gives up, so it never runs away.
class Deadline {
 public:
  explicit Deadline(int64_t budget_ns) : end_ns_(monotonic_ns() + budget_ns) {}
  int64_t for_wait(int64_t limit_ns) const { return std::min(end_ns_, monotonic_ns() + limit_ns); }
  int64_t end_ns() const { return end_ns_; }

 private:
  int64_t end_ns_;
};

// ---------------------------------------------------------------- options

struct Options {
  long streams = 10000;
  bool streams_given = false;  // without -n, fewer streams when the fd limit is short
  long bytes = 3400;
  long rounds = 7;
  bool end_streams = false;
};

void print_usage(FILE* out) {
  std::fprintf(out,
               "usage: loopback_floor [-n STREAMS=10000, or what the fd limit allows] [-b BYTES=3400] [-r ROUNDS=7] [-c]\n"
               "  -c  also end every stream (shutdown(SHUT_WR)+close()) and report its cost\n");
}

[[noreturn]] void usage_error(const std::string& problem) {
  std::fprintf(stderr, "loopback_floor: %s\n", problem.c_str());
  print_usage(stderr);
  std::exit(kExitError);
}

long parse_count(const char* text, char flag, long min, long max) {
  char* end = nullptr;
  errno = 0;
  long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
    usage_error(std::string("-") + flag + " wants a whole number in [" + std::to_string(min) + ", " +
                std::to_string(max) + "], got '" + text + "'");
  return value;
}

Options parse_options(int argc, char** argv) {
  Options options;
  int flag;
  while ((flag = getopt(argc, argv, "n:b:r:ch")) != -1) {
    switch (flag) {
      case 'n':
        options.streams = parse_count(optarg, 'n', 1, 1000000);
        options.streams_given = true;
        break;
      case 'b':
        options.bytes = parse_count(optarg, 'b', 2, 1 << 20);
        break;  // 2: the "\n\n"
      case 'r':
        options.rounds = parse_count(optarg, 'r', 1, 50);
        break;
      case 'c':
        options.end_streams = true;
        break;
      case 'h':
        print_usage(stdout);
        std::exit(0);
      default:
        usage_error("unknown option");
    }
  }
  if (optind != argc) usage_error(std::string("unexpected argument '") + argv[optind] + "'");
  return options;
}

// ---------------------------------------------------------------- setup

void require_fds_for(long streams, rlim_t fd_limit) {
  const rlim_t needed = rlim_t(2 * streams + kSpareFds);
  if (fd_limit != RLIM_INFINITY && needed > fd_limit) {
    const long max_streams = (long(fd_limit) - kSpareFds) / 2;
    throw TooFewFds("need " + std::to_string(needed) + " file descriptors for " + std::to_string(streams) +
                    " streams (2 per stream + " + std::to_string(kSpareFds) + "), but RLIMIT_NOFILE hard limit is " +
                    std::to_string(fd_limit) + "; use -n " + std::to_string(max_streams) +
                    " or raise the hard limit (ulimit -Hn)");
  }
}

sockaddr_in loopback_address(uint16_t port_network_order) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = port_network_order;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

Fd new_tcp_socket() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw_errno("socket");
  return fd;
}

// Returns the listener and the port it got, in network byte order.
std::pair<Fd, uint16_t> listen_on_loopback() {
  Fd listener = new_tcp_socket();
  sockaddr_in address = loopback_address(0);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    throw_errno("bind(127.0.0.1:0)");
  if (::listen(listener.get(), 4096) != 0) throw_errno("listen");
  socklen_t length = sizeof address;
  if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) throw_errno("getsockname");
  return {std::move(listener), address.sin_port};
}

Fd start_connect(uint16_t port) {
  Fd client = new_tcp_socket();
  sockaddr_in address = loopback_address(port);
  if (::connect(client.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 && errno != EINPROGRESS)
    throw_errno("connect(127.0.0.1)");
  return client;
}

void set_no_delay(int fd) {
  int on = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0) throw_errno("setsockopt(TCP_NODELAY)");
}

void wait_readable(int fd, int64_t deadline_ns) {
  const int64_t left_ns = deadline_ns - monotonic_ns();
  if (left_ns <= 0) throw std::runtime_error("timed out accepting loopback connections");
  pollfd entry{fd, POLLIN, 0};
  if (::poll(&entry, 1, int(std::min<int64_t>(left_ns / kNsPerMs + 1, 1000))) < 0 && errno != EINTR)
    throw_errno("poll(listener)");
}

void accept_connections(int listener, long count, std::vector<Fd>& servers, int64_t deadline_ns) {
  for (long accepted = 0; accepted < count;) {
    Fd server(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (server.get() < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        wait_readable(listener, deadline_ns);
      else if (errno != EINTR)
        throw_errno("accept4");
      continue;
    }
    set_no_delay(server.get());  // as an SSE server does, so each event leaves at once
    servers.push_back(std::move(server));
    ++accepted;
  }
}

struct Connections {
  std::vector<Fd> clients;
  std::vector<Fd> servers;
};

// Every client is established once its peer has been accepted, and accepts are
// counted one for one, so no separate check of the clients is needed.
Connections open_connections(long streams, const Deadline& deadline) {
  auto [listener, port] = listen_on_loopback();
  Connections connections;
  connections.clients.reserve(size_t(streams));
  connections.servers.reserve(size_t(streams));
  const int64_t deadline_ns = deadline.for_wait(30 * kNsPerSec);
  for (long opened = 0; opened < streams;) {
    const long batch = std::min<long>(kConnectBatch, streams - opened);
    for (long i = 0; i < batch; ++i) connections.clients.push_back(start_connect(port));
    accept_connections(listener.get(), batch, connections.servers, deadline_ns);
    opened += batch;
  }
  return connections;
}

// ---------------------------------------------------------------- reader

// What the reader has done so far; fields only grow.
struct ReaderProgress {
  int64_t cpu_ns = 0;
  uint64_t bytes = 0;
  uint64_t ended_streams = 0;
  int64_t target_reached_ns = 0;  // CLOCK_MONOTONIC when bytes first reached the current target
};

// The "load generator": one thread, one level-triggered epoll set over every client
// socket. It reads each ready socket until EAGAIN and closes a socket on EOF.
class Reader {
 public:
  explicit Reader(std::vector<Fd> clients) : clients_(std::move(clients)) {
    epoll_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
    if (epoll_.get() < 0) throw_errno("epoll_create1");
    wakeup_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (wakeup_.get() < 0) throw_errno("eventfd");
    watch(wakeup_.get(), kWakeupToken);
    for (size_t i = 0; i < clients_.size(); ++i) watch(clients_[i].get(), uint32_t(i));
    thread_ = std::thread([this] { run_and_catch(); });
    wait_until_started();
  }

  ~Reader() {
    stop_.store(true);
    uint64_t one = 1;
    if (::write(wakeup_.get(), &one, sizeof one) < 0) std::perror("loopback_floor: write(eventfd)");
    thread_.join();
  }

  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // The reader stamps the moment its cumulative byte count reaches this.
  void expect_total_bytes(uint64_t total) { target_bytes_.store(total, std::memory_order_release); }

  ReaderProgress progress() const {
    if (failed_.load(std::memory_order_acquire)) throw std::runtime_error("reader: " + failure_);
    published_.load(std::memory_order_acquire);
    ReaderProgress progress;
    progress.cpu_ns = cpu_ns_.load(std::memory_order_relaxed);
    progress.bytes = bytes_.load(std::memory_order_relaxed);
    progress.ended_streams = ended_streams_.load(std::memory_order_relaxed);
    progress.target_reached_ns = target_reached_ns_.load(std::memory_order_relaxed);
    return progress;
  }

 private:
  static constexpr uint32_t kWakeupToken = UINT32_MAX;

  void watch(int fd, uint32_t token) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u32 = token;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) throw_errno("epoll_ctl(ADD)");
  }

  void run_and_catch() {
    try {
      run();
    } catch (const std::exception& error) {
      failure_ = error.what();
      failed_.store(true, std::memory_order_release);
    }
  }

  // Progress samples are only meaningful once the reader has published its own CPU clock.
  void wait_until_started() {
    while (published_.load(std::memory_order_acquire) == 0 && !failed_.load(std::memory_order_acquire))
      sleep_ns(kNsPerMs);
  }

  void run() {
    std::vector<epoll_event> events(kEpollBatch);
    std::vector<char> buffer(kReadBufferBytes);
    publish_progress();
    while (!stop_.load(std::memory_order_relaxed)) {
      const int ready = ::epoll_wait(epoll_.get(), events.data(), kEpollBatch, -1);
      if (ready < 0) {
        if (errno == EINTR) continue;
        throw_errno("epoll_wait");
      }
      for (int i = 0; i < ready; ++i) {
        if (events[size_t(i)].data.u32 != kWakeupToken) drain(events[size_t(i)].data.u32, buffer);
      }
      publish_progress();
    }
  }

  void drain(uint32_t index, std::vector<char>& buffer) {
    const int fd = clients_[index].get();
    for (;;) {
      const ssize_t got = ::read(fd, buffer.data(), buffer.size());
      if (got > 0) {
        count_bytes(uint64_t(got));
      } else if (got == 0) {
        clients_[index].close_or_throw();  // closing also drops it from the epoll set
        ++ended_streams_local_;
        return;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return;
      } else if (errno != EINTR) {
        throw_errno("read(client socket)");
      }
    }
  }

  void count_bytes(uint64_t got) {
    const uint64_t before = bytes_local_;
    bytes_local_ += got;
    const uint64_t target = target_bytes_.load(std::memory_order_acquire);
    if (before < target && bytes_local_ >= target) target_reached_ns_.store(monotonic_ns(), std::memory_order_relaxed);
  }

  void publish_progress() {
    cpu_ns_.store(thread_cpu_ns(), std::memory_order_relaxed);
    bytes_.store(bytes_local_, std::memory_order_relaxed);
    ended_streams_.store(ended_streams_local_, std::memory_order_relaxed);
    published_.fetch_add(1, std::memory_order_release);
  }

  std::vector<Fd> clients_;
  Fd epoll_;
  Fd wakeup_;
  uint64_t bytes_local_ = 0;
  uint64_t ended_streams_local_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> target_bytes_{0};
  std::atomic<int64_t> target_reached_ns_{0};
  std::atomic<int64_t> cpu_ns_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> ended_streams_{0};
  std::atomic<uint64_t> published_{0};
  std::string failure_;
  std::atomic<bool> failed_{false};
  std::thread thread_;  // last: starts once everything above exists
};

// Polls with short sleeps; the reader stamps its own times, so the polling
// granularity does not blur the measurement.
ReaderProgress wait_for_reader(const Reader& reader, const std::function<bool(const ReaderProgress&)>& done,
                               const Deadline& deadline, const char* what) {
  const int64_t give_up_ns = deadline.for_wait(kWaitLimitNs);
  for (;;) {
    ReaderProgress progress = reader.progress();
    if (done(progress)) return progress;
    if (monotonic_ns() > give_up_ns)
      throw std::runtime_error(std::string("timed out waiting for the reader to ") + what);
    sleep_ns(kNsPerMs);
  }
}

// ---------------------------------------------------------------- writer

struct Pass {
  int64_t start_wall_ns = 0;
  int64_t wall_ns = 0;
  int64_t cpu_ns = 0;
  long incomplete_sends = 0;
};

// Bytes accepted by the kernel; 0 when the socket buffer is full.
size_t send_some(int fd, const char* data, size_t length) {
  for (;;) {
    const ssize_t sent = ::send(fd, data, length, MSG_NOSIGNAL);
    if (sent >= 0) return size_t(sent);
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    if (errno != EINTR) throw_errno("send(server socket)");
  }
}

struct Unfinished {
  size_t stream;
  size_t offset;
};

void finish_short_sends(const std::vector<Fd>& servers, const std::string& frame, std::vector<Unfinished> unfinished,
                        Pass& pass, const Deadline& deadline) {
  const int64_t give_up_ns = deadline.for_wait(kWaitLimitNs);
  while (!unfinished.empty()) {
    if (monotonic_ns() > give_up_ns) throw std::runtime_error("timed out retrying short sends");
    sleep_ns(100 * 1000);  // let the reader drain
    std::vector<Unfinished> still;
    for (Unfinished item : unfinished) {
      item.offset += send_some(servers[item.stream].get(), frame.data() + item.offset, frame.size() - item.offset);
      if (item.offset < frame.size()) {
        still.push_back(item);
        ++pass.incomplete_sends;
      }
    }
    unfinished.swap(still);
  }
}

Pass send_frame_to_every_stream(const std::vector<Fd>& servers, const std::string& frame, const Deadline& deadline) {
  Pass pass;
  std::vector<Unfinished> unfinished;
  pass.start_wall_ns = monotonic_ns();
  const int64_t start_cpu_ns = thread_cpu_ns();
  for (size_t i = 0; i < servers.size(); ++i) {
    const size_t sent = send_some(servers[i].get(), frame.data(), frame.size());
    if (sent < frame.size()) {
      unfinished.push_back({i, sent});
      ++pass.incomplete_sends;
    }
  }
  if (!unfinished.empty()) finish_short_sends(servers, frame, std::move(unfinished), pass, deadline);
  pass.cpu_ns = thread_cpu_ns() - start_cpu_ns;
  pass.wall_ns = monotonic_ns() - pass.start_wall_ns;
  return pass;
}

Pass end_every_stream(std::vector<Fd>& servers) {
  Pass pass;
  pass.start_wall_ns = monotonic_ns();
  const int64_t start_cpu_ns = thread_cpu_ns();
  for (Fd& server : servers) {
    if (::shutdown(server.get(), SHUT_WR) != 0) throw_errno("shutdown(server socket, SHUT_WR)");
    server.close_or_throw();
  }
  pass.cpu_ns = thread_cpu_ns() - start_cpu_ns;
  pass.wall_ns = monotonic_ns() - pass.start_wall_ns;
  return pass;
}

// ---------------------------------------------------------------- rounds

struct RoundResult {
  double send_cpu_us;
  double write_pass_ms;
  double recv_cpu_us;
  double delivered_pass_ms;
  long incomplete_sends;
};

struct EndResult {
  double end_cpu_us;
  double end_recv_cpu_us;
  double end_pass_ms;
};

double per_stream_us(int64_t ns, long streams) { return double(ns) / 1000.0 / double(streams); }
double as_ms(int64_t ns) { return double(ns) / double(kNsPerMs); }

RoundResult run_round(long round, const Options& options, const std::vector<Fd>& servers, const std::string& frame,
                      Reader& reader, const Deadline& deadline) {
  sleep_ns(kIdleBeforeRoundNs);  // the reader goes to sleep in epoll_wait, as a client does between events
  const uint64_t target = uint64_t(round) * uint64_t(options.streams) * uint64_t(options.bytes);
  reader.expect_total_bytes(target);
  const ReaderProgress before = reader.progress();
  const Pass pass = send_frame_to_every_stream(servers, frame, deadline);
  const ReaderProgress after = wait_for_reader(
      reader, [target](const ReaderProgress& p) { return p.bytes >= target; }, deadline, "receive every frame");
  return RoundResult{per_stream_us(pass.cpu_ns, options.streams), as_ms(pass.wall_ns),
                     per_stream_us(after.cpu_ns - before.cpu_ns, options.streams),
                     as_ms(after.target_reached_ns - pass.start_wall_ns), pass.incomplete_sends};
}

EndResult run_end_pass(const Options& options, std::vector<Fd>& servers, Reader& reader, const Deadline& deadline) {
  sleep_ns(kIdleBeforeRoundNs);
  const ReaderProgress before = reader.progress();
  const Pass pass = end_every_stream(servers);
  const uint64_t streams = uint64_t(options.streams);
  const ReaderProgress after = wait_for_reader(
      reader, [streams](const ReaderProgress& p) { return p.ended_streams >= streams; }, deadline,
      "see every stream end");
  return EndResult{per_stream_us(pass.cpu_ns, options.streams),
                   per_stream_us(after.cpu_ns - before.cpu_ns, options.streams), as_ms(pass.wall_ns)};
}

// ---------------------------------------------------------------- report

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2.0;
}

template <typename Field>
double median_of(const std::vector<RoundResult>& rounds, Field field) {
  std::vector<double> values;
  for (const RoundResult& round : rounds) values.push_back(round.*field);
  return median(values);
}

void print_header(const Options& options, long online_cpus, rlim_t fd_limit) {
  std::printf(
      "loopback_floor: streams=%ld bytes=%ld rounds=%ld end_streams=%s online_cpus=%ld nofile=%llu "
      "(127.0.0.1, TCP_NODELAY, 1 writer + 1 epoll reader thread)\n",
      options.streams, options.bytes, options.rounds, options.end_streams ? "yes" : "no", online_cpus,
      static_cast<unsigned long long>(fd_limit));
  std::fflush(stdout);
}

void print_round(long round, const RoundResult& result) {
  std::printf(
      "round %ld: send_cpu_us=%.2f write_pass_ms=%.1f recv_cpu_us=%.2f delivered_pass_ms=%.1f incomplete_sends=%ld\n",
      round, result.send_cpu_us, result.write_pass_ms, result.recv_cpu_us, result.delivered_pass_ms,
      result.incomplete_sends);
  std::fflush(stdout);
}

void print_end(const EndResult& result) {
  std::printf("end: end_cpu_us=%.2f end_recv_cpu_us=%.2f end_pass_ms=%.1f\n", result.end_cpu_us, result.end_recv_cpu_us,
              result.end_pass_ms);
}

void print_summary(const Options& options, long online_cpus, const std::vector<RoundResult>& rounds,
                   const EndResult* end) {
  const double send_cpu_us = median_of(rounds, &RoundResult::send_cpu_us);
  const double recv_cpu_us = median_of(rounds, &RoundResult::recv_cpu_us);
  const double total_cpu_us = send_cpu_us + recv_cpu_us;
  std::printf(
      "floor: streams=%ld bytes=%ld send_cpu_us=%.2f recv_cpu_us=%.2f write_pass_ms=%.1f delivered_pass_ms=%.1f "
      "per_stream_total_cpu_us=%.2f cpu_floor_ms=%.1f",
      options.streams, options.bytes, send_cpu_us, recv_cpu_us, median_of(rounds, &RoundResult::write_pass_ms),
      median_of(rounds, &RoundResult::delivered_pass_ms), total_cpu_us,
      total_cpu_us * double(options.streams) / double(online_cpus) / 1000.0);
  if (end) std::printf(" end_cpu_us=%.2f end_recv_cpu_us=%.2f", end->end_cpu_us, end->end_recv_cpu_us);
  std::printf("\n");
}

// ---------------------------------------------------------------- main

int run(Options options) {
  const Deadline deadline(kRunBudgetNs);
  const rlim_t fd_limit = feedpipe::raise_open_file_limit();
  if (!options.streams_given && fd_limit != RLIM_INFINITY)
    options.streams = std::min(options.streams, (long(fd_limit) - kSpareFds) / 2);
  require_fds_for(options.streams, fd_limit);
  const long online_cpus = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  print_header(options, online_cpus, fd_limit);

  Connections connections = open_connections(options.streams, deadline);
  std::vector<Fd> servers = std::move(connections.servers);
  Reader reader(std::move(connections.clients));
  const std::string frame = std::string(size_t(options.bytes) - 2, 'x') + "\n\n";

  std::vector<RoundResult> rounds;
  for (long round = 1; round <= options.rounds; ++round) {
    rounds.push_back(run_round(round, options, servers, frame, reader, deadline));
    print_round(round, rounds.back());
  }
  EndResult end{};
  if (options.end_streams) {
    end = run_end_pass(options, servers, reader, deadline);
    print_end(end);
  }
  print_summary(options, online_cpus, rounds, options.end_streams ? &end : nullptr);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_options(argc, argv);
  try {
    return run(options);
  } catch (const TooFewFds& error) {
    std::fprintf(stderr, "loopback_floor: %s\n", error.what());
    return kExitTooFewFds;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "loopback_floor: error: %s\n", error.what());
    return kExitError;
  }
}
