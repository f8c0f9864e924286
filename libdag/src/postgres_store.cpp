/// @file The PostgreSQL metadata store (libpqxx 6.4): one connection per store object, versioned
/// migrations under an advisory lock, a change-set writer built for the scheduler's hot path
/// (one transaction per step, set-based statements over array parameters, compare-and-set
/// updates), and reconnection with retries when the connection breaks.
///
/// Storage conventions are the SQLite store's (see sqlite_store.cpp), so both read alike:
///  - Every instant is a BIGINT of microseconds since the Unix epoch (UTC); NULL means "not set".
///  - States and run types are TEXT holding their Airflow names.
///  - Key columns are TEXT COLLATE "C": listings sort bytewise, as SQLite's do, whatever the
///    database's locale.
///  - Task instances, tries and XComs hang off their run by foreign keys with ON DELETE CASCADE.
///
/// Retries (see `postgres_store::transact`). An operation that fails because the connection broke
/// is retried on a new connection, with a delay of 50 ms doubling up to 2 s, for up to 30 s; then
/// it fails with dag::error naming the operation and the server. A read is simply run again. A
/// write transaction is retried as a whole, which is only right when it did not commit:
///  - lost before COMMIT was sent: the server rolls the transaction back, so it did not commit;
///  - lost during COMMIT (libpqxx's in_doubt_error): it may have committed. Compare-and-set alone
///    would keep the data right on a blind retry (the updates that went through are now stale and
///    lose, the runs exist and are "not created"), but the result would then report as lost the
///    very updates this writer made, and the scheduler would never act on them: an update lost
///    silently. So every write transaction reads its id (txid_current()) just before COMMIT, and
///    after reconnecting the store asks the server (txid_status()) what became of it: committed
///    → the result computed in that attempt is returned; aborted → the transaction is retried;
///    still in progress (only the network broke and the old session lives on) → the old session,
///    found by its transaction id, is terminated so that the outcome is settled, and the store
///    asks again. If the outcome is still unknown when the budget runs out, the store throws
///    rather than guess.
/// Deadlocks and serialization failures (the server rolled the transaction back) are retried the
/// same way. Any other database error fails at once.

#include "postgres_store.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <libpq-fe.h>
#include <pqxx/pqxx>

#include <dag/core/error.hpp>

namespace dag {
namespace {

using steady = std::chrono::steady_clock;

/// The first pause before retrying after a broken connection; doubled after every failure.
constexpr std::chrono::milliseconds first_retry_delay{50};
/// The longest pause between two retries.
constexpr std::chrono::milliseconds max_retry_delay{2000};
/// How long an operation keeps retrying before it fails: long enough to ride out a server
/// restart or a failover, short enough that a scheduler notices a real outage.
constexpr std::chrono::seconds retry_budget{30};
/// Rows per set-based statement: large enough that 100k updates take a few dozen round trips,
/// small enough that one statement's parameters stay a few megabytes.
constexpr std::size_t batch_rows = 5000;
/// The advisory lock that serializes migrations across processes ("dagrun" in ASCII); advisory
/// locks are per database, so stores on other databases of the server do not wait for it.
constexpr std::int64_t migration_lock_key = 0x64616772756e;

/// The migrations, in order: entry i brings the schema from version i to i + 1. A shipped
/// migration is never edited; a schema change is a new entry. Version 1 is the SQLite store's
/// schema, in PostgreSQL's types.
constexpr std::array<const char*, 2> migrations{
    // 1: the initial schema.
    R"sql(
CREATE TABLE dags (
  dag_id    TEXT COLLATE "C" PRIMARY KEY,
  is_paused BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE import_errors (
  id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  file    TEXT NOT NULL,
  message TEXT NOT NULL
);

CREATE TABLE dag_runs (
  dag_id              TEXT COLLATE "C" NOT NULL,
  run_id              TEXT COLLATE "C" NOT NULL,
  run_type            TEXT NOT NULL,
  state               TEXT NOT NULL,
  logical_date        BIGINT NOT NULL,
  data_interval_start BIGINT NOT NULL,
  data_interval_end   BIGINT NOT NULL,
  start_date          BIGINT,
  end_date            BIGINT,
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
  dag_id     TEXT COLLATE "C" NOT NULL,
  run_id     TEXT COLLATE "C" NOT NULL,
  task_id    TEXT COLLATE "C" NOT NULL,
  state      TEXT NOT NULL DEFAULT 'none',
  try_number INTEGER NOT NULL DEFAULT 0,
  start_date BIGINT,
  end_date   BIGINT,
  retry_at   BIGINT,
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
  dag_id     TEXT COLLATE "C" NOT NULL,
  run_id     TEXT COLLATE "C" NOT NULL,
  task_id    TEXT COLLATE "C" NOT NULL,
  try_number INTEGER NOT NULL,
  state      TEXT NOT NULL,
  start_date BIGINT,
  end_date   BIGINT,
  exit_code  INTEGER,
  hostname   TEXT NOT NULL DEFAULT '',
  pid        INTEGER NOT NULL DEFAULT 0,
  log_path   TEXT NOT NULL DEFAULT '',
  message    TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (dag_id, run_id, task_id, try_number),
  FOREIGN KEY (dag_id, run_id, task_id) REFERENCES task_instances (dag_id, run_id, task_id) ON DELETE CASCADE
);

CREATE TABLE xcom (
  dag_id  TEXT COLLATE "C" NOT NULL,
  run_id  TEXT COLLATE "C" NOT NULL,
  task_id TEXT COLLATE "C" NOT NULL,
  key     TEXT COLLATE "C" NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY (dag_id, run_id, task_id, key),
  FOREIGN KEY (dag_id, run_id, task_id) REFERENCES task_instances (dag_id, run_id, task_id) ON DELETE CASCADE
);

CREATE TABLE variables (
  name  TEXT COLLATE "C" PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE connections (
  conn_id   TEXT COLLATE "C" PRIMARY KEY,
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
ALTER TABLE task_instances ADD COLUMN first_start_date BIGINT;
ALTER TABLE task_instances ADD COLUMN cleared_tries INTEGER NOT NULL DEFAULT 0;
)sql",
};

/// The schema version this build creates and understands.
constexpr int latest_schema_version = static_cast<int>(migrations.size());

// --- SQL used more than once or on the hot path -------------------------------------------------
// Rows travel as one array parameter per column (`$1::text[]`), unnested server-side: one
// prepared statement serves any batch size, and a batch is one round trip.

constexpr std::string_view run_columns =
    "dag_id, run_id, run_type, state, logical_date, data_interval_start, data_interval_end, "
    "start_date, end_date, conf";
constexpr std::string_view task_instance_columns =
    "dag_id, run_id, task_id, state, try_number, start_date, end_date, retry_at, exit_code, "
    "hostname, pid, log_path, message, first_start_date, cleared_tries";
constexpr std::string_view try_columns =
    "dag_id, run_id, task_id, try_number, state, start_date, end_date, exit_code, hostname, pid, "
    "log_path, message";
constexpr std::string_view connection_columns = "conn_id, conn_type, host, port, login, password, schema";

// DO NOTHING without a target covers every uniqueness constraint, including the partial index on
// scheduled/backfill logical dates, so a duplicate by run id or by date is "not created"; a
// concurrent insert of the same run waits for the other transaction and then does nothing.
constexpr std::string_view sql_insert_run =
    "INSERT INTO dag_runs (dag_id, run_id, run_type, state, logical_date, data_interval_start, "
    "data_interval_end, start_date, end_date, conf) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
    "ON CONFLICT DO NOTHING";
constexpr std::string_view sql_insert_run_task_instances =
    "INSERT INTO task_instances (dag_id, run_id, task_id) SELECT $1, $2, unnest($3::text[]) "
    "ON CONFLICT DO NOTHING";
// Set-based compare-and-set: RETURNING names the rows (by ordinal in the batch) that won. A batch
// never holds the same key twice (see `batches`), so it equals applying its rows one by one.
constexpr std::string_view sql_update_runs =
    "UPDATE dag_runs AS r SET state = u.state, start_date = COALESCE(u.start_date, r.start_date), "
    "end_date = CASE WHEN u.state IN ('queued', 'running') THEN NULL ELSE COALESCE(u.end_date, r.end_date) END "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[]) "
    "WITH ORDINALITY AS u(dag_id, run_id, state, start_date, end_date, expected, ord) "
    "WHERE r.dag_id = u.dag_id AND r.run_id = u.run_id AND r.state = u.expected RETURNING u.ord";
constexpr std::string_view sql_update_task_instances =
    "UPDATE task_instances AS t SET state = u.state, try_number = u.try_number, start_date = u.start_date, "
    "end_date = u.end_date, retry_at = u.retry_at, exit_code = u.exit_code, hostname = u.hostname, "
    "pid = u.pid, log_path = u.log_path, message = u.message, first_start_date = u.first_start_date, "
    "cleared_tries = u.cleared_tries "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::integer[], $6::bigint[], $7::bigint[], "
    "$8::bigint[], $9::integer[], $10::text[], $11::integer[], $12::text[], $13::text[], $14::text[], "
    "$15::integer[], $16::bigint[], $17::integer[]) WITH ORDINALITY AS u(dag_id, run_id, task_id, state, "
    "try_number, start_date, end_date, retry_at, exit_code, hostname, pid, log_path, message, expected, "
    "expected_try, first_start_date, cleared_tries, ord) "
    "WHERE t.dag_id = u.dag_id AND t.run_id = u.run_id AND t.task_id = u.task_id AND t.state = u.expected "
    "AND t.try_number = u.expected_try RETURNING u.ord";
constexpr std::string_view sql_insert_missing_task_instances =
    "INSERT INTO task_instances (dag_id, run_id, task_id) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING "
    "RETURNING dag_id, run_id, task_id";
constexpr std::string_view sql_upsert_tries =
    "INSERT INTO task_tries (dag_id, run_id, task_id, try_number, state, start_date, end_date, exit_code, "
    "hostname, pid, log_path, message) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
    "$4::integer[], $5::text[], $6::bigint[], $7::bigint[], $8::integer[], $9::text[], $10::integer[], "
    "$11::text[], $12::text[]) ON CONFLICT (dag_id, run_id, task_id, try_number) DO UPDATE SET "
    "state = excluded.state, start_date = excluded.start_date, end_date = excluded.end_date, "
    "exit_code = excluded.exit_code, hostname = excluded.hostname, pid = excluded.pid, "
    "log_path = excluded.log_path, message = excluded.message";
constexpr std::string_view sql_upsert_xcoms =
    "INSERT INTO xcom (dag_id, run_id, task_id, key, value) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) "
    "ON CONFLICT (dag_id, run_id, task_id, key) DO UPDATE SET value = excluded.value";
constexpr std::string_view sql_txid_current = "SELECT txid_current()";
constexpr std::string_view sql_txid_status = "SELECT txid_status($1)";
// Ends the session still running transaction $1 (our own, whose connection broke), so that its
// outcome is settled now rather than when the server notices the dead connection. No other session
// can be running that transaction, so this never hits anybody else, poolers included.
constexpr std::string_view sql_end_session_of_transaction =
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE backend_xid::text = ($1::bigint % 4294967296)::text AND pid <> pg_backend_pid()";
// --- conversions at the boundary --------------------------------------------------------------

std::int64_t micros_of(timestamp t) { return static_cast<std::int64_t>(t.time_since_epoch().count()); }
std::int64_t micros_of(time_point t) { return micros_of(std::chrono::time_point_cast<std::chrono::microseconds>(t)); }
timestamp timestamp_at(std::int64_t micros) { return timestamp{std::chrono::microseconds{micros}}; }
time_point time_point_at(std::int64_t micros) { return std::chrono::floor<std::chrono::seconds>(timestamp_at(micros)); }

/// A parameter for an optional instant (NULL when unset).
std::optional<std::int64_t> micros_param(const std::optional<timestamp>& t) {
  if (t) return micros_of(*t);
  return std::nullopt;
}

std::optional<timestamp> time_field(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return timestamp_at(f.as<std::int64_t>());
}
std::optional<int> int_field(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<int>();
}

/// Reads an enum stored by name; a name this build does not know means the database was written by
/// something else, which is an error rather than a silent default.
template <class Enum>
Enum enum_field(const pqxx::field& f, std::optional<Enum> (*parse)(std::string_view), const char* what) {
  const std::string text = f.as<std::string>();
  if (auto value = parse(text)) return *value;
  throw error("the database holds an unknown " + std::string(what) + " '" + text + "'");
}

run_record read_run(const pqxx::row& row) {
  run_record r;
  r.dag_id = row[0].as<std::string>();
  r.run_id = row[1].as<std::string>();
  r.type = enum_field(row[2], parse_run_type, "run type");
  r.state = enum_field(row[3], parse_run_state, "run state");
  r.logical_date = time_point_at(row[4].as<std::int64_t>());
  r.interval.start = time_point_at(row[5].as<std::int64_t>());
  r.interval.end = time_point_at(row[6].as<std::int64_t>());
  r.start_date = time_field(row[7]);
  r.end_date = time_field(row[8]);
  r.conf = row[9].as<std::string>();
  return r;
}

task_instance_record read_task_instance(const pqxx::row& row) {
  task_instance_record r;
  r.dag_id = row[0].as<std::string>();
  r.run_id = row[1].as<std::string>();
  r.task_id = row[2].as<std::string>();
  r.state = enum_field(row[3], parse_task_state, "task state");
  r.try_number = row[4].as<int>();
  r.start_date = time_field(row[5]);
  r.end_date = time_field(row[6]);
  r.retry_at = time_field(row[7]);
  r.exit_code = int_field(row[8]);
  r.hostname = row[9].as<std::string>();
  r.pid = row[10].as<int>();
  r.log_path = row[11].as<std::string>();
  r.message = row[12].as<std::string>();
  r.first_start_date = time_field(row[13]);
  r.cleared_tries = row[14].as<int>();
  return r;
}

try_record read_try(const pqxx::row& row) {
  try_record r;
  r.dag_id = row[0].as<std::string>();
  r.run_id = row[1].as<std::string>();
  r.task_id = row[2].as<std::string>();
  r.try_number = row[3].as<int>();
  r.state = enum_field(row[4], parse_task_state, "task state");
  r.start_date = time_field(row[5]);
  r.end_date = time_field(row[6]);
  r.exit_code = int_field(row[7]);
  r.hostname = row[8].as<std::string>();
  r.pid = row[9].as<int>();
  r.log_path = row[10].as<std::string>();
  r.message = row[11].as<std::string>();
  return r;
}

connection read_connection(const pqxx::row& row) {
  connection c;
  c.conn_id = row[0].as<std::string>();
  c.conn_type = row[1].as<std::string>();
  c.host = row[2].as<std::string>();
  c.port = int_field(row[3]);
  c.login = row[4].as<std::string>();
  c.password = row[5].as<std::string>();
  c.schema = row[6].as<std::string>();
  return c;
}

/// The text form of a PostgreSQL array (`{"a","b",NULL}`), built row by row and passed as one
/// parameter that the SQL casts (`$1::text[]`).
class array_literal {
public:
  /// Appends a text element, quoted so that any content survives.
  void add(std::string_view text) {
    separate();
    text_ += '"';
    for (char c : text) {
      if (c == '"' || c == '\\') text_ += '\\';
      text_ += c;
    }
    text_ += '"';
  }
  /// Appends an integer element.
  void add(std::int64_t value) {
    separate();
    text_ += std::to_string(value);
  }
  /// Appends an integer element.
  void add(int value) { add(static_cast<std::int64_t>(value)); }
  /// Appends an instant as microseconds, or NULL.
  void add(const std::optional<timestamp>& t) {
    if (t) add(micros_of(*t));
    else add_null();
  }
  /// Appends an integer, or NULL.
  void add(const std::optional<int>& value) {
    if (value) add(*value);
    else add_null();
  }
  /// Appends NULL.
  void add_null() {
    separate();
    text_ += "NULL";
  }
  /// The literal.
  std::string str() const { return text_ + '}'; }

private:
  void separate() {
    if (text_.size() > 1) text_ += ',';
  }
  std::string text_ = "{";
};

/// The key of a row as one string (parts joined by NUL, which PostgreSQL text cannot contain).
template <class... Parts>
std::string key_of(const Parts&... parts) {
  std::string key;
  ((key += parts, key += '\0'), ...);
  return key;
}

/// Splits `count` items into consecutive batches of at most `batch_rows` in which no key repeats
/// (`key(i)` is item i's key), so that a set-based statement on a batch does what applying its
/// items one by one would: a repeated key starts a new batch and so sees the earlier write.
template <class KeyOf>
std::vector<std::pair<std::size_t, std::size_t>> batches(std::size_t count, KeyOf key) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::unordered_set<std::string> seen;
  std::size_t begin = 0;
  for (std::size_t i = 0; i < count; ++i) {
    std::string k = key(i);
    if (i - begin == batch_rows || seen.contains(k)) {
      out.emplace_back(begin, i);
      begin = i;
      seen.clear();
    }
    seen.insert(std::move(k));
  }
  if (begin < count) out.emplace_back(begin, count);
  return out;
}

/// An error about the database `label` (`host:port/database`): `what()` reads `LABEL: message`.
error database_error(const std::string& label, const std::string& message) {
  error_context where;
  where.file = label;
  return error(where, message);
}

/// True for SQLSTATEs that mean the connection is gone rather than the statement wrong: class 08
/// (connection exception) and the server shutting down or terminating the session (57P01-57P03).
bool is_connection_failure(const std::string& sqlstate) {
  return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03";
}

/// `text` with every `secret` replaced by `***` (nothing when `secret` is empty).
std::string scrubbed(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (std::size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3))
    text.replace(pos, secret.size(), "***");
  return text;
}

/// `text` without trailing newlines and spaces (libpq ends its messages with a newline).
std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\t')) text.pop_back();
  return text;
}

/// Where a URL points, for connecting and for messages.
struct target {
  std::string conninfo;  ///< what libpq connects with (may hold the password: never shown)
  std::string label;     ///< `host:port/database`, for messages
  std::string password;  ///< the password given in the URL, scrubbed from any message
};

/// Reads a `postgresql://` URL with libpq's own parser, so that every form libpq accepts works
/// (percent-encoding, query parameters such as `?host=/run/postgresql` or `sslmode`).
target parse_url(const std::string& url) {
  target t;
  t.conninfo = url;
  if (url.starts_with("postgresql+")) {  // SQLAlchemy's `postgresql+psycopg2://`: the driver is ours
    const std::size_t scheme_end = url.find("://");
    if (scheme_end != std::string::npos) t.conninfo = "postgresql" + url.substr(scheme_end);
  }
  char* message = nullptr;
  PQconninfoOption* options = PQconninfoParse(t.conninfo.c_str(), &message);
  if (options == nullptr) {
    std::string why = message != nullptr ? trimmed(message) : "out of memory";
    PQfreemem(message);
    // libpq may quote the offending part, which may be the user:password part: never show it.
    const std::size_t start = t.conninfo.find("://");
    const std::size_t at = t.conninfo.find('@');
    if (start != std::string::npos && at != std::string::npos && at > start + 3)
      why = scrubbed(why, t.conninfo.substr(start + 3, at - start - 3));
    throw usage_error("database URL is not a valid PostgreSQL URL: " + why);
  }
  std::map<std::string, std::string> given;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o)
    if (o->val != nullptr && *o->val != '\0') given.emplace(o->keyword, o->val);
  PQconninfoFree(options);
  const auto value = [&](const char* keyword, const char* env, const char* fallback) {
    if (auto it = given.find(keyword); it != given.end()) return it->second;
    if (const char* v = std::getenv(env); v != nullptr && *v != '\0') return std::string(v);
    return std::string(fallback);
  };
  const std::string user = value("user", "PGUSER", "");
  t.label = value("host", "PGHOST", "localhost") + ':' + value("port", "PGPORT", "5432") + '/' +
            value("dbname", "PGDATABASE", user.empty() ? "(default database)" : user.c_str());
  if (auto it = given.find("password"); it != given.end()) t.password = it->second;
  return t;
}

// --- the store ----------------------------------------------------------------------------------

/// What a transaction does: reads run without BEGIN/COMMIT (one round trip for one statement);
/// writes run in one transaction whose outcome is made certain (see the file comment).
enum class access { read, write };

/// The PostgreSQL store. One object is one connection (re-established when it breaks), used from
/// one thread at a time: libpqxx connections are not thread-safe, so open one store per thread.
/// The server arbitrates between store objects and processes. No global state: everything, the
/// prepared statements included, lives in the object.
class postgres_store final : public store {
public:
  /// Connects to the database of `where` (once, without retrying) and migrates it.
  explicit postgres_store(target where);

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
  /// What a body that returns nothing returns, so that one code path serves every operation.
  struct nothing {};

  /// Runs `body(tx)` as one read or write, retrying as the file comment describes; turns libpqxx's
  /// exceptions into dag::error naming the server and `what` failed ("cannot WHAT: …").
  template <class F>
  auto transact(const char* what, access mode, F&& body);
  /// `transact` for a body returning R (never void).
  template <class R, class F>
  R with_retries(const char* what, access mode, F& body);
  /// Whether write transaction `txid`, whose COMMIT was in doubt, committed; reconnects as needed.
  /// Throws once the outcome is still unknown at `deadline`.
  bool committed(const char* what, std::int64_t txid, steady::time_point deadline, std::chrono::milliseconds& delay,
                 std::string& problem);
  /// Sleeps `delay` and doubles it (up to the cap), or throws when that would pass `deadline`.
  void back_off(const char* what, steady::time_point deadline, std::chrono::milliseconds& delay,
                const std::string& problem, int attempts);
  /// Opens a new connection and registers every prepared statement on it.
  void connect();
  /// Forgets a broken connection; the next attempt opens a new one.
  void drop_connection() noexcept;
  /// The name of the prepared statement for `sql`, registered on first use (and on every new
  /// connection from then on).
  const std::string& prepared(std::string_view sql);
  /// dag::error "LABEL: cannot WHAT: MESSAGE", with the password scrubbed from MESSAGE.
  error failure(const char* what, const std::string& message) const;
  /// The version recorded in schema_version; 0 when the table does not exist yet.
  int recorded_version(pqxx::transaction_base& tx);

  /// Inserts new runs and their task instances (one statement per run, its tasks in batches).
  void insert_runs(pqxx::transaction_base& tx, const change_set& changes, change_result& result);
  /// Applies run updates in batches; sets result.runs_updated.
  void update_runs(pqxx::transaction_base& tx, const change_set& changes, change_result& result);
  /// Applies task instance updates in batches, creating missing instances where the rule says so.
  void update_task_instances(pqxx::transaction_base& tx, const change_set& changes, change_result& result);
  /// Runs the set-based task instance update on items `which` of `updates`; returns the items won.
  std::vector<std::size_t> update_task_instance_rows(pqxx::transaction_base& tx,
                                                     const std::vector<task_instance_update>& updates,
                                                     const std::vector<std::size_t>& which);
  /// Inserts or replaces tries in batches.
  void upsert_tries(pqxx::transaction_base& tx, const change_set& changes);
  /// Inserts or replaces XComs in batches.
  void upsert_xcoms(pqxx::transaction_base& tx, const change_set& changes);
  void delete_xcoms(pqxx::transaction_base& tx, const change_set& changes);

  target target_;                                         ///< where to connect, and how to name it
  std::unique_ptr<pqxx::connection> conn_;                ///< null after a break, until the next attempt
  std::unordered_map<std::string, std::string> names_;    ///< SQL text → prepared statement name
  std::vector<std::pair<std::string, std::string>> statements_;  ///< (name, SQL) to prepare on each connection
};

postgres_store::postgres_store(target where) : target_(std::move(where)) {
  try {
    connect();
  } catch (const pqxx::pqxx_exception& e) {
    // No retry: on opening, a refused connection is far more often a wrong URL than an outage,
    // and the person who typed it should hear so at once.
    throw failure("connect", e.base().what());
  }
  migrate();
}

void postgres_store::connect() {
  auto c = std::make_unique<pqxx::connection>(target_.conninfo);
  // Session settings go through set_variable, which libpqxx replays should it ever re-establish
  // the session by itself. Warnings only: CREATE … IF NOT EXISTS notices are noise. A session left
  // idle inside a transaction (its client vanished without the server noticing) keeps its row
  // locks until the server gives up on it, and our retries would wait for them; unless the
  // administrator chose a limit, one minute is it: our own transactions never idle that long.
  c->set_variable("client_min_messages", "warning");
  if (c->get_variable("idle_in_transaction_session_timeout") == "0")
    c->set_variable("idle_in_transaction_session_timeout", "60000");
  for (const auto& [name, sql] : statements_) c->prepare(name, sql);
  conn_ = std::move(c);
}

void postgres_store::drop_connection() noexcept { conn_.reset(); }

const std::string& postgres_store::prepared(std::string_view sql) {
  const std::string text(sql);
  if (auto it = names_.find(text); it != names_.end()) return it->second;
  std::string name = "dagrun_" + std::to_string(statements_.size());
  if (conn_) conn_->prepare(name, text);
  statements_.emplace_back(name, text);
  return names_.emplace(text, std::move(name)).first->second;
}

error postgres_store::failure(const char* what, const std::string& message) const {
  // libpq never echoes a password, but a message is cheap to check and a leak is not. (A password
  // of one or two characters would mangle every message and is no secret anyway.)
  const std::string& secret = target_.password;
  const std::string text = secret.size() >= 3 ? scrubbed(trimmed(message), secret) : trimmed(message);
  return database_error(target_.label, "cannot " + std::string(what) + ": " + text);
}

template <class F>
auto postgres_store::transact(const char* what, access mode, F&& body) {
  using result_type = std::invoke_result_t<F&, pqxx::transaction_base&>;
  if constexpr (std::is_void_v<result_type>) {
    auto wrapped = [&](pqxx::transaction_base& tx) {
      body(tx);
      return nothing{};
    };
    with_retries<nothing>(what, mode, wrapped);
  } else {
    return with_retries<result_type>(what, mode, body);
  }
}

template <class R, class F>
R postgres_store::with_retries(const char* what, access mode, F& body) {
  const auto deadline = steady::now() + retry_budget;
  auto delay = first_retry_delay;
  for (int attempt = 1;; ++attempt) {
    std::string problem;           // why this attempt did not finish
    bool broken = false;           // the connection is gone
    std::optional<R> in_doubt;     // this attempt's result, when its COMMIT may or may not have happened
    std::int64_t txid = 0;
    try {
      if (!conn_) connect();
      if (mode == access::read) {
        pqxx::nontransaction tx(*conn_);
        return body(static_cast<pqxx::transaction_base&>(tx));
      }
      pqxx::work tx(*conn_);
      R result = body(static_cast<pqxx::transaction_base&>(tx));
      txid = tx.exec_prepared1(prepared(sql_txid_current))[0].as<std::int64_t>();
      try {
        tx.commit();
        return result;
      } catch (const pqxx::in_doubt_error& e) {
        in_doubt = std::move(result);
        problem = e.what();
        broken = true;
      }
    } catch (const error&) {
      throw;  // ours (an unknown state name, a newer schema): not a connection problem
    } catch (const pqxx::broken_connection& e) {
      problem = e.what();
      broken = true;
    } catch (const pqxx::transaction_rollback& e) {
      problem = e.what();  // deadlock or serialization failure: rolled back, safe to run again
    } catch (const pqxx::sql_error& e) {
      if (!is_connection_failure(e.sqlstate())) throw failure(what, e.what());
      problem = e.what();
      broken = true;
    } catch (const pqxx::pqxx_exception& e) {
      throw failure(what, e.base().what());
    }
    if (broken) drop_connection();
    if (in_doubt) {
      if (committed(what, txid, deadline, delay, problem)) return std::move(*in_doubt);
      continue;  // it rolled back: run the whole transaction again (committed() already waited)
    }
    back_off(what, deadline, delay, problem, attempt);
  }
}

void postgres_store::back_off(const char* what, steady::time_point deadline, std::chrono::milliseconds& delay,
                              const std::string& problem, int attempts) {
  if (steady::now() + delay > deadline)
    throw failure(what, "still failing after " + std::to_string(attempts) + " attempts over " +
                            std::to_string(retry_budget.count()) + " s: " + trimmed(problem));
  std::this_thread::sleep_for(delay);
  delay = std::min(delay * 2, max_retry_delay);
}

bool postgres_store::committed(const char* what, std::int64_t txid, steady::time_point deadline,
                               std::chrono::milliseconds& delay, std::string& problem) {
  for (int attempt = 1;; ++attempt) {
    if (steady::now() + delay > deadline)
      throw failure(what, "the connection was lost while committing, and whether transaction " +
                              std::to_string(txid) + " committed is still unknown after " +
                              std::to_string(retry_budget.count()) + " s: " + trimmed(problem));
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, max_retry_delay);
    try {
      if (!conn_) connect();
      pqxx::nontransaction tx(*conn_);
      const pqxx::row status = tx.exec_prepared1(prepared(sql_txid_status), txid);
      if (status[0].is_null())
        throw failure(what, "the connection was lost while committing, and the server no longer knows whether "
                            "transaction " + std::to_string(txid) + " committed");
      const std::string state = status[0].as<std::string>();
      if (state == "committed") return true;
      if (state == "aborted") return false;
      // Still in progress: only the network broke, and the old session waits for a client that is
      // gone. End it, then ask again.
      tx.exec_prepared(prepared(sql_end_session_of_transaction), txid);
      problem = "transaction " + std::to_string(txid) + " is still in progress";
    } catch (const error&) {
      throw;
    } catch (const pqxx::broken_connection& e) {
      problem = e.what();
      drop_connection();
    } catch (const pqxx::sql_error& e) {
      if (!is_connection_failure(e.sqlstate())) throw failure(what, e.what());
      problem = e.what();
      drop_connection();
    } catch (const pqxx::pqxx_exception& e) {
      throw failure(what, e.base().what());
    }
  }
}

int postgres_store::recorded_version(pqxx::transaction_base& tx) {
  if (tx.exec_prepared1(prepared("SELECT to_regclass('schema_version') IS NOT NULL"))[0].as<bool>() == false)
    return 0;
  return tx.exec_prepared1(prepared("SELECT COALESCE(MAX(version), 0) FROM schema_version"))[0].as<int>();
}

void postgres_store::migrate() {
  const auto check = [&](int version) {
    if (version > latest_schema_version)
      throw database_error(target_.label, "database schema version " + std::to_string(version) +
                                              " is newer than this dagrun (" + std::to_string(latest_schema_version) +
                                              ")");
  };
  // Read first so that opening an up-to-date database (every CLI command) takes no lock.
  const int seen = transact("migrate the schema", access::read, [&](pqxx::transaction_base& tx) {
    return recorded_version(tx);
  });
  check(seen);
  if (seen == latest_schema_version) return;

  transact("migrate the schema", access::write, [&](pqxx::transaction_base& tx) {
    // Several processes may start at once: the first to get the lock migrates, the others then
    // find the work done. The lock goes with the transaction, so it cannot outlive a crash.
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", migration_lock_key);
    tx.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)");
    const int current = tx.exec1("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0].as<int>();
    check(current);
    const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    for (int v = current; v < latest_schema_version; ++v) {
      tx.exec(migrations[static_cast<std::size_t>(v)]);  // DDL is transactional: all or nothing
      tx.exec_params("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", v + 1, micros_of(now));
    }
  });
}

int postgres_store::schema_version() {
  return transact("read the schema version", access::read,
                  [&](pqxx::transaction_base& tx) { return recorded_version(tx); });
}

void postgres_store::set_paused(const std::string& dag_id, bool paused) {
  transact("set a DAG's paused flag", access::write, [&](pqxx::transaction_base& tx) {
    tx.exec_prepared(prepared("INSERT INTO dags (dag_id, is_paused) VALUES ($1, $2) "
                              "ON CONFLICT (dag_id) DO UPDATE SET is_paused = excluded.is_paused"),
                     dag_id, paused);
  });
}

std::set<std::string> postgres_store::paused_dags() {
  return transact("list paused DAGs", access::read, [&](pqxx::transaction_base& tx) {
    std::set<std::string> out;
    for (const auto& row : tx.exec_prepared(prepared("SELECT dag_id FROM dags WHERE is_paused")))
      out.insert(row[0].as<std::string>());
    return out;
  });
}

void postgres_store::set_import_errors(const std::vector<import_error_record>& errors) {
  transact("replace import errors", access::write, [&](pqxx::transaction_base& tx) {
    tx.exec_prepared(prepared("DELETE FROM import_errors"));
    for (std::size_t begin = 0; begin < errors.size(); begin += batch_rows) {
      array_literal files, messages;
      for (std::size_t i = begin; i < std::min(errors.size(), begin + batch_rows); ++i) {
        files.add(errors[i].file);
        messages.add(errors[i].message);
      }
      // In the order given: ids are drawn as rows are inserted, and listing sorts by id.
      tx.exec_prepared(prepared("INSERT INTO import_errors (file, message) SELECT file, message "
                                "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(file, message, ord) "
                                "ORDER BY ord"),
                       files.str(), messages.str());
    }
  });
}

std::vector<import_error_record> postgres_store::import_errors() {
  return transact("list import errors", access::read, [&](pqxx::transaction_base& tx) {
    std::vector<import_error_record> out;
    for (const auto& row : tx.exec_prepared(prepared("SELECT file, message FROM import_errors ORDER BY id")))
      out.push_back({row[0].as<std::string>(), row[1].as<std::string>()});
    return out;
  });
}

change_result postgres_store::apply(const change_set& changes) {
  if (changes.empty()) return {};  // the idle scheduler loop costs no round trip
  return transact("apply changes", access::write, [&](pqxx::transaction_base& tx) {
    // Built afresh by every attempt, so a retried transaction reports only what it did itself.
    change_result result;
    insert_runs(tx, changes, result);
    update_runs(tx, changes, result);
    update_task_instances(tx, changes, result);
    upsert_tries(tx, changes);
    delete_xcoms(tx, changes);
    upsert_xcoms(tx, changes);
    return result;
  });
}

void postgres_store::insert_runs(pqxx::transaction_base& tx, const change_set& changes, change_result& result) {
  result.runs_created.reserve(changes.new_runs.size());
  for (const auto& [run, task_ids] : changes.new_runs) {
    const pqxx::result inserted = tx.exec_prepared(
        prepared(sql_insert_run), run.dag_id, run.run_id, std::string(to_string(run.type)),
        std::string(to_string(run.state)), micros_of(run.logical_date), micros_of(run.interval.start),
        micros_of(run.interval.end), micros_param(run.start_date), micros_param(run.end_date), run.conf);
    const bool created = inserted.affected_rows() == 1;
    result.runs_created.push_back(created);
    if (!created) continue;  // an existing run keeps its task instances as they are
    for (std::size_t begin = 0; begin < task_ids.size(); begin += batch_rows) {
      array_literal ids;
      for (std::size_t i = begin; i < std::min(task_ids.size(), begin + batch_rows); ++i) ids.add(task_ids[i]);
      tx.exec_prepared(prepared(sql_insert_run_task_instances), run.dag_id, run.run_id, ids.str());
    }
  }
}

void postgres_store::update_runs(pqxx::transaction_base& tx, const change_set& changes, change_result& result) {
  const auto& updates = changes.runs;
  result.runs_updated.assign(updates.size(), false);
  const auto key = [&](std::size_t i) { return key_of(updates[i].dag_id, updates[i].run_id); };
  for (const auto& [begin, end] : batches(updates.size(), key)) {
    array_literal dag_ids, run_ids, states, start_dates, end_dates, expected;
    for (std::size_t i = begin; i < end; ++i) {
      const run_update& u = updates[i];
      dag_ids.add(u.dag_id);
      run_ids.add(u.run_id);
      states.add(to_string(u.state));
      start_dates.add(u.start_date);
      end_dates.add(u.end_date);
      expected.add(to_string(u.expected));
    }
    const pqxx::result won = tx.exec_prepared(prepared(sql_update_runs), dag_ids.str(), run_ids.str(), states.str(),
                                              start_dates.str(), end_dates.str(), expected.str());
    for (const auto& row : won) result.runs_updated[begin + row[0].as<std::size_t>() - 1] = true;
  }
}

std::vector<std::size_t> postgres_store::update_task_instance_rows(pqxx::transaction_base& tx,
                                                                   const std::vector<task_instance_update>& updates,
                                                                   const std::vector<std::size_t>& which) {
  array_literal dag_ids, run_ids, task_ids, states, tries, start_dates, end_dates, retry_ats, exit_codes, hostnames,
      pids, log_paths, messages, expected, expected_tries, first_start_dates, cleared_tries;
  for (std::size_t i : which) {
    const task_instance_update& u = updates[i];
    const task_instance_record& r = u.record;
    dag_ids.add(r.dag_id);
    run_ids.add(r.run_id);
    task_ids.add(r.task_id);
    states.add(to_string(r.state));
    tries.add(r.try_number);
    start_dates.add(r.start_date);
    end_dates.add(r.end_date);
    retry_ats.add(r.retry_at);
    exit_codes.add(r.exit_code);
    hostnames.add(r.hostname);
    pids.add(r.pid);
    log_paths.add(r.log_path);
    messages.add(r.message);
    expected.add(to_string(u.expected));
    expected_tries.add(u.expected_try);
    first_start_dates.add(r.first_start_date);
    cleared_tries.add(r.cleared_tries);
  }
  const pqxx::result won = tx.exec_prepared(
      prepared(sql_update_task_instances), dag_ids.str(), run_ids.str(), task_ids.str(), states.str(), tries.str(),
      start_dates.str(), end_dates.str(), retry_ats.str(), exit_codes.str(), hostnames.str(), pids.str(),
      log_paths.str(), messages.str(), expected.str(), expected_tries.str(), first_start_dates.str(), cleared_tries.str());
  std::vector<std::size_t> out;
  out.reserve(won.size());
  for (const auto& row : won) out.push_back(which[row[0].as<std::size_t>() - 1]);
  return out;
}

void postgres_store::update_task_instances(pqxx::transaction_base& tx, const change_set& changes,
                                           change_result& result) {
  const auto& updates = changes.task_instances;
  result.task_instances_updated.assign(updates.size(), false);
  const auto key = [&](std::size_t i) {
    const auto& r = updates[i].record;
    return key_of(r.dag_id, r.run_id, r.task_id);
  };
  for (const auto& [begin, end] : batches(updates.size(), key)) {
    std::vector<std::size_t> all(end - begin);
    for (std::size_t i = begin; i < end; ++i) all[i - begin] = i;
    for (std::size_t i : update_task_instance_rows(tx, updates, all)) result.task_instances_updated[i] = true;

    // A task added to the DAG after the run was created has no row yet: an instance in state none
    // with no try is what it would have been, so create it and apply the update.
    std::vector<std::size_t> missing;
    for (std::size_t i = begin; i < end; ++i)
      if (!result.task_instances_updated[i] && updates[i].expected == task_state::none && updates[i].expected_try == 0)
        missing.push_back(i);
    if (missing.empty()) continue;
    array_literal dag_ids, run_ids, task_ids;
    for (std::size_t i : missing) {
      dag_ids.add(updates[i].record.dag_id);
      run_ids.add(updates[i].record.run_id);
      task_ids.add(updates[i].record.task_id);
    }
    std::unordered_set<std::string> created;
    for (const auto& row : tx.exec_prepared(prepared(sql_insert_missing_task_instances), dag_ids.str(), run_ids.str(),
                                            task_ids.str()))
      created.insert(key_of(row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>()));
    std::vector<std::size_t> retry;
    for (std::size_t i : missing)
      if (created.contains(key(i))) retry.push_back(i);
    if (retry.empty()) continue;
    for (std::size_t i : update_task_instance_rows(tx, updates, retry)) result.task_instances_updated[i] = true;
  }
}

void postgres_store::upsert_tries(pqxx::transaction_base& tx, const change_set& changes) {
  const auto& tries = changes.tries;
  // ON CONFLICT DO UPDATE may not touch a row twice in one statement: a repeated try starts a new
  // batch, and the later record wins as it does when applied one by one.
  const auto key = [&](std::size_t i) {
    return key_of(tries[i].dag_id, tries[i].run_id, tries[i].task_id, std::to_string(tries[i].try_number));
  };
  for (const auto& [begin, end] : batches(tries.size(), key)) {
    array_literal dag_ids, run_ids, task_ids, numbers, states, start_dates, end_dates, exit_codes, hostnames, pids,
        log_paths, messages;
    for (std::size_t i = begin; i < end; ++i) {
      const try_record& t = tries[i];
      dag_ids.add(t.dag_id);
      run_ids.add(t.run_id);
      task_ids.add(t.task_id);
      numbers.add(t.try_number);
      states.add(to_string(t.state));
      start_dates.add(t.start_date);
      end_dates.add(t.end_date);
      exit_codes.add(t.exit_code);
      hostnames.add(t.hostname);
      pids.add(t.pid);
      log_paths.add(t.log_path);
      messages.add(t.message);
    }
    tx.exec_prepared(prepared(sql_upsert_tries), dag_ids.str(), run_ids.str(), task_ids.str(), numbers.str(),
                     states.str(), start_dates.str(), end_dates.str(), exit_codes.str(), hostnames.str(), pids.str(),
                     log_paths.str(), messages.str());
  }
}

void postgres_store::delete_xcoms(pqxx::transaction_base& tx, const change_set& changes) {
  if (changes.xcom_deletes.empty()) return;
  array_literal dag_ids, run_ids, task_ids;
  for (const auto& x : changes.xcom_deletes) {
    dag_ids.add(x.dag_id);
    run_ids.add(x.run_id);
    task_ids.add(x.task_id);
  }
  tx.exec_prepared(prepared("DELETE FROM xcom AS x USING unnest($1::text[], $2::text[], $3::text[]) AS d(dag_id, run_id, task_id) "
                            "WHERE x.dag_id = d.dag_id AND x.run_id = d.run_id AND x.task_id = d.task_id"),
                   dag_ids.str(), run_ids.str(), task_ids.str());
}

void postgres_store::upsert_xcoms(pqxx::transaction_base& tx, const change_set& changes) {
  const auto& xcoms = changes.xcoms;
  const auto key = [&](std::size_t i) { return key_of(xcoms[i].dag_id, xcoms[i].run_id, xcoms[i].task_id, xcoms[i].key); };
  for (const auto& [begin, end] : batches(xcoms.size(), key)) {
    array_literal dag_ids, run_ids, task_ids, keys, values;
    for (std::size_t i = begin; i < end; ++i) {
      dag_ids.add(xcoms[i].dag_id);
      run_ids.add(xcoms[i].run_id);
      task_ids.add(xcoms[i].task_id);
      keys.add(xcoms[i].key);
      values.add(xcoms[i].value);
    }
    tx.exec_prepared(prepared(sql_upsert_xcoms), dag_ids.str(), run_ids.str(), task_ids.str(), keys.str(),
                     values.str());
  }
}

std::vector<run_record> postgres_store::runs(const run_filter& filter) {
  return transact("list runs", access::read, [&](pqxx::transaction_base& tx) {
    // One statement per combination of filters (a bounded number), each prepared once: a single
    // statement with `$1 IS NULL OR …` would get one generic plan that fits no combination well.
    std::string sql = "SELECT " + std::string(run_columns) + " FROM dag_runs WHERE TRUE";
    std::vector<std::string> params;
    const auto param = [&](std::string value, const char* type) {
      params.push_back(std::move(value));
      return "$" + std::to_string(params.size()) + "::" + type;
    };
    if (filter.dag_id) sql += " AND dag_id = " + param(*filter.dag_id, "text");
    if (!filter.states.empty()) {
      array_literal states;
      for (run_state s : filter.states) states.add(to_string(s));
      sql += " AND state = ANY(" + param(states.str(), "text[]") + ")";
    }
    if (filter.logical_from) sql += " AND logical_date >= " + param(std::to_string(micros_of(*filter.logical_from)), "bigint");
    if (filter.logical_to) sql += " AND logical_date <= " + param(std::to_string(micros_of(*filter.logical_to)), "bigint");
    if (filter.automated_only) sql += " AND run_type <> 'manual'";
    sql += " ORDER BY logical_date DESC, dag_id, run_id";
    if (filter.limit > 0) {
      constexpr auto max_limit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
      sql += " LIMIT " + param(std::to_string(std::min(filter.limit, max_limit)), "bigint");
    }
    std::vector<run_record> out;
    for (const auto& row : tx.exec_prepared(prepared(sql), pqxx::prepare::make_dynamic_params(params)))
      out.push_back(read_run(row));
    return out;
  });
}

std::optional<run_record> postgres_store::find_run(const std::string& dag_id, const std::string& run_id) {
  return transact("find a run", access::read, [&](pqxx::transaction_base& tx) -> std::optional<run_record> {
    const pqxx::result r = tx.exec_prepared(
        prepared("SELECT " + std::string(run_columns) + " FROM dag_runs WHERE dag_id = $1 AND run_id = $2"), dag_id,
        run_id);
    if (r.empty()) return std::nullopt;
    return read_run(r[0]);
  });
}

std::vector<task_instance_record> postgres_store::task_instances(const std::string& dag_id, const std::string& run_id) {
  return transact("list task instances", access::read, [&](pqxx::transaction_base& tx) {
    std::vector<task_instance_record> out;
    for (const auto& row : tx.exec_prepared(prepared("SELECT " + std::string(task_instance_columns) +
                                                     " FROM task_instances WHERE dag_id = $1 AND run_id = $2 "
                                                     "ORDER BY task_id"),
                                            dag_id, run_id))
      out.push_back(read_task_instance(row));
    return out;
  });
}

std::vector<task_instance_record> postgres_store::task_instances_in(const std::set<task_state>& states) {
  if (states.empty()) return {};  // no state asked for, none matches
  return transact("list task instances by state", access::read, [&](pqxx::transaction_base& tx) {
    array_literal names;
    for (task_state s : states) names.add(to_string(s));
    std::vector<task_instance_record> out;
    for (const auto& row : tx.exec_prepared(prepared("SELECT " + std::string(task_instance_columns) +
                                                     " FROM task_instances WHERE state = ANY($1::text[]) "
                                                     "ORDER BY dag_id, run_id, task_id"),
                                            names.str()))
      out.push_back(read_task_instance(row));
    return out;
  });
}

std::vector<try_record> postgres_store::tries(const std::string& dag_id, const std::string& run_id,
                                              const std::string& task_id) {
  return transact("list tries", access::read, [&](pqxx::transaction_base& tx) {
    std::vector<try_record> out;
    for (const auto& row : tx.exec_prepared(prepared("SELECT " + std::string(try_columns) +
                                                     " FROM task_tries WHERE dag_id = $1 AND run_id = $2 "
                                                     "AND task_id = $3 ORDER BY try_number"),
                                            dag_id, run_id, task_id))
      out.push_back(read_try(row));
    return out;
  });
}

std::optional<std::string> postgres_store::xcom(const std::string& dag_id, const std::string& run_id,
                                                const std::string& task_id, const std::string& key) {
  return transact("read an XCom", access::read, [&](pqxx::transaction_base& tx) -> std::optional<std::string> {
    const pqxx::result r = tx.exec_prepared(
        prepared("SELECT value FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND key = $4"), dag_id,
        run_id, task_id, key);
    if (r.empty()) return std::nullopt;
    return r[0][0].as<std::string>();
  });
}

void postgres_store::set_variable(const std::string& name, const std::string& value) {
  transact("set a variable", access::write, [&](pqxx::transaction_base& tx) {
    tx.exec_prepared(prepared("INSERT INTO variables (name, value) VALUES ($1, $2) "
                              "ON CONFLICT (name) DO UPDATE SET value = excluded.value"),
                     name, value);
  });
}

std::optional<std::string> postgres_store::variable(const std::string& name) {
  return transact("read a variable", access::read, [&](pqxx::transaction_base& tx) -> std::optional<std::string> {
    const pqxx::result r = tx.exec_prepared(prepared("SELECT value FROM variables WHERE name = $1"), name);
    if (r.empty()) return std::nullopt;
    return r[0][0].as<std::string>();
  });
}

std::map<std::string, std::string> postgres_store::variables() {
  return transact("list variables", access::read, [&](pqxx::transaction_base& tx) {
    std::map<std::string, std::string> out;
    for (const auto& row : tx.exec_prepared(prepared("SELECT name, value FROM variables")))
      out.emplace(row[0].as<std::string>(), row[1].as<std::string>());
    return out;
  });
}

bool postgres_store::delete_variable(const std::string& name) {
  return transact("delete a variable", access::write, [&](pqxx::transaction_base& tx) {
    return tx.exec_prepared(prepared("DELETE FROM variables WHERE name = $1"), name).affected_rows() == 1;
  });
}

void postgres_store::set_connection(const connection& c) {
  transact("store a connection", access::write, [&](pqxx::transaction_base& tx) {
    tx.exec_prepared(
        prepared("INSERT INTO connections (conn_id, conn_type, host, port, login, password, schema) "
                 "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (conn_id) DO UPDATE SET conn_type = excluded.conn_type, "
                 "host = excluded.host, port = excluded.port, login = excluded.login, password = excluded.password, "
                 "schema = excluded.schema"),
        c.conn_id, c.conn_type, c.host, c.port, c.login, c.password, c.schema);
  });
}

std::optional<connection> postgres_store::find_connection(const std::string& conn_id) {
  return transact("read a connection", access::read, [&](pqxx::transaction_base& tx) -> std::optional<connection> {
    const pqxx::result r = tx.exec_prepared(
        prepared("SELECT " + std::string(connection_columns) + " FROM connections WHERE conn_id = $1"), conn_id);
    if (r.empty()) return std::nullopt;
    return read_connection(r[0]);
  });
}

std::vector<connection> postgres_store::connections() {
  return transact("list connections", access::read, [&](pqxx::transaction_base& tx) {
    std::vector<connection> out;
    for (const auto& row :
         tx.exec_prepared(prepared("SELECT " + std::string(connection_columns) + " FROM connections ORDER BY conn_id")))
      out.push_back(read_connection(row));
    return out;
  });
}

bool postgres_store::delete_connection(const std::string& conn_id) {
  return transact("delete a connection", access::write, [&](pqxx::transaction_base& tx) {
    return tx.exec_prepared(prepared("DELETE FROM connections WHERE conn_id = $1"), conn_id).affected_rows() == 1;
  });
}

std::size_t postgres_store::clean(timestamp cutoff) {
  return transact("clean old runs", access::write, [&](pqxx::transaction_base& tx) {
    // Task instances, tries and XComs go with their run through ON DELETE CASCADE.
    return static_cast<std::size_t>(
        tx.exec_prepared(prepared("DELETE FROM dag_runs WHERE state IN ('success', 'failed') AND end_date < $1"),
                         micros_of(cutoff))
            .affected_rows());
  });
}

}  // namespace

std::unique_ptr<store> open_postgres_store(const std::string& url) {
  return std::make_unique<postgres_store>(parse_url(url));
}

}  // namespace dag
