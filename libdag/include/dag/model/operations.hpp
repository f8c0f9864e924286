#pragma once
/// @file Domain operations on the metadata: trigger, clear, mark success/failed, pause, and the
/// look-ups listings need. One place each, used alike by the CLI, the REST API, the web UI and
/// embedding programs (as Airflow's `clear_task_instances` and `set_state` serve its CLI, API and UI).
///
/// Every write is one all-or-nothing change set (one transaction) of compare-and-set updates, so
/// an operation racing the scheduler never overwrites a newer state nor applies in part: when the
/// scheduler moved the run on between the operation's read and its write, nothing is written and
/// the operation reads and tries again (dag::conflict_error after a few attempts). A run an operation
/// changes goes back to `queued`: that is how a scheduler learns that a run it tracks was changed
/// behind its back (its own next write to the run loses, and it reloads the run) and how a
/// finished run is taken up again.

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/states.hpp>
#include <dag/core/time.hpp>
#include <dag/store/store.hpp>

namespace dag {

/// One task instance, by its keys (what an operation changed or would change).
struct task_instance_ref {
  std::string dag_id;   ///< its DAG
  std::string run_id;   ///< its run
  std::string task_id;  ///< its task
  int map_index = -1;   ///< its map index (-1: not mapped)
  friend bool operator==(const task_instance_ref&, const task_instance_ref&) = default;
};

/// The deepest nesting of arrays and objects a run's `conf` may have: deeper documents are
/// refused before they are parsed, so no request can exhaust the parser's stack.
inline constexpr int max_conf_depth = 64;
/// The largest `conf` accepted, in bytes.
inline constexpr std::size_t max_conf_bytes = 1024 * 1024;

/// Checks that `conf` is a JSON object within the bounds above and returns it compacted; throws
/// dag::usage_error saying what is wrong, prefixed with `what` (e.g. "--conf", "conf").
std::string checked_conf(const std::string& conf, const std::string& what = "conf");

/// checked_conf, and then, when `dag` lets a run's conf override its params
/// (definition::conf_overrides_params), each value in `conf` named like a typed param checked
/// against the param's schema, as Airflow's Param checks at trigger time; other keys are the run's
/// own (`dag_run.conf`). What every run created from a user's conf goes through (trigger_run,
/// `dagrun run --conf`). Throws dag::usage_error naming the param, prefixed with `what`.
std::string checked_conf(const definition& dag, const std::string& conf, const std::string& what = "conf");

/// Creates a manual run of `dag` at `logical_date` with `conf` (checked with checked_conf against
/// `dag`'s typed params) and
/// `note` (Airflow's note on a run, "" for none); nullopt when a run with that id already exists.
/// The run is `queued`: a scheduler starts it. Its id is `run_id`, or when empty Airflow's
/// `manual__<logical date>`.
std::optional<run_record> trigger_run(store& s, const definition& dag, time_point logical_date,
                                      const std::string& conf = "{}", const std::string& note = "",
                                      const std::string& run_id = "");

/// Pauses or unpauses a DAG (paused DAGs get no scheduled runs, and their runs start no tries).
void set_paused(store& s, const std::string& dag_id, bool paused);

/// Every try of a task instance, oldest first, the one it is on included (store::tries).
std::vector<try_record> tries_of(store& s, const std::string& dag_id, const std::string& run_id,
                                 const std::string& task_id, int map_index = -1);

/// Try `try_number` of a task instance (one of tries_of), if it exists.
std::optional<try_record> find_try(store& s, const std::string& dag_id, const std::string& run_id,
                                   const std::string& task_id, int try_number, int map_index = -1);

/// The instance of each task among `tis` (one run's) whose state stands for all its instances, by
/// task id: for a mapped task the one in the most relevant state (dag::most_relevant, the first on
/// a tie), as its grid cell and graph box show it. Points into `tis`.
std::map<std::string, const task_instance_record*> most_relevant_instances(const std::vector<task_instance_record>& tis);

/// How much of a try's log the API shows in one answer: its start (how the try began) and its
/// end (where failures are). The whole log is streamed on request.
inline constexpr std::size_t log_view_head_bytes = 64 * 1024;
inline constexpr std::size_t log_view_tail_bytes = 4 * 1024 * 1024;
/// How much of a try's log the API's JSON answer holds when the whole log is asked for
/// (full_content): a JSON answer is built in memory, where a text one is streamed from the file.
/// A longer log gives its first log_view_head_bytes and its end.
inline constexpr std::size_t log_json_whole_bytes = 64 * 1024 * 1024;

/// The log at `path` when it holds at most `head_bytes + tail_bytes`; otherwise its first
/// `head_bytes` and its last `tail_bytes`, with a line between saying how many bytes were left out.
/// "" when there is no such file (the try logged nothing). Reads only what it returns.
std::string log_excerpt(const std::string& path, std::size_t head_bytes = log_view_head_bytes,
                        std::size_t tail_bytes = log_view_tail_bytes);

/// log_excerpt, and the offset it was read to (the size it saw: the continuation a reader passes
/// next, as the API's log token). One look at the size: bytes the try writes meanwhile are left
/// for the next read, neither in the excerpt nor skipped. "" and 0 when there is no such file.
std::pair<std::string, std::size_t> log_start(const std::string& path, std::size_t head_bytes = log_view_head_bytes,
                                              std::size_t tail_bytes = log_view_tail_bytes);

/// What the log at `path` holds from byte `from` on, and the offset it was read to (the
/// continuation a reader passes next time, as the API's log token): from 0, its log_excerpt; from
/// elsewhere, up to `max_bytes` from there. "" and `from` when nothing was added.
std::pair<std::string, std::size_t> log_since(const std::string& path, std::size_t from,
                                              std::size_t max_bytes = log_view_tail_bytes);

/// Which task instances a clear puts back to `none`: Airflow's `clear` (CLI `tasks clear`, the
/// API's `clearTaskInstances`, the UI's clear buttons).
struct clear_selection {
  std::string dag_id;                                    ///< the DAG
  std::optional<std::string> run_id;                     ///< only this run
  std::optional<time_point> logical_from;                ///< runs with logical dates from here
  std::optional<time_point> logical_to;                  ///< … up to here (included)
  std::function<bool(const std::string&)> task_matches;  ///< which tasks (ids or a pattern); empty: all
  bool upstream = false;     ///< also every task upstream of a matched one (needs the DAG)
  bool downstream = false;   ///< also every task downstream of a matched one (needs the DAG)
  /// With `run_id`: also the runs whose logical date is before it (Airflow's include_past) …
  bool past = false;
  /// … or after it (include_future); both: every run of the DAG (within the logical dates given).
  bool future = false;
  bool failed_only = false;  ///< only failed and upstream_failed instances
  bool dry_run = false;      ///< report, change nothing
  std::vector<std::string> exclude;  ///< task ids never cleared
  std::optional<int> map_index = {}; ///< of a mapped task, only this instance (all when unset)
  /// Of the tasks named here, only these instances (Airflow's `[task_id, map_index]` items); the
  /// other selected tasks keep all theirs.
  std::map<std::string, std::set<int>> only_instances;
};

/// Clears the selected task instances: their state goes back to `none`, their XComs are deleted,
/// their retries start over (the try number stays, so the next try is counted after the ones
/// made), and their runs go back to `queued`. `dag` is the DAG's definition, needed for
/// `upstream`/`downstream` (dag::usage_error without it) and otherwise only used to name unknown
/// tasks. `past`/`future` need `run_id` naming an existing run (dag::usage_error otherwise).
/// Returns every instance cleared (or that would be, on a dry run), by run (oldest first) then task.
std::vector<task_instance_ref> clear_task_instances(store& s, const clear_selection& which,
                                                    const definition* dag = nullptr);

/// Which task instances a mark sets, and to what: Airflow's "mark success" / "mark failed"
/// (CLI `tasks mark-success|mark-failed`, the API's PATCH of a task instance and
/// `updateTaskInstancesState`).
struct mark_selection {
  std::string dag_id;                 ///< the DAG
  std::string run_id;                 ///< the run
  std::vector<std::string> task_ids;  ///< the tasks (at least one; each must be in the DAG; every instance of a mapped one)
  task_state state = task_state::success;  ///< success, failed or skipped
  bool upstream = false;              ///< also every task upstream of them
  bool downstream = false;            ///< also every task downstream of them
  bool dry_run = false;               ///< report, change nothing
  std::optional<int> map_index = {};  ///< of the named mapped tasks, only this instance (all when unset)
};

/// Sets the selected task instances that are not in `state` yet to it (ended `now`), then, as
/// Airflow does, clears the failed and upstream_failed tasks downstream of them so they run again
/// (a failed task marked success lets its downstream go on). The run goes back to `queued` when
/// anything changed, so a scheduler re-evaluates it (a finished run ends again by its new states).
/// A running try that is marked keeps running; its result is then ignored (its compare-and-set
/// loses). Returns the instances set (not the ones cleared after them). Throws dag::usage_error
/// for an unknown run or task, or a state other than success, failed or skipped.
std::vector<task_instance_ref> mark_task_instances(store& s, const mark_selection& which, const definition& dag,
                                                   timestamp now);

/// Deletes a DAG's history: every run of `dag_id` with its task instances, tries and XComs, and its
/// paused flag (Airflow's "delete DAG"; the DAG file stays, so a loaded DAG stays listed, with no
/// runs). The event log keeps its entries. Returns how many runs were deleted. Throws
/// dag::conflict_error while a run of it is running (its tries would end into nothing).
std::size_t delete_dag_history(store& s, const std::string& dag_id);

/// Sets a whole run's state, as Airflow's "mark run as success / failed / queued" (the API's PATCH
/// of a run): `success` marks every task instance that is not success or skipped success;
/// `failed` marks those failed; `queued` clears every task instance so the run runs again. The
/// scheduler then ends (or reruns) the run by its tasks' new states. Returns the task instances
/// changed. Throws dag::usage_error for an unknown run or another state.
std::vector<task_instance_ref> set_run_state(store& s, const definition& dag, const std::string& run_id, run_state state,
                                             timestamp now);

/// Who uses a dataset, as the DAGs declare it.
struct dataset_uses {
  std::vector<std::string> consuming_dags;                          ///< DAGs scheduled on it
  std::vector<std::pair<std::string, std::string>> producing_tasks;  ///< (dag_id, task_id) of tasks with it in outlets
};

/// The uses of every dataset `dags` name, by URI (a listing adds them to the store's datasets).
std::map<std::string, dataset_uses> dataset_uses_of(const std::vector<shared_definition>& dags);

/// Records an external update of dataset `uri` (Airflow's `create_dataset_event`), queued for its
/// consumers as a task's would be; `extra` must be a JSON object within checked_conf's bounds
/// (dag::usage_error otherwise). Nullopt when the dataset is unknown.
std::optional<dataset_event_record> post_dataset_event(store& s, const std::string& uri, const std::string& extra = "{}");

}  // namespace dag
