#pragma once
/// @file Task-instance and run states, with their Airflow names.

#include <array>
#include <optional>
#include <string_view>

namespace dag {

/// The state of one task instance (one task in one run), as Airflow names them.
enum class task_state {
  none,            ///< not yet considered
  scheduled,       ///< dependencies met, waiting for a slot
  queued,          ///< handed to an executor
  running,         ///< a try is executing
  success,         ///< finished successfully
  failed,          ///< finished with failure, no tries left
  up_for_retry,    ///< a try failed, another will follow after the retry delay
  upstream_failed, ///< cannot run because of upstream failures (trigger rule)
  skipped,         ///< skipped by itself or by the trigger rule
  removed,         ///< the task no longer exists in the DAG
  up_for_reschedule, ///< a sensor in `mode: reschedule` gave its slot back until its next poke
};

/// The state of one DAG run.
enum class run_state {
  queued,   ///< created, not started
  running,  ///< at least one task considered
  success,  ///< every leaf is success or skipped
  failed,   ///< some leaf failed or was upstream_failed
};

inline constexpr std::array<std::string_view, 11> task_state_names{
    "none", "scheduled", "queued", "running", "success", "failed",
    "up_for_retry", "upstream_failed", "skipped", "removed", "up_for_reschedule"};
inline constexpr std::array<std::string_view, 4> run_state_names{"queued", "running", "success", "failed"};

/// The Airflow name of a task state.
constexpr std::string_view to_string(task_state s) { return task_state_names[static_cast<std::size_t>(s)]; }
/// The Airflow name of a run state.
constexpr std::string_view to_string(run_state s) { return run_state_names[static_cast<std::size_t>(s)]; }

/// Parses a task state name; nullopt when unknown.
constexpr std::optional<task_state> parse_task_state(std::string_view name) {
  for (std::size_t i = 0; i < task_state_names.size(); ++i)
    if (task_state_names[i] == name) return static_cast<task_state>(i);
  return std::nullopt;
}
/// Parses a run state name; nullopt when unknown.
constexpr std::optional<run_state> parse_run_state(std::string_view name) {
  for (std::size_t i = 0; i < run_state_names.size(); ++i)
    if (run_state_names[i] == name) return static_cast<run_state>(i);
  return std::nullopt;
}

/// Whether a task instance in state `s` holds its pool slots: its try is handed to an executor
/// (queued) or executing (running). The scheduler counts open slots by it and the store checks
/// every claim by it.
constexpr bool holds_pool_slot(task_state s) { return s == task_state::queued || s == task_state::running; }

/// True for states a task instance never leaves on its own.
constexpr bool is_finished(task_state s) {
  return s == task_state::success || s == task_state::failed || s == task_state::upstream_failed ||
         s == task_state::skipped || s == task_state::removed;
}
/// True for run states that are final.
constexpr bool is_finished(run_state s) { return s == run_state::success || s == run_state::failed; }

/// Airflow's order of relevance of task states (its grid's `state_priority`, without the states
/// dagrun lacks: deferred, restarting): failed, upstream_failed, up_for_retry, up_for_reschedule,
/// queued, scheduled, running, none, success, skipped, removed. Lower is more relevant.
constexpr int state_priority(task_state s) {
  constexpr std::array<task_state, 11> order{
      task_state::failed,    task_state::upstream_failed, task_state::up_for_retry, task_state::up_for_reschedule,
      task_state::queued,    task_state::scheduled,       task_state::running,      task_state::none,
      task_state::success,   task_state::skipped,         task_state::removed};
  int i = 0;
  while (i < static_cast<int>(order.size()) && order[static_cast<std::size_t>(i)] != s) ++i;
  return i;
}

/// The state shown for task instances together (a mapped task's instances, a task group's tasks,
/// as Airflow's grid and graph show them): of `shown` and another instance's `state`, the more
/// relevant (state_priority); `shown` on a tie.
constexpr task_state most_relevant(task_state shown, task_state state) {
  return state_priority(state) < state_priority(shown) ? state : shown;
}

/// The message of an instance a run gave up on: it waits on its previous run (depends_on_past),
/// which has ended without it, so nothing but a clear moves it (set by the scheduler's core; a
/// clear of the run's failures takes such instances up again).
inline constexpr std::string_view gave_up_on_past = "waits for the previous run (depends_on_past), which has ended";

}  // namespace dag
