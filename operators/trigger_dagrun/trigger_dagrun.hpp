#pragma once
/// @file The trigger_dagrun operator: starts a run of another DAG, and may wait for it to end.

#include <optional>
#include <string>

#include <dag/core/error.hpp>
#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/model/operations.hpp>
#include <dag/operators/sensor.hpp>
#include <dag/store/store.hpp>

namespace dag::operators {

/// `operator: trigger_dagrun` — Airflow's TriggerDagRunOperator: creates a run of
/// `trigger_dag_id` through the same trigger operation as the CLI and the API (dag::trigger_run),
/// with `conf` (templated JSON object) and `logical_date` (templated; default: when this try
/// started), under `trigger_run_id` (templated; default `manual__<logical date>`). A run with that
/// id already there fails the try, unless `reset_dag_run: true` clears it to run again. Pushes
/// `trigger_run_id` and `trigger_logical_date` as XComs. With `wait_for_completion: true` it then
/// waits, as a sensor (the sensor fields, `mode: reschedule` included), until the run's state is in
/// `allowed_states` (default `[success]`) or fails at once on one in `failed_states` (default
/// `[failed]`). Needs the scheduler's store: it runs on the scheduler's executor, not on a queue worker.
struct trigger_dagrun {
  /// Fields: `trigger_dag_id` (required), `trigger_run_id`, `conf`, `logical_date`,
  /// `reset_dag_run`, `wait_for_completion`, `allowed_states`, `failed_states`, and the sensor fields.
  static operator_spec spec() {
    std::vector<field_spec> own{{"trigger_dag_id", field_kind::text, true},
                                {"trigger_run_id", field_kind::templated, false},
                                {"conf", field_kind::templated, false},
                                {"logical_date", field_kind::templated, false},
                                {"reset_dag_run", field_kind::boolean, false},
                                {"wait_for_completion", field_kind::boolean, false}};
    for (auto& f : watched_states::fields()) own.push_back(std::move(f));
    operator_spec s{"trigger_dagrun", sensor::with_fields(std::move(own)), true, &run};
    s.check_value = &watched_states::check_value;
    return s;
  }

  /// Runs one execution: triggers (not again when a rescheduled try runs on), then waits if asked.
  static operator_result run(const task&, task_context& ctx) {
    if (!ctx.metadata)
      return operator_result::failed("trigger_dagrun writes to the scheduler's store, which this executor does not offer");
    auto field = [&](const char* name) -> std::string {
      auto it = ctx.fields.find(name);
      return it == ctx.fields.end() ? std::string() : it->second;
    };
    const std::string dag_id = field("trigger_dag_id");
    std::string run_id;
    time_point logical_date{};
    try {
      const bool asked = ctx.metadata(
          [&](metadata_view& v) {
            const definition* target = nullptr;
            for (const auto& d : v.dags)
              if (d->id() == dag_id) target = d.get();
            if (!target) throw usage_error("DAG '" + dag_id + "' is not loaded");
            const own_try mine = own_try::of(v.db, ctx);
            logical_date = field("logical_date").empty() ? mine.started : parse_time(field("logical_date"));
            run_id = field("trigger_run_id").empty() ? make_run_id(run_type::manual, logical_date) : field("trigger_run_id");
            if (mine.rescheduled) return;  // a later execution of the try: its first one triggered the run
            if (v.db.find_run(dag_id, run_id)) {
              if (!field_is_true(ctx, "reset_dag_run"))
                throw usage_error("run '" + run_id + "' of DAG '" + dag_id + "' already exists (reset_dag_run: true clears it)");
              clear_selection which;
              which.dag_id = dag_id;
              which.run_id = run_id;
              clear_task_instances(v.db, which, target);
              if (ctx.log) ctx.log("[dagrun] cleared run '" + run_id + "' of DAG '" + dag_id + "' to run again");
            } else {
              const std::string conf = field("conf").empty() ? "{}" : field("conf");
              if (!trigger_run(v.db, *target, logical_date, conf, "", run_id))
                throw error("run '" + run_id + "' of DAG '" + dag_id + "' could not be created: it exists");
              if (ctx.log) ctx.log("[dagrun] triggered run '" + run_id + "' of DAG '" + dag_id + "'");
            }
            v.track(dag_id, run_id);
          },
          ctx.stop);
      if (!asked) return operator_result::failed("stopped before the run was triggered");
    } catch (const std::exception& e) {
      return operator_result::failed(std::string("trigger_dagrun: ") + e.what());
    }
    operator_result out = operator_result::success();
    if (field_is_true(ctx, "wait_for_completion")) {
      const watched_states states = watched_states::of(ctx, {"success"}, {"failed"});
      out = sensor::run(ctx, [&](task_context& c) {
        std::optional<run_record> run;
        if (!c.metadata([&](metadata_view& v) { run = v.db.find_run(dag_id, run_id); }, c.stop))
          return poke_result::error("stopped while reading the store");
        if (!run) return poke_result::error("run '" + run_id + "' of DAG '" + dag_id + "' was deleted");
        return states.judge(std::string(to_string(run->state)), "run '" + run_id + "' of DAG '" + dag_id + "'");
      });
    }
    if (out.outcome == try_outcome::success)
      out.keyed_xcoms = {{"trigger_run_id", run_id}, {"trigger_logical_date", format_iso(logical_date)}};
    return out;
  }

private:
  // This try as the store has it (read on the scheduler's thread).
  struct own_try {
    // When it started (its first execution, for a rescheduled one): Airflow's default logical date
    // is "now" at the trigger, and every execution of the try must name the same run.
    time_point started;
    bool rescheduled = false;  // an execution after the first: the run exists already

    static own_try of(store& db, const task_context& ctx) {
      for (const auto& ti : db.task_instances(ctx.dag_id, ctx.run_id)) {
        if (ti.task_id != ctx.task_id) continue;
        if (auto at = ti.first_start_date ? ti.first_start_date : ti.start_date)
          return {std::chrono::floor<std::chrono::seconds>(*at), ti.first_start_date.has_value()};
      }
      return {sensor::now(ctx), false};
    }
  };
};

}  // namespace dag::operators
