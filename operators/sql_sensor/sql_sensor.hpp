#pragma once
/// @file The SQL sensor: waits until a query's first cell is truthy.

#include <dag/core/operator.hpp>

namespace dag::operators {

/// `operator: sql_sensor` — repeats `sql` on `conn_id` every `poke_interval` until its first
/// cell is truthy or `timeout` passes; `mode: reschedule` frees the worker slot between pokes.
struct sql_sensor {
  /// Fields: `conn_id`, `sql` (both required), `poke_interval`, `timeout`, `mode`.
  static operator_spec spec() {
    return {"sql_sensor",
            {{"conn_id", field_kind::text, true},
             {"sql", field_kind::templated, true},
             {"poke_interval", field_kind::time_span, false},
             {"timeout", field_kind::time_span, false},
             {"mode", field_kind::text, false, {"poke", "reschedule"}}}};
  }
};

}  // namespace dag::operators
