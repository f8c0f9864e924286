#pragma once
/// @file Trigger rules: when a task may run, given the states of its direct upstream tasks.

#include <array>
#include <optional>
#include <string_view>

#include <dag/core/states.hpp>

namespace dag {

/// Airflow's trigger rules.
enum class trigger_rule {
  all_success,                  ///< every upstream succeeded (default)
  all_failed,                   ///< every upstream failed or upstream_failed
  all_done,                     ///< every upstream finished, whatever its state
  all_skipped,                  ///< every upstream was skipped
  one_success,                  ///< at least one upstream succeeded (runs without waiting for the rest)
  one_failed,                   ///< at least one upstream failed (runs without waiting for the rest)
  one_done,                     ///< at least one upstream succeeded or failed
  none_failed,                  ///< no upstream failed: all succeeded or were skipped
  none_failed_min_one_success,  ///< no upstream failed and at least one succeeded
  none_skipped,                 ///< every upstream finished and none was skipped
  always,                       ///< no dependency at all: runs at once
};

inline constexpr std::array<std::string_view, 11> trigger_rule_names{
    "all_success", "all_failed", "all_done", "all_skipped", "one_success", "one_failed",
    "one_done", "none_failed", "none_failed_min_one_success", "none_skipped", "always"};

/// The Airflow name of a trigger rule.
constexpr std::string_view to_string(trigger_rule r) { return trigger_rule_names[static_cast<std::size_t>(r)]; }

/// Parses a trigger rule name; nullopt when unknown.
constexpr std::optional<trigger_rule> parse_trigger_rule(std::string_view name) {
  for (std::size_t i = 0; i < trigger_rule_names.size(); ++i)
    if (trigger_rule_names[i] == name) return static_cast<trigger_rule>(i);
  return std::nullopt;
}

/// Counts of a task's direct upstream task instances by state.
struct upstream_counts {
  int total = 0;            ///< number of direct upstream tasks
  int success = 0;          ///< in `success`
  int failed = 0;           ///< in `failed`
  int upstream_failed = 0;  ///< in `upstream_failed`
  int skipped = 0;          ///< in `skipped`
  int removed = 0;          ///< in `removed` (finished, counts as neither success nor failure)

  /// Adds one upstream task instance in state `s` (unfinished states only raise `total`).
  constexpr upstream_counts& add(task_state s) {
    ++total;
    switch (s) {
      case task_state::success: ++success; break;
      case task_state::failed: ++failed; break;
      case task_state::upstream_failed: ++upstream_failed; break;
      case task_state::skipped: ++skipped; break;
      case task_state::removed: ++removed; break;
      default: break;
    }
    return *this;
  }
  /// Upstream task instances in a finished state.
  constexpr int done() const { return success + failed + upstream_failed + skipped + removed; }
};

/// What the scheduler does with a task whose upstream looks like `counts`.
enum class trigger_decision {
  wait,             ///< not decidable yet: leave the task as it is
  run,              ///< the rule is met: schedule the task
  skip,             ///< the rule can never be met this way: mark `skipped`
  upstream_failed,  ///< the rule can never be met because of failures: mark `upstream_failed`
};

/// The name of a decision, for logs and tests.
constexpr std::string_view to_string(trigger_decision d) {
  constexpr std::array<std::string_view, 4> names{"wait", "run", "skip", "upstream_failed"};
  return names[static_cast<std::size_t>(d)];
}

/// Airflow 2's TriggerRuleDep with upstream-failed flagging: first whether the task can never run
/// (skip or upstream_failed, which is how skips and failures propagate downstream), then whether
/// its rule is met now. A task without upstream tasks always runs.
constexpr trigger_decision evaluate(trigger_rule rule, const upstream_counts& c) {
  using d = trigger_decision;
  if (c.total == 0 || rule == trigger_rule::always) return d::run;
  const bool all_done = c.done() >= c.total;
  const int failures = c.failed + c.upstream_failed;
  switch (rule) {
    case trigger_rule::all_success:
      if (failures > 0) return d::upstream_failed;
      if (c.skipped > 0) return d::skip;
      return c.success + c.removed >= c.total ? d::run : d::wait;
    case trigger_rule::all_failed:
      if (c.success > 0 || c.skipped > 0) return d::skip;
      return all_done ? d::run : d::wait;
    case trigger_rule::all_done:
      return all_done ? d::run : d::wait;
    case trigger_rule::all_skipped:
      if (c.success > 0 || failures > 0) return d::skip;
      return all_done ? d::run : d::wait;
    case trigger_rule::one_success:
      if (c.success > 0) return d::run;
      if (all_done) return c.skipped == c.done() ? d::skip : d::upstream_failed;
      return d::wait;
    case trigger_rule::one_failed:
      if (failures > 0) return d::run;
      return all_done ? d::skip : d::wait;
    case trigger_rule::one_done:
      if (c.success > 0 || c.failed > 0) return d::run;
      return all_done ? d::skip : d::wait;
    case trigger_rule::none_failed:
      if (failures > 0) return d::upstream_failed;
      return all_done ? d::run : d::wait;
    case trigger_rule::none_failed_min_one_success:
      if (failures > 0) return d::upstream_failed;
      if (all_done) return c.skipped == c.total ? d::skip : d::run;
      return d::wait;
    case trigger_rule::none_skipped:
      if (c.skipped > 0) return d::skip;
      return all_done ? d::run : d::wait;
    case trigger_rule::always:
      return d::run;
  }
  return d::wait;
}

}  // namespace dag
