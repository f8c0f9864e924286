#pragma once
// What commands that touch state share: the store, the DAGs, an engine.

#include <atomic>
#include <functional>
#include <optional>
#include <memory>
#include <stop_token>
#include <thread>

#include <dag/engine/engine.hpp>
#include <dag/store/store.hpp>

#include "cli.hpp"

namespace dagrun {

/// The store named by --db (opened and migrated).
std::unique_ptr<dag::store> open_db(const invocation& inv);

/// Parses a --date/--start/--end value (UTC when it has no offset); usage error naming `flag`.
dag::time_point parse_flag_time(const invocation& inv, const char* flag);

/// Formats an optional timestamp as ISO-8601 (UTC), or "" when empty.
std::string iso(const std::optional<dag::timestamp>& t);

/// Every try of a task instance, in order: the recorded ones, plus the one still running (it has no
/// row of its own until it ends; its task instance knows its number and log).
std::vector<dag::try_record> tries_of(dag::store& db, const std::string& dag_id, const std::string& run_id,
                                      const std::string& task_id);

/// Which task instances a clear puts back to `none` (`tasks clear`, the API's clearTaskInstances).
struct clear_selection {
  std::string dag_id;                                   ///< the DAG
  std::optional<dag::time_point> logical_from;          ///< runs with logical dates from here
  std::optional<dag::time_point> logical_to;            ///< … up to here (included)
  std::function<bool(const std::string&)> task_matches; ///< which tasks; empty: all
  std::optional<std::string> run_id;                    ///< only this run
  bool failed_only = false;                             ///< only failed and upstream_failed instances
  bool dry_run = false;                                 ///< report, change nothing
};

/// Clears the selected task instances (their retries start over) and queues their runs again;
/// returns the (run id, task id) of every instance cleared.
std::vector<std::pair<std::string, std::string>> clear_task_instances(dag::store& db, const clear_selection& which);

/// Seconds between two timestamps, or nullopt when either is missing.
std::optional<double> seconds_between(const std::optional<dag::timestamp>& a, const std::optional<dag::timestamp>& b);

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

/// The DAGs of the invocation prepared for an engine: all of them, or only `dag_id`'s.
std::vector<dag::definition> engine_dags(const dag::dag_folder& folder, const std::string& dag_id = "");

/// Engine options from the invocation (logs folder) for a foreground command.
dag::engine_options foreground_options(const invocation& inv, int parallelism);
/// The executor of a foreground command (`run`, `backfill`): `parallelism` threads here.
std::unique_ptr<dag::executor> foreground_executor(int parallelism);

}  // namespace dagrun
