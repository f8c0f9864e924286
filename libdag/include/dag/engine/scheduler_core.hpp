#pragma once
/// @file The scheduler's decisions as pure functions of (state, now): no SQL, no clock reads, no
/// threads. The loop around them (dag/engine/engine.hpp) reads state, calls these, writes the
/// result in one transaction and hands the chosen tasks to an executor.

#include <cstddef>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <tuple>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/operator.hpp>
#include <dag/core/retry_policy.hpp>
#include <dag/core/states.hpp>
#include <dag/engine/mapping.hpp>
#include <dag/graph/task_graph.hpp>
#include <dag/store/store.hpp>

namespace dag {

/// A DAG prepared for scheduling: its definition, graph, timetable and task priorities.
struct scheduled_dag {
  shared_definition def;          ///< the checked definition (default_args applied), shared with the engine's readers
  task_graph graph;               ///< its graph
  timetable times;                ///< its schedule
  std::vector<int> priority;      ///< effective priority per task by its weight_rule: own weight, plus all downstream (default) or upstream weights
  std::vector<std::size_t> topo_position;  ///< each task's position in the topological order
  bool limits_tasks = false;      ///< some task sets max_active_tis_per_dag
  bool uses_past = false;         ///< some task sets depends_on_past (or wait_for_downstream)

  /// Prepares a checked definition, sharing it; throws dag::definition_error if its graph is invalid.
  explicit scheduled_dag(shared_definition d);
  /// Prepares a checked definition (moved in, or copied: prefer the shared one for a large DAG).
  explicit scheduled_dag(definition d) : scheduled_dag(std::make_shared<const definition>(std::move(d))) {}
};

/// Slots a scheduling step may still fill.
struct slot_budget {
  int free_slots = 0;    ///< global parallelism left
  int dag_running = 0;   ///< tasks of this DAG already queued or running (all its runs)
  /// Tries of each task of this DAG queued or running over all its runs, for
  /// max_active_tis_per_dag; may stay empty when no task sets it (then only this pass counts).
  std::vector<int> task_running = {};
  /// Open slots per pool, over every DAG (pools absent here do not exist: their tasks wait);
  /// nullopt leaves pools out of the decision.
  std::optional<std::map<std::string, int>> pool_open = std::nullopt;
};

/// What the scheduler remembers about a run between passes, so a pass looks only at tasks whose
/// upstream changed instead of the whole run. A default-constructed one makes the next pass look
/// at every task (a run just loaded from the store).
///
/// A run's task instances are held in slots: slot i < the DAG's task count is task i's instance
/// (of a mapped task: its map index 0 once expanded, -1 before); the slots after them hold the
/// instances of mapped tasks from map index 1 on.
struct run_progress {
  bool initialized = false;            ///< false until the first pass has looked at every task
  std::vector<std::size_t> dirty;      ///< tasks whose upstream changed since the last pass
  std::vector<std::size_t> retrying;   ///< slots in `up_for_retry` or `up_for_reschedule`
  std::size_t unfinished = 0;          ///< slots not in a finished state
  /// Slots in `scheduled`, highest priority first (then topological order, then map index).
  std::priority_queue<std::tuple<int, long long, long long>> ready;
  std::vector<std::size_t> slot_task;  ///< the task of each slot past the DAG's tasks
  std::vector<std::vector<std::size_t>> more_instances;  ///< per task: its slots past the first
};

/// The run before a run (the latest with an earlier logical date), for depends_on_past and
/// wait_for_downstream.
struct previous_run {
  /// Its task instances as slots (see run_progress: the first ones indexed like the DAG's tasks,
  /// then the other instances of mapped tasks); a task it lacks has an empty task_id and does not
  /// hold anything back. Null when there is no run before (nothing waits).
  const std::vector<task_instance_record>* tis = nullptr;
  bool finished = false;  ///< it has ended: what waits on it now waits until someone clears it
  /// When everything the run has left waits on a finished previous run: fail the run (`run`,
  /// `backfill`: Airflow's backfill gives up on such a deadlock) rather than wait (the daemon).
  bool give_up_when_blocked = false;
};

/// The task of slot `s` of a run's task instances (see run_progress).
std::size_t task_of_slot(const scheduled_dag& dag, const std::vector<task_instance_record>& tis, std::size_t s);

/// The slots of task `task`'s instances in a run's task instances (see run_progress): its own slot,
/// then those past the DAG's tasks that hold its other instances (of a mapped task).
std::vector<std::size_t> instance_slots(const scheduled_dag& dag, const std::vector<task_instance_record>& tis,
                                        std::size_t task);

/// Tells `progress` that slot `i` of the run ended a try and is now in `tis[i].state`.
void note_try_ended(const scheduled_dag& dag, run_progress& progress, std::size_t i, task_state state);

/// One task instance a pass changed, with the state and try it had before (for compare-and-set).
struct task_change {
  std::size_t index;     ///< its slot
  task_state before;     ///< its state before the pass
  int try_before;        ///< its try number before the pass
  bool state_only = false;  ///< the pass changed its state alone (task_instance_update::state_only)
  /// Its start before the pass: of a rescheduled try, the poke it ended (a later poke of the same
  /// try has another), which its write expects (task_instance_update::expected_start).
  std::optional<timestamp> start_before{};
};

/// What one pass over a run decided.
struct run_step {
  std::vector<task_change> changed;  ///< task instances that changed (write them)
  std::vector<std::size_t> to_start; ///< slots now `queued` with a new try: hand to the executor
  /// Slots whose try was queued or running when the run timed out (dagrun_timeout): now
  /// `skipped`; ask the executor to stop their tries.
  std::vector<std::size_t> to_stop;
  /// Mapped tasks this pass expanded: their unexpanded instance (map index -1) is deleted, as their
  /// instances (new slots, in `changed`) take its place.
  std::vector<std::size_t> expanded;
  std::optional<run_state> new_run_state;  ///< set when the run's state changes
  std::optional<time_point> wake_at;       ///< earliest time something falls due (a retry, the run's dagrun_timeout), if any
  bool pool_short = false;  ///< a ready task waits because its pool has too few open slots (or does not exist)
};

/// Decides one run: marks tasks whose trigger rule can never be met (`skipped`, `upstream_failed`,
/// cascading in one pass), makes `up_for_retry` and `up_for_reschedule` tasks whose time has come
/// ready again (a rescheduled try keeps its number), queues
/// ready tasks by priority while `budget` (slots, pools) and the DAG's max_active_tasks allow, and finishes the
/// run when every task has finished (success if every leaf is success or skipped). A run past its
/// DAG's dagrun_timeout fails instead, its unfinished tasks `skipped` (Airflow's). A mapped task
/// that becomes ready is expanded (expand_mapping, reading upstream XComs through `xcoms`): one
/// slot per instance, skipped for an empty list, failed when it cannot expand. `tis` holds the
/// run's slots (see run_progress) and is updated in place (slots added); so are `run` and `budget`.
/// A task with depends_on_past waits, in state `none`, until its instances in `past` are success
/// or skipped — every map index of a mapped task, as Airflow's PrevDagrunDep counts them (with
/// wait_for_downstream, the instances of its direct downstream tasks too); the caller
/// makes it dirty again when the previous run moves on (see previous_run for when it gives up).
run_step step_run(const scheduled_dag& dag, run_record& run, std::vector<task_instance_record>& tis,
                  run_progress& progress, timestamp now, slot_budget& budget, const previous_run& past = {},
                  const xcom_reader& xcoms = {});

/// Applies the end of a try to its task instance: success, skipped, or failed — which becomes
/// `up_for_retry` (with `retry_at` from the retry policy) while tries remain (`retries`, not counting
/// tries made before the last clear) — or rescheduled: `up_for_reschedule` until `retry_at`, then the same try runs
/// again. Returns the try's record to keep. `ti` must be `running` or `queued` with the try's number.
try_record finish_try(const task& t, task_instance_record& ti, const operator_result& result, timestamp started,
                      timestamp ended);

/// A try's end applied to its run: the try's record and the downstream tasks its flow rule skipped.
struct try_end {
  try_record record;                 ///< the try's record to keep
  std::vector<task_change> skipped;  ///< task instances the flow rule marked `skipped` (write them)
};

/// `finish_try` for slot `i` of `run`, then the task's flow rule (branch, short_circuit,
/// latest_only) when the try succeeded: it marks the downstream tasks it rules out `skipped`
/// (those not started yet), and a branch naming an unknown task fails the try instead. Tells
/// `progress` about every task that finished. `now` decides latest_only.
try_end end_try(const scheduled_dag& dag, const run_record& run, std::vector<task_instance_record>& tis,
                run_progress& progress, std::size_t i, operator_result result, timestamp started, timestamp ended);

/// The downstream tasks a successful try of flow task `i` rules out, given its XCom (nullopt
/// when it pushed none); an error message instead when the XCom names no task of the DAG.
struct flow_decision {
  std::vector<std::size_t> skip;  ///< tasks to skip
  std::string error;              ///< non-empty: the try fails with this message
};
flow_decision decide_flow(const scheduled_dag& dag, const run_record& run, std::size_t i,
                          const std::optional<std::string>& xcom, timestamp now);

/// How a flow rule reads an XCom as a condition: no value, empty text, `false`, `0`, `no`,
/// `off`, `null`, `None`, `[]`, `{}` and `""` are false; anything else is true.
bool xcom_truthy(const std::optional<std::string>& xcom);

/// Marks a try that was `running` when its executor disappeared (a killed daemon, a lost worker) as
/// failed with `reason`, retrying while tries remain. Returns the try's record.
try_record lose_try(const task& t, task_instance_record& ti, const std::string& reason, timestamp now);

/// The run state a run's task states imply: nullopt while any task is unfinished.
std::optional<run_state> run_outcome(const scheduled_dag& dag, const std::vector<task_instance_record>& tis);

}  // namespace dag
