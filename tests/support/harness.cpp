#include "tests/support/harness.h"

#include "common/http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>

namespace feedpipe::testing {

namespace {

// Every live child, so a test binary that dies leaves none running and a failed test shows their
// logs. Slots are atomics: the fatal-signal handler reads them.
constexpr size_t kMaxChildren = 256;
std::atomic<pid_t> live_pids[kMaxChildren];
std::mutex live_mutex;
std::vector<const Process*> live_processes;

void end_live_children(int) {
  for (auto& slot : live_pids) {
    pid_t pid = slot.load();
    if (pid > 0) ::kill(pid, SIGKILL);
  }
}

constexpr int kFatalSignals[] = {SIGABRT, SIGTERM, SIGINT, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
struct sigaction previous_actions[std::size(kFatalSignals)];

// Ends the children, then hands the signal to whoever handled it before (a sanitizer's report, or
// the default action): a fault returns and faults again at the same instruction, others are re-raised.
void on_fatal_signal(int signal) {
  end_live_children(signal);
  for (size_t i = 0; i < std::size(kFatalSignals); ++i)
    if (kFatalSignals[i] == signal) sigaction(signal, &previous_actions[i], nullptr);
  if (signal == SIGABRT || signal == SIGTERM || signal == SIGINT) ::raise(signal);
}

// On a failed test, the tail of each live child's log: the cause is usually there.
class ChildLogsOnFailure : public ::testing::EmptyTestEventListener {
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::lock_guard lock(live_mutex);
    for (const Process* p : live_processes) {
      if (!printed_.insert(p).second) continue;
      std::string log = p->log();
      size_t at = log.size(), lines = 0;
      while (at > 0 && lines <= 60) if (log[--at] == '\n') ++lines;
      std::fprintf(stderr, "---- last lines of %s (pid %d) ----\n%s\n---- end of %s ----\n", p->name().c_str(),
                   p->pid(), log.c_str() + (at > 0 ? at + 1 : 0), p->name().c_str());
    }
  }
  void OnTestEnd(const ::testing::TestInfo&) override { printed_.clear(); }
  std::set<const Process*> printed_;
};

void install_guards() {
  static bool installed = [] {
    struct sigaction action {};
    action.sa_handler = on_fatal_signal;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < std::size(kFatalSignals); ++i) sigaction(kFatalSignals[i], &action, &previous_actions[i]);
    std::atexit([] { end_live_children(0); });
    ::testing::UnitTest::GetInstance()->listeners().Append(new ChildLogsOnFailure);
    return true;
  }();
  (void)installed;
}

void track(const Process* process, pid_t pid) {
  install_guards();
  std::lock_guard lock(live_mutex);
  live_processes.push_back(process);
  for (auto& slot : live_pids) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
}

void untrack(const Process* process, pid_t pid) {
  std::lock_guard lock(live_mutex);
  std::erase(live_processes, process);
  for (auto& slot : live_pids) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

}  // namespace

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string first_line_of(const std::string& path, std::chrono::milliseconds timeout) {
  std::string line;
  wait_until([&] {
    std::ifstream in(path);
    if (std::getline(in, line) && in) return true;
    line.clear();
    return false;
  }, timeout);
  return line;
}

std::string feedpipe_binary() {
  if (const char* env = std::getenv("FEEDPIPE_TEST_BINARY")) return env;
  return FEEDPIPE_BINARY;
}

namespace {
bool can_bind(int port) {
  // A plain socket: httplib's would set SO_REUSEPORT and stay open, silently sharing the port.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}
}  // namespace

int free_port() {
  // Below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by default): a port that
  // the kernel handed out to a bind(0) and closed again goes back to that range, and another
  // process's bind(0) or connect() can take it before our child binds it. CI saw exactly that: a
  // broadcaster's internal API took the --http port just picked for the next broadcaster.
  constexpr int kFirst = 20000, kCount = 12000;
  static std::mutex mutex;
  static std::set<int> handed_out;
  static std::mt19937 random(std::random_device{}());
  std::lock_guard lock(mutex);
  int start = static_cast<int>(random() % kCount);
  for (int i = 0; i < kCount; ++i) {
    int port = kFirst + (start + i) % kCount;
    if (!handed_out.count(port) && can_bind(port)) {
      handed_out.insert(port);
      return port;
    }
  }
  throw std::runtime_error("cannot find a free port in 20000-31999");
}

Process::Process(const std::string& name, const std::vector<std::string>& args, const std::string& log_path,
                 const std::string& stdin_path, const std::string& cwd)
    : name_(name), log_path_(log_path), stdout_path_(log_path + ".stdout") {
  std::vector<std::string> argv_s{feedpipe_binary()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  // A child started from the main thread also dies with a test binary killed outright (a ctest
  // timeout); from another thread it cannot, since the death signal follows the forking thread.
  const bool from_main_thread = syscall(SYS_gettid) == getpid();
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int out = open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    if (!stdin_path.empty()) {
      int in = open(stdin_path.c_str(), O_RDONLY);
      if (in < 0) _exit(126);
      dup2(in, 0);
    }
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    setpgid(0, 0);
    if (from_main_thread && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)) _exit(126);
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  track(this, pid_);
}

Process::~Process() {
  if (running()) {
    kill(SIGTERM);
    if (wait_exit(std::chrono::seconds(15)) == -1 && running()) {
      kill(SIGKILL);
      wait_exit(std::chrono::seconds(5));
    }
  }
  untrack(this, pid_);
}

std::string Process::first_line(std::chrono::milliseconds timeout) { return first_line_of(stdout_path_, timeout); }

void Process::kill(int signal) {
  if (pid_ > 0 && !exited_) ::kill(pid_, signal);
}

bool Process::running() {
  if (exited_ || pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    status_ = status;
    return false;
  }
  return true;
}

int Process::wait_exit(std::chrono::milliseconds timeout) {
  if (!wait_until([&] { return !running(); }, timeout)) return -1;
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
}

std::string Process::log() const { return read_file(log_path_); }

std::string Process::output() const { return read_file(stdout_path_); }

namespace {

std::string rss_feed(int n, int items) {
  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>"
      << "<title>Feed " << n << "</title><link>http://example.test/" << n << "/</link>";
  for (int i = 0; i < items; ++i)
    out << "<item><title>Item " << i << " of feed " << n << "</title>"
        << "<link>http://example.test/" << n << "/items/" << i << "</link>"
        << "<guid>feed-" << n << "-item-" << i << "</guid>"
        << "<pubDate>Mon, " << (i % 28 + 1 < 10 ? "0" : "") << (i % 28 + 1) << " Jan 2024 10:00:00 GMT</pubDate>"
        << "<description>Summary &amp; text " << i << "</description></item>";
  out << "</channel></rss>";
  return out.str();
}

}  // namespace

FeedServer::FeedServer() {
  // Enough threads for every fetch of a test batch to be held in flight at once.
  server_.new_task_queue = [] { return new httplib::ThreadPool(512); };
  server_.Get(R"(/feed/(\d+)\.xml)", [this](const httplib::Request& req, httplib::Response& res) {
    const int ordinal = ++total_;
    {
      std::lock_guard lock(mu_);
      ++counts_[req.path];
    }
    for (int i = 0; (hold_ || ordinal > hold_after_) && i < 2000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_.load()));
    const std::string etag = "\"v1-" + std::string(req.matches[1]) + "\"";
    const std::string last_modified = "Mon, 01 Jan 2024 12:00:00 GMT";
    if (req.get_header_value("If-None-Match") == etag ||
        req.get_header_value("If-Modified-Since") == last_modified) {
      res.status = 304;
      return;
    }
    res.set_header("ETag", etag);
    res.set_header("Last-Modified", last_modified);
    // Five items, or ?items=N (at most 1000).
    const int items = req.has_param("items") ? std::clamp(std::atoi(req.get_param_value("items").c_str()), 0, 1000) : 5;
    res.set_content(rss_feed(std::stoi(req.matches[1]), items), "application/rss+xml");
  });
  port_ = bind_server(server_, "127.0.0.1", 0);
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  wait_until([this] { return server_.is_running(); }, std::chrono::seconds(5));
}

FeedServer::~FeedServer() {
  hold_requests(false);
  server_.stop();
  thread_.join();
}

std::string FeedServer::url(int n) const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/feed/" + std::to_string(n) + ".xml";
}

int FeedServer::requests(const std::string& path) {
  std::lock_guard lock(mu_);
  return counts_[path];
}

void FeedServer::hold_requests(bool hold) {
  hold_ = hold;
  if (!hold) hold_after_ = std::numeric_limits<int>::max();
}

void FeedServer::hold_requests_after(int n) { hold_after_ = total_ + n; }

bool wait_ready(int port, std::chrono::milliseconds timeout) {
  return wait_until([&] {
    int status = 0;
    get_json(port, "/readyz", &status);
    return status == 200;
  }, timeout);
}

::testing::AssertionResult run_migrate(const TempDir& dir, const std::string& db) {
  Process migrate("migrate", {"migrate", "--db", db}, dir.file("migrate.log"));
  if (migrate.wait_exit(std::chrono::seconds(20)) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "feedpipe migrate --db " << db << " did not exit 0 in 20 s:\n"
                                       << migrate.log();
}

std::unique_ptr<Process> start_standalone(const TempDir& dir, int port, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"standalone", "--http", "127.0.0.1:" + std::to_string(port), "--db",
                                dir.file("feedpipe.db")};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<Process>("standalone", args, dir.file("standalone.log"));
}

SseResult read_sse(int port, const std::string& path, std::chrono::milliseconds timeout,
                   const httplib::Headers& headers, size_t stop_after) {
  SseResult result;
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(timeout).count() + 1, 0);
  std::string buffer;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool stopped = false;
  httplib::Headers h = headers;
  h.emplace("Accept", "text/event-stream");
  auto res = client.Get(
      path, h,
      [&](const httplib::Response& r) {
        result.status = r.status;
        return true;
      },
      [&](const char* data, size_t len) {
        buffer.append(data, len);
        for (size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
          std::string frame = buffer.substr(0, end);
          buffer.erase(0, end + 2);
          SseEvent ev;
          std::string payload;
          bool has_data = false;
          std::istringstream lines(frame);
          for (std::string line; std::getline(lines, line);) {
            auto value = [&](size_t n) { return line.substr(line.size() > n && line[n] == ' ' ? n + 1 : n); };
            if (line.rfind("id:", 0) == 0) {
              ev.raw_id = value(3);
              ev.id = std::stoll(ev.raw_id);
            }
            else if (line.rfind("event:", 0) == 0) ev.event = value(6);
            else if (line.rfind("data:", 0) == 0) { payload += value(5); has_data = true; }
            else if (line.rfind("retry:", 0) == 0) {
              result.retry = value(6);
              ++result.retry_lines;
            }
          }
          if (has_data) {
            ev.data = nlohmann::json::parse(payload, nullptr, false);
            result.events.push_back(std::move(ev));
          }
          if (result.events.size() >= stop_after) {
            stopped = true;
            return false;
          }
        }
        return std::chrono::steady_clock::now() < deadline;
      });
  if (res) {
    result.status = res->status;
    result.closed_by_server = !stopped;
  }
  return result;
}

std::string submit_batch(int port, const std::vector<std::string>& feeds) {
  httplib::Client client("127.0.0.1", port);
  auto res = client.Post("/v1/batches", nlohmann::json{{"feeds", feeds}}.dump(), "application/json");
  EXPECT_TRUE(res);
  if (!res) return "";
  EXPECT_EQ(res->status, 202) << res->body;
  auto body = nlohmann::json::parse(res->body, nullptr, false);
  return body.is_object() ? body.value("batch_id", "") : "";
}

nlohmann::json get_json(int port, const std::string& path, int* status) {
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get(path);
  if (status) *status = res ? res->status : 0;
  if (!res) return nullptr;
  return nlohmann::json::parse(res->body, nullptr, false);
}

int64_t metric(int port, const std::string& name) {
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/metrics");
  if (!res || res->status != 200) return -1;
  auto at = res->body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stoll(res->body.substr(at + name.size() + 2));
}

void expect_complete_stream(const SseResult& stream, size_t total) {
  ASSERT_EQ(stream.events.size(), total + 1) << "expected every job event and batch.completed";
  std::set<int64_t> positions;
  for (size_t i = 0; i < stream.events.size(); ++i) {
    const auto& ev = stream.events[i];
    EXPECT_EQ(ev.id, static_cast<int64_t>(i + 1)) << "ids must be consecutive from 1";
    EXPECT_EQ(ev.data.value("seq", -1), ev.id);
    if (i < total) {
      EXPECT_TRUE(ev.event == "job.completed" || ev.event == "job.failed") << ev.event;
      positions.insert(ev.data.value("position", -1));
    }
  }
  EXPECT_EQ(positions.size(), total) << "each position exactly once";
  EXPECT_EQ(stream.events.back().event, "batch.completed");
  EXPECT_TRUE(stream.closed_by_server) << "the stream ends after batch.completed";
}

namespace {
std::string query_text(const std::string& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  std::string result = "?";
  if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(handle, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      result = text ? reinterpret_cast<const char*>(text) : "";
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(handle);
  return result;
}
}  // namespace

int query_int(const std::string& db, const std::string& sql) {
  std::string text = query_text(db, sql);
  return text.empty() || text == "?" ? -1 : std::stoi(text);
}

std::string integrity_check(const std::string& db) { return query_text(db, "PRAGMA integrity_check"); }

}  // namespace feedpipe::testing
