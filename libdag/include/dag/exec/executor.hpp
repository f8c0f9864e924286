#pragma once
/// @file The executor seam: the engine hands it tries to run; it reports each try's end.

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <memory>
#include <string>

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/store/store.hpp>

namespace dag {

/// One try to run.
struct task_request {
  std::shared_ptr<const void> keep_alive;  ///< keeps the task's DAG alive while the try runs
  const task* definition = nullptr;        ///< the task (owned by what `keep_alive` holds)
  const operator_spec* op = nullptr;       ///< its operator
  task_context context;                    ///< ids, dates, rendered fields, log path, timeout
};

/// The end of one try.
struct task_event {
  std::string dag_id;          ///< its DAG
  std::string run_id;          ///< its run
  std::string task_id;         ///< its task
  int try_number = 0;          ///< which try
  operator_result result;      ///< how it ended
  timestamp started{};         ///< when it started
  timestamp ended{};           ///< when it ended
  int pid = 0;                 ///< its process, if any
};

/// Runs tries somewhere and reports their ends through the listener given to it.
class executor {
public:
  virtual ~executor() = default;
  /// Starts a try; never blocks on the try itself.
  virtual void submit(task_request request) = 0;
  /// Asks every running try to stop (their processes get SIGTERM, then SIGKILL after their grace).
  virtual void cancel_all() = 0;
  /// Waits until every submitted try has reported its end.
  virtual void drain() = 0;
  /// Hands over what `submit` buffered (the queue executor enqueues a whole step at once).
  virtual void flush() {}
  /// Tries in flight per DAG as the executor's own source of truth sees them (the queue), or
  /// nullopt when the engine's own count is exact (in-process tries).
  virtual std::optional<std::map<std::string, int>> in_flight_by_dag() { return std::nullopt; }
  /// The tries (dag, run, task, try) this executor still holds although no process of ours runs
  /// them (the queue's rows); empty for in-process executors, whose tries die with the process.
  virtual std::set<std::tuple<std::string, std::string, std::string, int>> held_tries() { return {}; }
};

/// Receives try ends; called from executor threads, so it must be thread-safe.
using task_listener = std::function<void(task_event)>;

}  // namespace dag
