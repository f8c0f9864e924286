/// @file The store core (see store_core.hpp): the schema, the records' columns, and every store
/// method over the backend's sessions.

#include "store_core.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace dag::detail {
namespace {

/// The migrations, in order: entry i brings the schema from version i to i + 1. A shipped
/// migration is never edited; a schema change is a new entry. `{key}`, `{instant}`, `{flag}` and
/// `{row_id}` are the backend's types (see `dialect`).
constexpr std::array<std::string_view, 2> migrations{
    // 1: the initial schema.
    R"sql(
CREATE TABLE dags (
  dag_id    {key} PRIMARY KEY,
  is_paused {flag}
);

CREATE TABLE import_errors (
  id      {row_id},
  file    TEXT NOT NULL,
  message TEXT NOT NULL
);

CREATE TABLE dag_runs (
  dag_id              {key} NOT NULL,
  run_id              {key} NOT NULL,
  run_type            TEXT NOT NULL,
  state               TEXT NOT NULL,
  logical_date        {instant} NOT NULL,
  data_interval_start {instant} NOT NULL,
  data_interval_end   {instant} NOT NULL,
  start_date          {instant},
  end_date            {instant},
  conf                TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (dag_id, run_id)
);
-- One scheduled or backfill run per logical date, whoever creates it (several schedulers, a
-- backfill racing the scheduler); manual runs may share a date with them.
CREATE UNIQUE INDEX dag_runs_one_per_scheduled_date ON dag_runs (dag_id, logical_date)
  WHERE run_type IN ('scheduled', 'backfill');
CREATE INDEX dag_runs_by_logical_date ON dag_runs (dag_id, logical_date);
CREATE INDEX dag_runs_by_state ON dag_runs (state, end_date);

CREATE TABLE task_instances (
  dag_id     {key} NOT NULL,
  run_id     {key} NOT NULL,
  task_id    {key} NOT NULL,
  state      TEXT NOT NULL DEFAULT 'none',
  try_number INTEGER NOT NULL DEFAULT 0,
  start_date {instant},
  end_date   {instant},
  retry_at   {instant},
  exit_code  INTEGER,
  hostname   TEXT NOT NULL DEFAULT '',
  pid        INTEGER NOT NULL DEFAULT 0,
  log_path   TEXT NOT NULL DEFAULT '',
  message    TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (dag_id, run_id, task_id),
  FOREIGN KEY (dag_id, run_id) REFERENCES dag_runs (dag_id, run_id) ON DELETE CASCADE
);
CREATE INDEX task_instances_by_state ON task_instances (state);

CREATE TABLE task_tries (
  dag_id     {key} NOT NULL,
  run_id     {key} NOT NULL,
  task_id    {key} NOT NULL,
  try_number INTEGER NOT NULL,
  state      TEXT NOT NULL,
  start_date {instant},
  end_date   {instant},
  exit_code  INTEGER,
  hostname   TEXT NOT NULL DEFAULT '',
  pid        INTEGER NOT NULL DEFAULT 0,
  log_path   TEXT NOT NULL DEFAULT '',
  message    TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (dag_id, run_id, task_id, try_number),
  FOREIGN KEY (dag_id, run_id, task_id) REFERENCES task_instances (dag_id, run_id, task_id) ON DELETE CASCADE
);

CREATE TABLE xcom (
  dag_id  {key} NOT NULL,
  run_id  {key} NOT NULL,
  task_id {key} NOT NULL,
  key     {key} NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY (dag_id, run_id, task_id, key),
  FOREIGN KEY (dag_id, run_id, task_id) REFERENCES task_instances (dag_id, run_id, task_id) ON DELETE CASCADE
);

CREATE TABLE variables (
  name  {key} PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE connections (
  conn_id   {key} PRIMARY KEY,
  conn_type TEXT NOT NULL DEFAULT '',
  host      TEXT NOT NULL DEFAULT '',
  port      INTEGER,
  login     TEXT NOT NULL DEFAULT '',
  password  TEXT NOT NULL DEFAULT '',
  schema    TEXT NOT NULL DEFAULT ''
);
)sql",
    // 2: rescheduled tries (sensors in reschedule mode) and retries given back by clearing.
    R"sql(
ALTER TABLE task_instances ADD COLUMN first_start_date {instant};
ALTER TABLE task_instances ADD COLUMN cleared_tries INTEGER NOT NULL DEFAULT 0;
)sql",
};

/// The schema version this build creates and understands.
constexpr int latest_schema_version = static_cast<int>(migrations.size());

/// `text` with every `{token}` that `replace` knows (it returns nullopt for the others) replaced.
std::string expand(std::string_view text, const std::function<std::optional<std::string>(std::string_view)>& replace) {
  std::string out;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t open = text.find('{', pos);
    const std::size_t close = open == std::string_view::npos ? open : text.find('}', open);
    if (close == std::string_view::npos) {
      out += text.substr(pos);
      break;
    }
    const auto replacement = replace(text.substr(open + 1, close - open - 1));
    out += text.substr(pos, open - pos);
    out += replacement ? *replacement : std::string(text.substr(open, close - open + 1));
    pos = close + 1;
  }
  return out;
}

// --- conversions at the boundary --------------------------------------------------------------

std::int64_t micros_of(timestamp t) { return static_cast<std::int64_t>(t.time_since_epoch().count()); }
std::int64_t micros_of(time_point t) { return micros_of(std::chrono::time_point_cast<std::chrono::microseconds>(t)); }
timestamp timestamp_at(std::int64_t micros) { return timestamp{std::chrono::microseconds{micros}}; }

value value_of(const std::string& text) { return std::string_view(text); }
value value_of(int number) { return std::int64_t{number}; }
value value_of(const std::optional<int>& number) { return number ? value_of(*number) : value{}; }
value value_of(time_point t) { return micros_of(t); }
value value_of(const std::optional<timestamp>& t) { return t ? value{micros_of(*t)} : value{}; }
template <class Enum>
  requires std::is_enum_v<Enum>
value value_of(Enum e) {
  return to_string(e);  // names of static storage
}

/// Reads an enum stored by name; a name this build does not know means the database was written by
/// something else, which is an error rather than a silent default.
template <class Enum>
void read_name(const std::string& text, Enum& out, std::optional<Enum> (*parse)(std::string_view), const char* what) {
  const auto parsed = parse(text);
  if (!parsed) throw error("the database holds an unknown " + std::string(what) + " '" + text + "'");
  out = *parsed;
}

void read_value(const row& r, int i, std::string& out) { out = r.text(i); }
void read_value(const row& r, int i, int& out) { out = static_cast<int>(r.integer(i)); }
void read_value(const row& r, int i, std::optional<int>& out) {
  out = r.is_null(i) ? std::nullopt : std::optional<int>(static_cast<int>(r.integer(i)));
}
void read_value(const row& r, int i, time_point& out) {
  out = std::chrono::floor<std::chrono::seconds>(timestamp_at(r.integer(i)));
}
void read_value(const row& r, int i, std::optional<timestamp>& out) {
  out = r.is_null(i) ? std::nullopt : std::optional<timestamp>(timestamp_at(r.integer(i)));
}
void read_value(const row& r, int i, run_type& out) { read_name(r.text(i), out, parse_run_type, "run type"); }
void read_value(const row& r, int i, run_state& out) { read_name(r.text(i), out, parse_run_state, "run state"); }
void read_value(const row& r, int i, task_state& out) { read_name(r.text(i), out, parse_task_state, "task state"); }

template <class T>
constexpr column_type type_of() {
  if constexpr (std::same_as<T, int> || std::same_as<T, std::optional<int>>) return column_type::integer;
  else if constexpr (std::same_as<T, time_point> || std::same_as<T, std::optional<timestamp>>) return column_type::instant;
  else return column_type::text;  // text, and enums by name
}

// --- the records' columns: each listed once, in table order, keys first ---------------------------
// `visit(column name, member)` for every column; R is the record, const or not.

template <class R, class F>
  requires std::same_as<std::remove_const_t<R>, run_record>
void fields(R& r, F&& visit) {
  visit("dag_id", r.dag_id);
  visit("run_id", r.run_id);
  visit("run_type", r.type);
  visit("state", r.state);
  visit("logical_date", r.logical_date);
  visit("data_interval_start", r.interval.start);
  visit("data_interval_end", r.interval.end);
  visit("start_date", r.start_date);
  visit("end_date", r.end_date);
  visit("conf", r.conf);
}

template <class R, class F>
  requires std::same_as<std::remove_const_t<R>, task_instance_record>
void fields(R& r, F&& visit) {
  visit("dag_id", r.dag_id);
  visit("run_id", r.run_id);
  visit("task_id", r.task_id);
  visit("state", r.state);
  visit("try_number", r.try_number);
  visit("start_date", r.start_date);
  visit("end_date", r.end_date);
  visit("retry_at", r.retry_at);
  visit("exit_code", r.exit_code);
  visit("hostname", r.hostname);
  visit("pid", r.pid);
  visit("log_path", r.log_path);
  visit("message", r.message);
  visit("first_start_date", r.first_start_date);
  visit("cleared_tries", r.cleared_tries);
}

template <class R, class F>
  requires std::same_as<std::remove_const_t<R>, try_record>
void fields(R& r, F&& visit) {
  visit("dag_id", r.dag_id);
  visit("run_id", r.run_id);
  visit("task_id", r.task_id);
  visit("try_number", r.try_number);
  visit("state", r.state);
  visit("start_date", r.start_date);
  visit("end_date", r.end_date);
  visit("exit_code", r.exit_code);
  visit("hostname", r.hostname);
  visit("pid", r.pid);
  visit("log_path", r.log_path);
  visit("message", r.message);
}

template <class R, class F>
  requires std::same_as<std::remove_const_t<R>, xcom_record>
void fields(R& r, F&& visit) {
  visit("dag_id", r.dag_id);
  visit("run_id", r.run_id);
  visit("task_id", r.task_id);
  visit("key", r.key);
  visit("value", r.value);
}

template <class R, class F>
  requires std::same_as<std::remove_const_t<R>, connection>
void fields(R& c, F&& visit) {
  visit("conn_id", c.conn_id);
  visit("conn_type", c.conn_type);
  visit("host", c.host);
  visit("port", c.port);
  visit("login", c.login);
  visit("password", c.password);
  visit("schema", c.schema);
}

template <class R, class F>
  requires std::same_as<std::remove_const_t<R>, import_error_record>
void fields(R& e, F&& visit) {
  visit("file", e.file);
  visit("message", e.message);
}

// A change gives its key, its new values and what it expects to find.
template <class R, class F>
  requires std::same_as<std::remove_const_t<R>, run_update>
void fields(R& u, F&& visit) {
  visit("dag_id", u.dag_id);
  visit("run_id", u.run_id);
  visit("state", u.state);
  visit("start_date", u.start_date);
  visit("end_date", u.end_date);
  visit("expected", u.expected);
}

template <class R, class F>
  requires std::same_as<std::remove_const_t<R>, task_instance_update>
void fields(R& u, F&& visit) {
  fields(u.record, visit);
  visit("expected", u.expected);
  visit("expected_try", u.expected_try);
}

/// R's columns, in order.
template <class R>
const std::vector<column>& columns_of() {
  static const std::vector<column> columns = [] {
    std::vector<column> out;
    R r{};
    fields(r, [&](std::string_view name, auto& member) {
      out.push_back({std::string(name), type_of<std::remove_cvref_t<decltype(member)>>()});
    });
    return out;
  }();
  return columns;
}

/// The columns' names, comma-separated.
std::string names_of(std::span<const column> columns) {
  std::string out;
  for (const auto& c : columns) out += (out.empty() ? "" : ", ") + c.name;
  return out;
}

/// `SELECT <R's columns> FROM table`.
template <class R>
std::string select_from(std::string_view table) {
  return "SELECT " + names_of(columns_of<R>()) + " FROM " + std::string(table);
}

/// An R from a row holding its columns in order.
template <class R>
R read(const row& r) {
  R out{};
  int i = 0;
  fields(out, [&](std::string_view, auto& member) { read_value(r, i++, member); });
  return out;
}

/// Appends the values of r's first `count` columns.
template <class R>
void append(std::vector<value>& out, const R& r, std::size_t count = std::numeric_limits<std::size_t>::max()) {
  fields(r, [&](std::string_view, const auto& member) {
    if (count > 0) out.push_back(value_of(member));
    if (count > 0) --count;
  });
}

/// The rows of `records`: each one's first `count` columns.
template <class R>
row_source rows_of(const std::vector<R>& records, std::size_t count = std::numeric_limits<std::size_t>::max()) {
  return [&records, count](std::size_t i, std::vector<value>& out) {
    out.clear();
    append(out, records[i], count);
  };
}

// --- the writes ---------------------------------------------------------------------------------

/// The first `count` of `columns`.
std::vector<column> first(const std::vector<column>& columns, std::size_t count) {
  return {columns.begin(), columns.begin() + static_cast<std::ptrdiff_t>(count)};
}

/// `r.k = {k} AND …` over the key columns of `w`.
std::string key_match(const row_write& w) {
  std::string out;
  for (std::size_t i = 0; i < w.key_size; ++i)
    out += (i > 0 ? " AND r." : "r.") + w.given[i].name + " = {" + w.given[i].name + "}";
  return out;
}

/// What an insert does when its row's key exists.
enum class on_conflict { fail, keep, replace };

row_write inserting(std::string table, std::vector<column> given, std::size_t key_size, on_conflict conflict) {
  row_write w{row_write::verb::insert, std::move(table), std::move(given), key_size, {}, {}};
  if (conflict == on_conflict::keep) {
    // DO NOTHING without a target covers every uniqueness constraint.
    w.clause = "ON CONFLICT DO NOTHING";
  } else if (conflict == on_conflict::replace) {
    // Upserts rather than SQLite's INSERT OR REPLACE, which deletes and re-inserts the row (slower,
    // and it would fire ON DELETE actions).
    w.clause = "ON CONFLICT (" + names_of(first(w.given, key_size)) + ") DO UPDATE SET ";
    for (std::size_t i = key_size; i < w.given.size(); ++i)
      w.clause += (i > key_size ? ", " : "") + w.given[i].name + " = excluded." + w.given[i].name;
  }
  return w;
}

/// A compare-and-set update: `assignments` apply where the key matches and `expected` holds.
row_write updating(std::string table, std::vector<column> given, std::size_t key_size, std::string assignments,
                   const std::string& expected) {
  row_write w{row_write::verb::update, std::move(table), std::move(given), key_size, std::move(assignments), {}};
  w.condition = key_match(w) + " AND " + expected;
  return w;
}

/// Every write the store makes, built once.
struct writes {
  writes() {
    const auto& ti = columns_of<task_instance_record>();
    new_task_instances = inserting("task_instances", first(ti, 3), 3, on_conflict::keep);
    // A run goes back to queued or running when cleared: it has not ended then, whatever the
    // update says; a start date, once set, is kept unless a new one is given.
    run_updates = updating("dag_runs", columns_of<run_update>(), 2,
                           "state = {state}, start_date = COALESCE({start_date}, r.start_date), "
                           "end_date = CASE WHEN {state} IN ('queued', 'running') THEN NULL "
                           "ELSE COALESCE({end_date}, r.end_date) END",
                           "r.state = {expected}");
    std::string every_field;  // an update writes every field of the record
    for (std::size_t i = 3; i < ti.size(); ++i) every_field += (i > 3 ? ", " : "") + ti[i].name + " = {" + ti[i].name + "}";
    task_instance_updates = updating("task_instances", columns_of<task_instance_update>(), 3, every_field,
                                     "r.state = {expected} AND r.try_number = {expected_try}");
    try_upserts = inserting("task_tries", columns_of<try_record>(), 4, on_conflict::replace);
    xcom_deletes = row_write{row_write::verb::remove, "xcom", first(columns_of<xcom_record>(), 3), 3, {}, {}};
    xcom_deletes.condition = key_match(xcom_deletes);
    xcom_upserts = inserting("xcom", columns_of<xcom_record>(), 4, on_conflict::replace);
    import_errors = inserting("import_errors", columns_of<import_error_record>(), 0, on_conflict::fail);
    variables = inserting("variables", {{"name", column_type::text}, {"value", column_type::text}}, 1, on_conflict::replace);
    connections = inserting("connections", columns_of<connection>(), 1, on_conflict::replace);
    paused = inserting("dags", {{"dag_id", column_type::text}, {"is_paused", column_type::flag}}, 1, on_conflict::replace);
    // A run is inserted on its own, to learn whether it was created: DO NOTHING also covers the
    // partial index on scheduled/backfill dates, so a duplicate by run id or by date is "not created".
    insert_run = "INSERT INTO dag_runs (" + names_of(columns_of<run_record>()) + ") VALUES (";
    for (std::size_t i = 1; i <= columns_of<run_record>().size(); ++i) insert_run += (i > 1 ? ", $" : "$") + std::to_string(i);
    insert_run += ") ON CONFLICT DO NOTHING";
  }
  row_write new_task_instances, run_updates, task_instance_updates, try_upserts, xcom_deletes, xcom_upserts,
      import_errors, variables, connections, paused;
  std::string insert_run;
};

const writes& all_writes() {
  static const writes w;
  return w;
}

}  // namespace

std::string row_write::expand(std::string_view text, const std::function<std::string(std::size_t)>& ref) const {
  return detail::expand(text, [&](std::string_view name) -> std::optional<std::string> {
    for (std::size_t i = 0; i < given.size(); ++i)
      if (given[i].name == name) return ref(i);
    return std::nullopt;
  });
}

std::string row_write::names() const { return names_of(given); }

std::string row_write::refs(const std::function<std::string(std::size_t)>& ref) const {
  std::string out;
  for (std::size_t i = 0; i < given.size(); ++i) out += (i > 0 ? ", " : "") + ref(i);
  return out;
}

store_core::store_core(dialect sql, std::string label) : sql_(std::move(sql)), label_(std::move(label)) {}

error store_core::database_error(const std::string& message) const {
  error_context where;
  where.file = label_;
  return error(where, message);
}

template <class F>
auto store_core::transact(const char* what, access mode, F&& body) {
  using result = std::invoke_result_t<F&, session&>;
  if constexpr (std::is_void_v<result>) {
    run(what, mode, body);
  } else {
    std::optional<result> out;  // from the run that counted, when a backend runs the body again
    run(what, mode, [&](session& s) { out = body(s); });
    return std::move(*out);
  }
}

int store_core::recorded_version(session& s) {
  int version = 0;
  const auto read_version = [&](const row& r) { version = static_cast<int>(r.integer(0)); };
  s.query(sql_.has_schema_version, {}, read_version);
  if (version == 0) return 0;
  s.query("SELECT COALESCE(MAX(version), 0) FROM schema_version", {}, read_version);
  return version;
}

void store_core::migrate() {
  const auto check = [&](int version) {
    if (version > latest_schema_version)
      throw database_error("database schema version " + std::to_string(version) + " is newer than this dagrun (" +
                           std::to_string(latest_schema_version) + ")");
  };
  // Read first so that opening an up-to-date database (every CLI command) takes no lock.
  const int seen = transact("migrate the schema", access::read, [&](session& s) { return recorded_version(s); });
  check(seen);
  if (seen == latest_schema_version) return;

  const auto types = [&](std::string_view token) -> std::optional<std::string> {
    if (token == "key") return sql_.key;
    if (token == "instant") return sql_.instant;
    if (token == "flag") return sql_.flag;
    if (token == "row_id") return sql_.row_id;
    return std::nullopt;
  };
  transact("migrate the schema", access::write, [&](session& s) {
    // Several processes may start at once: the first to get the lock migrates, the others then
    // find the work done (the version is read again under the lock).
    if (!sql_.migration_lock.empty()) s.exec(sql_.migration_lock);
    s.script(expand("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at {instant} NOT NULL)",
                    types));
    const int current = recorded_version(s);
    check(current);
    const std::int64_t now = micros_of(std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()));
    for (int v = current; v < latest_schema_version; ++v) {
      s.script(expand(migrations[static_cast<std::size_t>(v)], types));  // in the transaction: all or nothing
      const value version[] = {std::int64_t{v + 1}, now};
      s.exec("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", version);
    }
  });
}

int store_core::schema_version() {
  return transact("read the schema version", access::read, [&](session& s) { return recorded_version(s); });
}

void store_core::set_paused(const std::string& dag_id, bool paused) {
  transact("set a DAG's paused flag", access::write, [&](session& s) {
    s.write(all_writes().paused, 1, [&](std::size_t, std::vector<value>& out) {
      out.assign({dag_id, std::int64_t{paused ? 1 : 0}});
    });
  });
}

std::set<std::string> store_core::paused_dags() {
  return transact("list paused DAGs", access::read, [&](session& s) {
    std::set<std::string> out;
    s.query("SELECT dag_id FROM dags WHERE is_paused", {}, [&](const row& r) { out.insert(r.text(0)); });
    return out;
  });
}

void store_core::set_import_errors(const std::vector<import_error_record>& errors) {
  transact("replace import errors", access::write, [&](session& s) {
    s.exec("DELETE FROM import_errors");
    s.write(all_writes().import_errors, errors.size(), rows_of(errors));  // in order: listing sorts by id
  });
}

std::vector<import_error_record> store_core::import_errors() {
  return transact("list import errors", access::read, [&](session& s) {
    std::vector<import_error_record> out;
    s.query(select_from<import_error_record>("import_errors") + " ORDER BY id", {},
            [&](const row& r) { out.push_back(read<import_error_record>(r)); });
    return out;
  });
}

change_result store_core::apply(const change_set& changes) {
  if (changes.empty()) return {};  // the idle scheduler loop takes no lock and costs no round trip
  const writes& w = all_writes();
  return transact("apply changes", access::write, [&](session& s) {
    change_result result;  // afresh in every run, so that a run again reports only what it did itself
    std::vector<value> run;
    std::vector<std::pair<const run_record*, const std::string*>> new_task_instances;
    for (const auto& [r, task_ids] : changes.new_runs) {
      run.clear();
      append(run, r);
      result.runs_created.push_back(s.exec(w.insert_run, run) == 1);
      if (!result.runs_created.back()) continue;  // an existing run keeps its task instances as they are
      for (const auto& task_id : task_ids) new_task_instances.emplace_back(&r, &task_id);
    }
    s.write(w.new_task_instances, new_task_instances.size(), [&](std::size_t i, std::vector<value>& out) {
      out.assign({new_task_instances[i].first->dag_id, new_task_instances[i].first->run_id, *new_task_instances[i].second});
    });
    result.runs_updated = s.write(w.run_updates, changes.runs.size(), rows_of(changes.runs));
    // A task added to the DAG after its run was created has no row yet: an instance in state none
    // with no try is what it would have been, so it is created and the update applied again (which
    // still loses if another writer created the row and moved it on meanwhile).
    const on_lost added_task{w.new_task_instances, [&](std::size_t i) {
                               const task_instance_update& u = changes.task_instances[i];
                               return u.expected == task_state::none && u.expected_try == 0;
                             }};
    result.task_instances_updated =
        s.write(w.task_instance_updates, changes.task_instances.size(), rows_of(changes.task_instances), &added_task);
    s.write(w.try_upserts, changes.tries.size(), rows_of(changes.tries));
    s.write(w.xcom_deletes, changes.xcom_deletes.size(), rows_of(changes.xcom_deletes, w.xcom_deletes.key_size));
    s.write(w.xcom_upserts, changes.xcoms.size(), rows_of(changes.xcoms));
    return result;
  });
}

std::vector<run_record> store_core::runs(const run_filter& filter) {
  // One statement per combination of filters (a bounded number), each prepared once: a single
  // statement with `$1 IS NULL OR …` would get one generic plan that fits no combination well.
  std::string sql = select_from<run_record>("dag_runs") + " WHERE 1 = 1";
  std::vector<value> params;
  const auto param = [&](value v) {
    params.push_back(v);
    return "$" + std::to_string(params.size());
  };
  if (filter.dag_id) sql += " AND dag_id = " + param(*filter.dag_id);
  if (!filter.states.empty()) {
    sql += " AND state IN (";
    for (run_state s : filter.states) sql += (sql.back() == '(' ? "" : ", ") + param(to_string(s));
    sql += ")";
  }
  if (filter.logical_from) sql += " AND logical_date >= " + param(micros_of(*filter.logical_from));
  if (filter.logical_to) sql += " AND logical_date <= " + param(micros_of(*filter.logical_to));
  if (filter.automated_only) sql += " AND run_type <> 'manual'";
  sql += " ORDER BY logical_date DESC, dag_id, run_id";
  if (filter.limit > 0) {
    constexpr auto max_limit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    sql += " LIMIT " + param(static_cast<std::int64_t>(std::min(filter.limit, max_limit)));
  }
  return transact("list runs", access::read, [&](session& s) {
    std::vector<run_record> out;
    s.query(sql, params, [&](const row& r) { out.push_back(read<run_record>(r)); });
    return out;
  });
}

std::optional<run_record> store_core::find_run(const std::string& dag_id, const std::string& run_id) {
  static const std::string sql = select_from<run_record>("dag_runs") + " WHERE dag_id = $1 AND run_id = $2";
  const value key[] = {dag_id, run_id};
  return transact("find a run", access::read, [&](session& s) {
    std::optional<run_record> out;
    s.query(sql, key, [&](const row& r) { out = read<run_record>(r); });
    return out;
  });
}

std::vector<task_instance_record> store_core::task_instances(const std::string& dag_id, const std::string& run_id) {
  static const std::string sql =
      select_from<task_instance_record>("task_instances") + " WHERE dag_id = $1 AND run_id = $2 ORDER BY task_id";
  const value key[] = {dag_id, run_id};
  return transact("list task instances", access::read, [&](session& s) {
    std::vector<task_instance_record> out;
    s.query(sql, key, [&](const row& r) { out.push_back(read<task_instance_record>(r)); });
    return out;
  });
}

std::vector<task_instance_record> store_core::task_instances_in(const std::set<task_state>& states) {
  if (states.empty()) return {};  // no state asked for, none matches
  std::string sql = select_from<task_instance_record>("task_instances") + " WHERE state IN (";
  std::vector<value> names;
  for (task_state state : states) {
    names.push_back(to_string(state));
    sql += (names.size() > 1 ? ", $" : "$") + std::to_string(names.size());
  }
  sql += ") ORDER BY dag_id, run_id, task_id";
  return transact("list task instances by state", access::read, [&](session& s) {
    std::vector<task_instance_record> out;
    s.query(sql, names, [&](const row& r) { out.push_back(read<task_instance_record>(r)); });
    return out;
  });
}

std::vector<try_record> store_core::tries(const std::string& dag_id, const std::string& run_id,
                                          const std::string& task_id) {
  static const std::string sql = select_from<try_record>("task_tries") +
                                 " WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 ORDER BY try_number";
  const value key[] = {dag_id, run_id, task_id};
  return transact("list tries", access::read, [&](session& s) {
    std::vector<try_record> out;
    s.query(sql, key, [&](const row& r) { out.push_back(read<try_record>(r)); });
    return out;
  });
}

std::optional<std::string> store_core::xcom(const std::string& dag_id, const std::string& run_id,
                                            const std::string& task_id, const std::string& key) {
  const value where[] = {dag_id, run_id, task_id, key};
  return transact("read an XCom", access::read, [&](session& s) {
    std::optional<std::string> out;
    s.query("SELECT value FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND key = $4", where,
            [&](const row& r) { out = r.text(0); });
    return out;
  });
}

void store_core::set_variable(const std::string& name, const std::string& text) {
  transact("set a variable", access::write, [&](session& s) {
    s.write(all_writes().variables, 1, [&](std::size_t, std::vector<value>& out) { out.assign({name, text}); });
  });
}

std::optional<std::string> store_core::variable(const std::string& name) {
  const value key[] = {name};
  return transact("read a variable", access::read, [&](session& s) {
    std::optional<std::string> out;
    s.query("SELECT value FROM variables WHERE name = $1", key, [&](const row& r) { out = r.text(0); });
    return out;
  });
}

std::map<std::string, std::string> store_core::variables() {
  return transact("list variables", access::read, [&](session& s) {
    std::map<std::string, std::string> out;
    s.query("SELECT name, value FROM variables", {}, [&](const row& r) { out.emplace(r.text(0), r.text(1)); });
    return out;
  });
}

bool store_core::delete_variable(const std::string& name) {
  const value key[] = {name};
  return transact("delete a variable", access::write,
                  [&](session& s) { return s.exec("DELETE FROM variables WHERE name = $1", key) == 1; });
}

void store_core::set_connection(const connection& c) {
  transact("store a connection", access::write, [&](session& s) {
    s.write(all_writes().connections, 1, [&](std::size_t, std::vector<value>& out) {
      out.clear();
      append(out, c);
    });
  });
}

std::optional<connection> store_core::find_connection(const std::string& conn_id) {
  static const std::string sql = select_from<connection>("connections") + " WHERE conn_id = $1";
  const value key[] = {conn_id};
  return transact("read a connection", access::read, [&](session& s) {
    std::optional<connection> out;
    s.query(sql, key, [&](const row& r) { out = read<connection>(r); });
    return out;
  });
}

std::vector<connection> store_core::connections() {
  return transact("list connections", access::read, [&](session& s) {
    std::vector<connection> out;
    s.query(select_from<connection>("connections") + " ORDER BY conn_id", {},
            [&](const row& r) { out.push_back(read<connection>(r)); });
    return out;
  });
}

bool store_core::delete_connection(const std::string& conn_id) {
  const value key[] = {conn_id};
  return transact("delete a connection", access::write,
                  [&](session& s) { return s.exec("DELETE FROM connections WHERE conn_id = $1", key) == 1; });
}

std::size_t store_core::clean(timestamp cutoff) {
  const value before[] = {micros_of(cutoff)};
  return transact("clean old runs", access::write, [&](session& s) {
    // Task instances, tries and XComs go with their run through ON DELETE CASCADE.
    return s.exec("DELETE FROM dag_runs WHERE state IN ('success', 'failed') AND end_date < $1", before);
  });
}

}  // namespace dag::detail
