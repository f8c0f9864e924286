#pragma once
/// @file How long to wait before the next try of a failed task (Airflow's rule).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <dag/core/time.hpp>

namespace dag {

/// The retry settings of one task, after `default_args` were applied.
struct retry_policy {
  int retries = 0;                           ///< tries after the first; 0 means no retry
  duration retry_delay = std::chrono::minutes(5);  ///< base delay between tries
  bool exponential_backoff = false;          ///< double the delay each try, with jitter
  duration max_retry_delay{0};               ///< cap on backoff delays; 0 means only the one-day ceiling
};

namespace detail {
/// FNV-1a over a string: a stable hash, the same on every platform and run.
constexpr std::uint64_t fnv1a(std::string_view text, std::uint64_t h = 14695981039346656037ull) {
  for (char ch : text) {
    h ^= static_cast<unsigned char>(ch);
    h *= 1099511628211ull;
  }
  return h;
}
}  // namespace detail

/// Airflow's ceiling on any backoff delay (`[core] max_task_retry_delay`, one day).
inline constexpr duration max_backoff_delay = std::chrono::hours(24);

/// The delay before try `next_try` (2 for the first retry) of a task, as Airflow computes it.
/// Without backoff: `retry_delay`, whatever `max_retry_delay` says. With backoff: for n = tries
/// failed so far and b = max(1 s, retry_delay·2^(n−1)), a deterministic value in [b, 2b) whose
/// jitter is a stable hash of `key` (dag, task, logical date) and the try, then capped by one day
/// and by `max_retry_delay` when that is set.
inline duration retry_delay_for(const retry_policy& p, int next_try, std::string_view key) {
  if (!p.exponential_backoff) return p.retry_delay;
  const int failed_tries = std::max(1, next_try - 1);
  // Doubling stops once past the one-day ceiling, so large try numbers cannot overflow.
  std::int64_t lower = std::max<std::int64_t>(0, p.retry_delay.count());
  for (int i = 1; i < failed_tries && lower > 0 && lower <= max_backoff_delay.count(); ++i) lower *= 2;
  lower = std::clamp<std::int64_t>(lower, 1, 2 * max_backoff_delay.count());
  const std::uint64_t h = detail::fnv1a(std::to_string(next_try), detail::fnv1a(key) ^ 0x9e3779b97f4a7c15ull);
  duration delay{lower + static_cast<std::int64_t>(h % static_cast<std::uint64_t>(lower))};
  delay = std::min(delay, max_backoff_delay);
  if (p.max_retry_delay.count() > 0) delay = std::min(delay, p.max_retry_delay);
  return delay;
}

}  // namespace dag
