#pragma once
/// @file The local executor: tries run on a pool of threads in this process; bash tasks as child
/// processes in their own process groups, C++ callables in-process.

#include <condition_variable>
#include <deque>
#include <map>
#include <string>
#include <mutex>
#include <thread>
#include <vector>

#include <dag/exec/executor.hpp>

namespace dag {

/// Runs one try on this thread, as the local executor and `dagrun test` do. A try whose fields
/// could not be rendered, or whose operator cannot run in this build, fails without running; an
/// exception escaping the operator fails it with its message; an in-process operator that overran
/// `execution_timeout` fails when it returns. Lines the try writes through `context.log` (set it
/// to the raw sink) and the result's message have the try's secrets masked. `now` stamps the
/// start and the end.
task_event run_try(task_request& request, const std::function<timestamp()>& now);

/// Runs tries on `threads` worker threads (the daemon's parallelism), in this process.
class local_executor final : public executor {
public:
  /// A pool of `threads` workers (at least 1).
  explicit local_executor(int threads);
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
  /// Stops one running try, or takes it off the queue (reporting it failed) before it starts.
  void cancel(const try_id& which) override;
  /// Waits until nothing is queued or running.
  void drain() override;

private:
  void work(std::stop_token pool_stop);

  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::condition_variable idle_;
  std::deque<task_request> queue_;
  int busy_ = 0;
  std::size_t unannounced_ = 0;
  std::stop_source cancel_;
  std::map<std::string, std::stop_source> running_;  // each running try's own stop, by try_text
  std::vector<std::jthread> threads_;
};

}  // namespace dag
