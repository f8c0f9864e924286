#pragma once
/// @file The SQL sensor: waits until a query's first cell is truthy.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include <dag/operators/postgres.hpp>
#include <dag/operators/sqlite.hpp>

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/core/time.hpp>

namespace dag::operators {

/// `operator: sql_sensor` — runs `sql` on `conn_id` (PostgreSQL, or SQLite for a `sqlite://`
/// connection) every `poke_interval` (default 60s) until the first cell of the first row is truthy
/// (not NULL, not false, not 0, not empty), or fails the try when `timeout` (default 7d, Airflow's)
/// passes. `mode: poke` (the default) holds its slot while waiting; `mode: reschedule` pokes once
/// per execution and gives the slot back between pokes (the task is `up_for_reschedule`), with
/// `timeout` counted from the try's first poke.
struct sql_sensor {
  /// Fields: `conn_id`, `sql` (both required), `poke_interval`, `timeout`, `mode`.
  static operator_spec spec() {
    return {"sql_sensor",
            {{"conn_id", field_kind::text, true},
             {"sql", field_kind::templated, true, {}, {".sql"}},
             {"poke_interval", field_kind::time_span, false},
             {"timeout", field_kind::time_span, false},
             {"mode", field_kind::text, false, {"poke", "reschedule"}}},
            true,
            &run};
  }

  /// True for a first cell that counts as "yes": Airflow's rule (not null, false, 0 or empty).
  static bool truthy(const std::string& rows_json) {
    // rows_json is `[[cell, …], …]`: look at the first cell of the first row.
    if (rows_json.size() < 4 || rows_json.compare(0, 2, "[[") != 0) return false;
    std::string cell;
    bool quoted = false;
    for (std::size_t i = 2; i < rows_json.size(); ++i) {
      const char c = rows_json[i];
      if (c == '"' && (i == 2 || rows_json[i - 1] != '\\')) quoted = !quoted;
      if (!quoted && (c == ',' || c == ']')) break;
      cell += c;
    }
    return !(cell.empty() || cell == "null" || cell == "false" || cell == "0" || cell == "\"\"" || cell == "0.0");
  }

  /// Runs one execution: pokes until truthy, timeout, or a stop request (poke mode), or pokes once
  /// and asks to be rescheduled (reschedule mode).
  static operator_result run(const task& t, task_context& ctx) {
    const duration poke = ctx.fields.count("poke_interval") ? parse_duration(ctx.fields.at("poke_interval")) : duration(60);
    const duration limit = ctx.fields.count("timeout") ? parse_duration(ctx.fields.at("timeout")) : duration(7 * 24 * 3600);
    const bool reschedule = ctx.fields.count("mode") && ctx.fields.at("mode") == "reschedule";
    const auto began = std::chrono::steady_clock::now();
    // Time since the try's first poke: earlier executions of a rescheduled try count too.
    auto waited = [&] { return ctx.waited + (std::chrono::steady_clock::now() - began); };
    const std::string conn_id = ctx.fields.at("conn_id");
    const auto c = ctx.connection_lookup ? ctx.connection_lookup(conn_id) : std::nullopt;
    if (!c) return operator_result::failed("connection '" + conn_id + "' is not defined");
    task_context query = ctx;
    query.fields = {{"sql", ctx.fields.at("sql")}, {"conn_id", conn_id}};
    for (int poke_number = 1;; ++poke_number) {
      operator_result r = c->conn_type == "sqlite" ? sqlite::run(t, query) : postgres::run(t, query);
      if (r.outcome == try_outcome::failed) return r;
      if (r.xcom && truthy(*r.xcom)) {
        if (ctx.log) ctx.log("[dagrun] sensor condition met on " + label(poke_number, reschedule, waited()));
        return operator_result::success(r.xcom);
      }
      if (ctx.log) ctx.log("[dagrun] " + label(poke_number, reschedule, waited()) + ": not yet");
      if (waited() + poke > limit)
        return operator_result::failed("sensor timeout: condition not met within " + format_duration(limit));
      if (reschedule) return operator_result::reschedule(poke, "rescheduled: next poke in " + format_duration(poke));
      // Sleep until the next poke, but wake at once when the try must stop.
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      cv.wait_for(lock, ctx.stop, poke, [] { return false; });
      if (ctx.stop.stop_requested()) return operator_result::failed("stopped while waiting for the next poke");
    }
  }

private:
  // "poke 3" in poke mode; in reschedule mode each execution pokes once, so say how long the
  // try has been waiting instead.
  static std::string label(int poke_number, bool reschedule, std::chrono::steady_clock::duration waited) {
    if (!reschedule) return "poke " + std::to_string(poke_number);
    return "poke after " + format_duration(std::chrono::duration_cast<duration>(waited)) + " of waiting";
  }
};

}  // namespace dag::operators
