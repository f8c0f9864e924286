#pragma once
/// @file The postgres operator: runs SQL on a PostgreSQL connection.

#include <string>
#include <vector>

#include <pqxx/pqxx>

#include <dag/core/connection.hpp>
#include <dag/core/json_text.hpp>
#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>

namespace dag::operators {

/// `operator: postgres` — runs `sql` on `conn_id` in one transaction, or with `autocommit: true`
/// outside any transaction block (for VACUUM, CREATE DATABASE, …; PostgreSQL still runs a
/// multi-statement text as one implicit transaction); `parameters` bind to `$1, $2, …` (one
/// statement then). The rows of the last statement go to XCom as a JSON array of arrays, capped
/// at 64 KiB with a message.
struct postgres {
  /// Fields: `sql` (templated, required), `conn_id` (required), `parameters`, `autocommit`.
  static operator_spec spec() {
    return {"postgres",
            {{"sql", field_kind::templated, true, {}, {".sql", ".json"}},
             {"conn_id", field_kind::text, true},
             {"parameters", field_kind::string_list, false},
             {"autocommit", field_kind::boolean, false}},
            true,
            &run};
  }

  /// The XCom size cap.
  static constexpr std::size_t xcom_limit = 64 * 1024;

  /// Runs one try.
  static operator_result run(const task&, task_context& ctx) {
    const std::string conn_id = ctx.fields.at("conn_id");
    const auto c = ctx.connection_lookup ? ctx.connection_lookup(conn_id) : std::nullopt;
    if (!c) return operator_result::failed("connection '" + conn_id + "' is not defined");
    std::vector<std::string> params;
    for (int i = 0;; ++i) {
      auto p = ctx.fields.find("parameters." + std::to_string(i));
      if (p == ctx.fields.end()) break;
      params.push_back(p->second);
    }
    const bool autocommit = field_is_true(ctx, "autocommit");
    const std::string& sql = ctx.fields.at("sql");
    try {
      pqxx::connection conn(libpq_conninfo(*c));
      pqxx::result r;
      if (autocommit) {
        pqxx::nontransaction tx(conn);
        r = params.empty() ? tx.exec(sql) : tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
      } else {
        pqxx::work tx(conn);
        r = params.empty() ? tx.exec(sql) : tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
        tx.commit();
      }
      json_rows rows(xcom_limit);
      for (const auto& row : r) {
        if (!rows.begin_row()) break;
        for (const auto& field : row) {
          if (field.is_null()) rows.add_raw("null");
          else if (is_number(field.type())) rows.add_raw(field.c_str());
          else if (field.type() == 16) rows.add_raw(field.c_str()[0] == 't' ? "true" : "false");  // bool
          else rows.add_text(field.c_str());
        }
        if (!rows.end_row()) break;
      }
      operator_result out = operator_result::success(rows.json());
      if (ctx.log) ctx.log("[dagrun] " + std::to_string(r.affected_rows()) + " rows affected, " + std::to_string(r.size()) + " returned");
      if (rows.capped()) {
        out.message = "result capped at " + std::to_string(xcom_limit) + " bytes of XCom: " + std::to_string(rows.rows()) + " rows kept";
        if (ctx.log) ctx.log("[dagrun] " + out.message);
      }
      return out;
    } catch (const pqxx::broken_connection& e) {
      // libpq's text names host and port, never the password.
      return fail(ctx, "cannot connect to '" + conn_id + "': " + first_line(e.what()));
    } catch (const pqxx::sql_error& e) {
      return fail(ctx, "SQL error: " + first_line(e.what()));
    }
  }

private:
  static bool is_number(pqxx::oid type) {
    // int8, int2, int4, oid, float4, float8, numeric
    return type == 20 || type == 21 || type == 23 || type == 26 || type == 700 || type == 701 || type == 1700;
  }
  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }
  static operator_result fail(task_context& ctx, const std::string& message) {
    if (ctx.log) ctx.log("[dagrun] " + message);
    return operator_result::failed(message);
  }
};

}  // namespace dag::operators
