#pragma once
/// @file The queue executor: the scheduler's side of the PostgreSQL task queue. Tries are
/// enqueued a step at a time; a background thread collects finished tries (woken by NOTIFY) and
/// turns leases that stopped being renewed into failed tries ("worker lost"). An end stays in the
/// queue until the engine has recorded it (`recorded`), so a crash of the scheduler or of the
/// database between the two loses none; the engine ignores an end it already holds.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <dag/exec/executor.hpp>
#include <dag/exec/task_queue.hpp>

namespace dag {

/// The queue row that carries `request` to a worker: the context the scheduler built, as it is.
queued_try to_queued_try(const task_request& request);
/// The context a claimed try arrives with (the inverse of to_queued_try). The worker completes it
/// for its own process (see finish_try_context in dag/engine/try_context.hpp).
task_context to_task_context(const queued_try& item);

/// Sends tries to `dagrun worker`s through the queue in PostgreSQL at `url`.
class queue_executor final : public executor {
public:
  /// An executor over the queue at `url` (connected to now); a claimed try whose lease is not
  /// renewed within `lease` is lost.
  queue_executor(const std::string& url, std::chrono::milliseconds lease);
  /// Stops collecting (tries keep running on workers; a restarted scheduler collects them).
  ~queue_executor() override;

  /// `QueueExecutor`: tries go through the PostgreSQL queue to `dagrun worker`s.
  std::string name() const override { return "QueueExecutor"; }
  /// The step's tries, queued in the store's transaction that records their starts, and the ends
  /// it records, deleted from the queue in that transaction, when the store is a PostgreSQL store
  /// on the queue's database, with its role and session options (as `schedule --executor queue`
  /// has them, both from `--db`): no durable commit of the executor's own in a step, and no window
  /// between a start's commit and its try's enqueue. With any other store, and for a try whose key
  /// the queue holds still, `flush` sends them.
  std::shared_ptr<write_attachment> attachment_for(const std::vector<task_request>& starts,
                                                   std::span<const task_event> ends) override;
  /// Buffers a try until `flush`, unless the store's write queued it already.
  void submit(task_request request) override;
  /// Enqueues the buffered tries and acknowledges the recorded ends in one transaction; when that
  /// fails they stay buffered (the tries held, for `lost`) and go with the next flush.
  void flush() override;
  /// Acknowledges the ends in the queue, which kept them until now: with the next `flush`, which
  /// the engine calls at the end of the same step, unless the store's write deleted them already.
  void recorded(const std::vector<task_event>& events) noexcept override;
  /// Remote tries cannot be cancelled from here; their workers stop them on their own shutdown.
  void cancel_all() override {}
  /// Waits until every enqueued try has been collected.
  void drain() override;
  /// Counts from the queue: with several schedulers, any of them may collect a try's end.
  std::optional<std::map<std::string, int>> in_flight_by_dag() override { return sender_->counts_by_dag(); }
  /// A try is lost when neither the queue (in any state) nor this executor's unsent buffer holds
  /// it and it started more than a lease ago: a younger one may be between another scheduler's
  /// commit and its enqueue.
  std::vector<bool> lost(const std::vector<recorded_try>& tries, const std::string& hostname, timestamp now) override;
  /// Every lease: a scheduler may die between committing a try and enqueueing it at any time.
  std::optional<std::chrono::milliseconds> sweep_interval() const override { return lease_; }

private:
  /// The worker that reported an end, and the queue its try came from.
  struct end_worker {
    std::string worker;
    std::string queue;
  };

  void on_connect() override;
  void collect(std::stop_token stop);
  /// Names, for tries of `tries`, the workers of the ends `ends` (row ids) to push them to.
  void push_to_workers(std::vector<queued_try>& tries, const std::vector<std::int64_t>& ends);

  std::string url_;
  std::string database_;  // where the queue is, as a store compares it with its own (detail::queue_database)
  std::chrono::milliseconds lease_;
  std::unique_ptr<task_queue> sender_;   // used by the engine's thread only
  std::vector<queued_try> buffer_;
  std::set<try_key> queued_with_store_;  // tries the store's last write queued, until submitted (engine thread)
  std::vector<std::int64_t> acknowledged_;  // row ids of recorded ends, sent with the next flush
  std::set<std::int64_t> acknowledged_with_store_;  // ends the store's last write deleted, until `recorded` (engine thread)
  std::mutex mutex_;
  std::map<std::int64_t, end_worker> end_workers_;  // by the end's row id, until a step records it (mutex_)
  std::set<try_key> mine_;  // tries this executor queued whose ends it has not reported (mutex_): drain waits for none
  // Ends handed on from their notices, by row id, with when (mutex_): until a take returns them
  // (skipped), a step acknowledges them, or a lease passes (collect).
  std::map<std::int64_t, std::chrono::steady_clock::time_point> handed_from_notices_;
  std::condition_variable idle_;  // notified when mine_ becomes empty
  std::jthread collector_;
};

}  // namespace dag
