#pragma once
/// @file The SQL sensor: waits until a query's first cell is truthy.

#include <string>

#include <dag/operators/postgres.hpp>
#include <dag/operators/sensor.hpp>
#include <dag/operators/sqlite.hpp>

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/core/time.hpp>

namespace dag::operators {

/// `operator: sql_sensor` — runs `sql` on `conn_id` (PostgreSQL, or SQLite for a `sqlite://`
/// connection) at each poke until the first cell of the first row is truthy (not NULL, not false,
/// not 0, not empty), and pushes the rows to XCom. Poking, `mode`, `timeout`, `soft_fail` and
/// backoff are the sensor base's (sensor.hpp).
struct sql_sensor {
  /// Fields: `conn_id`, `sql` (both required), and the sensor fields.
  static operator_spec spec() {
    return {"sql_sensor", sensor::with_fields({{"conn_id", field_kind::text, true}, {"sql", field_kind::templated, true, {}, {".sql"}}}),
            true, &run};
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

  /// Runs one execution of the sensor, each poke one query.
  static operator_result run(const task& t, task_context& ctx) {
    const std::string conn_id = ctx.fields.at("conn_id");
    const auto c = ctx.connection_lookup ? ctx.connection_lookup(conn_id) : std::nullopt;
    if (!c) return operator_result::failed("connection '" + conn_id + "' is not defined");
    task_context query = ctx;
    query.fields = {{"sql", ctx.fields.at("sql")}, {"conn_id", conn_id}};
    return sensor::run(ctx, [&](task_context&) {
      operator_result r = c->conn_type == "sqlite" ? sqlite::run(t, query) : postgres::run(t, query);
      if (r.outcome == try_outcome::failed) return poke_result::error(r.message);
      if (r.xcom && truthy(*r.xcom)) return poke_result::met(r.xcom);
      return poke_result::not_yet();
    });
  }
};

}  // namespace dag::operators
