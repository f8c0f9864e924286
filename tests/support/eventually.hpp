#pragma once
// Waiting on a condition with a deadline: how tests with real processes synchronise.

#include <chrono>
#include <functional>
#include <thread>

namespace dag_test {

/// True once `condition` holds, checked every 20 ms; false when `limit` passes first.
inline bool eventually(const std::function<bool()>& condition, std::chrono::seconds limit = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

}  // namespace dag_test
