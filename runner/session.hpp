#pragma once
// What commands that touch state share: the store, the DAGs, an engine.

#include <atomic>
#include <functional>
#include <optional>
#include <memory>
#include <stop_token>
#include <thread>

#include <dag/engine/engine.hpp>
#include <dag/model/operations.hpp>
#include <dag/store/store.hpp>

#include <dag/runner/cli.hpp>

namespace dagrun {

/// The store named by --db (opened and migrated).
std::unique_ptr<dag::store> open_db(const invocation& inv);

/// Parses a --date/--start/--end value (UTC when it has no offset); usage error naming `flag`.
dag::time_point parse_flag_time(const invocation& inv, const char* flag);

/// The `--start`/`--end` pair of the invocation, each optional; a usage error when both are
/// given and the end is before the start.
std::pair<std::optional<dag::time_point>, std::optional<dag::time_point>> flag_range(const invocation& inv);

/// The integer flag `--flag` (it must have a value or a default), within [low, high]: a usage
/// error naming the flag otherwise (a huge --parallelism would start that many threads).
int bounded_flag(const invocation& inv, const char* flag, int low, int high);

/// Prints a run's task instances as a table: task_id, then the `columns` `cells` gives for each.
/// As Airflow's `tasks states-for-dag-run`, a map_index column follows task_id when any instance
/// is of a mapped task (empty for the others).
void print_task_instances(std::ostream& out, const std::vector<dag::task_instance_record>& tis,
                          const std::vector<std::string>& columns,
                          const std::function<std::vector<std::string>(const dag::task_instance_record&)>& cells);

/// The most tries at once a process runs itself (--parallelism of a local executor,
/// --concurrency of a worker): each is a thread.
inline constexpr int max_threads = 1024;
/// The most tries at once the daemon hands to queue workers (--parallelism, --executor queue).
inline constexpr int max_queued_parallelism = 100000;
/// `schedule --parallelism` when not given: the local executor's threads (Airflow's default), and
/// the tries the daemon keeps in the queue: rows, not threads, so enough for every worker's free
/// slots to be filled by one claim each (the workers' --concurrency bounds what runs).
inline constexpr int default_local_parallelism = 32;
inline constexpr int default_queued_parallelism = 4096;
/// `worker --concurrency` when not given: slots per CPU of the worker's machine (at least 16). A
/// slot is a thread that mostly waits (on a child process, or nothing for a callable), and the
/// slots are also the most one claim takes: one commit for that many tries.
inline constexpr int worker_slots_per_cpu = 32;
int default_worker_concurrency();
/// Bounds of the time flags: --grace (seconds) and --lease-ms.
inline constexpr int max_grace_seconds = 24 * 3600;
inline constexpr int min_lease_ms = 100, max_lease_ms = 24 * 3600 * 1000;

}  // namespace dagrun

namespace dagrun {

/// While alive, SIGINT and SIGTERM request `token()`'s stop instead of killing the process.
/// Create it before any thread, so every thread inherits the blocked signals.
class stop_on_signals {
public:
  stop_on_signals();
  ~stop_on_signals();
  stop_on_signals(const stop_on_signals&) = delete;
  stop_on_signals& operator=(const stop_on_signals&) = delete;
  /// Requested when a signal arrives.
  std::stop_token token() const { return source_.get_token(); }
  /// The signal that arrived, 0 if none.
  int signal() const { return signal_.load(); }

private:
  std::stop_source source_;
  std::atomic<int> signal_{0};
  std::jthread waiter_;
};

/// The DAGs of the invocation for an engine: all of them, or only `dag_id`'s (shared, not copied).
std::vector<dag::shared_definition> engine_dags(const dag::dag_folder& folder, const std::string& dag_id = "");

/// Engine options from the invocation (logs folder) for a foreground command.
dag::engine_options foreground_options(const invocation& inv, int parallelism);
/// Alert settings every engine of the runner shares: log links under `DAGRUN_BASE_URL`, and a
/// failing notifier reported as a warning in dagrun's log.
void set_alert_options(dag::engine_options& o);
/// The executor of a foreground command (`run`, `backfill`): `parallelism` threads here.
std::unique_ptr<dag::executor> foreground_executor(int parallelism);

}  // namespace dagrun
