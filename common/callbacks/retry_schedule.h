#pragma once
// When a failed callback is tried again (DESIGN.md, Callbacks): the first retry `min` after the
// first attempt, then each delay drawn uniformly (full jitter) between `min` and a cap that
// doubles with each attempt, up to `max`; no attempt starts later than `max_age` after the
// callback was created, and one that fails at or past that age gives up (status failed).
// Pure: the clock and the random draw are the caller's.
#include <chrono>
#include <cstdint>
#include <functional>

namespace feedpipe::callbacks {

struct RetryPolicy {
  std::chrono::milliseconds min{1000};               // --callback-retry-min-ms
  std::chrono::milliseconds max{3600 * 1000};        // --callback-retry-max-ms
  std::chrono::milliseconds max_age{24 * 3600 * 1000};  // --callback-max-age
};

// A uniform draw in [lo, hi] (both included).
using UniformDraw = std::function<int64_t(int64_t lo, int64_t hi)>;
// std::mt19937_64 seeded from std::random_device, one per thread.
int64_t uniform_random(int64_t lo, int64_t hi);

// The cap of the delay after `attempts` failed attempts (1, 2, …): min·2^(attempts−1), at most max.
int64_t retry_delay_cap_ms(const RetryPolicy& policy, int64_t attempts);

struct RetryDecision {
  bool give_up = false;            // too old: the callback is failed for good
  int64_t next_attempt_at_ms = 0;  // otherwise: when to try again
};

// After the `attempts`-th attempt (counting it) failed at `now_ms`, for a callback created at
// `created_at_ms`.
RetryDecision next_attempt(const RetryPolicy& policy, int64_t created_at_ms, int64_t now_ms, int64_t attempts,
                           const UniformDraw& draw = uniform_random);

}  // namespace feedpipe::callbacks
