// Retry delays, per Airflow 2's TaskInstance.next_retry_datetime (airflow/models/taskinstance.py)
// and MAX_RETRY_DELAY (airflow/models/abstractoperator.py):
//
//   delay = self.task.retry_delay
//   if self.task.retry_exponential_backoff:
//       min_backoff = ceil(delay.total_seconds() * 2 ** (n - 1))   # n = tries failed so far
//       if min_backoff < 1: min_backoff = 1
//       modded_hash = min_backoff + ti_hash % min_backoff            # in [min_backoff, 2 * min_backoff)
//       delay = timedelta(seconds=min(modded_hash, MAX_RETRY_DELAY)) # [core] max_task_retry_delay, 24 h
//       if self.task.max_retry_delay: delay = min(self.task.max_retry_delay, delay)
//
// (2.x before 2.10 writes the exponent as try_number - 2 with try_number = the next try; 2.10 as
// try_number - 1 with try_number = the failed try: both are n - 1 here, n = next_try - 1.)

#include <dag/core/retry_policy.hpp>

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <climits>
#include <cstdint>
#include <string>
#include <string_view>

namespace doctest {
template <>
struct StringMaker<std::chrono::seconds> {
  static String convert(std::chrono::seconds d) { return (std::to_string(d.count()) + "s").c_str(); }
};
}  // namespace doctest

namespace {

using namespace std::chrono_literals;
using dag::duration;
using dag::retry_policy;

/// Airflow's default [core] max_task_retry_delay: the ceiling of any backoff delay.
constexpr duration airflow_max_task_retry_delay = 24h;

constexpr std::array<std::string_view, 6> keys{
    "example_dag#extract#2024-01-01T00:00:00+00:00", "example_dag#extract#2024-01-02T00:00:00+00:00",
    "example_dag#load#2024-01-01T00:00:00+00:00",    "other_dag#extract#2024-01-01T00:00:00+00:00",
    "a#b#c",                                         "",
};

retry_policy backoff(duration base, duration max_retry_delay = 0s) {
  retry_policy p;
  p.retries = 10;
  p.retry_delay = base;
  p.exponential_backoff = true;
  p.max_retry_delay = max_retry_delay;
  return p;
}

/// base·2^(n−1) with n = next_try − 1, written out for the tries the tests use.
duration min_backoff(duration base, int next_try) {
  std::int64_t factor = 1;
  for (int i = 2; i < next_try; ++i) factor *= 2;
  return duration{base.count() * factor};
}

}  // namespace

TEST_CASE("RetryPolicy.Defaults") {
  // Airflow: default_task_retries = 0, default_task_retry_delay = 300 s, no backoff, no max_retry_delay.
  const retry_policy p;
  CHECK(p.retries == 0);
  CHECK(p.retry_delay == 300s);
  CHECK_FALSE(p.exponential_backoff);
  CHECK(p.max_retry_delay == 0s);
  CHECK(dag::retry_delay_for(p, 2, keys[0]) == 300s);
}

TEST_CASE("RetryPolicy.NoBackoffConstantDelay") {
  for (duration base : {0s, 1s, 10s, 300s, duration{3600}, duration{86400 * 3}}) {
    retry_policy p;
    p.retries = 5;
    p.retry_delay = base;
    for (std::string_view key : keys) {
      for (int next_try = 2; next_try <= 20; ++next_try) {
        INFO("retry_delay=" << base.count() << "s next_try=" << next_try << " key='" << std::string(key) << "'");
        CHECK(dag::retry_delay_for(p, next_try, key) == base);
      }
    }
  }
}

TEST_CASE("RetryPolicy.BackoffWithinRange") {
  for (duration base : {1s, 2s, 7s, 60s, 300s}) {
    const retry_policy p = backoff(base);
    for (std::string_view key : keys) {
      for (int next_try = 2; next_try <= 8; ++next_try) {
        const duration lo = min_backoff(base, next_try);
        const duration delay = dag::retry_delay_for(p, next_try, key);
        INFO("retry_delay=" << base.count() << "s next_try=" << next_try << " key='" << std::string(key)
                            << "' expected in [" << lo.count() << "s, " << 2 * lo.count() << "s)");
        CHECK(delay >= lo);
        CHECK(delay < 2 * lo);
      }
    }
  }
}

TEST_CASE("RetryPolicy.BackoffFirstRetryOfOneSecondIsOneSecond") {
  // min_backoff = 1 → 1 + hash % 1 = 1, whatever the key.
  for (std::string_view key : keys) {
    INFO("key='" << std::string(key) << "'");
    CHECK(dag::retry_delay_for(backoff(1s), 2, key) == 1s);
  }
}

TEST_CASE("RetryPolicy.BackoffDeterministic") {
  const retry_policy p = backoff(300s);
  for (std::string_view key : keys) {
    for (int next_try = 2; next_try <= 8; ++next_try) {
      INFO("next_try=" << next_try << " key='" << std::string(key) << "'");
      const duration first = dag::retry_delay_for(p, next_try, key);
      CHECK(dag::retry_delay_for(p, next_try, key) == first);
      CHECK(dag::retry_delay_for(p, next_try, std::string(key)) == first);
      CHECK(dag::retry_delay_for(backoff(300s), next_try, key) == first);
    }
  }
}

TEST_CASE("RetryPolicy.BackoffJitterDependsOnKey") {
  const retry_policy p = backoff(300s);
  int tries_with_differing_delays = 0;
  for (int next_try = 2; next_try <= 8; ++next_try) {
    const duration reference = dag::retry_delay_for(p, next_try, keys[0]);
    bool differs = false;
    for (std::string_view key : keys) differs = differs || dag::retry_delay_for(p, next_try, key) != reference;
    if (differs) ++tries_with_differing_delays;
  }
  INFO("tries 2..8 where not every key got the same delay: " << tries_with_differing_delays);
  CHECK(tries_with_differing_delays > 0);
}

TEST_CASE("RetryPolicy.BackoffCappedByMaxRetryDelay") {
  const duration cap = 600s;
  const retry_policy p = backoff(300s, cap);
  for (std::string_view key : keys) {
    for (int next_try = 2; next_try <= 12; ++next_try) {
      const duration delay = dag::retry_delay_for(p, next_try, key);
      INFO("next_try=" << next_try << " key='" << std::string(key) << "'");
      CHECK(delay <= cap);
      if (next_try == 2) {
        CHECK(delay >= 300s);  // [300, 600): below the cap, untouched
      } else {
        CHECK(delay == cap);  // min_backoff ≥ 600: the cap wins
      }
    }
  }
}

// Airflow applies max_retry_delay only inside `if self.task.retry_exponential_backoff:`.
TEST_CASE("RetryPolicy.MaxRetryDelayIgnoredWithoutBackoff") {
  retry_policy p;
  p.retries = 3;
  p.retry_delay = 600s;
  p.max_retry_delay = 300s;
  for (int next_try = 2; next_try <= 4; ++next_try) {
    INFO("next_try=" << next_try);
    CHECK(dag::retry_delay_for(p, next_try, keys[0]) == 600s);
  }
}

// "delay_backoff_in_seconds = min(modded_hash, MAX_RETRY_DELAY)", MAX_RETRY_DELAY defaulting to 24 h,
// applies even when the task sets no max_retry_delay, and a larger max_retry_delay cannot lift it.
TEST_CASE("RetryPolicy.BackoffNeverExceedsOneDay") {
  for (duration max_retry_delay : {0s, duration{7 * 86400}}) {
    for (duration base : {300s, 3600s}) {
      const retry_policy p = backoff(base, max_retry_delay);
      for (int next_try = 2; next_try <= 30; ++next_try) {
        INFO("retry_delay=" << base.count() << "s max_retry_delay=" << max_retry_delay.count()
                            << "s next_try=" << next_try);
        const duration delay = dag::retry_delay_for(p, next_try, keys[0]);
        if (min_backoff(base, next_try) >= airflow_max_task_retry_delay) {
          CHECK(delay == airflow_max_task_retry_delay);
        } else {
          CHECK(delay <= airflow_max_task_retry_delay);
        }
      }
    }
  }
}

TEST_CASE("RetryPolicy.HugeTryNumbersDoNotOverflow") {
  for (duration base : {0s, 1s, 300s, duration{86400}, duration{365LL * 86400}}) {
    for (int next_try : {31, 32, 33, 63, 64, 65, 1000, 100000, INT_MAX - 1, INT_MAX}) {
      for (std::string_view key : keys) {
        INFO("retry_delay=" << base.count() << "s next_try=" << next_try << " key='" << std::string(key) << "'");
        const duration uncapped = dag::retry_delay_for(backoff(base), next_try, key);
        CHECK(uncapped >= 1s);
        // A zero retry_delay never grows (Airflow: min_backoff 0 is raised to 1 s on every try).
        CHECK(dag::retry_delay_for(backoff(base, 3600s), next_try, key) == (base == 0s ? 1s : 3600s));
      }
    }
  }
}

TEST_CASE("RetryPolicy.ZeroDelayWithBackoffAtLeastOneSecond") {
  const retry_policy p = backoff(0s);
  for (std::string_view key : keys) {
    for (int next_try = 2; next_try <= 8; ++next_try) {
      INFO("next_try=" << next_try << " key='" << std::string(key) << "'");
      CHECK(dag::retry_delay_for(p, next_try, key) >= 1s);
    }
  }
}

// min_backoff = ceil(0 * 2**k) = 0 → "if min_backoff < 1: min_backoff = 1" → 1 + hash % 1 = 1 s,
// for every try: the zero base is not doubled.
TEST_CASE("RetryPolicy.ZeroDelayWithBackoffIsOneSecondEveryTry") {
  const retry_policy p = backoff(0s);
  for (std::string_view key : keys) {
    for (int next_try = 2; next_try <= 8; ++next_try) {
      INFO("next_try=" << next_try << " key='" << std::string(key) << "'");
      CHECK(dag::retry_delay_for(p, next_try, key) == 1s);
    }
  }
}
