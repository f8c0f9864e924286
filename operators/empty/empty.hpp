#pragma once
/// @file The empty operator: a task that does nothing (Airflow's EmptyOperator).

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>

namespace dag::operators {

/// `operator: empty` — succeeds at once, pushing nothing: a join or fork point in a graph, or a
/// placeholder for a step still to be written. Trigger rules, retries and alerts apply as usual.
struct empty {
  /// No fields.
  static operator_spec spec() { return {"empty", {}, true, &run}; }

  /// Runs one try: success.
  static operator_result run(const task&, task_context&) { return operator_result::success(); }
};

}  // namespace dag::operators
