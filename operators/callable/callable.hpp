#pragma once
/// @file The callable operator: a C++ function as a task (C++ DAGs only).

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>

namespace dag::operators {

/// `callable` — runs the task's C++ body on an executor thread; an exception is a failed try with
/// its message kept (the executor catches it).
struct callable {
  /// No fields; not available from YAML.
  static operator_spec spec() { return {"callable", {}, false, &run}; }

  /// Runs one try.
  static operator_result run(const task& t, task_context& ctx) {
    if (!t.callable) return operator_result::failed("task '" + t.id + "' has no C++ body");
    return t.callable(ctx);
  }
};

}  // namespace dag::operators
