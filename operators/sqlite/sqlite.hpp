#pragma once
/// @file The sqlite operator: runs SQL against a SQLite database file.

#include <cctype>
#include <charconv>
#include <string>

#include <SQLiteCpp/SQLiteCpp.h>

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
    std::string sql = ctx.fields.at("sql");
    // All statements but the last run as a script; the last one's rows are the result.
    std::string body = sql;
    while (!body.empty() && (std::isspace(static_cast<unsigned char>(body.back())) || body.back() == ';')) body.pop_back();
    const auto split = last_statement_start(body);
    SQLite::Transaction tx(db);
    if (split > 0) db.exec(body.substr(0, split));
    SQLite::Statement st(db, body.substr(split));
    for (int i = 0;; ++i) {
      auto p = ctx.fields.find("parameters." + std::to_string(i));
      if (p == ctx.fields.end()) break;
      st.bind(i + 1, p->second);
    }
    json_rows rows(xcom_limit);
    while (st.executeStep()) {
      if (!rows.begin_row()) break;
      for (int c = 0; c < st.getColumnCount(); ++c) {
        const SQLite::Column col = st.getColumn(c);
        if (col.isNull()) rows.add_raw("null");
        else if (col.isInteger()) rows.add_raw(std::to_string(col.getInt64()));
        else if (col.isFloat()) rows.add_raw(shortest(col.getDouble()));
        else rows.add_text(col.getString());
      }
      if (!rows.end_row()) break;
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

  // Start of the last statement: after the last ';' outside quotes.
  static std::size_t last_statement_start(const std::string& sql) {
    std::size_t start = 0;
    char quote = 0;
    for (std::size_t i = 0; i < sql.size(); ++i) {
      const char c = sql[i];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == ';') {
        start = i + 1;
      }
    }
    return start;
  }
};

}  // namespace dag::operators
