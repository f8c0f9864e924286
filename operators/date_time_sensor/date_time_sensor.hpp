#pragma once
/// @file The date-time sensor: waits until a (templated) instant.

#include <dag/core/error.hpp>
#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/operators/sensor.hpp>

namespace dag::operators {

/// `operator: date_time_sensor` — met once the clock reaches `target_time` (templated, rendered
/// for the run, e.g. `{{ ds }}T18:00:00+00:00`; Airflow's DateTimeSensor). A time without an
/// offset is UTC. A rendered value that is not a date-time fails the try.
struct date_time_sensor {
  /// Fields: `target_time` (required), and the sensor fields.
  static operator_spec spec() {
    return {"date_time_sensor", sensor::with_fields({{"target_time", field_kind::templated, true}}), true, &run};
  }

  /// Runs one execution of the sensor.
  static operator_result run(const task&, task_context& ctx) {
    time_point target;
    try {
      target = parse_time(ctx.fields.at("target_time"));
    } catch (const error& e) {
      return operator_result::failed(std::string("target_time: ") + e.what());
    }
    return sensor::run(ctx, [&](task_context& c) {
      if (sensor::now(c) >= target) return poke_result::met();
      return poke_result::not_yet("waiting for " + format_iso(target));
    });
  }
};

}  // namespace dag::operators
