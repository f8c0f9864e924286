/// @file The PostgreSQL backend of the store core: a pg_connection (reconnection, retries and
/// in-doubt commits: see pg_connection.hpp), migrations under an advisory lock, and the hot path's
/// writes as set-based statements, one per batch, over array parameters (a batch of one row as
/// the same statement over scalar parameters: see sql_of_one).

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "dag/core/json_text.hpp"
#include "pg_attachment.hpp"
#include "pg_connection.hpp"
#include "store_core.hpp"

namespace dag::detail {
namespace {

/// PostgreSQL's type for each column_type; arrays of it carry a batch's column.
constexpr std::array<std::string_view, 4> type_names{"text", "integer", "bigint", "boolean"};

/// The parameter that carries given column `i` of `w`, typed: `$1::text`, or `$1::text[]` for an
/// array of a batch's values.
std::string parameter(const row_write& w, std::size_t i, bool array) {
  return "$" + std::to_string(i + 1) + "::" + std::string(type_names[static_cast<std::size_t>(w.given[i].type)]) +
         (array ? "[]" : "");
}

/// The SQL of `w` for a whole batch: rows travel as one array parameter per column (`$1::text[]`),
/// unnested server-side, so one prepared statement serves any batch size and a batch is one round
/// trip. An update returns the ordinals (from 1) of the rows that won.
std::string sql_of(const row_write& w) {
  const auto array = [&](std::size_t i) { return parameter(w, i, true); };
  const std::string rows = "unnest(" + w.refs(array) + ") WITH ORDINALITY AS u(" + w.names() + ", ord)";
  const auto column = [&](std::size_t i) { return "u." + w.given[i].name; };
  if (w.what == row_write::verb::insert)  // in the order given: ids drawn on insertion follow it
    return "INSERT INTO " + w.table + " (" + w.names() + ") SELECT " + w.refs(column) + " FROM " + rows +
           " ORDER BY u.ord " + w.clause;
  const std::string where = " WHERE " + w.expand(w.condition, column);
  if (w.what == row_write::verb::copy)
    return "INSERT INTO " + w.table + " " + w.from + ", " + rows + where + " ORDER BY u.ord " + w.clause;
  if (w.what == row_write::verb::remove) return "DELETE FROM " + w.table + " AS r USING " + rows + where;
  return "UPDATE " + w.table + " AS r SET " + w.expand(w.clause, column) + " FROM " + rows + where + " RETURNING u.ord";
}

/// The SQL of `w` for one row, with one scalar parameter per column (`$1::text`). A one-row batch
/// (most of a chain's writes) goes this way: PostgreSQL plans the set-based form again at every
/// call (a generic plan's guess of an array's rows makes it dearer than a custom one, so the plan
/// cache never keeps it), which cost more than running it; this form's generic plan is the custom
/// one (an index scan on the key), kept after the fifth call.
std::string sql_of_one(const row_write& w) {
  const auto scalar = [&](std::size_t i) { return parameter(w, i, false); };
  if (w.what == row_write::verb::insert) return "INSERT INTO " + w.table + " (" + w.names() + ") VALUES (" + w.refs(scalar) + ") " + w.clause;
  const std::string where = " WHERE " + w.expand(w.condition, scalar);
  std::string sql;
  if (w.what == row_write::verb::copy) sql = "INSERT INTO " + w.table + " " + w.from + where + " " + w.clause;
  else if (w.what == row_write::verb::remove) sql = "DELETE FROM " + w.table + " AS r" + where;
  else sql = "UPDATE " + w.table + " AS r SET " + w.expand(w.clause, scalar) + where + " RETURNING 1";
  // The array form names every column in its unnest; here a column only its row gives (named
  // nowhere in the condition or assignments) would be a parameter without a type, refused by
  // the server on one-row batches only. Caught here, where the write is defined.
  for (std::size_t i = 0; i < w.given.size(); ++i)
    if (sql.find(parameter(w, i, false)) == std::string::npos)
      throw std::logic_error("store write on " + w.table + ": column " + w.given[i].name + " is given but used nowhere");
  return sql;
}

/// `values` as libpq takes parameters: text (as PostgreSQL holds it, pg_text), nullopt for NULL.
std::vector<std::optional<std::string>> parameters_of(std::span<const value> values) {
  std::vector<std::optional<std::string>> texts;
  texts.reserve(values.size());
  for (const value& v : values) {
    const auto* number = std::get_if<std::int64_t>(&v);
    const auto* text = std::get_if<std::string_view>(&v);
    texts.push_back(number ? std::to_string(*number) : text ? std::optional<std::string>(pg_text(*text)) : std::nullopt);
  }
  return texts;
}

/// Rows per set-based statement: large enough that 100k updates take a few dozen round trips, small
/// enough that one statement's parameters stay a few megabytes.
constexpr std::size_t batch_rows = 5000;

/// The hash of `v` as PostgreSQL holds it: text that is not UTF-8 hashed as pg_text converts it.
std::size_t held_hash(const value& v) {
  const auto* text = std::get_if<std::string_view>(&v);
  if (text == nullptr || is_utf8_text(*text)) return std::hash<value>{}(v);
  const std::string held = pg_text(*text);
  return std::hash<value>{}(value{std::string_view(held)});
}

/// Splits rows into consecutive batches of at most `batch_rows` in which no key (a row's first
/// `key_size` values) repeats, so that a set-based statement on a batch does what applying its rows
/// one by one would: a repeated key starts a new batch, which sees the earlier write. Keys are
/// compared by hash, of the text as PostgreSQL holds it (pg_text: two keys that differ only in
/// bytes it cannot hold are one key there); a collision only ends a batch early.
std::vector<std::pair<std::size_t, std::size_t>> batches(std::size_t key_size, std::size_t count, const row_source& rows) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::unordered_set<std::size_t> seen;
  std::vector<value> row;
  std::size_t begin = 0;
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t key = 0;
    if (key_size > 0) rows(i, row);
    for (std::size_t k = 0; k < key_size; ++k) key = key * 1000003 ^ held_hash(row[k]);
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

/// Appends `v` to the text form of a PostgreSQL array (pg_connection.hpp).
void add_element(std::string& array, const value& v) {
  if (const auto* number = std::get_if<std::int64_t>(&v)) add_array_element(array, *number);
  else if (const auto* text = std::get_if<std::string_view>(&v)) add_array_element(array, *text);
  else add_array_null(array);
}

/// The PostgreSQL store. One object is one connection (re-established when it breaks), used from
/// one thread at a time; the server arbitrates between store objects and processes. No global
/// state: everything, the prepared statements included, lives in the object.
class postgres_store final : public store_core, private session {
public:
  /// Connects to the database of `where` (once, without retrying) and migrates it.
  explicit postgres_store(pg_target where);

private:
  void run(const char* what, access mode, const std::function<void(session&)>& body) override;

  std::size_t exec(std::string_view sql, std::span<const value> params,
                   const std::function<void(std::span<const value>)>& each) override;
  std::size_t exec_inline(std::string_view sql, std::span<const value> params,
                          const std::function<void(std::span<const value>)>& each) override;
  void script(std::string_view sql) override { conn_.send(*tx_, std::string(sql)); }
  std::vector<bool> write(const row_write& w, std::size_t count, const row_source& rows, const on_lost* lost) override;
  bool attach(write_attachment& a, std::span<const task_instance_record* const> started) override;
  void open_attachment(write_attachment& a) override;

  /// Runs `w` once over rows `begin` to `end` - 1; returns the rows that won (updates).
  std::vector<std::size_t> write_batch(const row_write& w, std::size_t begin, std::size_t end, const row_source& rows);
  /// Runs the prepared statement for `sql` with `params` (protocol parameters), after what the
  /// transaction has not sent yet (its BEGIN, deferred statements).
  pqxx::result exec_prepared(std::string_view sql, const std::vector<std::optional<std::string>>& params);
  /// The SQL of `w` for rows `begin` to `end` - 1 (one row's, or a batch's) and its parameters.
  std::pair<const std::string*, std::vector<std::optional<std::string>>> statement_of(const row_write& w, std::size_t begin,
                                                                                      std::size_t end, const row_source& rows);
  /// `params` as SQL literals, to be written into a statement's text (never a secret).
  std::vector<std::string> literals_of(const std::vector<std::optional<std::string>>& params) const;
  /// Calls `each` with the rows of `result`, as values.
  static void read_rows(const pqxx::result& result, const std::function<void(std::span<const value>)>& each);

  std::string identity_;  ///< pg_target::identity of its database: where attachments may be written
  pg_write_attachment* ours(write_attachment& a) const;
  pg_connection conn_;
  pqxx::transaction_base* tx_ = nullptr;  ///< during `run`, the transaction of its current attempt
  std::unordered_map<const row_write*, std::string> writes_;         ///< each write's SQL
  std::unordered_map<const row_write*, std::string> single_writes_;  ///< each write's SQL for one row
};

dialect postgres_dialect() {
  return {{{"key", "TEXT COLLATE \"C\""},
           {"instant", "BIGINT"},
           {"flag", "BOOLEAN NOT NULL DEFAULT FALSE"},
           {"row_id", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"},
           {"without_rowid", ""}},
          "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN 0 ELSE 1 END",
          // Migrations' advisory lock ("dagrun" in ASCII, 0x64616772756e): per database, so stores on
          // other databases do not wait; it goes with the transaction, so it cannot outlive a crash.
          "SELECT pg_advisory_xact_lock(110369510159726)",
          " FOR UPDATE"};
}

postgres_store::postgres_store(pg_target where)
    : store_core(postgres_dialect(), where.label), identity_(where.identity), conn_(std::move(where)) {
  conn_.connect();
  migrate();
}

void postgres_store::run(const char* what, access mode, const std::function<void(session&)>& body) {
  const auto in_session = [&](pqxx::transaction_base& tx) {
    tx_ = &tx;
    body(*this);
  };
  // A write's BEGIN goes with its first statement (every statement here sends what is pending
  // first). Its body has no result: every write is marked, as one that changed something (the
  // third argument, which would tell a result that changed nothing, is never called).
  if (mode == access::read) conn_.read(what, in_session);
  else conn_.write_joined(what, in_session, [](const auto&) { return false; });
}

pqxx::result postgres_store::exec_prepared(std::string_view sql, const std::vector<std::optional<std::string>>& params) {
  conn_.send(*tx_, "");
  return tx_->exec_prepared(conn_.prepared(sql), pqxx::prepare::make_dynamic_params(params));
}

std::vector<std::string> postgres_store::literals_of(const std::vector<std::optional<std::string>>& params) const {
  std::vector<std::string> literals;
  literals.reserve(params.size());
  for (const auto& p : params) literals.push_back(p ? conn_.quote(*p) : "NULL");
  return literals;
}

void postgres_store::read_rows(const pqxx::result& result, const std::function<void(std::span<const value>)>& each) {
  std::vector<value> row;
  for (const auto& r : result) {
    row.clear();
    for (const auto& f : r) row.push_back(f.is_null() ? value{} : std::string_view(f.c_str(), f.size()));
    if (each) each(row);
  }
}

std::size_t postgres_store::exec(std::string_view sql, std::span<const value> params,
                                 const std::function<void(std::span<const value>)>& each) {
  const pqxx::result result = exec_prepared(sql, parameters_of(params));
  read_rows(result, each);
  return static_cast<std::size_t>(result.affected_rows());
}

std::size_t postgres_store::exec_inline(std::string_view sql, std::span<const value> params,
                                        const std::function<void(std::span<const value>)>& each) {
  const pqxx::result result = conn_.send(*tx_, conn_.execute(sql, literals_of(parameters_of(params))));
  read_rows(result, each);
  return static_cast<std::size_t>(result.affected_rows());
}

/// The attachment `a` when it is one this store writes (its rows belong in this database), else nullptr.
pg_write_attachment* postgres_store::ours(write_attachment& a) const {
  auto* rows = dynamic_cast<pg_write_attachment*>(&a);
  return rows != nullptr && rows->database() == identity_ ? rows : nullptr;
}

void postgres_store::open_attachment(write_attachment& a) {
  if (auto* rows = ours(a)) rows->open(conn_);
}

bool postgres_store::attach(write_attachment& a, std::span<const task_instance_record* const> started) {
  auto* rows = ours(a);
  if (rows == nullptr) return false;
  rows->write(conn_, *tx_, started);
  return true;
}

std::vector<bool> postgres_store::write(const row_write& w, std::size_t count, const row_source& rows,
                                        const on_lost* lost) {
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

std::pair<const std::string*, std::vector<std::optional<std::string>>> postgres_store::statement_of(
    const row_write& w, std::size_t begin, std::size_t end, const row_source& rows) {
  std::vector<value> row;
  if (end - begin == 1) {
    auto one = single_writes_.find(&w);
    if (one == single_writes_.end()) one = single_writes_.emplace(&w, sql_of_one(w)).first;
    rows(begin, row);  // may hold more than `w` takes (an update's row for its insert): the first columns
    return {&one->second, parameters_of(std::span<const value>(row).first(w.given.size()))};
  }
  auto it = writes_.find(&w);
  if (it == writes_.end()) it = writes_.emplace(&w, sql_of(w)).first;
  std::vector<std::string> arrays(w.given.size());  // one per column
  for (std::size_t i = begin; i < end; ++i) {
    rows(i, row);
    for (std::size_t c = 0; c < arrays.size(); ++c) add_element(arrays[c], row[c]);
  }
  std::vector<std::optional<std::string>> params;
  for (auto& a : arrays) {
    close_array(a);
    params.emplace_back(std::move(a));
  }
  return {&it->second, std::move(params)};
}

std::vector<std::size_t> postgres_store::write_batch(const row_write& w, std::size_t begin, std::size_t end,
                                                     const row_source& rows) {
  const auto [sql, params] = statement_of(w, begin, end, rows);
  // A deferrable remove of one row (a batch's keys would fill the server's log of a failed
  // statement) is sent with the next statement; it has nothing to return.
  if (w.deferrable && w.what == row_write::verb::remove && end - begin == 1) {
    conn_.send_later(conn_.execute(*sql, literals_of(params)));
    return {};
  }
  const pqxx::result r = exec_prepared(*sql, params);
  if (w.what != row_write::verb::update) return {};
  if (end - begin == 1) return r.empty() ? std::vector<std::size_t>{} : std::vector<std::size_t>{begin};
  std::vector<std::size_t> won;
  for (const auto& ord : r) won.push_back(begin + ord[0].as<std::size_t>() - 1);
  return won;
}

}  // namespace

bool postgres_answers(const std::string& url, std::chrono::milliseconds within) {
  return pg_answers(parse_postgres_url(url, "dagrun health"), within);
}

std::unique_ptr<store> open_postgres_store(const std::string& url) {
  return std::make_unique<postgres_store>(parse_postgres_url(url, "dagrun"));
}

}  // namespace dag::detail
