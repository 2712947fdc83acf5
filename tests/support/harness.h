#pragma once
// Test support for integration tests: child processes of the feedpipe binary (ended by PID),
// a local feed server on 127.0.0.1, an SSE client, and waiting with a deadline. TempDir and
// TempDb are in temp_db.h.
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_db.h"

namespace feedpipe::testing {

// The whole file at `path` (empty when it cannot be read).
std::string read_file(const std::string& path);
// The first whole line (ended by a newline) of the file at `path`, once it has one (waits up to
// `timeout`); empty on timeout.
std::string first_line_of(const std::string& path, std::chrono::milliseconds timeout);

// A child process running the feedpipe binary. Its stderr goes to a log file, its stdout to the
// log file's name + ".stdout", its stdin comes from `stdin_path` (when given), it runs in `cwd`
// (when given); the destructor sends SIGTERM, then SIGKILL after a grace period, to this PID only.
// A test binary that crashes, is interrupted or exits kills its live children first; when a test
// fails, the last lines of each live child's log are printed.
class Process {
 public:
  Process(const std::string& name, const std::vector<std::string>& args, const std::string& log_path,
          const std::string& stdin_path = "", const std::string& cwd = "");
  ~Process();
  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  // First line the process printed on stdout (waits up to `timeout`); empty on timeout.
  std::string first_line(std::chrono::milliseconds timeout);
  void kill(int signal);
  // Waits for exit; returns the exit status (or -1 on timeout / signal).
  int wait_exit(std::chrono::milliseconds timeout);
  bool running();
  std::string log() const;     // stderr so far
  std::string output() const;  // stdout so far

 private:
  std::string name_, log_path_, stdout_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

std::string feedpipe_binary();
// A loopback port nothing listens on, outside the kernel's ephemeral range, not handed out before
// by this process.
int free_port();

// A feed server on 127.0.0.1: /feed/N.xml is a small RSS feed with a Last-Modified and ETag
// that honour conditional requests. Counts requests per path.
class FeedServer {
 public:
  FeedServer();
  ~FeedServer();
  int port() const { return port_; }
  std::string url(int n) const;
  int requests(const std::string& path);
  int total_requests() const { return total_.load(); }
  // While set, every request waits until released (or 20 s).
  void hold_requests(bool hold);
  // Answers the next `n` requests, then holds every later one until hold_requests(false).
  void hold_requests_after(int n);
  // Every answer waits this long first (a slow but healthy server).
  void set_delay(std::chrono::milliseconds delay) { delay_ms_ = static_cast<int>(delay.count()); }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::map<std::string, int> counts_;
  std::atomic<int> total_{0};
  std::atomic<bool> hold_{false};
  std::atomic<int> hold_after_{std::numeric_limits<int>::max()};
  std::atomic<int> delay_ms_{0};
};

// Waits until GET /readyz on 127.0.0.1:port answers 200.
bool wait_ready(int port, std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Runs `feedpipe migrate --db <db>` (its log in dir/migrate.log) and waits up to 20 s for it to
// exit 0; a failure carries the log. Use as ASSERT_TRUE(run_migrate(dir, db)).
::testing::AssertionResult run_migrate(const TempDir& dir, const std::string& db);

// Starts `feedpipe standalone` on 127.0.0.1:port with its database and log in `dir`, plus `extra`
// flags. Follow with wait_ready(port).
std::unique_ptr<Process> start_standalone(const TempDir& dir, int port, const std::vector<std::string>& extra);

struct SseEvent {
  int64_t id = 0;      // the id as a number (its leading digits)
  std::string raw_id;  // the id as sent (a stream of many batches sends a token)
  std::string event;
  nlohmann::json data;
};

// Reads an SSE stream until the server closes it, `stop_after` events arrived, or the timeout.
struct SseResult {
  std::vector<SseEvent> events;
  bool closed_by_server = false;
  int status = 0;
  std::string retry;
  int retry_lines = 0;  // a server that ends a stream on shutdown sends a second `retry:`
};
SseResult read_sse(int port, const std::string& path, std::chrono::milliseconds timeout,
                   const httplib::Headers& headers = {}, size_t stop_after = SIZE_MAX);

// POST /v1/batches with the given feeds; returns the batch id (fails the test otherwise).
std::string submit_batch(int port, const std::vector<std::string>& feeds);
nlohmann::json get_json(int port, const std::string& path, int* status = nullptr);
// A metric without labels from the process's /metrics, or -1 when it is absent or no answer came.
int64_t metric(int port, const std::string& name);

// The first column of the first row of `sql` on the SQLite file `db` (opened read-only), or -1.
int query_int(const std::string& db, const std::string& sql);
// PRAGMA integrity_check's answer: "ok" when the file is sound.
std::string integrity_check(const std::string& db);

// Asserts the usual stream invariants: ids 1..n strictly consecutive, each job event once,
// batch.completed last with id total+1.
void expect_complete_stream(const SseResult& stream, size_t total);

}  // namespace feedpipe::testing
