// A bounded spin before a thread blocks on a condition variable: the hand-offs between the
// engine's thread and the executor's cost two futex wake-ups and two context switches per try
// otherwise, which on a virtual machine took more CPU than the try's commit (docs/benchmarks.md,
// fifth round). As Taskflow's executor does, a thread that runs out of work watches for more a
// little while before it sleeps; a waker that finds no sleeper makes no system call.
#pragma once

#include <chrono>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace dag::detail {

/// How long a thread that ran out of work watches for more before it blocks: about one scheduler
/// pass with its commit on a slow disk, so that a chain's next try or end arrives while it
/// watches. Spent once per transition to idle, never while idle, and only after short tries or
/// short waits (the callers decide: processes keep the CPU).
inline constexpr std::chrono::microseconds spin_before_sleep{200};

/// Returns true once `ready()` is true, false when `limit` passed first. `ready` is read without
/// a lock (an atomic): the caller takes its lock and checks again either way.
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::microseconds limit = spin_before_sleep) {
  if (limit <= std::chrono::microseconds::zero()) return ready();
  const auto until = std::chrono::steady_clock::now() + limit;
  for (unsigned i = 1;; ++i) {
    if (ready()) return true;
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
    // Now and then: the clock, and the CPU for another runnable thread (two CPUs are common).
    if (i % 64 == 0) {
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::yield();
    }
  }
}

}  // namespace dag::detail
