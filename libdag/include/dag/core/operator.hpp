#pragma once
/// @file The operator concept: what an operator declares (its fields) and what a try returns.

#include <concepts>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <stop_token>
#include <vector>

#include <unistd.h>

#include <dag/core/connection.hpp>
#include <dag/core/time.hpp>

namespace dag {

struct task;
class store;
class definition;

/// What a metadata job sees: the store and the DAGs the scheduler has, on the scheduler's thread.
struct metadata_view {
  store& db;                                     ///< the metadata store (use it only inside the job)
  const std::vector<std::shared_ptr<const definition>>& dags;  ///< the DAG definitions the scheduler schedules now
  /// Asks the scheduler to advance a run the job created or cleared (when it would not adopt it by itself).
  std::function<void(const std::string& dag_id, const std::string& run_id)> track;
};
/// A piece of work on the metadata that a try hands to the scheduler (see task_context::metadata).
using metadata_job = std::function<void(metadata_view&)>;

/// How an operator field's text is read and checked at load time.
enum class field_kind {
  text,        ///< plain text, never templated
  templated,   ///< text rendered with macros (`{{ ds }}`) at run time; checked at load time
  boolean,     ///< `true` / `false`
  integer,     ///< a whole number
  time_span,   ///< a duration: `90s`, `30m`, `1h30m`, …
  string_map,  ///< a YAML mapping of text to (templated) text, e.g. HTTP headers
  string_list, ///< a YAML sequence of (templated) text, e.g. SQL parameters
};

/// How one try of a task ended, or (`rescheduled`) paused: a sensor in `mode: reschedule` whose
/// condition is not met yet ends this execution and asks to run again later as the same try.
enum class try_outcome { success, failed, skipped, rescheduled };

/// The result of running an operator once: a value, never an exception escaping the engine.
struct operator_result {
  try_outcome outcome = try_outcome::success;  ///< success, failed or skipped
  std::string message;                         ///< why it failed or was skipped
  std::optional<std::string> xcom;             ///< value pushed to XCom under `return_value`
  int exit_code = 0;                           ///< process exit status where there is one
  duration reschedule_after{0};                ///< `rescheduled`: how long until the next execution
  std::map<std::string, std::string> keyed_xcoms;  ///< values pushed under other keys (Airflow's `ti.xcom_push`)

  /// A successful try, optionally pushing `xcom`.
  static operator_result success(std::optional<std::string> xcom = std::nullopt) {
    return {try_outcome::success, {}, std::move(xcom), 0, {}, {}};
  }
  /// A failed try with its reason.
  static operator_result failed(std::string message, int exit_code = 1) {
    return {try_outcome::failed, std::move(message), std::nullopt, exit_code, {}, {}};
  }
  /// A skipped task with its reason.
  static operator_result skipped(std::string message = "skipped") {
    return {try_outcome::skipped, std::move(message), std::nullopt, 99, {}, {}};
  }
  /// Gives the slot back and runs this try again after `after` (a sensor in reschedule mode).
  static operator_result reschedule(duration after, std::string message = "rescheduled") {
    return {try_outcome::rescheduled, std::move(message), std::nullopt, 0, after, {}};
  }
};

/// What a running try sees: identifiers, dates and its rendered fields.
struct task_context {
  std::string dag_id;                          ///< the DAG
  std::string task_id;                         ///< the task
  std::string run_id;                          ///< the run, e.g. `scheduled__2024-01-01T00:00:00+00:00`
  time_point logical_date;                     ///< the run's logical date
  time_point data_interval_start;              ///< the run's interval start
  time_point data_interval_end;                ///< the run's interval end
  int try_number = 1;                          ///< 1 for the first try
  int map_index = -1;                          ///< a mapped task's instance (dynamic task mapping), -1 when not mapped
  /// Time since this try's first execution began: nonzero when the try was rescheduled (a sensor
  /// in reschedule mode counts its `timeout` from its first poke).
  std::chrono::microseconds waited{0};
  /// When the scheduler started this try (its task instance's start date; for a rescheduled
  /// sensor, this poke's): executors hand it back with the try's end, which tells the end of an
  /// earlier poke of the same try from the running poke's. Zero where no scheduler set it.
  timestamp start_date{};
  std::map<std::string, std::string> fields;   ///< operator fields, templates rendered
  std::map<std::string, std::string> params;   ///< the run's params (DAG params with conf over them)
  /// Variables for the try's child processes besides the `DAGRUN_*` ones, which try_environment
  /// adds over them.
  std::map<std::string, std::string> environment;
  std::filesystem::path log_path;              ///< this try's log file
  std::optional<std::chrono::milliseconds> timeout;  ///< execution_timeout, enforced by the operator's process or the engine
  std::stop_token stop;                        ///< requested when the try must stop (timeout, shutdown)
  /// Looks a connection up by id (environment first, then the store); nullopt when undefined.
  std::function<std::optional<connection>(std::string_view)> connection_lookup = {};
  /// Appends a line to this try's log (in-process operators; processes write the file themselves).
  /// Secrets are masked on the way.
  std::function<void(std::string_view)> log = {};
  /// Values this try must never write to its log: the passwords of its connections and the
  /// secret-looking variables its templates read. Logs show them as `***`.
  std::vector<std::string> secrets = {};
  /// The scheduler's clock (injected in tests): time sensors read "now" from it. Null: the system clock.
  const dag::clock* time_source = nullptr;
  /// Runs a job on the metadata store from the try's thread: the scheduler runs it on its own
  /// thread between passes (the store is used by one thread at a time) and returns once it ran;
  /// false, without running it, when the stop token it is given (the try's) is requested first. Exceptions the job
  /// throws come back to the caller. Empty where no scheduler is at hand (a queue worker):
  /// operators that need it (external_task_sensor, trigger_dagrun) fail saying so.
  std::function<bool(const metadata_job&, std::stop_token)> metadata = {};
};

/// The environment a try's child process gets on top of its parent's: `ctx.environment`, with
/// `DAGRUN_DAG_ID`, `DAGRUN_TASK_ID`, `DAGRUN_RUN_ID`, `DAGRUN_LOGICAL_DATE`, `DAGRUN_TRY_NUMBER`,
/// `DAGRUN_MAP_INDEX` (a mapped instance only) and `DAGRUN_OWNER_PID` over it. The owner is this
/// process, which runs the try: recovery and workers find the processes of a dead owner by it, so
/// no entry of `ctx.environment` may name another (a queue row an older scheduler wrote carries its
/// own pid there). Made when a process is started, not with every try's context: most tries start
/// none. Inline: a C++ DAG library's callables link only dag::core and dag::schedule.
inline std::map<std::string, std::string> try_environment(const task_context& ctx) {
  std::map<std::string, std::string> out = ctx.environment;
  out["DAGRUN_DAG_ID"] = ctx.dag_id;
  out["DAGRUN_TASK_ID"] = ctx.task_id;
  out["DAGRUN_RUN_ID"] = ctx.run_id;
  out["DAGRUN_LOGICAL_DATE"] = format_iso(ctx.logical_date);
  out["DAGRUN_TRY_NUMBER"] = std::to_string(ctx.try_number);
  out["DAGRUN_OWNER_PID"] = std::to_string(::getpid());
  if (ctx.map_index >= 0) out["DAGRUN_MAP_INDEX"] = std::to_string(ctx.map_index);
  else out.erase("DAGRUN_MAP_INDEX");
  return out;
}

/// Whether boolean field `name` of a try is set to true (`true` or `True`, as the load-time check
/// accepts); false when absent.
inline bool field_is_true(const task_context& ctx, const std::string& name) {
  auto it = ctx.fields.find(name);
  return it != ctx.fields.end() && (it->second == "true" || it->second == "True");
}

/// What a task's successful try decides for its downstream tasks (Airflow's branching operators).
enum class flow_rule {
  none,           ///< nothing: downstream tasks follow their trigger rules
  branch,         ///< the XCom names the task ids (or group ids) to follow; other direct downstream tasks are skipped
  short_circuit,  ///< a falsy XCom skips the downstream tasks
  latest_only,    ///< outside the latest scheduled run, direct downstream tasks are skipped
};

/// One field an operator accepts.
struct field_spec {
  std::string name;           ///< YAML key
  field_kind kind;            ///< how the value is read
  bool required = false;      ///< must be present
  std::vector<std::string> choices = {};  ///< allowed values of a text field; empty = any
  /// Airflow's `template_ext` for a templated field: a value ending in one of these (`.sh`,
  /// `.sql`) names a template file, read at load time from the DAG's template search path.
  std::vector<std::string> template_ext = {};
};

/// What an operator declares about itself for loading and validation.
struct operator_spec {
  std::string name;               ///< the `operator:` value in YAML
  std::vector<field_spec> fields; ///< accepted fields
  bool yaml = true;               ///< can be used from YAML (false for C++ `callable`)
  /// Runs one try; empty for operators this build can validate but not run yet.
  std::function<operator_result(const task&, task_context&)> run = {};
  flow_rule flow = flow_rule::none;  ///< the flow rule of its tasks (`latest_only`, `branch_day_of_week`)
  /// What a field's kind cannot say (a status code, a JSON pointer): given a field's name and its
  /// value (each item of a list), why the value is wrong, or nullopt. Called at load time for
  /// fields that are not templated; empty checks nothing more.
  std::function<std::optional<std::string>(std::string_view field, std::string_view value)> check_value = {};
};

/// An operator: a type whose `spec()` declares its fields and, once runnable, its `run`.
template <class T>
concept dag_operator = requires {
  { T::spec() } -> std::convertible_to<operator_spec>;
};

}  // namespace dag
