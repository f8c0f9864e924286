#pragma once
/// @file The queue executor: the scheduler's side of the PostgreSQL task queue. Tries are
/// enqueued a step at a time; a background thread collects finished tries (woken by NOTIFY) and
/// turns leases that stopped being renewed into failed tries ("worker lost").

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include <dag/exec/executor.hpp>
#include <dag/exec/task_queue.hpp>

namespace dag {

/// Sends tries to `dagrun worker`s through the queue in PostgreSQL at `url`.
class queue_executor final : public executor {
public:
  /// An executor over the queue at `url`, reporting to `listener`; a claimed try whose lease is
  /// not renewed within `lease` is lost.
  queue_executor(const std::string& url, task_listener listener, std::chrono::milliseconds lease);
  /// Stops collecting (tries keep running on workers; a restarted scheduler collects them).
  ~queue_executor() override;

  /// Buffers a try until `flush`.
  void submit(task_request request) override;
  /// Enqueues the buffered tries in one transaction.
  void flush() override;
  /// Remote tries cannot be cancelled from here; their workers stop them on their own shutdown.
  void cancel_all() override {}
  /// Waits until every enqueued try has been collected.
  void drain() override;
  /// Counts from the queue: with several schedulers, any of them may collect a try's end.
  std::optional<std::map<std::string, int>> in_flight_by_dag() override { return sender_->counts_by_dag(); }
  /// Every try the queue holds, whatever its state.
  std::set<std::tuple<std::string, std::string, std::string, int>> held_tries() override { return sender_->pending_keys(); }

private:
  void collect(std::stop_token stop);

  std::string url_;
  task_listener listener_;
  std::chrono::milliseconds lease_;
  std::unique_ptr<task_queue> sender_;   // used by the engine's thread only
  std::vector<queued_try> buffer_;
  std::mutex mutex_;
  std::condition_variable idle_;
  long long outstanding_ = 0;
  std::jthread collector_;
};

}  // namespace dag
