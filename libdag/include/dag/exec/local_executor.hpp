#pragma once
/// @file The local executor: tries run on a pool of threads in this process; bash tasks as child
/// processes in their own process groups, C++ callables in-process.

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <dag/exec/executor.hpp>

namespace dag {

/// Runs tries on `threads` worker threads (the daemon's parallelism).
class local_executor final : public executor {
public:
  /// A pool of `threads` workers reporting to `listener`; `now` stamps try starts and ends.
  local_executor(int threads, task_listener listener, std::function<timestamp()> now);
  /// Stops the pool; running tries are cancelled and waited for.
  ~local_executor() override;
  local_executor(const local_executor&) = delete;
  local_executor& operator=(const local_executor&) = delete;

  /// Queues a try; `flush` wakes threads for it.
  void submit(task_request request) override;
  /// Wakes as many threads as tries were queued since the last flush.
  void flush() override;
  /// Requests every queued and running try to stop.
  void cancel_all() override;
  /// Waits until nothing is queued or running.
  void drain() override;

private:
  void work(std::stop_token pool_stop);
  task_event run_one(task_request& request, std::stop_token stop);

  task_listener listener_;
  std::function<timestamp()> now_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::condition_variable idle_;
  std::deque<task_request> queue_;
  int busy_ = 0;
  std::size_t unannounced_ = 0;
  std::stop_source cancel_;
  std::vector<std::jthread> threads_;
};

}  // namespace dag
