#pragma once
/// @file The external task sensor: waits for another DAG's task (or whole run) at the same or a
/// shifted logical date.

#include <string>

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/operators/sensor.hpp>
#include <dag/store/store.hpp>

namespace dag::operators {

/// `operator: external_task_sensor` — Airflow's ExternalTaskSensor: at each poke reads the store
/// for the run of `external_dag_id` whose logical date is this run's minus `execution_delta`
/// (default: the same date), and the state of its task `external_task_id` (or, without one, of
/// the run itself). Met when it is in `allowed_states` (default `[success]`); a state in
/// `failed_states` (default none) fails the try at once (skips it under `soft_fail`); no run yet,
/// or any other state, means "not yet". Needs the scheduler's store: it runs on the scheduler's
/// executor, not on a queue worker.
struct external_task_sensor {
  /// Fields: `external_dag_id` (required), `external_task_id`, `execution_delta`,
  /// `allowed_states`, `failed_states`, and the sensor fields.
  static operator_spec spec() {
    std::vector<field_spec> own{{"external_dag_id", field_kind::text, true},
                                {"external_task_id", field_kind::text, false},
                                {"execution_delta", field_kind::time_span, false}};
    for (auto& f : watched_states::fields()) own.push_back(std::move(f));
    operator_spec s{"external_task_sensor", sensor::with_fields(std::move(own)), true, &run};
    s.check_value = &watched_states::check_value;
    return s;
  }

  /// Runs one execution of the sensor.
  static operator_result run(const task&, task_context& ctx) {
    if (!ctx.metadata)
      return operator_result::failed("external_task_sensor reads the scheduler's store, which this executor does not offer");
    const std::string dag_id = ctx.fields.at("external_dag_id");
    const std::string task_id = ctx.fields.contains("external_task_id") ? ctx.fields.at("external_task_id") : "";
    const time_point date =
        ctx.logical_date - (ctx.fields.contains("execution_delta") ? parse_duration(ctx.fields.at("execution_delta")) : duration(0));
    const watched_states states = watched_states::of(ctx, {"success"}, {});
    return sensor::run(ctx, [&](task_context& c) {
      // The states of the matching runs (or their task), read on the scheduler's thread.
      std::vector<std::pair<std::string, std::string>> found;  // run id, state
      const bool asked = c.metadata(
          [&](metadata_view& v) {
            run_filter f;
            f.dag_id = dag_id;
            f.logical_from = date;
            f.logical_to = date;
            for (const auto& run : v.db.runs(f)) {
              if (task_id.empty()) {
                found.emplace_back(run.run_id, std::string(to_string(run.state)));
                continue;
              }
              std::string state = "none";
              for (const auto& ti : v.db.task_instances(dag_id, run.run_id))
                if (ti.task_id == task_id) state = std::string(to_string(ti.state));
              found.emplace_back(run.run_id, std::move(state));
            }
          },
          c.stop);
      if (!asked) return poke_result::error("stopped while reading the store");
      if (found.empty()) return poke_result::not_yet("DAG '" + dag_id + "' has no run at " + format_iso(date));
      // A failed state anywhere ends the wait; else any allowed one meets it (Airflow checks failed first).
      bool met = false;
      std::string seen;
      for (const auto& [run_id, state] : found) {
        const std::string what = (task_id.empty() ? "run '" : "task '" + task_id + "' of run '") + run_id + "' of DAG '" + dag_id + "'";
        poke_result r = states.judge(state, what);
        if (r.what == poke_result::kind::never) return r;
        if (r.what == poke_result::kind::met) met = true;
        else seen = r.message;
      }
      return met ? poke_result::met() : poke_result::not_yet(seen);
    });
  }
};

}  // namespace dag::operators
