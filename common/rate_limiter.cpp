#include "common/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace feedpipe {
namespace {
constexpr std::chrono::seconds kRefillWindow{60};  // an empty bucket is full again after this
}

RateLimiter::RateLimiter(long per_minute, size_t max_keys)
    : per_minute_(std::max(0L, per_minute)), max_keys_(std::max<size_t>(1, max_keys)) {}

size_t RateLimiter::tracked_keys() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

void RateLimiter::forget_idle(Clock::time_point now) {
  while (!lru_.empty() && now - lru_.back().last >= kRefillWindow) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

RateLimiter::Decision RateLimiter::acquire(const std::string& key, Clock::time_point now) {
  if (!enabled()) return {};
  const double capacity = static_cast<double>(per_minute_);
  const double per_second = capacity / 60.0;
  std::lock_guard lock(mu_);
  forget_idle(now);
  auto it = index_.find(key);
  if (it == index_.end()) {
    if (index_.size() >= max_keys_) {
      index_.erase(lru_.back().key);
      lru_.pop_back();
    }
    lru_.push_front(Bucket{key, capacity, now});
    it = index_.emplace(key, lru_.begin()).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second);  // most recently seen first
  }
  Bucket& b = *it->second;
  double elapsed = std::chrono::duration<double>(now - b.last).count();
  if (elapsed > 0) b.tokens = std::min(capacity, b.tokens + elapsed * per_second);
  b.last = std::max(b.last, now);
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return {true, 0};
  }
  double wait_s = (1.0 - b.tokens) / per_second;
  return {false, std::max(1, static_cast<int>(std::ceil(wait_s)))};
}

}  // namespace feedpipe
