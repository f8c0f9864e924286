#pragma once
/// @file The sqlite operator: runs SQL against a SQLite database file.

#include <charconv>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <dag/core/connection.hpp>
#include <dag/core/json_text.hpp>
#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>

namespace dag::operators {

/// `operator: sqlite` — runs `sql` (one or more statements) on the database file `database`, or
/// the host/schema of connection `conn_id`; the rows of the last statement go to XCom as a JSON
/// array of arrays (capped at 64 KiB, with a clear message when capped).
struct sqlite {
  /// Fields: `sql` (templated, required), `conn_id` or `database`, `parameters`.
  static operator_spec spec() {
    return {"sqlite",
            {{"sql", field_kind::templated, true, {}, {".sql", ".json"}},
             {"conn_id", field_kind::text, false},
             {"database", field_kind::templated, false},
             {"parameters", field_kind::string_list, false}},
            true,
            &run};
  }

  /// The XCom size cap.
  static constexpr std::size_t xcom_limit = 64 * 1024;

  /// Runs one try.
  static operator_result run(const task&, task_context& ctx) {
    std::string path;
    if (auto db = ctx.fields.find("database"); db != ctx.fields.end()) path = db->second;
    if (auto id = ctx.fields.find("conn_id"); path.empty() && id != ctx.fields.end()) {
      const auto c = ctx.connection_lookup ? ctx.connection_lookup(id->second) : std::nullopt;
      if (!c) return operator_result::failed("connection '" + id->second + "' is not defined");
      // sqlite:///abs/path.db puts the path in the schema; sqlite://rel.db in the host.
      path = c->host.empty() ? "/" + c->schema : c->host + (c->schema.empty() ? "" : "/" + c->schema);
    }
    if (path.empty()) return operator_result::failed("sqlite: set `database` or `conn_id`");
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.setBusyTimeout(5000);
    const std::string& sql = ctx.fields.at("sql");
    std::vector<std::string> parameters;
    for (int i = 0;; ++i) {
      auto p = ctx.fields.find("parameters." + std::to_string(i));
      if (p == ctx.fields.end()) break;
      parameters.push_back(p->second);
    }
    SQLite::Transaction tx(db);
    // SQLite's own parser splits the script: each prepare compiles one statement and says where
    // the next begins, so quotes, `--` and `/* */` comments and empty statements are its
    // business, not a hand-written scanner's. Statements run one by one as they are compiled (a
    // later one may use a table an earlier one created); the rows of the last one that is not
    // empty are the result, as Airflow's `return_last`. `parameters` bind to every statement
    // that has placeholders, as Airflow's hooks pass them to each statement.
    json_rows rows(xcom_limit);
    const char* next = sql.c_str();
    const char* const end = next + sql.size();
    while (next < end) {
      sqlite3_stmt* compiled = nullptr;
      const char* tail = nullptr;
      if (sqlite3_prepare_v2(db.getHandle(), next, static_cast<int>(end - next), &compiled, &tail) != SQLITE_OK)
        throw SQLite::Exception(db.getHandle());
      next = tail;
      if (!compiled) continue;  // only blanks or comments
      const std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> st(compiled, &sqlite3_finalize);
      const int wanted = sqlite3_bind_parameter_count(compiled);
      for (int i = 0; i < wanted && static_cast<std::size_t>(i) < parameters.size(); ++i) {
        const auto& v = parameters[static_cast<std::size_t>(i)];
        if (sqlite3_bind_text(compiled, i + 1, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK)
          throw SQLite::Exception(db.getHandle());
      }
      rows = json_rows(xcom_limit);
      // Rows beyond the cap are not read from a query; a statement that writes runs to its end.
      const bool reads_only = sqlite3_stmt_readonly(compiled) != 0;
      for (;;) {
        const int rc = sqlite3_step(compiled);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) throw SQLite::Exception(db.getHandle(), rc);
        if (!rows.begin_row()) {
          if (reads_only) break;
          continue;
        }
        for (int c = 0; c < sqlite3_column_count(compiled); ++c) {
          switch (sqlite3_column_type(compiled, c)) {
            case SQLITE_NULL: rows.add_raw("null"); break;
            case SQLITE_INTEGER: rows.add_raw(std::to_string(sqlite3_column_int64(compiled, c))); break;
            case SQLITE_FLOAT: rows.add_raw(shortest(sqlite3_column_double(compiled, c))); break;
            default: {
              const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(compiled, c));
              rows.add_text(text ? std::string_view(text, static_cast<std::size_t>(sqlite3_column_bytes(compiled, c))) : "");
            }
          }
        }
        rows.end_row();
      }
    }
    tx.commit();
    operator_result out = operator_result::success(rows.json());
    if (rows.capped()) {
      out.message = "result capped at " + std::to_string(xcom_limit) + " bytes of XCom: " + std::to_string(rows.rows()) + " rows kept";
      if (ctx.log) ctx.log("[dagrun] " + out.message);
    }
    return out;
  }

private:
  // The shortest text that reads back as the same double (1.5, 1e-09), as JSON wants.
  static std::string shortest(double v) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return ec == std::errc{} ? std::string(buf, end) : "null";
  }
};

}  // namespace dag::operators
