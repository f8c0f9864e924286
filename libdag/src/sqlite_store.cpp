/// @file The SQLite metadata store: one connection per store object, WAL journal, versioned
/// migrations, and a change-set writer built for the scheduler's hot path (one IMMEDIATE
/// transaction per step, prepared statements cached and rebound, compare-and-set updates).
///
/// Storage conventions:
///  - Every instant is an INTEGER of microseconds since the Unix epoch (UTC); logical dates and
///    interval bounds are whole seconds stored the same way. NULL means "not set".
///  - States and run types are stored as their Airflow names (text), so the file reads well in
///    the `sqlite3` shell and matches what the PostgreSQL store keeps.
///  - Task instances, tries and XComs hang off their run by foreign keys with ON DELETE CASCADE, so
///    deleting a run (`db clean`) deletes everything of it.

#include "sqlite_store.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>

#include <dag/core/error.hpp>

namespace dag {
namespace {

/// How long a writer waits for another connection's write transaction before giving up. Writes
/// are short (one scheduler step), so 5 s only runs out when something is badly stuck.
constexpr int busy_timeout_ms = 5000;

/// The migrations, in order: entry i brings the schema from version i to i + 1. A shipped
/// migration is never edited; a schema change is a new entry.
constexpr std::array<const char*, 2> migrations{
    // 1: the initial schema.
    R"sql(
CREATE TABLE dags (
  dag_id    TEXT PRIMARY KEY,
  is_paused INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE import_errors (
  id      INTEGER PRIMARY KEY,
  file    TEXT NOT NULL,
  message TEXT NOT NULL
);

CREATE TABLE dag_runs (
  dag_id              TEXT NOT NULL,
  run_id              TEXT NOT NULL,
  run_type            TEXT NOT NULL,
  state               TEXT NOT NULL,
  logical_date        INTEGER NOT NULL,
  data_interval_start INTEGER NOT NULL,
  data_interval_end   INTEGER NOT NULL,
  start_date          INTEGER,
  end_date            INTEGER,
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
  dag_id     TEXT NOT NULL,
  run_id     TEXT NOT NULL,
  task_id    TEXT NOT NULL,
  state      TEXT NOT NULL DEFAULT 'none',
  try_number INTEGER NOT NULL DEFAULT 0,
  start_date INTEGER,
  end_date   INTEGER,
  retry_at   INTEGER,
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
  dag_id     TEXT NOT NULL,
  run_id     TEXT NOT NULL,
  task_id    TEXT NOT NULL,
  try_number INTEGER NOT NULL,
  state      TEXT NOT NULL,
  start_date INTEGER,
  end_date   INTEGER,
  exit_code  INTEGER,
  hostname   TEXT NOT NULL DEFAULT '',
  pid        INTEGER NOT NULL DEFAULT 0,
  log_path   TEXT NOT NULL DEFAULT '',
  message    TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (dag_id, run_id, task_id, try_number),
  FOREIGN KEY (dag_id, run_id, task_id) REFERENCES task_instances (dag_id, run_id, task_id) ON DELETE CASCADE
);

CREATE TABLE xcom (
  dag_id  TEXT NOT NULL,
  run_id  TEXT NOT NULL,
  task_id TEXT NOT NULL,
  key     TEXT NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY (dag_id, run_id, task_id, key),
  FOREIGN KEY (dag_id, run_id, task_id) REFERENCES task_instances (dag_id, run_id, task_id) ON DELETE CASCADE
);

CREATE TABLE variables (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE connections (
  conn_id   TEXT PRIMARY KEY,
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
ALTER TABLE task_instances ADD COLUMN first_start_date INTEGER;
ALTER TABLE task_instances ADD COLUMN cleared_tries INTEGER NOT NULL DEFAULT 0;
)sql",
};

/// The schema version this build creates and understands.
constexpr int latest_schema_version = static_cast<int>(migrations.size());

// --- SQL used more than once or on the hot path -------------------------------------------------

constexpr std::string_view run_columns =
    "dag_id, run_id, run_type, state, logical_date, data_interval_start, data_interval_end, "
    "start_date, end_date, conf";
constexpr std::string_view task_instance_columns =
    "dag_id, run_id, task_id, state, try_number, start_date, end_date, retry_at, exit_code, "
    "hostname, pid, log_path, message, first_start_date, cleared_tries";
constexpr std::string_view try_columns =
    "dag_id, run_id, task_id, try_number, state, start_date, end_date, exit_code, hostname, pid, "
    "log_path, message";

// DO NOTHING without a target covers every uniqueness constraint, including the partial index on
// scheduled/backfill logical dates, so a duplicate by run id or by date is "not created".
constexpr std::string_view sql_insert_run =
    "INSERT INTO dag_runs (dag_id, run_id, run_type, state, logical_date, data_interval_start, "
    "data_interval_end, start_date, end_date, conf) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
    "ON CONFLICT DO NOTHING";
constexpr std::string_view sql_insert_task_instance =
    "INSERT INTO task_instances (dag_id, run_id, task_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
constexpr std::string_view sql_update_run =
    "UPDATE dag_runs SET state = ?1, start_date = COALESCE(?2, start_date), "
    "end_date = CASE WHEN ?1 IN ('queued', 'running') THEN NULL ELSE COALESCE(?3, end_date) END "
    "WHERE dag_id = ?4 AND run_id = ?5 AND state = ?6";
constexpr std::string_view sql_update_task_instance =
    "UPDATE task_instances SET state = ?4, try_number = ?5, start_date = ?6, end_date = ?7, "
    "retry_at = ?8, exit_code = ?9, hostname = ?10, pid = ?11, log_path = ?12, message = ?13, "
    "first_start_date = ?16, cleared_tries = ?17 "
    "WHERE dag_id = ?1 AND run_id = ?2 AND task_id = ?3 AND state = ?14 AND try_number = ?15";
// Upserts rather than INSERT OR REPLACE: REPLACE deletes and re-inserts the row, which is slower
// and would fire ON DELETE actions if these rows ever gain children.
constexpr std::string_view sql_upsert_try =
    "INSERT INTO task_tries (dag_id, run_id, task_id, try_number, state, start_date, end_date, "
    "exit_code, hostname, pid, log_path, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
    "?11, ?12) ON CONFLICT (dag_id, run_id, task_id, try_number) DO UPDATE SET state = excluded.state, "
    "start_date = excluded.start_date, end_date = excluded.end_date, exit_code = excluded.exit_code, "
    "hostname = excluded.hostname, pid = excluded.pid, log_path = excluded.log_path, "
    "message = excluded.message";
constexpr std::string_view sql_upsert_xcom =
    "INSERT INTO xcom (dag_id, run_id, task_id, key, value) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (dag_id, run_id, task_id, key) DO UPDATE SET value = excluded.value";

// --- conversions at the boundary --------------------------------------------------------------

std::int64_t micros_of(timestamp t) { return static_cast<std::int64_t>(t.time_since_epoch().count()); }
std::int64_t micros_of(time_point t) { return micros_of(std::chrono::time_point_cast<std::chrono::microseconds>(t)); }
timestamp timestamp_at(std::int64_t micros) { return timestamp{std::chrono::microseconds{micros}}; }
time_point time_point_at(std::int64_t micros) { return std::chrono::floor<std::chrono::seconds>(timestamp_at(micros)); }

void bind_time(SQLite::Statement& s, int index, const std::optional<timestamp>& t) {
  if (t) s.bind(index, micros_of(*t));
  else s.bind(index);
}
void bind_int(SQLite::Statement& s, int index, const std::optional<int>& v) {
  if (v) s.bind(index, *v);
  else s.bind(index);
}
/// Binds an enum's name; copied because the names are string_views, not C strings.
void bind_name(SQLite::Statement& s, int index, std::string_view name) { s.bind(index, std::string(name)); }

std::optional<timestamp> time_column(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return timestamp_at(c.getInt64());
}
std::optional<int> int_column(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getInt();
}

/// Reads an enum stored by name; a name this build does not know means the file was written by
/// something else, which is an error rather than a silent default.
template <class Enum>
Enum enum_column(const SQLite::Column& c, std::optional<Enum> (*parse)(std::string_view), const char* what) {
  const std::string text = c.getString();
  if (auto value = parse(text)) return *value;
  throw error("the database holds an unknown " + std::string(what) + " '" + text + "'");
}

run_record read_run(const SQLite::Statement& q) {
  run_record r;
  r.dag_id = q.getColumn(0).getString();
  r.run_id = q.getColumn(1).getString();
  r.type = enum_column(q.getColumn(2), parse_run_type, "run type");
  r.state = enum_column(q.getColumn(3), parse_run_state, "run state");
  r.logical_date = time_point_at(q.getColumn(4).getInt64());
  r.interval.start = time_point_at(q.getColumn(5).getInt64());
  r.interval.end = time_point_at(q.getColumn(6).getInt64());
  r.start_date = time_column(q.getColumn(7));
  r.end_date = time_column(q.getColumn(8));
  r.conf = q.getColumn(9).getString();
  return r;
}

task_instance_record read_task_instance(const SQLite::Statement& q) {
  task_instance_record r;
  r.dag_id = q.getColumn(0).getString();
  r.run_id = q.getColumn(1).getString();
  r.task_id = q.getColumn(2).getString();
  r.state = enum_column(q.getColumn(3), parse_task_state, "task state");
  r.try_number = q.getColumn(4).getInt();
  r.start_date = time_column(q.getColumn(5));
  r.end_date = time_column(q.getColumn(6));
  r.retry_at = time_column(q.getColumn(7));
  r.exit_code = int_column(q.getColumn(8));
  r.hostname = q.getColumn(9).getString();
  r.pid = q.getColumn(10).getInt();
  r.log_path = q.getColumn(11).getString();
  r.message = q.getColumn(12).getString();
  r.first_start_date = time_column(q.getColumn(13));
  r.cleared_tries = q.getColumn(14).getInt();
  return r;
}

try_record read_try(const SQLite::Statement& q) {
  try_record r;
  r.dag_id = q.getColumn(0).getString();
  r.run_id = q.getColumn(1).getString();
  r.task_id = q.getColumn(2).getString();
  r.try_number = q.getColumn(3).getInt();
  r.state = enum_column(q.getColumn(4), parse_task_state, "task state");
  r.start_date = time_column(q.getColumn(5));
  r.end_date = time_column(q.getColumn(6));
  r.exit_code = int_column(q.getColumn(7));
  r.hostname = q.getColumn(8).getString();
  r.pid = q.getColumn(9).getInt();
  r.log_path = q.getColumn(10).getString();
  r.message = q.getColumn(11).getString();
  return r;
}

connection read_connection(const SQLite::Statement& q) {
  connection c;
  c.conn_id = q.getColumn(0).getString();
  c.conn_type = q.getColumn(1).getString();
  c.host = q.getColumn(2).getString();
  c.port = int_column(q.getColumn(3));
  c.login = q.getColumn(4).getString();
  c.password = q.getColumn(5).getString();
  c.schema = q.getColumn(6).getString();
  return c;
}
constexpr std::string_view connection_columns = "conn_id, conn_type, host, port, login, password, schema";

/// An error about the database file at `path`: `what()` reads `PATH: message`.
error database_error(const std::string& path, const std::string& message) {
  error_context where;
  where.file = path;
  return error(where, message);
}

/// `?1, ?2, …` from `first` for `count` parameters: the IN list of a state filter.
std::string placeholders(int first, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) out += ", ";
    out += '?' + std::to_string(first + static_cast<int>(i));
  }
  return out;
}

// --- the store ----------------------------------------------------------------------------------

/// A cached statement in use. Reset when the use ends, even on error, so that a SELECT stopped
/// mid-way keeps no read snapshot open (which would stop WAL checkpoints) and the next use starts
/// clean; bindings are cleared so no pointer bound without copying outlives the call.
class statement_use {
public:
  /// Uses `s`, which must be reset.
  explicit statement_use(SQLite::Statement& s) : s_(s) {}
  ~statement_use() {
    s_.tryReset();
    try {
      s_.clearBindings();
    } catch (...) {  // sqlite3_clear_bindings cannot fail; a destructor must not throw anyway
    }
  }
  statement_use(const statement_use&) = delete;
  statement_use& operator=(const statement_use&) = delete;

  /// The statement, for binding and stepping.
  SQLite::Statement* operator->() const { return &s_; }
  /// The statement, for binding and reading rows.
  SQLite::Statement& operator*() const { return s_; }
  /// Runs a statement that returns no rows and makes it ready for the next binding; returns the
  /// number of rows it changed.
  int exec() {
    const int changed = s_.exec();
    s_.reset();
    return changed;
  }

private:
  SQLite::Statement& s_;
};

/// The SQLite store. One object is one SQLite connection, opened without SQLite's own mutex, so it
/// must be used from one thread at a time (open one store per thread); SQLite's file locks, the WAL
/// and the busy timeout arbitrate between store objects and processes sharing a file. No global
/// state: everything, the statement cache included, lives in the object.
class sqlite_store final : public store {
public:
  /// Opens (creating if missing) and migrates the database at `path`.
  explicit sqlite_store(const std::string& path);

  // The store interface, documented in dag/store/store.hpp.
  void migrate() override;
  int schema_version() override;

  void set_paused(const std::string& dag_id, bool paused) override;
  std::set<std::string> paused_dags() override;
  void set_import_errors(const std::vector<import_error_record>& errors) override;
  std::vector<import_error_record> import_errors() override;

  change_result apply(const change_set& changes) override;

  std::vector<run_record> runs(const run_filter& filter) override;
  std::optional<run_record> find_run(const std::string& dag_id, const std::string& run_id) override;
  std::vector<task_instance_record> task_instances(const std::string& dag_id, const std::string& run_id) override;
  std::vector<task_instance_record> task_instances_in(const std::set<task_state>& states) override;
  std::vector<try_record> tries(const std::string& dag_id, const std::string& run_id, const std::string& task_id) override;
  std::optional<std::string> xcom(const std::string& dag_id, const std::string& run_id, const std::string& task_id,
                                  const std::string& key) override;

  void set_variable(const std::string& name, const std::string& value) override;
  std::optional<std::string> variable(const std::string& name) override;
  std::map<std::string, std::string> variables() override;
  bool delete_variable(const std::string& name) override;

  void set_connection(const connection& c) override;
  std::optional<connection> find_connection(const std::string& conn_id) override;
  std::vector<connection> connections() override;
  bool delete_connection(const std::string& conn_id) override;

  std::size_t clean(timestamp cutoff) override;

private:
  /// A write transaction: BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy
  /// timeout), because a deferred transaction that reads first and writes later can fail with
  /// SQLITE_BUSY_SNAPSHOT in WAL mode without waiting. Rolls back unless committed.
  class write_transaction {
  public:
    explicit write_transaction(sqlite_store& owner) : owner_(owner) { owner_.use("BEGIN IMMEDIATE").exec(); }
    ~write_transaction() {
      if (!committed_) owner_.db_.tryExec("ROLLBACK");  // fails harmlessly when SQLite already rolled back
    }
    write_transaction(const write_transaction&) = delete;
    write_transaction& operator=(const write_transaction&) = delete;
    void commit() {
      owner_.use("COMMIT").exec();
      committed_ = true;
    }

  private:
    sqlite_store& owner_;
    bool committed_ = false;
  };

  /// The cached prepared statement for `sql`, prepared on first use.
  statement_use use(std::string_view sql);
  /// Runs `body`, turning SQLite's exceptions into dag::error naming the file and `what` failed.
  template <class F>
  auto guarded(const char* what, F&& body) -> decltype(body());
  /// The version recorded in schema_version; 0 when the table does not exist yet.
  int recorded_version();
  /// Runs a query returning task instances.
  std::vector<task_instance_record> task_instance_rows(statement_use& q);

  std::string path_;
  SQLite::Database db_;
  // Declared after db_ so that every statement is finalized before the connection closes.
  std::map<std::string, std::unique_ptr<SQLite::Statement>, std::less<>> statements_;
};

// The handler of a constructor's function-try-block may use parameters but not members.
sqlite_store::sqlite_store(const std::string& path) try
    : path_(path),
      db_(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX, busy_timeout_ms) {
  // Opening is lazy: a directory or unreadable file first fails here, still inside the try.
  db_.exec("PRAGMA foreign_keys = ON");  // per connection; the cascades of clean() need it
  db_.exec("PRAGMA journal_mode = WAL");  // readers never block the writer, nor it them
  // No fsync per commit (the hot path needs that): a power cut may lose the latest commits but
  // never corrupts the file.
  db_.exec("PRAGMA synchronous = NORMAL");
  migrate();
} catch (const SQLite::Exception& e) {
  throw database_error(path, std::string("cannot open the database: ") + e.what());
}

statement_use sqlite_store::use(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end())
    it = statements_.emplace(std::string(sql), std::make_unique<SQLite::Statement>(db_, std::string(sql))).first;
  it->second->tryReset();  // in case the previous use ended in an error the guard already saw
  return statement_use(*it->second);
}

template <class F>
auto sqlite_store::guarded(const char* what, F&& body) -> decltype(body()) {
  try {
    return std::forward<F>(body)();
  } catch (const SQLite::Exception& e) {
    throw database_error(path_, "cannot " + std::string(what) + ": " + e.what());
  }
}

int sqlite_store::recorded_version() {
  {
    auto exists = use("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'");
    if (!exists->executeStep()) return 0;
  }
  auto q = use("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  q->executeStep();
  return (*q).getColumn(0).getInt();
}

void sqlite_store::migrate() {
  guarded("migrate the schema", [&] {
    auto check = [&](int version) {
      if (version > latest_schema_version)
        throw database_error(path_, "database schema version " + std::to_string(version) +
                                                      " is newer than this dagrun (" +
                                                      std::to_string(latest_schema_version) + ")");
    };
    // Read first so that opening an up-to-date file (every CLI command) takes no write lock.
    const int seen = recorded_version();
    check(seen);
    if (seen == latest_schema_version) return;

    write_transaction tx(*this);
    // Again under the write lock: another process may have migrated meanwhile.
    db_.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
    const int current = recorded_version();
    check(current);
    const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    for (int v = current; v < latest_schema_version; ++v) {
      db_.exec(migrations[static_cast<std::size_t>(v)]);
      auto record = use("INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)");
      record->bind(1, v + 1);
      record->bind(2, micros_of(now));
      record.exec();
    }
    tx.commit();
  });
}

int sqlite_store::schema_version() {
  return guarded("read the schema version", [&] { return recorded_version(); });
}

void sqlite_store::set_paused(const std::string& dag_id, bool paused) {
  guarded("set a DAG's paused flag", [&] {
    write_transaction tx(*this);
    auto q = use("INSERT INTO dags (dag_id, is_paused) VALUES (?1, ?2) "
                 "ON CONFLICT (dag_id) DO UPDATE SET is_paused = excluded.is_paused");
    q->bind(1, dag_id);
    q->bind(2, paused ? 1 : 0);
    q.exec();
    tx.commit();
  });
}

std::set<std::string> sqlite_store::paused_dags() {
  return guarded("list paused DAGs", [&] {
    std::set<std::string> out;
    auto q = use("SELECT dag_id FROM dags WHERE is_paused <> 0");
    while (q->executeStep()) out.insert((*q).getColumn(0).getString());
    return out;
  });
}

void sqlite_store::set_import_errors(const std::vector<import_error_record>& errors) {
  guarded("replace import errors", [&] {
    write_transaction tx(*this);
    use("DELETE FROM import_errors").exec();
    auto insert = use("INSERT INTO import_errors (file, message) VALUES (?1, ?2)");
    for (const auto& e : errors) {
      insert->bindNoCopy(1, e.file);
      insert->bindNoCopy(2, e.message);
      insert.exec();
    }
    tx.commit();
  });
}

std::vector<import_error_record> sqlite_store::import_errors() {
  return guarded("list import errors", [&] {
    std::vector<import_error_record> out;
    auto q = use("SELECT file, message FROM import_errors ORDER BY id");
    while (q->executeStep()) out.push_back({(*q).getColumn(0).getString(), (*q).getColumn(1).getString()});
    return out;
  });
}

change_result sqlite_store::apply(const change_set& changes) {
  if (changes.empty()) return {};  // the idle scheduler loop takes no lock
  return guarded("apply changes", [&] {
    change_result result;
    result.runs_created.reserve(changes.new_runs.size());
    result.runs_updated.reserve(changes.runs.size());
    result.task_instances_updated.reserve(changes.task_instances.size());
    write_transaction tx(*this);
    // Strings are bound without copying: every record outlives the exec() that reads it.
    if (!changes.new_runs.empty()) {
      auto insert_run = use(sql_insert_run);
      auto insert_ti = use(sql_insert_task_instance);
      for (const auto& [run, task_ids] : changes.new_runs) {
        insert_run->bindNoCopy(1, run.dag_id);
        insert_run->bindNoCopy(2, run.run_id);
        bind_name(*insert_run, 3, to_string(run.type));
        bind_name(*insert_run, 4, to_string(run.state));
        insert_run->bind(5, micros_of(run.logical_date));
        insert_run->bind(6, micros_of(run.interval.start));
        insert_run->bind(7, micros_of(run.interval.end));
        bind_time(*insert_run, 8, run.start_date);
        bind_time(*insert_run, 9, run.end_date);
        insert_run->bindNoCopy(10, run.conf);
        const bool created = insert_run.exec() == 1;
        result.runs_created.push_back(created);
        if (!created) continue;  // an existing run keeps its task instances as they are
        insert_ti->bindNoCopy(1, run.dag_id);
        insert_ti->bindNoCopy(2, run.run_id);
        for (const auto& task_id : task_ids) {
          insert_ti->bindNoCopy(3, task_id);
          insert_ti.exec();
        }
      }
    }
    if (!changes.runs.empty()) {
      auto update_run = use(sql_update_run);
      for (const auto& u : changes.runs) {
        bind_name(*update_run, 1, to_string(u.state));
        bind_time(*update_run, 2, u.start_date);
        bind_time(*update_run, 3, u.end_date);
        update_run->bindNoCopy(4, u.dag_id);
        update_run->bindNoCopy(5, u.run_id);
        bind_name(*update_run, 6, to_string(u.expected));
        result.runs_updated.push_back(update_run.exec() == 1);
      }
    }
    if (!changes.task_instances.empty()) {
      auto update_ti = use(sql_update_task_instance);
      SQLite::Statement& s = *update_ti;
      for (const auto& u : changes.task_instances) {
        const task_instance_record& r = u.record;
        s.bindNoCopy(1, r.dag_id);
        s.bindNoCopy(2, r.run_id);
        s.bindNoCopy(3, r.task_id);
        bind_name(s, 4, to_string(r.state));
        s.bind(5, r.try_number);
        bind_time(s, 6, r.start_date);
        bind_time(s, 7, r.end_date);
        bind_time(s, 8, r.retry_at);
        bind_int(s, 9, r.exit_code);
        s.bindNoCopy(10, r.hostname);
        s.bind(11, r.pid);
        s.bindNoCopy(12, r.log_path);
        s.bindNoCopy(13, r.message);
        bind_name(s, 14, to_string(u.expected));
        s.bind(15, u.expected_try);
        bind_time(s, 16, r.first_start_date);
        s.bind(17, r.cleared_tries);
        int changed = update_ti.exec();
        if (changed == 0 && u.expected == task_state::none && u.expected_try == 0) {
          // A task added to the DAG after the run was created has no row yet: an instance in
          // state none with no try is what it would have been, so create it and apply the update.
          auto insert_ti = use(sql_insert_task_instance);
          insert_ti->bindNoCopy(1, r.dag_id);
          insert_ti->bindNoCopy(2, r.run_id);
          insert_ti->bindNoCopy(3, r.task_id);
          if (insert_ti.exec() == 1) changed = update_ti.exec();
        }
        result.task_instances_updated.push_back(changed == 1);
      }
    }
    if (!changes.tries.empty()) {
      auto upsert_try = use(sql_upsert_try);
      SQLite::Statement& s = *upsert_try;
      for (const auto& t : changes.tries) {
        s.bindNoCopy(1, t.dag_id);
        s.bindNoCopy(2, t.run_id);
        s.bindNoCopy(3, t.task_id);
        s.bind(4, t.try_number);
        bind_name(s, 5, to_string(t.state));
        bind_time(s, 6, t.start_date);
        bind_time(s, 7, t.end_date);
        bind_int(s, 8, t.exit_code);
        s.bindNoCopy(9, t.hostname);
        s.bind(10, t.pid);
        s.bindNoCopy(11, t.log_path);
        s.bindNoCopy(12, t.message);
        upsert_try.exec();
      }
    }
    if (!changes.xcom_deletes.empty()) {
      auto delete_xcoms = use("DELETE FROM xcom WHERE dag_id = ?1 AND run_id = ?2 AND task_id = ?3");
      for (const auto& x : changes.xcom_deletes) {
        delete_xcoms->bindNoCopy(1, x.dag_id);
        delete_xcoms->bindNoCopy(2, x.run_id);
        delete_xcoms->bindNoCopy(3, x.task_id);
        delete_xcoms.exec();
      }
    }
    if (!changes.xcoms.empty()) {
      auto upsert_xcom = use(sql_upsert_xcom);
      for (const auto& x : changes.xcoms) {
        upsert_xcom->bindNoCopy(1, x.dag_id);
        upsert_xcom->bindNoCopy(2, x.run_id);
        upsert_xcom->bindNoCopy(3, x.task_id);
        upsert_xcom->bindNoCopy(4, x.key);
        upsert_xcom->bindNoCopy(5, x.value);
        upsert_xcom.exec();
      }
    }
    tx.commit();
    return result;
  });
}

std::vector<run_record> sqlite_store::runs(const run_filter& filter) {
  return guarded("list runs", [&] {
    // The SQL has one shape per combination of filters (a bounded number), each cached.
    std::string sql = "SELECT " + std::string(run_columns) + " FROM dag_runs WHERE 1 = 1";
    int next = 1;
    if (filter.dag_id) sql += " AND dag_id = ?" + std::to_string(next++);
    if (!filter.states.empty()) {
      sql += " AND state IN (" + placeholders(next, filter.states.size()) + ")";
      next += static_cast<int>(filter.states.size());
    }
    if (filter.logical_from) sql += " AND logical_date >= ?" + std::to_string(next++);
    if (filter.logical_to) sql += " AND logical_date <= ?" + std::to_string(next++);
    if (filter.automated_only) sql += " AND run_type != 'manual'";
    sql += " ORDER BY logical_date DESC, dag_id, run_id";
    if (filter.limit > 0) sql += " LIMIT ?" + std::to_string(next++);

    auto q = use(sql);
    int index = 1;
    if (filter.dag_id) q->bind(index++, *filter.dag_id);
    for (run_state s : filter.states) bind_name(*q, index++, to_string(s));
    if (filter.logical_from) q->bind(index++, micros_of(*filter.logical_from));
    if (filter.logical_to) q->bind(index++, micros_of(*filter.logical_to));
    if (filter.limit > 0) {
      constexpr auto max_limit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
      q->bind(index++, static_cast<std::int64_t>(std::min(filter.limit, max_limit)));
    }
    std::vector<run_record> out;
    while (q->executeStep()) out.push_back(read_run(*q));
    return out;
  });
}

std::optional<run_record> sqlite_store::find_run(const std::string& dag_id, const std::string& run_id) {
  return guarded("find a run", [&]() -> std::optional<run_record> {
    auto q = use("SELECT " + std::string(run_columns) + " FROM dag_runs WHERE dag_id = ?1 AND run_id = ?2");
    q->bind(1, dag_id);
    q->bind(2, run_id);
    if (!q->executeStep()) return std::nullopt;
    return read_run(*q);
  });
}

std::vector<task_instance_record> sqlite_store::task_instance_rows(statement_use& q) {
  std::vector<task_instance_record> out;
  while (q->executeStep()) out.push_back(read_task_instance(*q));
  return out;
}

std::vector<task_instance_record> sqlite_store::task_instances(const std::string& dag_id, const std::string& run_id) {
  return guarded("list task instances", [&] {
    auto q = use("SELECT " + std::string(task_instance_columns) +
                 " FROM task_instances WHERE dag_id = ?1 AND run_id = ?2 ORDER BY task_id");
    q->bind(1, dag_id);
    q->bind(2, run_id);
    return task_instance_rows(q);
  });
}

std::vector<task_instance_record> sqlite_store::task_instances_in(const std::set<task_state>& states) {
  if (states.empty()) return {};  // no state asked for, none matches
  return guarded("list task instances by state", [&] {
    auto q = use("SELECT " + std::string(task_instance_columns) + " FROM task_instances WHERE state IN (" +
                 placeholders(1, states.size()) + ") ORDER BY dag_id, run_id, task_id");
    int index = 1;
    for (task_state s : states) bind_name(*q, index++, to_string(s));
    return task_instance_rows(q);
  });
}

std::vector<try_record> sqlite_store::tries(const std::string& dag_id, const std::string& run_id,
                                            const std::string& task_id) {
  return guarded("list tries", [&] {
    auto q = use("SELECT " + std::string(try_columns) +
                 " FROM task_tries WHERE dag_id = ?1 AND run_id = ?2 AND task_id = ?3 ORDER BY try_number");
    q->bind(1, dag_id);
    q->bind(2, run_id);
    q->bind(3, task_id);
    std::vector<try_record> out;
    while (q->executeStep()) out.push_back(read_try(*q));
    return out;
  });
}

std::optional<std::string> sqlite_store::xcom(const std::string& dag_id, const std::string& run_id,
                                              const std::string& task_id, const std::string& key) {
  return guarded("read an XCom", [&]() -> std::optional<std::string> {
    auto q = use("SELECT value FROM xcom WHERE dag_id = ?1 AND run_id = ?2 AND task_id = ?3 AND key = ?4");
    q->bind(1, dag_id);
    q->bind(2, run_id);
    q->bind(3, task_id);
    q->bind(4, key);
    if (!q->executeStep()) return std::nullopt;
    return (*q).getColumn(0).getString();
  });
}

void sqlite_store::set_variable(const std::string& name, const std::string& value) {
  guarded("set a variable", [&] {
    write_transaction tx(*this);
    auto q = use("INSERT INTO variables (name, value) VALUES (?1, ?2) "
                 "ON CONFLICT (name) DO UPDATE SET value = excluded.value");
    q->bind(1, name);
    q->bind(2, value);
    q.exec();
    tx.commit();
  });
}

std::optional<std::string> sqlite_store::variable(const std::string& name) {
  return guarded("read a variable", [&]() -> std::optional<std::string> {
    auto q = use("SELECT value FROM variables WHERE name = ?1");
    q->bind(1, name);
    if (!q->executeStep()) return std::nullopt;
    return (*q).getColumn(0).getString();
  });
}

std::map<std::string, std::string> sqlite_store::variables() {
  return guarded("list variables", [&] {
    std::map<std::string, std::string> out;
    auto q = use("SELECT name, value FROM variables");
    while (q->executeStep()) out.emplace((*q).getColumn(0).getString(), (*q).getColumn(1).getString());
    return out;
  });
}

bool sqlite_store::delete_variable(const std::string& name) {
  return guarded("delete a variable", [&] {
    write_transaction tx(*this);
    auto q = use("DELETE FROM variables WHERE name = ?1");
    q->bind(1, name);
    const bool deleted = q.exec() == 1;
    tx.commit();
    return deleted;
  });
}

void sqlite_store::set_connection(const connection& c) {
  guarded("store a connection", [&] {
    write_transaction tx(*this);
    auto q = use(
        "INSERT INTO connections (conn_id, conn_type, host, port, login, password, schema) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (conn_id) DO UPDATE SET conn_type = excluded.conn_type, "
        "host = excluded.host, port = excluded.port, login = excluded.login, password = excluded.password, "
        "schema = excluded.schema");
    q->bind(1, c.conn_id);
    q->bind(2, c.conn_type);
    q->bind(3, c.host);
    bind_int(*q, 4, c.port);
    q->bind(5, c.login);
    q->bind(6, c.password);
    q->bind(7, c.schema);
    q.exec();
    tx.commit();
  });
}

std::optional<connection> sqlite_store::find_connection(const std::string& conn_id) {
  return guarded("read a connection", [&]() -> std::optional<connection> {
    auto q = use("SELECT " + std::string(connection_columns) + " FROM connections WHERE conn_id = ?1");
    q->bind(1, conn_id);
    if (!q->executeStep()) return std::nullopt;
    return read_connection(*q);
  });
}

std::vector<connection> sqlite_store::connections() {
  return guarded("list connections", [&] {
    std::vector<connection> out;
    auto q = use("SELECT " + std::string(connection_columns) + " FROM connections ORDER BY conn_id");
    while (q->executeStep()) out.push_back(read_connection(*q));
    return out;
  });
}

bool sqlite_store::delete_connection(const std::string& conn_id) {
  return guarded("delete a connection", [&] {
    write_transaction tx(*this);
    auto q = use("DELETE FROM connections WHERE conn_id = ?1");
    q->bind(1, conn_id);
    const bool deleted = q.exec() == 1;
    tx.commit();
    return deleted;
  });
}

std::size_t sqlite_store::clean(timestamp cutoff) {
  return guarded("clean old runs", [&] {
    write_transaction tx(*this);
    // Task instances, tries and XComs go with their run through ON DELETE CASCADE.
    auto q = use("DELETE FROM dag_runs WHERE state IN ('success', 'failed') AND end_date < ?1");
    q->bind(1, micros_of(cutoff));
    const int deleted = q.exec();
    tx.commit();
    return static_cast<std::size_t>(deleted);
  });
}

}  // namespace

std::unique_ptr<store> open_sqlite_store(const std::string& path) { return std::make_unique<sqlite_store>(path); }

}  // namespace dag
