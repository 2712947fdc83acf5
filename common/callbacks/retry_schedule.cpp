#include "common/callbacks/retry_schedule.h"

#include <algorithm>
#include <random>

namespace feedpipe::callbacks {

int64_t uniform_random(int64_t lo, int64_t hi) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  if (hi <= lo) return lo;
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

int64_t retry_delay_cap_ms(const RetryPolicy& policy, int64_t attempts) {
  const int64_t min = std::max<int64_t>(1, policy.min.count());
  const int64_t max = std::max<int64_t>(min, policy.max.count());
  int64_t cap = min;
  for (int64_t i = 1; i < attempts && cap < max; ++i) cap = cap > max / 2 ? max : cap * 2;
  return std::min(cap, max);
}

RetryDecision next_attempt(const RetryPolicy& policy, int64_t created_at_ms, int64_t now_ms, int64_t attempts,
                           const UniformDraw& draw) {
  const int64_t deadline = created_at_ms + policy.max_age.count();
  if (now_ms >= deadline) return {true, 0};
  const int64_t min = std::max<int64_t>(1, policy.min.count());
  const int64_t cap = retry_delay_cap_ms(policy, std::max<int64_t>(1, attempts));
  const int64_t delay = std::clamp(draw(min, cap), min, cap);
  // The last attempt is at the deadline itself rather than never.
  return {false, std::min(now_ms + delay, deadline)};
}

}  // namespace feedpipe::callbacks
