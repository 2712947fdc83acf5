#pragma once
// Fetches many feeds concurrently with one libcurl multi handle, driven by epoll. Not thread-safe except wakeup():
// one thread calls add() and poll(). Conditional GET, bounded size and time, retries with backoff.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/ip_network.h"

namespace feedpipe::fetcher {

struct FetchSettings {
  int max_in_flight = 256;             // transfers running at once; more are queued
  long connect_timeout_ms = 5000;
  long transfer_timeout_ms = 30000;    // one attempt, whole transfer
  long low_speed_bytes_per_s = 1024;   // abort below this rate ...
  long low_speed_window_s = 10;        // ... sustained for this long
  size_t max_body_bytes = 10 << 20;    // after decompression
  int max_redirects = 5;
  int max_host_connections = 32;       // transfers (so connections) to one host at once; more wait their turn
  // For transient failures: connect errors, resets, timeouts, an answer that has not begun within
  // the low-speed window, 5xx, 429.
  int max_attempts = 3;
  long retry_base_delay_ms = 500;      // exponential backoff with jitter
  long job_deadline_ms = 60000;        // nothing (retries, Retry-After) goes past this
  bool allow_private_networks = false; // SSRF guard off when true (tests)
  IpNetworks allow_networks;           // exceptions to the SSRF guard (an intranet's feed servers)
  std::string user_agent = "feedpipe/0.1 (+https://github.com/feedpipe)";
};

struct FetchRequest {
  uint64_t tag;
  std::string url;
  std::string etag;
  std::string last_modified;
};

enum class FetchStatus { ok, not_modified, failed };

struct FetchResult {
  uint64_t tag = 0;
  FetchStatus status = FetchStatus::failed;
  long http_status = 0;
  std::string body, final_url, etag, last_modified, content_type;  // content_type as sent (may carry charset)
  // failed: a clear reason, e.g. "HTTP 404 Not Found", "connect timeout after 5000 ms",
  // "body exceeds 10485760 bytes", "refused address 127.0.0.1 (loopback)", "no answer within 10 s"
  std::string error;
  int attempts = 0;
  std::chrono::milliseconds duration{0};  // whole job incl. retries
  std::optional<long> retry_after_s;      // failed with 429/503: the server's Retry-After, if any
};

class Fetcher {
 public:
  explicit Fetcher(FetchSettings settings);
  ~Fetcher();
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  void add(FetchRequest request);
  // Drives transfers for up to `timeout` (returns early when something finishes or wakeup() is called);
  // returns the fetches that reached a final result (after retries).
  std::vector<FetchResult> poll(std::chrono::milliseconds timeout);
  size_t pending() const;  // queued + running + waiting for a retry
  void wakeup();           // thread-safe: interrupts a poll() in progress

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace feedpipe::fetcher
