#pragma once
/// @file The executor seam: an engine is given an executor (the local pool, the PostgreSQL queue,
/// or a program's own), hands it the tries it decided to start, and records the ends it reports.
/// The executor runs; the engine records: nothing here knows of the store.

#include <cstdint>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/core/time.hpp>

namespace dag {

class write_attachment;  // dag/store/store.hpp

/// One try to run.
struct task_request {
  std::shared_ptr<const void> keep_alive;  ///< keeps the task's DAG alive while the try runs
  const task* definition = nullptr;        ///< the task (owned by what `keep_alive` holds)
  const operator_spec* op = nullptr;       ///< its operator
  task_context context;                    ///< ids, dates, rendered fields, log path, timeout
};

/// The field of a try whose fields could not be rendered: it holds why, and the try fails with
/// that message without running. It travels with the other fields (through the queue too).
inline constexpr std::string_view render_error_field = "__render_error";

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
  int map_index = -1;          ///< its task instance's map index (-1: not mapped)
  /// The try's `task_context::start_date`, handed back: which poke of a rescheduled sensor's try
  /// this end is of (the scheduler's clock; zero: not known, any poke)
  timestamp instance_start{};
  std::int64_t source = 0;     ///< the executor's own reference to where the end came from (the
                               ///< queue's row id), handed back with `executor::recorded`; 0: none
};

/// An end of the try `context` is of, before its outcome and times are known: its key, and its
/// start handed back (`instance_start`).
task_event event_of(const task_context& context);

/// Identifies one try.
struct try_id {
  std::string dag_id;   ///< its DAG
  std::string run_id;   ///< its run
  std::string task_id;  ///< its task
  int try_number = 0;   ///< which try
  int map_index = -1;   ///< which instance of a mapped task (-1: not mapped)
};

/// Receives try ends; called from executor threads, so it must be thread-safe.
using task_listener = std::function<void(task_event)>;

/// A try the store records as queued or running, as the engine shows it to its executor when it
/// looks for tries that were lost.
struct recorded_try {
  std::string dag_id;                   ///< its DAG
  std::string run_id;                   ///< its run
  std::string task_id;                  ///< its task
  int try_number = 0;                   ///< which try
  std::string hostname;                 ///< the host whose engine started it (empty: unknown)
  int pid = 0;                          ///< the process that started it (0: unknown)
  std::optional<timestamp> start_date;  ///< when it started
  int map_index = -1;                   ///< which instance of a mapped task (-1: not mapped)
};

/// Runs tries somewhere and reports each one's end to the listener it is connected to: at least
/// once (an end reported again, after a crash or an outage, is recognised by its try number and
/// ignored). Derive from it for an executor of your own: implement `submit`, `cancel_all` and
/// `drain`, and call `report` when a try ends (from any thread).
class executor {
public:
  virtual ~executor() = default;

  /// Connects the executor to whoever drives it: each try's end goes to `listener` (from any
  /// thread), and `now` stamps starts and ends with the driver's clock. An engine calls it when it
  /// is given the executor; it is called once, before the first `submit`. Throws dag::usage_error
  /// when the executor is connected already: an executor serves one engine.
  void connect(task_listener listener, std::function<timestamp()> now);

  /// The name task instances show for the tries it runs (Airflow's TaskInstance `executor`, which
  /// the REST API filters on): dagrun's own are `LocalExecutor` and `QueueExecutor`, after Airflow's
  /// class names. The default, "", shows as null (Airflow's "the default executor").
  virtual std::string name() const { return {}; }

  /// Starts a try; never blocks on the try itself. Throwing refuses the try: the engine fails
  /// it with the exception's message, so a `submit` that throws must not have kept the try (its
  /// end would be refused, and counted as a second end of a try in flight).
  virtual void submit(task_request request) = 0;
  /// Rows of the executor's own that the store may write in the transaction that records the
  /// starts of `starts` and the ends of `ends` (change_set::attachment): the queue's tries, and
  /// the acknowledgements of its ends, when the store is in the queue's database, so that a try is
  /// queued as its start is committed and an end forgotten as it is recorded. `submit` and
  /// `recorded` are still called as ever; nullptr (the default): nothing to attach.
  virtual std::shared_ptr<write_attachment> attachment_for(const std::vector<task_request>& starts,
                                                           std::span<const task_event> ends) {
    (void)starts;
    (void)ends;
    return nullptr;
  }
  /// Hands over what `submit` buffered (the queue executor enqueues a whole step at once).
  virtual void flush() {}
  /// Asks every running try to stop (their processes get SIGTERM, then SIGKILL after their grace).
  /// An executor that holds tries not yet started ends them without starting them, reported
  /// failed (the local executor does); the queue's cannot reach the tries its workers run.
  virtual void cancel_all() = 0;
  /// Asks one try to stop, as cancel_all does, or not to start when it has not yet; its end is
  /// reported either way. Nothing happens for a try the executor does not hold. The default does
  /// nothing: executors whose tries run elsewhere (the queue's workers) cannot reach them.
  virtual void cancel(const try_id& which) { (void)which; }
  /// Waits until every submitted try has reported its end.
  virtual void drain() = 0;

  /// Called on the driving thread once the store holds the ends in `events` (recorded now, or
  /// settled before: a repeat): an executor that keeps ends until then (the queue keeps each in
  /// its table, so that no crash between report and commit loses one) may forget them. An end
  /// that could not be recorded is not passed here and stays the executor's to report again.
  /// Must not throw: an end forgotten later is only reported again.
  virtual void recorded(const std::vector<task_event>& events) noexcept { (void)events; }

  /// Called on the driving thread with ends the store could not take yet: a pass that carried them
  /// failed, they arrived while the store was failing, or their DAG is not loaded. The engine
  /// keeps them in memory and records them in a later pass; an executor that can keep them where
  /// they outlive this process does so (the local executor's spool), until `recorded` says the
  /// store holds them. Returns why some are not kept that way (a full spool), else "". The default
  /// keeps nothing and says nothing: the queue keeps its ends in its table already. Must not throw.
  virtual std::string hold(const std::vector<task_event>& events) noexcept {
    (void)events;
    return {};
  }

  /// Tries in flight per DAG as the executor's own source of truth sees them (the queue, which
  /// several schedulers share), or nullopt when the engine's own count is exact: it counts the
  /// tries it submitted and the ends reported.
  virtual std::optional<std::map<std::string, int>> in_flight_by_dag() { return std::nullopt; }

  /// Of `tries`, which the store records as queued or running, which are lost: nothing runs them
  /// any more and their end will never be reported, so the engine records them as failed
  /// ("executor lost") and retries them. `hostname` is the name the engine records its tries
  /// under; `now` its clock. One flag per try. The default suits executors whose tries live in the
  /// engine's process: a try is lost when this host started it in a process that is gone, or in
  /// this one before any try was submitted (ask before starting runs); the process groups such a
  /// try left running (bash tasks) are ended, so that its retry never runs beside them.
  virtual std::vector<bool> lost(const std::vector<recorded_try>& tries, const std::string& hostname, timestamp now);

  /// How often the engine asks `lost` about every recorded try while it runs; nullopt (the
  /// default): only when asked to recover, because tries in this process are not lost while it
  /// lives. Executors whose tries run elsewhere can lose them at any time (the queue: a scheduler
  /// died between committing a try and enqueueing it).
  virtual std::optional<std::chrono::milliseconds> sweep_interval() const { return std::nullopt; }

protected:
  /// Called once `connect` has set the listener and the clock; an executor that reports ends it
  /// did not start itself (the queue collects other schedulers' tries) starts listening here.
  virtual void on_connect() {}
  /// Reports a try's end to the listener.
  void report(task_event e) const { listener_(std::move(e)); }
  /// The driver's clock (the system clock until connected).
  timestamp now() const { return now_(); }

private:
  task_listener listener_ = [](task_event) {};
  std::function<timestamp()> now_ = [] {
    return std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
  };
  bool connected_ = false;
};

}  // namespace dag
