/// @file The PostgreSQL backend of the store core: a pg_connection (reconnection, retries and
/// in-doubt commits: see pg_connection.hpp), migrations under an advisory lock, and the hot path's
/// writes as set-based statements, one per batch, over array parameters.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "pg_connection.hpp"
#include "store_core.hpp"

namespace dag::detail {
namespace {

/// PostgreSQL's type for a column type; arrays of it carry a batch's column.
std::string type_name(column_type type) {
  switch (type) {
    case column_type::integer: return "integer";
    case column_type::instant: return "bigint";
    case column_type::flag: return "boolean";
    case column_type::text: break;
  }
  return "text";
}

/// The SQL of `w` for a whole batch: rows travel as one array parameter per column (`$1::text[]`),
/// unnested server-side, so one prepared statement serves any batch size and a batch is one round
/// trip. An update returns the ordinals (from 1) of the rows that won.
std::string sql_of(const row_write& w) {
  std::string arrays;
  for (std::size_t i = 0; i < w.given.size(); ++i)
    arrays += (i > 0 ? ", $" : "$") + std::to_string(i + 1) + "::" + type_name(w.given[i].type) + "[]";
  const std::string rows = "unnest(" + arrays + ") WITH ORDINALITY AS u(" + w.names() + ", ord)";
  const auto column = [&](std::size_t i) { return "u." + w.given[i].name; };
  switch (w.what) {
    case row_write::verb::insert:  // in the order given: ids drawn on insertion follow it
      return "INSERT INTO " + w.table + " (" + w.names() + ") SELECT " + w.refs(column) + " FROM " + rows +
             " ORDER BY u.ord " + w.clause;
    case row_write::verb::update:
      return "UPDATE " + w.table + " AS r SET " + w.expand(w.clause, column) + " FROM " + rows + " WHERE " +
             w.expand(w.condition, column) + " RETURNING u.ord";
    case row_write::verb::remove:
      break;
  }
  return "DELETE FROM " + w.table + " AS r USING " + rows + " WHERE " + w.expand(w.condition, column);
}

/// Rows per set-based statement: large enough that 100k updates take a few dozen round trips, small
/// enough that one statement's parameters stay a few megabytes.
constexpr std::size_t batch_rows = 5000;

/// Splits rows into consecutive batches of at most `batch_rows` in which no key (a row's first
/// `key_size` values) repeats, so that a set-based statement on a batch does what applying its rows
/// one by one would: a repeated key starts a new batch, which sees the earlier write. Keys are
/// compared by hash; a collision only ends a batch early.
std::vector<std::pair<std::size_t, std::size_t>> batches(std::size_t key_size, std::size_t count, const row_source& rows) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::unordered_set<std::size_t> seen;
  std::vector<value> row;
  std::size_t begin = 0;
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t key = 0;
    if (key_size > 0) rows(i, row);
    for (std::size_t k = 0; k < key_size; ++k) key = key * 1000003 ^ std::hash<value>{}(row[k]);
    if (i - begin == batch_rows || (key_size > 0 && seen.contains(key))) {
      out.emplace_back(begin, i);
      begin = i;
      seen.clear();
    }
    if (key_size > 0) seen.insert(key);
  }
  if (begin < count) out.emplace_back(begin, count);
  return out;
}

/// Appends `v` to the text form of a PostgreSQL array (`{"a","b",NULL}`, closed by the caller).
void add_element(std::string& array, const value& v) {
  array += array.empty() ? '{' : ',';
  if (const auto* number = std::get_if<std::int64_t>(&v)) {
    array += std::to_string(*number);
  } else if (const auto* text = std::get_if<std::string_view>(&v)) {
    array += '"';  // quoted so that any content survives
    for (char c : *text) {
      if (c == '"' || c == '\\') array += '\\';
      array += c;
    }
    array += '"';
  } else {
    array += "NULL";
  }
}

/// Statement parameters as libpq takes them (text; nullopt for NULL).
std::vector<std::optional<std::string>> parameters(std::span<const value> values) {
  std::vector<std::optional<std::string>> out;
  for (const value& v : values) {
    if (const auto* number = std::get_if<std::int64_t>(&v)) out.emplace_back(std::to_string(*number));
    else if (const auto* text = std::get_if<std::string_view>(&v)) out.emplace_back(std::string(*text));
    else out.emplace_back(std::nullopt);
  }
  return out;
}

/// A result row.
class pg_row final : public row {
public:
  explicit pg_row(const pqxx::row& r) : r_(r) {}
  bool is_null(int column) const override { return r_[column].is_null(); }
  std::int64_t integer(int column) const override { return r_[column].as<std::int64_t>(); }
  std::string text(int column) const override { return r_[column].as<std::string>(); }

private:
  const pqxx::row& r_;
};

/// The PostgreSQL store. One object is one connection (re-established when it breaks), used from
/// one thread at a time; the server arbitrates between store objects and processes. No global
/// state: everything, the prepared statements included, lives in the object.
class postgres_store final : public store_core {
public:
  /// Connects to the database of `where` (once, without retrying) and migrates it.
  explicit postgres_store(pg_target where);

private:
  /// One transaction's statements.
  class pg_session;

  void run(const char* what, access mode, const std::function<void(session&)>& body) override;

  pg_connection conn_;
  std::unordered_map<const row_write*, std::string> writes_;  ///< each write's SQL
};

class postgres_store::pg_session final : public session {
public:
  pg_session(postgres_store& store, pqxx::transaction_base& tx) : store_(store), tx_(tx) {}

  std::size_t exec(std::string_view sql, std::span<const value> params) override {
    return static_cast<std::size_t>(run(sql, params).affected_rows());
  }
  void query(std::string_view sql, std::span<const value> params, const std::function<void(const row&)>& each) override {
    for (const auto& r : run(sql, params)) each(pg_row(r));
  }
  void script(std::string_view sql) override { tx_.exec(std::string(sql)); }
  std::vector<bool> write(const row_write& w, std::size_t count, const row_source& rows, const on_lost* lost) override {
    std::vector<bool> won(count, false);
    for (const auto& [begin, end] : batches(w.key_size, count, rows)) {
      for (std::size_t i : write_batch(w, begin, end, rows)) won[i] = true;
      std::vector<std::size_t> again;
      for (std::size_t i = begin; i < end && lost != nullptr; ++i)
        if (!won[i] && lost->applies(i)) again.push_back(i);
      if (again.empty()) continue;
      const row_source subset = [&](std::size_t i, std::vector<value>& out) { rows(again[i], out); };
      write_batch(lost->insert, 0, again.size(), subset);
      for (std::size_t i : write_batch(w, 0, again.size(), subset)) won[again[i]] = true;
    }
    return won;
  }

private:
  /// Runs `w` once over rows `begin` to `end` - 1; returns the rows that won (updates).
  std::vector<std::size_t> write_batch(const row_write& w, std::size_t begin, std::size_t end, const row_source& rows) {
    auto it = store_.writes_.find(&w);
    if (it == store_.writes_.end()) it = store_.writes_.emplace(&w, sql_of(w)).first;
    std::vector<std::string> arrays(w.given.size());  // one per column
    std::vector<value> row;
    for (std::size_t i = begin; i < end; ++i) {
      rows(i, row);
      for (std::size_t c = 0; c < arrays.size(); ++c) add_element(arrays[c], row[c]);
    }
    for (auto& a : arrays) a += a.empty() ? "{}" : "}";
    const pqxx::result r = tx_.exec_prepared(store_.conn_.prepared(it->second), pqxx::prepare::make_dynamic_params(arrays));
    std::vector<std::size_t> won;
    if (w.what == row_write::verb::update)
      for (const auto& ord : r) won.push_back(begin + ord[0].as<std::size_t>() - 1);
    return won;
  }

  pqxx::result run(std::string_view sql, std::span<const value> params) {
    return tx_.exec_prepared(store_.conn_.prepared(sql), pqxx::prepare::make_dynamic_params(parameters(params)));
  }

  postgres_store& store_;
  pqxx::transaction_base& tx_;
};

dialect postgres_dialect() {
  return {"TEXT COLLATE \"C\"",
          "BIGINT",
          "BOOLEAN NOT NULL DEFAULT FALSE",
          "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
          "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN 0 ELSE 1 END",
          // Migrations' advisory lock ("dagrun" in ASCII, 0x64616772756e): per database, so stores on
          // other databases do not wait; it goes with the transaction, so it cannot outlive a crash.
          "SELECT pg_advisory_xact_lock(110369510159726)"};
}

postgres_store::postgres_store(pg_target where)
    : store_core(postgres_dialect(), where.label), conn_(std::move(where)) {
  conn_.connect();
  migrate();
}

void postgres_store::run(const char* what, access mode, const std::function<void(session&)>& body) {
  const auto in_session = [&](pqxx::transaction_base& tx) {
    pg_session s(*this, tx);
    body(s);
  };
  if (mode == access::read) conn_.read(what, in_session);
  else conn_.write(what, in_session);
}

}  // namespace

std::unique_ptr<store> open_postgres_store(const std::string& url) {
  return std::make_unique<postgres_store>(parse_postgres_url(url, "dagrun"));
}

}  // namespace dag::detail
