#pragma once
// A token-bucket rate limiter keyed by client (a token's key, an IP address): each key may spend
// `per_minute` requests at once, and regains one every 60/per_minute seconds.
//
// Memory is bounded: keys are kept in least-recently-seen order; a key idle for a whole minute
// has a full bucket again, which is what a new key gets, so it is forgotten (checked on every
// call, amortized O(1)); beyond `max_keys` the least recently seen key is forgotten as well.
// Thread-safe (one mutex; each call is O(1)).
//
//   RateLimiter limiter(30, 100000);   // 30 per minute per key
//   auto d = limiter.acquire(client);  // d.allowed, else answer 429 with Retry-After: d.retry_after_s
#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace feedpipe {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  struct Decision {
    bool allowed = true;
    int retry_after_s = 0;  // when refused: whole seconds until one request is allowed again, ≥ 1
  };

  // per_minute == 0 disables the limiter (every request allowed, nothing stored).
  RateLimiter(long per_minute, size_t max_keys);

  bool enabled() const { return per_minute_ > 0; }
  Decision acquire(const std::string& key) { return acquire(key, Clock::now()); }
  Decision acquire(const std::string& key, Clock::time_point now);
  size_t tracked_keys() const;

 private:
  struct Bucket {
    std::string key;
    double tokens = 0;
    Clock::time_point last;  // last refill (= last seen)
  };
  void forget_idle(Clock::time_point now);

  long per_minute_;
  size_t max_keys_;
  mutable std::mutex mu_;
  std::list<Bucket> lru_;  // most recently seen first
  std::unordered_map<std::string, std::list<Bucket>::iterator> index_;
};

}  // namespace feedpipe
