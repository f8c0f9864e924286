#pragma once
/// @file The time delta sensor: waits until a span after the run's data interval ends.

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/operators/sensor.hpp>

namespace dag::operators {

/// `operator: time_delta_sensor` — met once the clock reaches the run's data interval end plus
/// `delta` (Airflow's TimeDeltaSensor): `delta: 2h` on a daily DAG waits until 02:00 the day after
/// the interval. Usually run with `mode: reschedule`, which holds no slot while it waits.
struct time_delta_sensor {
  /// Fields: `delta` (required), and the sensor fields.
  static operator_spec spec() {
    return {"time_delta_sensor", sensor::with_fields({{"delta", field_kind::time_span, true}}), true, &run};
  }

  /// Runs one execution of the sensor.
  static operator_result run(const task&, task_context& ctx) {
    const time_point target = ctx.data_interval_end + parse_duration(ctx.fields.at("delta"));
    return sensor::run(ctx, [&](task_context& c) {
      if (sensor::now(c) >= target) return poke_result::met();
      return poke_result::not_yet("waiting for " + format_iso(target));
    });
  }
};

}  // namespace dag::operators
