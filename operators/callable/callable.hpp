#pragma once
/// @file The callable operator: a C++ function as a task (C++ DAGs only).

#include <dag/core/operator.hpp>

namespace dag::operators {

/// `callable` — runs the task's C++ body; an exception is a failed try with its message kept.
struct callable {
  /// No fields; not available from YAML.
  static operator_spec spec() { return {"callable", {}, false}; }
};

}  // namespace dag::operators
