/// @file The store core (see store_core.hpp): the schema, the records' columns, and every store
/// method over the backend's sessions.

#include "store_core.hpp"

#include "dag/core/json_text.hpp"
#include "dag/core/log_file.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace dag::detail {
namespace {

/// The migrations, in order: entry i brings the schema from version i to i + 1. A shipped
/// migration is never edited; a schema change is a new entry. `{key}`, `{instant}`, `{flag}` and
/// `{row_id}` are the backend's types (`dialect::types`); `{without_rowid}` is SQLite's table
/// option that keeps the rows in their primary key's B-tree, nothing on PostgreSQL.
constexpr std::array<std::string_view, 12> migrations{
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
    // 3: notes on runs and task instances, and the event log (who changed what: the REST API's
    // eventLogs).
    R"sql(
ALTER TABLE dag_runs ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE task_instances ADD COLUMN note TEXT NOT NULL DEFAULT '';
CREATE TABLE event_log (
  id       {row_id},
  happened {instant} NOT NULL,
  event    TEXT NOT NULL,
  owner    TEXT NOT NULL DEFAULT '',
  dag_id   TEXT NOT NULL DEFAULT '',
  run_id   TEXT NOT NULL DEFAULT '',
  task_id  TEXT NOT NULL DEFAULT '',
  extra    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX event_log_by_dag ON event_log (dag_id, happened);
)sql",
    // 4: a connection's `extra` (Airflow's JSON object of further settings).
    R"sql(
ALTER TABLE connections ADD COLUMN extra TEXT NOT NULL DEFAULT '';
)sql",
    // 5: pools (Airflow's: named slot counts shared by every DAG's tries), with the default pool,
    // and the pool and slots each task instance's try takes.
    R"sql(
CREATE TABLE pools (
  name        {key} PRIMARY KEY,
  slots       INTEGER NOT NULL,
  description TEXT NOT NULL DEFAULT ''
);
INSERT INTO pools (name, slots, description) VALUES ('default_pool', 128, 'Default pool');
ALTER TABLE task_instances ADD COLUMN pool {key} NOT NULL DEFAULT 'default_pool';
ALTER TABLE task_instances ADD COLUMN pool_slots INTEGER NOT NULL DEFAULT 1;
CREATE INDEX task_instances_by_pool ON task_instances (pool, state);
)sql",
    // 6: dynamic task mapping: a task instance, its tries and its XComs are keyed by map index too
    // (-1 for tasks that are not mapped). Keys cannot change in place (SQLite), so the three tables
    // are made again under new names, filled, and take the old names once those are dropped.
    R"sql(
CREATE TABLE task_instances_mapped (
  dag_id           {key} NOT NULL,
  run_id           {key} NOT NULL,
  task_id          {key} NOT NULL,
  map_index        INTEGER NOT NULL DEFAULT -1,
  state            TEXT NOT NULL DEFAULT 'none',
  try_number       INTEGER NOT NULL DEFAULT 0,
  start_date       {instant},
  end_date         {instant},
  retry_at         {instant},
  exit_code        INTEGER,
  hostname         TEXT NOT NULL DEFAULT '',
  pid              INTEGER NOT NULL DEFAULT 0,
  log_path         TEXT NOT NULL DEFAULT '',
  message          TEXT NOT NULL DEFAULT '',
  first_start_date {instant},
  cleared_tries    INTEGER NOT NULL DEFAULT 0,
  note             TEXT NOT NULL DEFAULT '',
  pool             {key} NOT NULL DEFAULT 'default_pool',
  pool_slots       INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (dag_id, run_id, task_id, map_index),
  FOREIGN KEY (dag_id, run_id) REFERENCES dag_runs (dag_id, run_id) ON DELETE CASCADE
);
CREATE TABLE task_tries_mapped (
  dag_id     {key} NOT NULL,
  run_id     {key} NOT NULL,
  task_id    {key} NOT NULL,
  map_index  INTEGER NOT NULL DEFAULT -1,
  try_number INTEGER NOT NULL,
  state      TEXT NOT NULL,
  start_date {instant},
  end_date   {instant},
  exit_code  INTEGER,
  hostname   TEXT NOT NULL DEFAULT '',
  pid        INTEGER NOT NULL DEFAULT 0,
  log_path   TEXT NOT NULL DEFAULT '',
  message    TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (dag_id, run_id, task_id, map_index, try_number),
  FOREIGN KEY (dag_id, run_id, task_id, map_index)
    REFERENCES task_instances_mapped (dag_id, run_id, task_id, map_index) ON DELETE CASCADE
);
CREATE TABLE xcom_mapped (
  dag_id    {key} NOT NULL,
  run_id    {key} NOT NULL,
  task_id   {key} NOT NULL,
  map_index INTEGER NOT NULL DEFAULT -1,
  key       {key} NOT NULL,
  value     TEXT NOT NULL,
  PRIMARY KEY (dag_id, run_id, task_id, map_index, key),
  FOREIGN KEY (dag_id, run_id, task_id, map_index)
    REFERENCES task_instances_mapped (dag_id, run_id, task_id, map_index) ON DELETE CASCADE
);
INSERT INTO task_instances_mapped (dag_id, run_id, task_id, state, try_number, start_date, end_date, retry_at,
    exit_code, hostname, pid, log_path, message, first_start_date, cleared_tries, note, pool, pool_slots)
  SELECT dag_id, run_id, task_id, state, try_number, start_date, end_date, retry_at, exit_code, hostname, pid,
    log_path, message, first_start_date, cleared_tries, note, pool, pool_slots FROM task_instances;
INSERT INTO task_tries_mapped (dag_id, run_id, task_id, try_number, state, start_date, end_date, exit_code, hostname,
    pid, log_path, message)
  SELECT dag_id, run_id, task_id, try_number, state, start_date, end_date, exit_code, hostname, pid, log_path,
    message FROM task_tries;
INSERT INTO xcom_mapped (dag_id, run_id, task_id, key, value) SELECT dag_id, run_id, task_id, key, value FROM xcom;
DROP TABLE xcom;
DROP TABLE task_tries;
DROP TABLE task_instances;
ALTER TABLE task_instances_mapped RENAME TO task_instances;
ALTER TABLE task_tries_mapped RENAME TO task_tries;
ALTER TABLE xcom_mapped RENAME TO xcom;
CREATE INDEX task_instances_by_state ON task_instances (state);
CREATE INDEX task_instances_by_pool ON task_instances (pool, state);
)sql",
    // 7: datasets (data-aware scheduling): the datasets, their events, which DAGs consume which
    // dataset, each consumer's queue of datasets updated since its last dataset-triggered run
    // (Airflow's DatasetDagRunQueue), and the events that triggered each such run.
    R"sql(
CREATE TABLE datasets (
  id         {row_id},
  uri        {key} NOT NULL UNIQUE,
  extra      TEXT NOT NULL DEFAULT '{}',
  created_at {instant} NOT NULL,
  updated_at {instant} NOT NULL
);
CREATE TABLE dataset_events (
  id             {row_id},
  uri            {key} NOT NULL,
  extra          TEXT NOT NULL DEFAULT '{}',
  source_dag_id  {key} NOT NULL DEFAULT '',
  source_run_id  {key} NOT NULL DEFAULT '',
  source_task_id {key} NOT NULL DEFAULT '',
  source_try     INTEGER NOT NULL DEFAULT 0,
  happened       {instant} NOT NULL,
  source_map_index INTEGER NOT NULL DEFAULT -1
);
-- A task try updates each of its outlets once, whichever scheduler records its end.
CREATE UNIQUE INDEX dataset_events_once_per_try
  ON dataset_events (uri, source_dag_id, source_run_id, source_task_id, source_map_index, source_try)
  WHERE source_task_id <> '';
CREATE INDEX dataset_events_by_uri ON dataset_events (uri, happened);
CREATE TABLE dataset_consumers (
  dag_id {key} NOT NULL,
  uri    {key} NOT NULL,
  PRIMARY KEY (dag_id, uri)
);
CREATE INDEX dataset_consumers_by_uri ON dataset_consumers (uri);
CREATE TABLE dataset_queue (
  dag_id         {key} NOT NULL,
  uri            {key} NOT NULL,
  queued_at      {instant} NOT NULL,
  first_event_id BIGINT NOT NULL,
  PRIMARY KEY (dag_id, uri)
);
CREATE TABLE dataset_run_events (
  dag_id   {key} NOT NULL,
  run_id   {key} NOT NULL,
  event_id BIGINT NOT NULL,
  PRIMARY KEY (dag_id, run_id, event_id),
  FOREIGN KEY (dag_id, run_id) REFERENCES dag_runs (dag_id, run_id) ON DELETE CASCADE
);
CREATE INDEX dataset_run_events_by_event ON dataset_run_events (event_id);
)sql",
    // 8: when each run and task instance was last written (Airflow's updated_at, which the REST
    // API's updated_at_gte and updated_at_lte filter on): every write of a row stamps it. A row
    // written before has the latest instant it knows of, if any. The queue and the executor of a
    // task instance's latest try. The map index and try of the task instance an event log entry
    // is about.
    R"sql(
ALTER TABLE dag_runs ADD COLUMN updated_at {instant};
ALTER TABLE task_instances ADD COLUMN updated_at {instant};
ALTER TABLE task_instances ADD COLUMN queue {key} NOT NULL DEFAULT '';
ALTER TABLE task_instances ADD COLUMN executor {key} NOT NULL DEFAULT '';
ALTER TABLE event_log ADD COLUMN map_index INTEGER;
ALTER TABLE event_log ADD COLUMN try_number INTEGER;
UPDATE dag_runs SET updated_at = COALESCE(end_date, start_date);
UPDATE task_instances SET updated_at = COALESCE(end_date, start_date);
)sql",
    // 9: the state and pool indexes hold only the instances in flight, the ones their queries
    // ask for (the pools' open slots, the tries recovery checks): a try's start adds an entry to
    // each and its end removes it, where every state change used to rewrite one entry of each.
    R"sql(
DROP INDEX IF EXISTS task_instances_by_state;
DROP INDEX IF EXISTS task_instances_by_pool;
CREATE INDEX task_instances_in_flight ON task_instances (state) WHERE state IN ('queued', 'running');
CREATE INDEX task_instances_by_pool ON task_instances (pool, state) WHERE state IN ('queued', 'running');
)sql",
    // 10: fewer B-trees written per try (SQLite writes a page of each one a commit touches). One
    // index of the instances in flight serves both the queries by state and the pools' counts
    // (state first: a pool's count seeks each of the two states, then the pool): a try's start
    // and end add and remove one entry instead of two. A try's row lives in its primary key's
    // B-tree on SQLite (WITHOUT ROWID), where it had a rowid table and a key index, both written
    // by every try's insert; the table is made again under a new name, filled, and takes the old
    // name, as in migration 6.
    R"sql(
DROP INDEX IF EXISTS task_instances_by_pool;
DROP INDEX IF EXISTS task_instances_in_flight;
CREATE INDEX task_instances_in_flight ON task_instances (state, pool) WHERE state IN ('queued', 'running');
CREATE TABLE task_tries_keyed (
  dag_id     {key} NOT NULL,
  run_id     {key} NOT NULL,
  task_id    {key} NOT NULL,
  map_index  INTEGER NOT NULL DEFAULT -1,
  try_number INTEGER NOT NULL,
  state      TEXT NOT NULL,
  start_date {instant},
  end_date   {instant},
  exit_code  INTEGER,
  hostname   TEXT NOT NULL DEFAULT '',
  pid        INTEGER NOT NULL DEFAULT 0,
  log_path   TEXT NOT NULL DEFAULT '',
  message    TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (dag_id, run_id, task_id, map_index, try_number),
  FOREIGN KEY (dag_id, run_id, task_id, map_index)
    REFERENCES task_instances (dag_id, run_id, task_id, map_index) ON DELETE CASCADE
){without_rowid};
INSERT INTO task_tries_keyed (dag_id, run_id, task_id, map_index, try_number, state, start_date, end_date, exit_code,
    hostname, pid, log_path, message)
  SELECT dag_id, run_id, task_id, map_index, try_number, state, start_date, end_date, exit_code, hostname, pid,
    log_path, message FROM task_tries;
DROP TABLE task_tries;
ALTER TABLE task_tries_keyed RENAME TO task_tries;
)sql",
    // 11: a try's row is written once its task instance has moved off it (Airflow keeps earlier
    // tries in task_instance_history the same way): while an instance shows its try (number,
    // state, times, host, log), the instance is that try's record, and a try's end writes one row
    // instead of two (docs/benchmarks.md, thirteenth round). The store keeps the try an update
    // moves an instance off (a retry, a clear, a mark) as a row in the same transaction
    // (store_core::apply). Rows an earlier version wrote for the try an instance is still on (a
    // rescheduled sensor's pokes) go: the instance shows that try now.
    R"sql(
DELETE FROM task_tries WHERE EXISTS (
  SELECT 1 FROM task_instances i
  WHERE i.dag_id = task_tries.dag_id AND i.run_id = task_tries.run_id AND i.task_id = task_tries.task_id
    AND i.map_index = task_tries.map_index AND i.try_number = task_tries.try_number
    AND (i.state IN ('queued', 'running', 'up_for_reschedule') OR (i.state = 'scheduled' AND i.first_start_date IS NOT NULL)));
)sql",
    // 12: no table changes. From here a try's log file in the engine's layout is kept as its
    // folder (see stored_log_file), which a dagrun before it would take for the log file: the
    // version makes such a dagrun refuse the database (docs/reliability.md, "Upgrading").
    R"sql(
SELECT 1;
)sql",
};

/// The schema version this build creates and understands.
constexpr int latest_schema_version = static_cast<int>(migrations.size());

/// `text` with every `{token}` that `replace` knows (it returns nullopt for the others) replaced.
std::string expand(std::string_view text, const std::function<std::optional<std::string>(std::string_view)>& replace) {
  std::string out;
  std::size_t open = 0, close = 0;
  while ((open = text.find('{')) != std::string_view::npos && (close = text.find('}', open)) != std::string_view::npos) {
    const auto replacement = replace(text.substr(open + 1, close - open - 1));
    out.append(text.substr(0, open)).append(replacement ? *replacement : text.substr(open, close - open + 1));
    text.remove_prefix(close + 1);
  }
  return out.append(text);
}

/// The key of a new run's task instance (`new_task_instances`' columns): not mapped, or a mapped
/// task not expanded yet (map index -1).
void new_task_instance_row(const run_record& run, const std::string& task_id, std::vector<value>& out) {
  out.assign({run.dag_id, run.run_id, task_id, std::int64_t{-1}});
}

// --- conversions at the boundary --------------------------------------------------------------

std::int64_t micros_of(timestamp t) { return static_cast<std::int64_t>(t.time_since_epoch().count()); }
/// The wall clock, to the microsecond: what the store stamps rows with.
timestamp wall_now() { return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()); }
std::int64_t micros_of(time_point t) { return micros_of(std::chrono::time_point_cast<std::chrono::microseconds>(t)); }
timestamp timestamp_at(std::int64_t micros) { return timestamp{std::chrono::microseconds{micros}}; }

/// A record's log file as stored. A file in Airflow's layout of the record's own try (the one a
/// try's start gives it, dag/core/log_file.hpp) is kept as its folder with the '/' after it, and
/// any other path as it is: no file's path ends with '/' (one that does is refused), and the
/// engine never wrote one, so rows written before read as they were. The part left out is most
/// of what a try's start adds to its instance's row; SQLite packs a new run's rows into full
/// pages, and a row that outgrows its page's free room has it rebalanced with its neighbours,
/// writing a page of each and their parent (docs/benchmarks.md, twenty-second round).
/// R: task_instance_record or try_record, const to be written.
template <class R>
struct stored_log_file {
  R& record;
};
template <class R>
stored_log_file<R> log_file_column(R& record) {
  return {record};
}
template <class T>
constexpr bool is_stored_log_file = false;
template <class R>
constexpr bool is_stored_log_file<stored_log_file<R>> = true;

template <class T>
value value_of(const T& member) {
  if constexpr (is_stored_log_file<T>) {
    const auto& r = member.record;
    const std::string_view path = r.log_path;
    const std::size_t folder = log_folder_length(path, r.dag_id, r.run_id, r.task_id, r.map_index, r.try_number);
    if (folder != std::string_view::npos) return path.substr(0, folder);
    if (path.ends_with('/'))
      throw usage_error(r.dag_id + "/" + r.run_id + "/" + r.task_id + ", try " + std::to_string(r.try_number) +
                        ": log_path '" + r.log_path + "' ends with '/': a log file's path cannot");
    return path;
  } else if constexpr (std::is_enum_v<T>) return to_string(member);  // names of static storage
  else if constexpr (std::same_as<T, std::string>) return std::string_view(member);
  else if constexpr (std::same_as<T, int>) return std::int64_t{member};
  else if constexpr (std::same_as<T, std::int64_t>) return member;
  else if constexpr (std::same_as<T, time_point> || std::same_as<T, timestamp>) return micros_of(member);
  else return member ? value_of(*member) : value{};  // the optionals
}

/// Reads an enum stored by name; a name this build does not know means the database was written by
/// something else, which is an error rather than a silent default.
template <class Enum>
void read_name(const std::string& text, Enum& out, std::optional<Enum> (*parse)(std::string_view), const char* what) {
  const auto parsed = parse(text);
  if (!parsed) throw error("the database holds an unknown " + std::string(what) + " '" + text + "'");
  out = *parsed;
}

std::int64_t integer_of(const value& v) {
  if (const auto* number = std::get_if<std::int64_t>(&v)) return *number;
  const auto text = std::get<std::string_view>(v);
  std::int64_t number = 0;
  std::from_chars(text.data(), text.data() + text.size(), number);
  return number;
}

std::string text_of(const value& v) {
  if (const auto* number = std::get_if<std::int64_t>(&v)) return std::to_string(*number);
  return std::string(std::get<std::string_view>(v));
}

template <class T>
void read_value(const value& v, T& out) {
  if constexpr (is_stored_log_file<T>) {  // read after the key and try number, which come first
    auto& r = out.record;
    std::string stored = text_of(v);
    r.log_path = stored.ends_with('/') ? log_file_of(stored, r.dag_id, r.run_id, r.task_id, r.map_index, r.try_number)
                                       : std::move(stored);
  } else if constexpr (std::same_as<T, std::string>) out = text_of(v);
  else if constexpr (std::same_as<T, int>) out = static_cast<int>(integer_of(v));
  else if constexpr (std::same_as<T, std::int64_t>) out = integer_of(v);
  else if constexpr (std::same_as<T, timestamp>) out = timestamp_at(integer_of(v));
  else if constexpr (std::same_as<T, time_point>) out = std::chrono::floor<std::chrono::seconds>(timestamp_at(integer_of(v)));
  else if constexpr (std::same_as<T, run_type>) read_name(text_of(v), out, parse_run_type, "run type");
  else if constexpr (std::same_as<T, run_state>) read_name(text_of(v), out, parse_run_state, "run state");
  else if constexpr (std::same_as<T, task_state>) read_name(text_of(v), out, parse_task_state, "task state");
  else if (std::holds_alternative<std::monostate>(v)) out.reset();  // the optionals
  else read_value(v, out.emplace());
}

template <class T>
constexpr column_type type_of() {
  if constexpr (std::same_as<T, int> || std::same_as<T, std::optional<int>> || std::same_as<T, std::int64_t>)
    return column_type::integer;
  else if constexpr (std::same_as<T, time_point> || std::same_as<T, timestamp> || std::same_as<T, std::optional<timestamp>>)
    return column_type::instant;
  else return column_type::text;  // text, and enums by name
}

// --- the records' columns, each record's once: the names in table order (keys first), and the
// members in the same order.

template <class R>
struct table;

template <>
struct table<run_record> {
  static constexpr std::string_view names =
      "dag_id, run_id, run_type, state, logical_date, data_interval_start, data_interval_end, start_date, end_date, conf, "
      "note";
  static void members(auto& r, auto&& f) {
    f(r.dag_id, r.run_id, r.type, r.state, r.logical_date, r.interval.start, r.interval.end, r.start_date, r.end_date,
      r.conf, r.note);
  }
};

template <>
struct table<task_instance_record> {
  static constexpr std::string_view names =
      "dag_id, run_id, task_id, map_index, state, try_number, start_date, end_date, retry_at, exit_code, hostname, pid, "
      "log_path, message, first_start_date, cleared_tries, note, pool, pool_slots, queue, executor";
  static void members(auto& r, auto&& f) {
    f(r.dag_id, r.run_id, r.task_id, r.map_index, r.state, r.try_number, r.start_date, r.end_date, r.retry_at, r.exit_code,
      r.hostname, r.pid, log_file_column(r), r.message, r.first_start_date, r.cleared_tries, r.note, r.pool, r.pool_slots,
      r.queue, r.executor);
  }
};

template <>
struct table<event_record> {
  static constexpr std::string_view names = "id, happened, event, owner, dag_id, run_id, task_id, extra, map_index, try_number";
  static void members(auto& e, auto&& f) {
    f(e.id, e.when, e.event, e.owner, e.dag_id, e.run_id, e.task_id, e.extra, e.map_index, e.try_number);
  }
};

template <>
struct table<dataset_record> {
  static constexpr std::string_view names = "id, uri, extra, created_at, updated_at";
  static void members(auto& d, auto&& f) { f(d.id, d.uri, d.extra, d.created_at, d.updated_at); }
};

template <>
struct table<dataset_event_record> {
  static constexpr std::string_view names =
      "id, uri, extra, source_dag_id, source_run_id, source_task_id, source_try, happened, source_map_index";
  static void members(auto& e, auto&& f) {
    f(e.id, e.uri, e.extra, e.source_dag_id, e.source_run_id, e.source_task_id, e.source_try, e.when, e.source_map_index);
  }
};

template <>
struct table<try_record> {
  static constexpr std::string_view names =
      "dag_id, run_id, task_id, map_index, try_number, state, start_date, end_date, exit_code, hostname, pid, log_path, "
      "message";
  static void members(auto& r, auto&& f) {
    f(r.dag_id, r.run_id, r.task_id, r.map_index, r.try_number, r.state, r.start_date, r.end_date, r.exit_code, r.hostname, r.pid,
      log_file_column(r), r.message);
  }
};

template <>
struct table<xcom_record> {
  static constexpr std::string_view names = "dag_id, run_id, task_id, map_index, key, value";
  static void members(auto& r, auto&& f) { f(r.dag_id, r.run_id, r.task_id, r.map_index, r.key, r.value); }
};

template <>
struct table<connection> {
  static constexpr std::string_view names = "conn_id, conn_type, host, port, login, password, schema, extra";
  static void members(auto& c, auto&& f) { f(c.conn_id, c.conn_type, c.host, c.port, c.login, c.password, c.schema, c.extra); }
};

// A pool as written (its occupancy is counted when read).
template <>
struct table<pool_record> {
  static constexpr std::string_view names = "name, slots, description";
  static void members(auto& p, auto&& f) { f(p.name, p.slots, p.description); }
};

template <>
struct table<import_error_record> {
  static constexpr std::string_view names = "file, message";
  static void members(auto& e, auto&& f) { f(e.file, e.message); }
};

// A change gives its row's key, its new values and what it expects to find.
template <>
struct table<run_update> {
  static constexpr std::string_view names = "dag_id, run_id, state, start_date, end_date, expected";
  static void members(auto& u, auto&& f) { f(u.dag_id, u.run_id, u.state, u.start_date, u.end_date, u.expected); }
};

// Every field of the record but the note, which only set_note writes: a scheduler writing back
// its copy of a record must not undo a note set meanwhile.
template <>
struct table<task_instance_update> {
  static constexpr std::string_view names =
      "dag_id, run_id, task_id, map_index, state, try_number, start_date, end_date, retry_at, exit_code, hostname, pid, "
      "log_path, message, first_start_date, cleared_tries, pool, pool_slots, queue, executor, expected, expected_try, "
      "expected_start";
  static void members(auto& u, auto&& f) {
    auto& r = u.record;
    f(r.dag_id, r.run_id, r.task_id, r.map_index, r.state, r.try_number, r.start_date, r.end_date, r.retry_at, r.exit_code,
      r.hostname, r.pid, log_file_column(r), r.message, r.first_start_date, r.cleared_tries, r.pool, r.pool_slots, r.queue,
      r.executor, u.expected, u.expected_try, u.expected_start);
  }
};

/// R's columns, in order.
template <class R>
const std::vector<column>& columns_of() {
  static const std::vector<column> columns = [] {
    std::vector<column> out;
    std::string_view names = table<R>::names;
    const auto add = [&](column_type type) {
      const std::size_t comma = names.find(',');
      out.push_back({std::string(names.substr(0, comma)), type});
      names.remove_prefix(comma == std::string_view::npos ? names.size() : comma + 2);
    };
    const R r{};
    table<R>::members(r, [&](const auto&... member) { (add(type_of<std::remove_cvref_t<decltype(member)>>()), ...); });
    if (!names.empty() || out.back().name.empty()) throw std::logic_error("a record's column names and members differ");
    return out;
  }();
  return columns;
}

/// `SELECT <R's columns> FROM table`.
template <class R>
std::string select_from(std::string_view name) {
  return "SELECT " + std::string(table<R>::names) + " FROM " + std::string(name);
}

/// `SELECT <R's columns, each as alias.column>`, for a join.
template <class R>
std::string select_in(std::string_view alias) {
  std::string out = "SELECT ";
  for (const auto& c : columns_of<R>()) out += (out.size() > 7 ? ", " : "") + std::string(alias) + "." + c.name;
  return out;
}

/// The largest count both databases read (as a LIMIT or OFFSET), for a size_t.
std::int64_t sql_count(std::size_t n) {
  constexpr auto most = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(n, most));
}

/// A listing's sort fields (listing_order::field): each one's SQL expression.
using sort_fields = std::map<std::string, std::string, std::less<>>;

/// A listing's SELECT with the conditions of its filter, each added only when given, and their
/// numbered parameters (which view the filter's strings: the filter must outlive them), then its
/// order and page: what every listing of both backends is built with. One statement per
/// combination of filters, each prepared once: a single statement with `$1 IS NULL OR …` would
/// get one generic plan that fits no combination well.
struct filtered_select {
  std::string sql;
  std::vector<value> params;

  explicit filtered_select(const std::string& select) : sql(select + " WHERE 1 = 1") {}
  /// `$N`, N naming a new parameter holding `v`.
  std::string param(value v) {
    params.push_back(v);
    return "$" + std::to_string(params.size());
  }
  /// ` AND column = wanted` when `wanted` is given.
  void equal(const char* column, const std::optional<std::string>& wanted) {
    if (wanted) equal(column, *wanted);
  }
  /// ` AND column = wanted` (an overload of its own: an optional made of `wanted` would not
  /// outlive the statement its parameter views).
  void equal(const char* column, const std::string& wanted) {
    sql += std::string(" AND ") + column + " = " + param(std::string_view(wanted));
  }
  /// ` AND column >= from` and ` AND column <= to`, each when given.
  template <class Time>
  void within(const char* column, const std::optional<Time>& from, const std::optional<Time>& to) {
    if (from) sql += std::string(" AND ") + column + " >= " + param(micros_of(*from));
    if (to) sql += std::string(" AND ") + column + " <= " + param(micros_of(*to));
  }
  /// ` AND column IN (…)` (with `negated`, NOT IN) of `as(w)` for each w of `wanted`, when any.
  /// The list is padded to a power of two with its last value again (which changes nothing it
  /// selects): each length is a statement text of its own in the caches of prepared statements,
  /// and lists of 1 to 1,000 values (api.hpp's max_list_items) make 11 lengths, not 1,000.
  template <class Range, class As>
  void in(const char* column, const Range& wanted, As as, bool negated = false) {
    if (wanted.empty()) return;
    sql += std::string(" AND ") + column + (negated ? " NOT IN (" : " IN (");
    std::size_t count = 0;
    for (const auto& w : wanted) sql += (count++ == 0 ? "" : ", ") + param(as(w));
    const value last = params.back();
    for (; (count & (count - 1)) != 0; ++count) sql += ", " + param(last);
    sql += ")";
  }
  /// ` AND column IN (…)` of strings.
  void in(const char* column, const std::set<std::string>& wanted, bool negated = false) {
    in(column, wanted, [](const std::string& w) { return value(std::string_view(w)); }, negated);
  }
  /// ` ORDER BY` the sort field `order` names, then the listing's `own` order (which also breaks
  /// ties). NULL sorts before every value on both databases (PostgreSQL's default is the reverse).
  void order_by(const listing_order& order, const sort_fields& fields, std::string_view own) {
    sql += " ORDER BY ";
    if (!order.field.empty()) {
      const auto it = fields.find(order.field);
      if (it == fields.end()) {
        std::string known;
        for (const auto& [name, expression] : fields) known += (known.empty() ? "" : ", ") + name;
        throw usage_error("cannot order by '" + order.field + "' (known: " + known + ")");
      }
      sql += it->second + (order.descending ? " DESC NULLS LAST, " : " ASC NULLS FIRST, ");
    }
    sql += own;
  }
  /// ` LIMIT … OFFSET …`: at most `limit` rows (0: all), skipping `offset` first.
  void page(std::size_t limit, std::size_t offset) {
    if (limit > 0) sql += " LIMIT " + param(sql_count(limit));
    if (offset > 0) {
      // SQLite takes an OFFSET only after a LIMIT, and neither database takes the other's "no
      // limit" (-1, ALL): the largest count is one both read.
      if (limit == 0) sql += " LIMIT " + param(sql_count(std::numeric_limits<std::size_t>::max()));
      sql += " OFFSET " + param(sql_count(offset));
    }
  }
};

/// An R (a record, or the text of one or two columns) from a row holding its columns in order.
template <class R>
R read(std::span<const value> row) {
  if constexpr (std::same_as<R, std::string>) {
    return text_of(row[0]);
  } else if constexpr (std::same_as<R, std::pair<std::string, std::string>>) {
    return R{text_of(row[0]), text_of(row[1])};
  } else {
    R out{};
    table<R>::members(out, [&](auto&&... member) {
      std::size_t i = 0;
      (read_value(row[i++], member), ...);
    });
    return out;
  }
}

/// Appends the values of r's first `count` columns.
template <class R>
void append(std::vector<value>& out, const R& r, std::size_t count = std::numeric_limits<std::size_t>::max()) {
  const auto add = [&](const auto& member) {
    if (count > 0) out.push_back(value_of(member));
    if (count > 0) --count;
  };
  table<R>::members(r, [&](const auto&... member) { (add(member), ...); });
}

/// The first of `rows`, if any.
template <class R>
std::optional<R> first_of(std::vector<R> rows) {
  return rows.empty() ? std::nullopt : std::optional<R>(std::move(rows.front()));
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

/// An insert that, when the row exists (by whichever constraint), keeps it or replaces its columns.
row_write inserting(std::string table, std::vector<column> given, std::size_t key_size, bool replace) {
  row_write w{row_write::verb::insert, std::move(table), std::move(given), key_size, "ON CONFLICT DO NOTHING", {}, {}};
  if (!replace) return w;
  // An upsert rather than SQLite's INSERT OR REPLACE, which deletes and re-inserts the row (slower,
  // and it would fire ON DELETE actions).
  w.clause = "ON CONFLICT (" + w.names(key_size) + ") DO UPDATE SET ";
  for (std::size_t i = key_size; i < w.given.size(); ++i)
    w.clause += (i > key_size ? ", " : "") + w.given[i].name + " = excluded." + w.given[i].name;
  return w;
}

/// An update (`assignments` given) or a delete of the row whose key matches, where `expected` holds.
row_write matching(std::string table, std::vector<column> given, std::size_t key_size, std::string assignments,
                   std::string expected) {
  const auto what = assignments.empty() ? row_write::verb::remove : row_write::verb::update;
  row_write w{what, std::move(table), std::move(given), key_size, std::move(assignments), std::move(expected), {}};
  for (std::size_t i = key_size; i-- > 0;)
    w.condition = "r." + w.given[i].name + " = {" + w.given[i].name + "}" + (w.condition.empty() ? "" : " AND ") + w.condition;
  return w;
}

/// `w` (a remove of rows by key, none of them a secret), marked deferrable.
row_write deferred(row_write w) {
  w.deferrable = true;
  return w;
}

/// A copy into `table` (`from`: its columns and the SELECT that fills them, see row_write::from) of
/// the rows whose key matches, where `condition` holds; a row already there is kept.
row_write copying(std::string table, std::string from, std::vector<column> given, std::size_t key_size,
                  std::string condition) {
  row_write w = matching(std::move(table), std::move(given), key_size, {}, std::move(condition));
  w.what = row_write::verb::copy;
  w.from = std::move(from);
  w.clause = "ON CONFLICT DO NOTHING";
  return w;
}

/// The column every write of a run or a task instance sets to the time it is made (Airflow's
/// updated_at), placed right after the row's key: an insert of a key alone (a task instance
/// created for an update that lost) then takes it from the update's row at the same place.
std::vector<column> stamped(std::vector<column> given, std::size_t key_size) {
  given.insert(given.begin() + static_cast<std::ptrdiff_t>(key_size), column{"updated_at", column_type::instant});
  return given;
}

/// `rows` with the time `now` (microseconds) at the stamp's place (see stamped).
row_source stamped_rows(row_source rows, std::size_t key_size, std::int64_t now) {
  return [rows = std::move(rows), key_size, now](std::size_t i, std::vector<value>& out) {
    rows(i, out);
    out.insert(out.begin() + static_cast<std::ptrdiff_t>(key_size), now);
  };
}

/// on_its_try in SQL, over a task_instances row `r` (its try number aside).
constexpr std::string_view shows_its_try_sql =
    "(r.state IN ('queued', 'running', 'success', 'failed', 'up_for_retry', 'up_for_reschedule', 'skipped') OR "
    "(r.state = 'scheduled' AND r.first_start_date IS NOT NULL))";

/// The slots of pool `pool` (an SQL expression) its instances in flight take. One sum per state,
/// each an equality on the in-flight index: with `state IN (…)` as the index's key SQLite builds a
/// temporary table of the list's values at every run (a pager of its own opened and closed: a
/// sixth of a chain step's instructions). The IN term stays, for the planner to see that the
/// partial index applies.
std::string slots_in_use(std::string_view pool) {
  const std::string of_pool = " AND pool = " + std::string(pool) + ")";
  return "(SELECT COALESCE(SUM(pool_slots), 0) FROM task_instances WHERE state IN ('queued', 'running') AND "
         "state = 'queued'" + of_pool + " + (SELECT COALESCE(SUM(pool_slots), 0) FROM task_instances WHERE state IN "
         "('queued', 'running') AND state = 'running'" + of_pool;
}

/// The try a task_instances row `r` shows, as task_tries' columns (table<try_record>::names): a
/// rescheduled sensor's try waiting for a slot (`scheduled`, with its first start) is
/// `up_for_reschedule`, and a rescheduled try starts with its first poke.
constexpr std::string_view shown_try_columns =
    "r.dag_id, r.run_id, r.task_id, r.map_index, r.try_number, "
    "CASE WHEN r.state = 'scheduled' AND r.first_start_date IS NOT NULL THEN 'up_for_reschedule' ELSE r.state END, "
    "COALESCE(r.first_start_date, r.start_date), r.end_date, r.exit_code, r.hostname, r.pid, r.log_path, r.message";

/// Every write the store makes, built once. Writes of runs and task instances are stamped (their
/// updated_at): their rows come through stamped_rows.
struct writes {
  writes() {
    const auto ti = stamped(columns_of<task_instance_update>(), 4);
    std::string every_field;  // a task instance update writes every field it gives (all but the three `expected…`)
    for (std::size_t i = 4; i + 3 < ti.size(); ++i) every_field += (i > 4 ? ", " : "") + ti[i].name + " = {" + ti[i].name + "}";
    const std::string as_expected = "r.state = {expected} AND r.try_number = {expected_try} AND "
                                    "({expected_start} IS NULL OR r.start_date = {expected_start})";
    task_instance_updates = matching("task_instances", ti, 4, every_field, as_expected);
    // An update of the state alone (task_instance_update::state_only): the key, the stamp, the
    // state and the three `expected…`, as write_updates gives them.
    std::vector<column> state_only = first(ti, 5);
    state_only.push_back(*std::find_if(ti.begin(), ti.end(), [](const column& c) { return c.name == "state"; }));
    state_only.insert(state_only.end(), ti.end() - 3, ti.end());
    task_instance_state_updates =
        matching("task_instances", std::move(state_only), 4, "updated_at = {updated_at}, state = {state}", as_expected);
    // A change set's only claim: the update where its pool has the slots, counted by the statement
    // itself, after the updates before it that ended tries. On PostgreSQL the pool's row lock is
    // taken by an earlier statement (apply_once), so that this one's view of the table (taken when
    // it starts, under READ COMMITTED) holds every claim committed before the lock was ours; on
    // SQLite writers are serialized. A pool missing has no size, and so admits nothing.
    // (A claim refused whose instance has no row yet creates it, in state none, as a claim that
    // loses its compare-and-set does: see on_lost in apply_once.)
    task_instance_claim = task_instance_updates;
    task_instance_claim.condition += " AND {pool_slots} <= (SELECT p.slots FROM pools AS p WHERE p.name = {pool}) - (" +
                                     slots_in_use("{pool}") + ")";
    // The try an update's instance shows, kept as a row of task_tries (unless it has one) where
    // the row is as the update expects it and on a try: written before the update.
    std::vector<column> expects = first(ti, 4);
    expects.insert(expects.end(), ti.end() - 3, ti.end());
    shown_try_keeps = copying("task_tries",
                              "(" + std::string(table<try_record>::names) + ") SELECT " + std::string(shown_try_columns) +
                                  " FROM task_instances AS r",
                              expects, 4, as_expected + " AND " + std::string(shows_its_try_sql));
    // A run is inserted on its own, to learn whether it was created: DO NOTHING also covers the
    // partial index on scheduled/backfill dates, so a duplicate by run id or by date is "not created".
    // Its values are the record's, then the stamp.
    insert_run = "INSERT INTO dag_runs (" + std::string(table<run_record>::names) + ", updated_at) VALUES ($1";
    for (std::size_t i = 2; i <= columns_of<run_record>().size() + 1; ++i) insert_run += ", $" + std::to_string(i);
    insert_run += ") ON CONFLICT DO NOTHING";
  }
  row_write new_task_instances =
      inserting("task_instances", stamped(first(columns_of<task_instance_record>(), 4), 4), 4, false);
  // A new run's task instance as its first update in the same change set leaves it (see
  // writes_a_new_row): the update's columns but the three `expected…`.
  row_write new_task_instances_as_updated = inserting(
      "task_instances", first(stamped(columns_of<task_instance_update>(), 4), columns_of<task_instance_update>().size() - 2), 4,
      false);
  row_write task_instance_deletes = matching("task_instances", first(columns_of<task_instance_record>(), 4), 4, {}, {});
  // A run goes back to queued or running when cleared: it has not ended then, whatever the update
  // says; a start date, once set, is kept unless a new one is given.
  row_write run_updates = matching("dag_runs", stamped(columns_of<run_update>(), 2), 2,
                                   "state = {state}, updated_at = {updated_at}, start_date = COALESCE({start_date}, r.start_date), "
                                   "end_date = CASE WHEN {state} IN ('queued', 'running') THEN NULL "
                                   "ELSE COALESCE({end_date}, r.end_date) END",
                                   "r.state = {expected}");
  row_write task_instance_updates;
  row_write task_instance_state_updates;
  row_write task_instance_claim;
  row_write shown_try_keeps;
  row_write xcom_deletes = deferred(matching("xcom", first(columns_of<xcom_record>(), 4), 4, {}, {}));
  row_write try_upserts = inserting("task_tries", columns_of<try_record>(), 5, true);
  // Where the try's row is one kept while the try was still queued or running (its instance was
  // cleared or marked meanwhile: see shown_try_keeps), the end replaces it: it says more.
  row_write try_inserts = [] {
    row_write w = inserting("task_tries", columns_of<try_record>(), 5, true);
    w.clause += " WHERE task_tries.state IN ('queued', 'running')";
    return w;
  }();
  // (Of the try an instance shows at the end of a change set: almost never there, sent with the COMMIT.)
  row_write try_deletes = deferred(matching("task_tries", first(columns_of<try_record>(), 5), 5, {}, {}));
  row_write try_keeps = inserting("task_tries", columns_of<try_record>(), 5, false);
  row_write xcom_upserts = inserting("xcom", columns_of<xcom_record>(), 5, true);
  row_write import_errors = inserting("import_errors", columns_of<import_error_record>(), 0, false);
  row_write variables =
      inserting("variables", {{"name", column_type::text}, {"value", column_type::text}}, 1, true);
  row_write connections = inserting("connections", columns_of<connection>(), 1, true);
  row_write pools = inserting("pools", columns_of<pool_record>(), 1, true);
  // Event log entries: every column but the id, which the database draws.
  row_write events = inserting("event_log", {columns_of<event_record>().begin() + 1, columns_of<event_record>().end()}, 0, false);
  row_write paused =
      inserting("dags", {{"dag_id", column_type::text}, {"is_paused", column_type::flag}}, 1, true);
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

std::string row_write::names(std::size_t count) const {
  std::string out;
  for (std::size_t i = 0; i < std::min(count, given.size()); ++i) out += (i > 0 ? ", " : "") + given[i].name;
  return out;
}

std::string row_write::refs(const std::function<std::string(std::size_t)>& ref) const {
  std::string out;
  for (std::size_t i = 0; i < given.size(); ++i) out += (i > 0 ? ", " : "") + ref(i);
  return out;
}

store_core::store_core(dialect sql, std::string label) : sql_(std::move(sql)), label_(std::move(label)) {}

error database_error(const std::string& label, const std::string& message) {
  error_context where;
  where.file = label;
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

template <class R>
std::vector<R> store_core::list(const char* what, const std::string& sql, std::span<const value> params) {
  return transact(what, access::read, [&](session& s) {
    std::vector<R> out;
    s.exec(sql, params, [&](std::span<const value> row) { out.push_back(read<R>(row)); });
    return out;
  });
}

void store_core::write_row(const char* what, const row_write& w, const std::vector<value>& values) {
  transact(what, access::write,
           [&](session& s) { s.write(w, 1, [&](std::size_t, std::vector<value>& out) { out = values; }); });
}

std::size_t store_core::execute(const char* what, std::string_view sql, std::span<const value> params) {
  return transact(what, access::write, [&](session& s) { return s.exec(sql, params); });
}

int store_core::recorded_version(session& s) {
  int version = 0;
  const auto read_version = [&](std::span<const value> row) { version = static_cast<int>(integer_of(row[0])); };
  s.exec(sql_.has_schema_version, {}, read_version);
  if (version == 0) return 0;
  s.exec("SELECT COALESCE(MAX(version), 0) FROM schema_version", {}, read_version);
  return version;
}

void store_core::migrate() {
  const auto check = [&](int version) {
    if (version > latest_schema_version)
      throw database_error(label_, "database schema version " + std::to_string(version) + " is newer than this dagrun (" +
                           std::to_string(latest_schema_version) + ")");
  };
  // Read first so that opening an up-to-date database (every CLI command) takes no lock.
  const int seen = transact("migrate the schema", access::read, [&](session& s) { return recorded_version(s); });
  check(seen);
  if (seen == latest_schema_version) return;

  const auto types = [&](std::string_view token) -> std::optional<std::string> {
    const auto it = sql_.types.find(token);
    return it == sql_.types.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  transact("migrate the schema", access::write, [&](session& s) {
    // Several processes may start at once: the first to get the lock migrates, the others then
    // find the work done (the version is read again under the lock).
    if (!sql_.migration_lock.empty()) s.exec(sql_.migration_lock);
    s.script(expand("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at {instant} NOT NULL)",
                    types));
    const int current = recorded_version(s);
    check(current);
    const std::int64_t now = micros_of(wall_now());
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
  write_row("set a DAG's paused flag", all_writes().paused, {dag_id, std::int64_t{paused ? 1 : 0}});
}

std::set<std::string> store_core::paused_dags() {
  const auto ids = list<std::string>("list paused DAGs", "SELECT dag_id FROM dags WHERE is_paused");
  return {ids.begin(), ids.end()};
}

void store_core::set_import_errors(const std::vector<import_error_record>& errors) {
  transact("replace import errors", access::write, [&](session& s) {
    s.exec("DELETE FROM import_errors");
    s.write(all_writes().import_errors, errors.size(), rows_of(errors));  // in order: listing sorts by id
  });
}

std::vector<import_error_record> store_core::import_errors() {
  return list<import_error_record>("list import errors", select_from<import_error_record>("import_errors") + " ORDER BY id");
}

namespace {

/// Writes dataset event `e` (its time drawn now when unset) and queues its dataset for the
/// dataset's consumers; returns it with its id. Nullopt, writing nothing, when the event repeats
/// one of the same task try, or when `known_only` and the dataset is unknown. A task's outlet
/// that is not a dataset yet (a DAG the store never registered) becomes one.
std::optional<dataset_event_record> write_dataset_event(session& s, dataset_event_record e, bool known_only) {
  if (e.when == timestamp{})
    e.when = wall_now();
  const value uri[] = {e.uri};
  if (known_only) {
    bool known = false;
    s.exec("SELECT 1 FROM datasets WHERE uri = $1", uri, [&](std::span<const value>) { known = true; });
    if (!known) return std::nullopt;
  }
  std::vector<value> row;
  append(row, e);
  row.erase(row.begin());  // the id, which the database draws
  bool written = false;
  s.exec("INSERT INTO dataset_events (uri, extra, source_dag_id, source_run_id, source_task_id, source_try, happened, "
         "source_map_index) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING id",
         row, [&](std::span<const value> r) {
           e.id = integer_of(r[0]);
           written = true;
         });
  if (!written) return std::nullopt;
  const value when[] = {e.uri, micros_of(e.when)};
  s.exec("INSERT INTO datasets (uri, created_at, updated_at) VALUES ($1, $2, $2) "
         "ON CONFLICT (uri) DO UPDATE SET updated_at = excluded.updated_at",
         when);
  // A consumer's queue entry keeps the first event since its last run: the run takes every event
  // from that one on.
  const value queued[] = {e.uri, micros_of(e.when), e.id};
  s.exec("INSERT INTO dataset_queue (dag_id, uri, queued_at, first_event_id) "
         "SELECT dag_id, uri, CAST($2 AS BIGINT), CAST($3 AS BIGINT) FROM dataset_consumers WHERE uri = $1 "
         "ON CONFLICT DO NOTHING",
         queued);
  return e;
}

/// Thrown out of create_dataset_run's transaction, which rolls it back, when another writer took
/// the queue entries or the run id first. Not a std::exception, as change_set_lost.
struct dataset_run_lost {};

/// Thrown out of an all-or-nothing change set's transaction, which rolls it back, carrying what
/// lost. Not a std::exception: no backend handler may take it for a database error to retry.
struct change_set_lost {
  change_result result;
};

/// Whether an update starts a try (moves a task instance to queued or running from elsewhere),
/// and so takes slots of its pool.
bool starts_try(const task_instance_update& u) { return holds_pool_slot(u.record.state) && !holds_pool_slot(u.expected); }

/// Whether a task instance in `state` shows a try: started, or ended by it.
bool shows_a_try(task_state state) {
  switch (state) {
    case task_state::queued:
    case task_state::running:
    case task_state::success:
    case task_state::failed:
    case task_state::up_for_retry:
    case task_state::up_for_reschedule:
    case task_state::skipped: return true;
    default: return false;
  }
}

/// Whether `ti` is on try `try_number` and shows it: started, ended, or a rescheduled sensor's
/// between pokes (also waiting for a slot: `scheduled`, with its first start).
bool on_its_try(const task_instance_record& ti, int try_number) {
  if (try_number < 1 || ti.try_number != try_number) return false;
  return shows_a_try(ti.state) || (ti.state == task_state::scheduled && ti.first_start_date);
}

/// Whether `u` may move its instance off the try it shows (a retry, a clear, a mark), so that the
/// try must be kept as a row first. Not an update that goes on with the same try: its start, its
/// end, a rescheduled sensor's next poke. (Whether the instance showed a try at all is for its row
/// to say: see writes::shown_try_keeps.)
bool moves_off_its_try(const task_instance_update& u) {
  if (u.expected_try < 1) return false;
  const task_instance_record& next = u.record;
  if (next.try_number != u.expected_try) return true;
  if (next.state == u.expected) return false;
  if (u.expected == task_state::queued || u.expected == task_state::running) return !shows_a_try(next.state);
  const bool next_poke = (u.expected == task_state::up_for_reschedule || u.expected == task_state::scheduled) &&
                         (next.state == task_state::scheduled || next.state == task_state::queued ||
                          next.state == task_state::running) &&
                         next.first_start_date;
  return !next_poke;
}

/// A task instance's key (dag, run, task, map index), as views into a change set's records.
using instance_key = std::tuple<std::string_view, std::string_view, std::string_view, int>;

/// Hashes an instance_key. A change set may update 100,000 instances of one run (its first pass):
/// their keys share long DAG and run ids, which a tree of keys compares at every step.
struct instance_key_hash {
  std::size_t operator()(const instance_key& k) const noexcept {
    const auto mix = [](std::size_t h, std::size_t v) { return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)); };
    std::size_t h = std::hash<std::string_view>{}(std::get<2>(k));
    h = mix(h, std::hash<std::string_view>{}(std::get<1>(k)));
    h = mix(h, std::hash<std::string_view>{}(std::get<0>(k)));
    return mix(h, static_cast<std::size_t>(std::get<3>(k)));
  }
};
using instance_set = std::unordered_set<instance_key, instance_key_hash>;

/// The key of the instance `r` is.
instance_key key_of(const task_instance_record& r) { return {r.dag_id, r.run_id, r.task_id, r.map_index}; }

/// Where each instance of a change set's updates is updated: per update, the update of its instance
/// before it (`none` for its first), and per instance, its first and last updates.
struct update_order {
  static constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  struct of_instance {
    std::size_t first, last;
  };
  std::vector<std::size_t> previous;
  std::unordered_map<instance_key, of_instance, instance_key_hash> instances;

  explicit update_order(const std::vector<task_instance_update>& updates) : previous(updates.size(), none) {
    instances.reserve(updates.size());
    for (std::size_t i = 0; i < updates.size(); ++i) {
      const auto [at, added] = instances.try_emplace(key_of(updates[i].record), of_instance{i, i});
      if (!added) previous[i] = std::exchange(at->second.last, i);
    }
  }
};

/// Whether update `u`, the first of its instance in its change set, is written as the instance's
/// new row when its run is created there: it expects what a new row holds (state none, no try, no
/// start; map index -1, as a new row has) and starts no try (a claim is counted against its pool).
bool writes_a_new_row(const task_instance_update& u) {
  return u.record.map_index == -1 && u.expected == task_state::none && u.expected_try == 0 && !u.expected_start &&
         !starts_try(u);
}

/// What update `u` expects of its row (`expected`, `expected_try`, `expected_start`), appended to `out`.
void append_expectation(std::vector<value>& out, const task_instance_update& u) {
  out.insert(out.end(), {to_string(u.expected), std::int64_t{u.expected_try},
                         u.expected_start ? value{micros_of(*u.expected_start)} : value{}});
}

bool all_won(const change_result& r) {
  const auto won = [](const std::vector<bool>& v) { return std::find(v.begin(), v.end(), false) == v.end(); };
  return won(r.runs_created) && won(r.runs_updated) && won(r.task_instances_updated);
}

}  // namespace

change_result store_core::apply(const change_set& changes) {
  if (changes.empty()) return {};  // the idle scheduler loop takes no lock and costs no round trip
  try {
    return apply_once(changes);
  } catch (change_set_lost& lost) {
    lost.result.applied = false;
    return std::move(lost.result);
  }
}

change_result store_core::apply_once(const change_set& changes) {
  const writes& w = all_writes();
  // The pools tries start in, locked first and in order, so that claiming writers queue up on
  // them without deadlocking: a writer waiting for a pool holds no row yet. Where writers are
  // serialized anyway (no row lock: SQLite), none is read here: a claim counts its pool's slots
  // with its size (task_instance_claim, admitted_claims), a statement less.
  std::set<std::string> claimed_pools;
  if (!sql_.row_lock.empty())
    for (const auto& u : changes.task_instances)
      if (starts_try(u)) claimed_pools.insert(u.record.pool);
  const update_order order(changes.task_instances);
  bool attached = false;  // the attachment is in the attempt that committed
  change_result applied = transact("apply changes", access::write, [&](session& s) {
    attached = false;  // this attempt's, not an earlier one's that rolled back
    if (changes.attachment) s.open_attachment(*changes.attachment);
    std::map<std::string, std::int64_t> pool_slots;  // as the locking read found them
    for (const auto& pool : claimed_pools) {
      const value name[] = {pool};
      s.exec_inline("SELECT slots FROM pools WHERE name = $1" + sql_.row_lock, name,
                    [&](std::span<const value> row) { pool_slots[pool] = integer_of(row[0]); });
    }
    change_result result;  // afresh in every run, so that a run again reports only what it did itself
    const std::int64_t now = micros_of(wall_now());
    std::vector<value> run;
    std::vector<std::pair<const run_record*, const std::string*>> new_task_instances;
    // (dag, run) of the new runs that existed (another writer's): not created here
    std::set<std::pair<std::string_view, std::string_view>> existed;
    for (const auto& [r, task_ids] : changes.new_runs) {
      run.clear();
      append(run, r);
      run.emplace_back(now);
      result.runs_created.push_back(s.exec(w.insert_run, run) == 1);
      if (!result.runs_created.back()) {
        existed.emplace(r.dag_id, r.run_id);
        continue;  // an existing run keeps its task instances as they are
      }
      for (const auto& task_id : task_ids) new_task_instances.emplace_back(&r, &task_id);
    }
    result.task_instances_updated.assign(changes.task_instances.size(), false);
    // A run's first pass, in the change set that creates it (the scheduler's), is written into its
    // new rows: an instance's first update here that expects what a new row holds is the row
    // inserted, not a row inserted and then updated. The same rows, a write less a task.
    std::vector<std::size_t> folded;  // those updates, ascending
    if (!new_task_instances.empty() && !changes.task_instances.empty()) {
      instance_set deleted;  // rows this change set deletes before its updates: inserted as they are
      for (const auto& d : changes.task_instance_deletes) deleted.insert(key_of(d));
      std::erase_if(new_task_instances, [&](const auto& n) {
        const instance_key key{n.first->dag_id, n.first->run_id, *n.second, -1};
        const auto u = order.instances.find(key);
        if (u == order.instances.end() || !writes_a_new_row(changes.task_instances[u->second.first]) ||
            (!deleted.empty() && deleted.contains(key)))
          return false;
        folded.push_back(u->second.first);
        result.task_instances_updated[u->second.first] = true;
        return true;
      });
      std::sort(folded.begin(), folded.end());
    }
    s.write(w.new_task_instances, new_task_instances.size(), stamped_rows([&](std::size_t i, std::vector<value>& out) {
      new_task_instance_row(*new_task_instances[i].first, *new_task_instances[i].second, out);
    }, 4, now));
    s.write(w.new_task_instances_as_updated, folded.size(), stamped_rows([&](std::size_t k, std::vector<value>& out) {
      out.clear();
      append(out, changes.task_instances[folded[k]], w.new_task_instances_as_updated.given.size() - 1);
    }, 4, now));
    s.write(w.task_instance_deletes, changes.task_instance_deletes.size(),
            rows_of(changes.task_instance_deletes, w.task_instance_deletes.key_size));
    {  // an update of a run this change set meant to create is refused, as its instances' are
      std::vector<std::size_t> ours;
      for (std::size_t i = 0; i < changes.runs.size(); ++i)
        if (existed.empty() || !existed.contains({changes.runs[i].dag_id, changes.runs[i].run_id})) ours.push_back(i);
      const std::vector<bool> won = s.write(w.run_updates, ours.size(), stamped_rows([&](std::size_t k, std::vector<value>& out) {
        out.clear();
        append(out, changes.runs[ours[k]]);
      }, 2, now));
      result.runs_updated.assign(changes.runs.size(), false);
      for (std::size_t k = 0; k < ours.size(); ++k) result.runs_updated[ours[k]] = won[k];
    }
    // A task added to the DAG after its run was created has no row yet: an instance in state none
    // with no try is what it would have been, so it is created and the update applied again (which
    // still loses if another writer created the row and moved it on meanwhile).
    // Updates that start a try are written after the others (which may end tries and so free
    // slots), and only those their pool has the slots for: counted under the pools' locks (each
    // pool's row lock on PostgreSQL, the write lock on SQLite).
    // An update of a row a claim before it touched still comes after that claim.
    // An update of the state alone that is its instance's only one here may be written as such
    // (its order against the others does not matter then): in a statement of its own when there
    // are no others, or when there are 32 or more state-alone ones (below).
    std::vector<std::size_t> ordinary, claims, after_claims, states;
    // Keyed by the whole task instance key: the instances of a mapped task are rows of their own.
    instance_set claimed;
    for (std::size_t i = 0, f = 0; i < changes.task_instances.size(); ++i) {
      if (f < folded.size() && folded[f] == i) {
        ++f;
        continue;
      }
      const task_instance_record& r = changes.task_instances[i].record;
      // What was decided for a run this change set meant to create is not another writer's
      // run's: refused, as lost (the run, created anew, would have had other rows).
      if (!existed.empty() && existed.contains({r.dag_id, r.run_id})) continue;
      const instance_key key = key_of(r);
      if (starts_try(changes.task_instances[i])) {
        claims.push_back(i);
        claimed.insert(key);
      } else if (changes.task_instances[i].state_only && order.previous[i] == update_order::none &&
                 order.instances.at(key).last == i) {
        states.push_back(i);
      } else {
        (!claimed.empty() && claimed.contains(key) ? after_claims : ordinary).push_back(i);
      }
    }
    const auto write_updates = [&](const std::vector<std::size_t>& which, const row_write& as) {
      const on_lost added_task{w.new_task_instances, [&](std::size_t k) {
                                 const task_instance_update& u = changes.task_instances[which[k]];
                                 return u.expected == task_state::none && u.expected_try == 0;
                               }};
      const row_source rows = stamped_rows([&](std::size_t k, std::vector<value>& out) {
        const task_instance_update& u = changes.task_instances[which[k]];
        out.clear();
        if (&as != &w.task_instance_state_updates) return append(out, u);
        const task_instance_record& r = u.record;
        out.assign({r.dag_id, r.run_id, r.task_id, std::int64_t{r.map_index}, to_string(r.state)});
        append_expectation(out, u);
      }, 4, now);
      const std::vector<bool> won = s.write(as, which.size(), rows, &added_task);
      for (std::size_t k = 0; k < which.size(); ++k) result.task_instances_updated[which[k]] = won[k];
    };
    // Tries the updates move their instances off are kept as rows (see change_set::tries): where
    // an earlier update of the same instance in this change set made the try, from that update
    // (below, once both are known to have won); else from the row as it is now, before any update.
    std::vector<std::pair<std::size_t, std::size_t>> kept_from_changes;  // (update, earlier update of its instance)
    std::set<std::tuple<std::string_view, std::string_view, std::string_view, int, int>> moved_off;  // (instance, try)
    std::vector<std::size_t> kept_from_rows;  // updates whose instance's row shows the try they move it off
    for (std::size_t i = 0; i < changes.task_instances.size(); ++i) {
      const task_instance_update& u = changes.task_instances[i];
      if (!moves_off_its_try(u)) continue;
      moved_off.emplace(u.record.dag_id, u.record.run_id, u.record.task_id, u.record.map_index, u.expected_try);
      if (order.previous[i] != update_order::none) kept_from_changes.emplace_back(i, order.previous[i]);
      else if (shows_a_try(u.expected) || u.expected == task_state::scheduled) kept_from_rows.push_back(i);
    }
    // One statement a batch (a clear of many instances), before any update is written.
    s.write(w.shown_try_keeps, kept_from_rows.size(), [&](std::size_t k, std::vector<value>& out) {
      const task_instance_update& u = changes.task_instances[kept_from_rows[k]];
      out.assign({u.record.dag_id, u.record.run_id, u.record.task_id, std::int64_t{u.record.map_index}});
      append_expectation(out, u);
    });
    // A statement of its own costs a round trip, which a few rows do not pay back.
    if (!ordinary.empty() && states.size() < 32) {
      ordinary.insert(ordinary.end(), states.begin(), states.end());
      states.clear();
    }
    write_updates(ordinary, w.task_instance_updates);
    write_updates(states, w.task_instance_state_updates);
    // One claim (a chain's next task) counts its pool's slots in its own statement; several are
    // counted first, each pool once, and admitted in order.
    if (claims.size() == 1) write_updates(claims, w.task_instance_claim);
    else if (!claims.empty()) write_updates(admitted_claims(s, changes.task_instances, claims, pool_slots), w.task_instance_updates);
    write_updates(after_claims, w.task_instance_updates);
    if (changes.all_or_nothing && !all_won(result)) throw change_set_lost{result};  // rolls back
    // A try its instance is still on once this change set is written (the last update of the
    // instance won, and leaves it on that try: ended, or a rescheduled sensor's next poke), and
    // that no update here moved it off (an end, then the run's dagrun_timeout skipping the
    // instance, still on that try), gets no row: the instance is its record until an update moves
    // it off the try, which keeps it then. A row of that try written before (a late end of an
    // earlier poke) is deleted: it would hide what the instance shows.
    std::vector<std::size_t> kept, shown;
    for (std::size_t i = 0; i < changes.tries.size(); ++i) {
      const try_record& t = changes.tries[i];
      const auto u = order.instances.find({t.dag_id, t.run_id, t.task_id, t.map_index});
      const bool is_shown = u != order.instances.end() && result.task_instances_updated[u->second.last] &&
                            on_its_try(changes.task_instances[u->second.last].record, t.try_number) &&
                            !moved_off.contains({t.dag_id, t.run_id, t.task_id, t.map_index, t.try_number});
      (is_shown ? shown : kept).push_back(i);
    }
    // A refused end of a poke is no record of its try while the instance is still on that try (a
    // later poke of it runs, or has ended it): the instance shows the try. (Rare: one read each.)
    std::vector<std::size_t> unshown;
    for (std::size_t i = 0; i < changes.tries_if_absent.size(); ++i) {
      const try_record& t = changes.tries_if_absent[i];
      const value key[] = {t.dag_id, t.run_id, t.task_id, std::int64_t{t.map_index}, std::int64_t{t.try_number}};
      bool on_it = false;
      s.exec("SELECT 1 FROM task_instances AS r WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4 AND "
             "try_number = $5 AND " + std::string(shows_its_try_sql),
             key, [&](std::span<const value>) { on_it = true; });
      if (!on_it) unshown.push_back(i);
    }
    const auto rows_at = [](const std::vector<try_record>& tries, const std::vector<std::size_t>& which,
                            std::size_t count) -> row_source {
      return [&tries, &which, count](std::size_t k, std::vector<value>& out) {
        out.clear();
        append(out, tries[which[k]], count);
      };
    };
    constexpr std::size_t every_column = std::numeric_limits<std::size_t>::max();
    std::vector<try_record> left;  // tries kept from an earlier update of the same change set
    for (const auto& [i, before] : kept_from_changes) {
      const task_instance_record& r = changes.task_instances[before].record;
      if (result.task_instances_updated[i] && result.task_instances_updated[before] &&
          on_its_try(r, changes.task_instances[i].expected_try))
        left.push_back(try_record_of(r));
    }
    s.write(w.try_upserts, kept.size(), rows_at(changes.tries, kept, every_column));
    s.write(w.try_keeps, left.size(), rows_of(left));
    s.write(w.try_inserts, unshown.size(), rows_at(changes.tries_if_absent, unshown, every_column));
    s.write(w.try_deletes, shown.size(), rows_at(changes.tries, shown, w.try_deletes.key_size));
    s.write(w.xcom_deletes, changes.xcom_deletes.size(), rows_of(changes.xcom_deletes, w.xcom_deletes.key_size));
    s.write(w.xcom_upserts, changes.xcoms.size(), rows_of(changes.xcoms));
    s.write(w.events, changes.events.size(), [&](std::size_t i, std::vector<value>& out) {
      out.clear();
      append(out, changes.events[i]);
      out.erase(out.begin());  // the id
    });
    for (const auto& e : changes.dataset_events) write_dataset_event(s, e, false);
    // Its rows last, so that their locks are held the shortest time (what it held back went with
    // the first statement: open_attachment); told the claims that won.
    if (changes.attachment) {
      std::vector<const task_instance_record*> started;
      for (std::size_t i : claims)
        if (result.task_instances_updated[i]) started.push_back(&changes.task_instances[i].record);
      attached = s.attach(*changes.attachment, started);
    }
    return result;
  });
  if (attached) changes.attachment->committed();
  return applied;
}

std::vector<std::size_t> store_core::admitted_claims(session& s, const std::vector<task_instance_update>& updates,
                                                     const std::vector<std::size_t>& claims,
                                                     const std::map<std::string, std::int64_t>& slots) {
  static const std::string in_use = slots_in_use("$1");
  // Where writers are serialized (no row lock), the pool's size is read with its count: no row
  // for a missing pool. Elsewhere apply_once locked the pools first and `slots` has their sizes.
  const bool serialized = sql_.row_lock.empty();
  static const std::string open_slots = "SELECT p.slots - (" + in_use + ") FROM pools AS p WHERE p.name = $1";
  static const std::string used_slots = "SELECT " + in_use;
  std::map<std::string, std::int64_t> open;  // per pool: slots left; a pool missing admits nothing
  for (std::size_t i : claims) {
    const std::string& pool = updates[i].record.pool;
    if (open.contains(pool)) continue;
    std::int64_t& left = open[pool];  // 0 unless read
    const value name[] = {pool};
    if (serialized) {
      s.exec(open_slots, name, [&](std::span<const value> row) { left = integer_of(row[0]); });
      continue;
    }
    const auto size = slots.find(pool);
    if (size == slots.end()) continue;
    std::int64_t used = 0;
    s.exec(used_slots, name, [&](std::span<const value> row) { used = integer_of(row[0]); });
    left = size->second - used;
  }
  std::vector<std::size_t> admitted;
  for (std::size_t i : claims) {
    std::int64_t& left = open[updates[i].record.pool];
    if (updates[i].record.pool_slots > left) continue;  // loses, as a compare-and-set would
    left -= updates[i].record.pool_slots;
    admitted.push_back(i);
  }
  return admitted;
}

namespace {

// The runs `filter` selects (its limit and offset aside) after `select`. One statement per
// combination of filters and length of each id list, each prepared once and cached (the API
// takes lists of at most 1,000 ids, api.hpp's max_list_items, padded to powers of two by
// filtered_select::in, so the combinations stay few): a
// single statement with `$1 IS NULL OR …` would get one generic plan that fits no combination well.
filtered_select runs_query(const std::string& select, const run_filter& filter) {
  filtered_select q(select);
  q.equal("dag_id", filter.dag_id);
  q.in("dag_id", filter.dag_ids);
  q.in("state", filter.states, [](run_state state) { return value(to_string(state)); });
  q.within("logical_date", filter.logical_from, filter.logical_to);
  // A bound on a column that is NULL (not started or ended yet) is not met: `NULL >= x` is not true.
  q.within("start_date", filter.start_from, filter.start_to);
  q.within("end_date", filter.end_from, filter.end_to);
  q.within("updated_at", filter.updated_from, filter.updated_to);
  // The time schedule's own runs: not manual ones, nor those dataset updates triggered.
  if (filter.automated_only) q.sql += " AND run_type IN ('scheduled', 'backfill')";
  return q;
}

const sort_fields run_sort_fields{{"dag_id", "dag_id"},
                                  {"run_id", "run_id"},
                                  {"run_type", "run_type"},
                                  {"state", "state"},
                                  {"logical_date", "logical_date"},
                                  {"data_interval_start", "data_interval_start"},
                                  {"data_interval_end", "data_interval_end"},
                                  {"start_date", "start_date"},
                                  {"end_date", "end_date"},
                                  {"updated_at", "updated_at"},
                                  {"manual", "CASE WHEN run_type = 'manual' THEN 1 ELSE 0 END"}};

// The task instances `filter` selects (its order and page aside), with `select` naming columns of
// `ti` (task_instances) and `r` (their runs, for the logical date).
filtered_select task_instances_query(const std::string& select, const task_instance_filter& filter) {
  filtered_select q(select + " FROM task_instances ti JOIN dag_runs r ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id");
  q.in("ti.dag_id", filter.dag_ids);
  q.in("ti.run_id", filter.run_ids);
  q.in("ti.task_id", filter.task_ids);
  q.in("ti.state", filter.states, [](task_state state) { return value(to_string(state)); });
  q.in("ti.pool", filter.pools);
  q.in("ti.queue", filter.queues);
  q.in("ti.executor", filter.executors);
  if (filter.map_index) q.sql += " AND ti.map_index = " + q.param(std::int64_t{*filter.map_index});
  if (filter.mapped_only) q.sql += " AND ti.map_index >= 0";
  q.within("r.logical_date", filter.logical_from, filter.logical_to);
  q.within("ti.start_date", filter.start_from, filter.start_to);
  q.within("ti.end_date", filter.end_from, filter.end_to);
  q.within("ti.updated_at", filter.updated_from, filter.updated_to);
  // NULL - x is NULL, and no bound holds for it: an instance not ended has no duration.
  if (filter.duration_from)
    q.sql += " AND ti.end_date - ti.start_date >= " + q.param(static_cast<std::int64_t>(filter.duration_from->count()));
  if (filter.duration_to)
    q.sql += " AND ti.end_date - ti.start_date <= " + q.param(static_cast<std::int64_t>(filter.duration_to->count()));
  return q;
}

const sort_fields task_instance_sort_fields{
    {"dag_id", "ti.dag_id"},         {"run_id", "ti.run_id"},       {"task_id", "ti.task_id"},
    {"map_index", "ti.map_index"},   {"logical_date", "r.logical_date"}, {"start_date", "ti.start_date"},
    {"end_date", "ti.end_date"},     {"duration", "ti.end_date - ti.start_date"}, {"state", "ti.state"},
    {"try_number", "ti.try_number"}, {"pool", "ti.pool"},           {"pool_slots", "ti.pool_slots"},
    {"queue", "ti.queue"},           {"executor", "ti.executor"},  {"updated_at", "ti.updated_at"}};

filtered_select xcoms_query(const std::string& select, const xcom_filter& filter) {
  filtered_select q(select);
  q.equal("dag_id", filter.dag_id);
  q.equal("run_id", filter.run_id);
  q.equal("task_id", filter.task_id);
  if (filter.map_index) q.sql += " AND map_index = " + q.param(std::int64_t{*filter.map_index});
  q.equal("key", filter.key);
  return q;
}

filtered_select events_query(const std::string& select, const event_filter& filter) {
  filtered_select q(select);
  q.equal("dag_id", filter.dag_id);
  q.equal("run_id", filter.run_id);
  q.equal("task_id", filter.task_id);
  q.equal("event", filter.event);
  q.equal("owner", filter.owner);
  q.within("happened", filter.after, filter.before);
  if (filter.map_index) q.sql += " AND map_index = " + q.param(std::int64_t{*filter.map_index});
  if (filter.try_number) q.sql += " AND try_number = " + q.param(std::int64_t{*filter.try_number});
  q.in("event", filter.events);
  q.in("event", filter.not_events, true);
  return q;
}

const sort_fields event_sort_fields{{"id", "id"},         {"when", "happened"},  {"event", "event"},    {"owner", "owner"},
                                    {"dag_id", "dag_id"}, {"run_id", "run_id"}, {"task_id", "task_id"}};

filtered_select dataset_events_query(const std::string& select, const dataset_event_filter& filter) {
  filtered_select q(select);
  q.equal("uri", filter.uri);
  q.equal("source_dag_id", filter.source_dag_id);
  q.equal("source_run_id", filter.source_run_id);
  q.equal("source_task_id", filter.source_task_id);
  if (filter.source_map_index) q.sql += " AND source_map_index = " + q.param(std::int64_t{*filter.source_map_index});
  return q;
}

const sort_fields dataset_event_sort_fields{
    {"id", "id"},
    {"when", "happened"},
    {"uri", "uri"},
    {"dataset_id", "(SELECT d.id FROM datasets d WHERE d.uri = dataset_events.uri)"},
    {"source_dag_id", "source_dag_id"},
    {"source_run_id", "source_run_id"},
    {"source_task_id", "source_task_id"}};

}  // namespace

std::size_t store_core::count(const char* what, const std::string& sql, std::span<const value> params) {
  return transact(what, access::read, [&](session& s) {
    std::size_t n = 0;
    s.exec(sql, params, [&](std::span<const value> row) { n = static_cast<std::size_t>(integer_of(row[0])); });
    return n;
  });
}

std::vector<run_record> store_core::runs(const run_filter& filter) {
  filtered_select q = runs_query(select_from<run_record>("dag_runs"), filter);
  q.order_by(filter.order, run_sort_fields, "logical_date DESC, dag_id, run_id");
  q.page(filter.limit, filter.offset);
  return list<run_record>("list runs", q.sql, q.params);
}

std::size_t store_core::count_runs(const run_filter& filter) {
  const filtered_select q = runs_query("SELECT COUNT(*) FROM dag_runs", filter);
  return count("count runs", q.sql, q.params);
}

std::vector<listed_task_instance> store_core::list_task_instances(const task_instance_filter& filter) {
  filtered_select q = task_instances_query(select_in<task_instance_record>("ti") + ", r.logical_date", filter);
  q.order_by(filter.order, task_instance_sort_fields, "r.logical_date DESC, ti.dag_id, ti.run_id, ti.task_id, ti.map_index");
  q.page(filter.limit, filter.offset);
  const std::size_t logical_date = columns_of<task_instance_record>().size();
  return transact("list task instances", access::read, [&](session& s) {
    std::vector<listed_task_instance> out;
    s.exec(q.sql, q.params, [&](std::span<const value> row) {
      listed_task_instance listed{read<task_instance_record>(row), {}};
      read_value(row[logical_date], listed.logical_date);
      out.push_back(std::move(listed));
    });
    return out;
  });
}

std::size_t store_core::count_task_instances(const task_instance_filter& filter) {
  const filtered_select q = task_instances_query("SELECT COUNT(*)", filter);
  return count("count task instances", q.sql, q.params);
}

std::optional<run_record> store_core::find_run(const std::string& dag_id, const std::string& run_id) {
  const value key[] = {dag_id, run_id};
  return first_of(
      list<run_record>("find a run", select_from<run_record>("dag_runs") + " WHERE dag_id = $1 AND run_id = $2", key));
}

std::vector<task_instance_record> store_core::task_instances(const std::string& dag_id, const std::string& run_id) {
  const value key[] = {dag_id, run_id};
  return list<task_instance_record>(
      "list task instances",
      select_from<task_instance_record>("task_instances") + " WHERE dag_id = $1 AND run_id = $2 ORDER BY task_id, map_index", key);
}

std::vector<task_instance_record> store_core::task_instances_in(const std::set<task_state>& states) {
  if (states.empty()) return {};  // no state asked for, none matches
  // The states as literals (names of the enum, nothing from outside): written as the partial
  // index task_instances_in_flight is, `IN ('queued', 'running')` may use it.
  std::string sql = select_from<task_instance_record>("task_instances") + " WHERE state IN (";
  bool first = true;
  for (task_state state : states) {
    sql += (first ? "'" : ", '") + std::string(to_string(state)) + "'";
    first = false;
  }
  sql += ") ORDER BY dag_id, run_id, task_id, map_index";
  return list<task_instance_record>("list task instances by state", sql, {});
}

std::vector<try_record> store_core::tries(const std::string& dag_id, const std::string& run_id,
                                          const std::string& task_id, int map_index) {
  const value key[] = {dag_id, run_id, task_id, std::int64_t{map_index}};
  // The rows of the tries its instance moved off, and the try it shows where that has no row
  // (migration 11; a rescheduled sensor's try waiting for a slot is up_for_reschedule, as
  // shown_try_keeps keeps it).
  return list<try_record>(
      "list tries",
      select_from<try_record>("task_tries") +
          " WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4"
          " UNION ALL SELECT " + std::string(shown_try_columns) + " FROM task_instances AS r"
          " WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4 AND try_number >= 1 AND NOT EXISTS ("
          "SELECT 1 FROM task_tries t WHERE t.dag_id = r.dag_id AND t.run_id = r.run_id AND t.task_id = r.task_id"
          " AND t.map_index = r.map_index AND t.try_number = r.try_number)"
          " ORDER BY try_number",
      key);
}

std::optional<std::string> store_core::xcom(const std::string& dag_id, const std::string& run_id,
                                            const std::string& task_id, const std::string& key) {
  const value where[] = {dag_id, run_id, task_id, key};
  auto rows = list<xcom_record>("read an XCom",
                                select_from<xcom_record>("xcom") +
                                    " WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND key = $4 ORDER BY map_index",
                                where);
  if (rows.empty()) return std::nullopt;
  if (rows.size() == 1 && rows.front().map_index < 0) return std::move(rows.front().value);
  return mapped_xcom_list(std::move(rows));
}

std::vector<xcom_record> store_core::xcoms(const std::string& dag_id, const std::string& run_id,
                                           const std::string& task_id) {
  const value where[] = {dag_id, run_id, task_id};
  return list<xcom_record>("list XComs",
                           select_from<xcom_record>("xcom") + " WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 ORDER BY key, map_index",
                           where);
}

std::vector<xcom_record> store_core::xcoms(const xcom_filter& filter) {
  filtered_select q = xcoms_query(select_from<xcom_record>("xcom"), filter);
  q.sql += " ORDER BY dag_id, run_id, task_id, key, map_index";
  q.page(filter.limit, filter.offset);
  return list<xcom_record>("list XComs", q.sql, q.params);
}

std::size_t store_core::count_xcoms(const xcom_filter& filter) {
  const filtered_select q = xcoms_query("SELECT COUNT(*) FROM xcom", filter);
  return count("count XComs", q.sql, q.params);
}

bool store_core::set_note(const std::string& dag_id, const std::string& run_id, const std::string& task_id,
                          const std::string& note, int map_index) {
  const std::int64_t now = micros_of(wall_now());  // a note is a change of the row: stamped as any other
  if (task_id.empty()) {
    const value row[] = {note, dag_id, run_id, now};
    return execute("set a run's note", "UPDATE dag_runs SET note = $1, updated_at = $4 WHERE dag_id = $2 AND run_id = $3", row) == 1;
  }
  const value row[] = {note, dag_id, run_id, task_id, std::int64_t{map_index}, now};
  return execute("set a task instance's note",
                 "UPDATE task_instances SET note = $1, updated_at = $6 WHERE dag_id = $2 AND run_id = $3 AND task_id = $4 AND map_index = $5",
                 row) == 1;
}

bool store_core::delete_run(const std::string& dag_id, const std::string& run_id) {
  // Task instances, tries and XComs go with their run through ON DELETE CASCADE.
  const value key[] = {dag_id, run_id};
  return execute("delete a run", "DELETE FROM dag_runs WHERE dag_id = $1 AND run_id = $2", key) == 1;
}

std::size_t store_core::delete_dag(const std::string& dag_id) {
  const value key[] = {dag_id};
  return transact("delete a DAG's records", access::write, [&](session& s) {
    const std::size_t runs = s.exec("DELETE FROM dag_runs WHERE dag_id = $1", key);
    s.exec("DELETE FROM dags WHERE dag_id = $1", key);
    s.exec("DELETE FROM dataset_consumers WHERE dag_id = $1", key);
    s.exec("DELETE FROM dataset_queue WHERE dag_id = $1", key);
    return runs;
  });
}

std::vector<event_record> store_core::events(const event_filter& filter) {
  filtered_select q = events_query(select_from<event_record>("event_log"), filter);
  q.order_by(filter.order, event_sort_fields, "id DESC");
  q.page(filter.limit, filter.offset);
  return list<event_record>("list the event log", q.sql, q.params);
}

std::size_t store_core::count_events(const event_filter& filter) {
  const filtered_select q = events_query("SELECT COUNT(*) FROM event_log", filter);
  return count("count the event log", q.sql, q.params);
}

std::optional<event_record> store_core::find_event(std::int64_t id) {
  const value key[] = {id};
  return first_of(list<event_record>("read an event log entry", select_from<event_record>("event_log") + " WHERE id = $1", key));
}

void store_core::register_datasets(const std::vector<std::string>& uris,
                                   const std::map<std::string, std::vector<std::string>>& consumers) {
  const value now[] = {micros_of(wall_now())};
  transact("register datasets", access::write, [&](session& s) {
    for (const auto& uri : uris) {
      const value row[] = {uri, now[0]};
      s.exec("INSERT INTO datasets (uri, created_at, updated_at) VALUES ($1, $2, $2) ON CONFLICT (uri) DO NOTHING", row);
    }
    for (const auto& [dag_id, consumed] : consumers) {
      const value dag[] = {dag_id};
      std::vector<std::string> had;
      s.exec("SELECT uri FROM dataset_consumers WHERE dag_id = $1", dag,
             [&](std::span<const value> r) { had.push_back(text_of(r[0])); });
      for (const auto& uri : had)
        if (std::find(consumed.begin(), consumed.end(), uri) == consumed.end()) {
          const value row[] = {dag_id, uri};
          s.exec("DELETE FROM dataset_consumers WHERE dag_id = $1 AND uri = $2", row);
          s.exec("DELETE FROM dataset_queue WHERE dag_id = $1 AND uri = $2", row);
        }
      for (const auto& uri : consumed) {
        const value dataset[] = {uri, now[0]};
        s.exec("INSERT INTO datasets (uri, created_at, updated_at) VALUES ($1, $2, $2) ON CONFLICT (uri) DO NOTHING", dataset);
        const value consumer[] = {dag_id, uri};
        s.exec("INSERT INTO dataset_consumers (dag_id, uri) VALUES ($1, $2) ON CONFLICT DO NOTHING", consumer);
      }
    }
  });
}

std::vector<dataset_record> store_core::datasets() {
  return list<dataset_record>("list datasets", select_from<dataset_record>("datasets") + " ORDER BY uri");
}

std::optional<dataset_record> store_core::find_dataset(const std::string& uri) {
  const value key[] = {uri};
  return first_of(list<dataset_record>("read a dataset", select_from<dataset_record>("datasets") + " WHERE uri = $1", key));
}

std::optional<dataset_event_record> store_core::add_dataset_event(const dataset_event_record& e) {
  return transact("record a dataset event", access::write, [&](session& s) { return write_dataset_event(s, e, true); });
}

std::vector<dataset_event_record> store_core::dataset_events(const dataset_event_filter& filter) {
  filtered_select q = dataset_events_query(select_from<dataset_event_record>("dataset_events"), filter);
  q.order_by(filter.order, dataset_event_sort_fields, "id DESC");
  q.page(filter.limit, filter.offset);
  return list<dataset_event_record>("list dataset events", q.sql, q.params);
}

std::size_t store_core::count_dataset_events(const dataset_event_filter& filter) {
  const filtered_select q = dataset_events_query("SELECT COUNT(*) FROM dataset_events", filter);
  return count("count dataset events", q.sql, q.params);
}

std::map<std::string, std::set<std::string>> store_core::queued_datasets() {
  std::map<std::string, std::set<std::string>> out;
  for (auto& [dag_id, uri] :
       list<std::pair<std::string, std::string>>("read the dataset queue", "SELECT dag_id, uri FROM dataset_queue"))
    out[dag_id].insert(std::move(uri));
  return out;
}

bool store_core::create_dataset_run(const run_record& run, const std::vector<std::string>& task_ids,
                                    const std::set<std::string>& uris) {
  const writes& w = all_writes();
  try {
    transact("create a dataset-triggered run", access::write, [&](session& s) {
      // Taking the entries off the queue is the claim: a second scheduler's delete waits for this
      // transaction and then finds nothing, so it rolls back.
      std::vector<std::pair<std::string, std::int64_t>> claimed;
      for (const auto& uri : uris) {
        const value key[] = {run.dag_id, uri};
        s.exec("DELETE FROM dataset_queue WHERE dag_id = $1 AND uri = $2 RETURNING first_event_id", key,
               [&](std::span<const value> r) { claimed.emplace_back(uri, integer_of(r[0])); });
      }
      if (uris.empty() || claimed.size() != uris.size()) throw dataset_run_lost{};
      const std::int64_t now = micros_of(wall_now());
      std::vector<value> row;
      append(row, run);
      row.emplace_back(now);
      if (s.exec(w.insert_run, row) != 1) throw dataset_run_lost{};
      s.write(w.new_task_instances, task_ids.size(),
              stamped_rows([&](std::size_t i, std::vector<value>& out) { new_task_instance_row(run, task_ids[i], out); }, 4, now));
      for (const auto& [uri, first] : claimed) {
        const value link[] = {run.dag_id, run.run_id, uri, first};
        s.exec("INSERT INTO dataset_run_events (dag_id, run_id, event_id) SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), id "
               "FROM dataset_events WHERE uri = $3 AND id >= $4 ON CONFLICT DO NOTHING",
               link);
      }
    });
    return true;
  } catch (const dataset_run_lost&) {
    return false;
  }
}

std::vector<run_record> store_core::runs_triggered_by(std::int64_t event_id) {
  const value key[] = {event_id};
  std::string columns;
  for (const auto& c : columns_of<run_record>()) columns += (columns.empty() ? "r." : ", r.") + c.name;
  return list<run_record>("list the runs a dataset event triggered",
                          "SELECT " + columns + " FROM dag_runs r JOIN dataset_run_events l ON l.dag_id = r.dag_id AND "
                          "l.run_id = r.run_id WHERE l.event_id = $1 ORDER BY r.logical_date, r.run_id",
                          key);
}

std::vector<dataset_event_record> store_core::triggering_dataset_events(const std::string& dag_id,
                                                                        const std::string& run_id) {
  const value key[] = {dag_id, run_id};
  std::string columns;
  for (const auto& c : columns_of<dataset_event_record>()) columns += (columns.empty() ? "e." : ", e.") + c.name;
  return list<dataset_event_record>(
      "list a run's triggering dataset events",
      "SELECT " + columns + " FROM dataset_events e JOIN dataset_run_events l ON l.event_id = e.id "
      "WHERE l.dag_id = $1 AND l.run_id = $2 ORDER BY e.id",
      key);
}

namespace {
// Text set by hand must be UTF-8 without NUL bytes, on both backends alike: PostgreSQL would hold
// it converted (pg_text), so a name would no longer match and a value would not read back as set.
// Never quotes the text itself (it may be a secret).
void require_text(std::string_view text, const std::string& what) {
  if (!is_utf8_text(text)) throw usage_error(what + ": must be UTF-8 text without NUL bytes");
}
}  // namespace

void store_core::set_variable(const std::string& name, const std::string& text) {
  require_text(name, "variable name");
  require_text(text, "variable '" + name + "': value");
  write_row("set a variable", all_writes().variables, {name, text});
}

std::optional<std::string> store_core::variable(const std::string& name) {
  const value key[] = {name};
  return first_of(list<std::string>("read a variable", "SELECT value FROM variables WHERE name = $1", key));
}

std::map<std::string, std::string> store_core::variables() {
  const auto pairs = list<std::pair<std::string, std::string>>("list variables", "SELECT name, value FROM variables");
  return {pairs.begin(), pairs.end()};
}

bool store_core::delete_variable(const std::string& name) {
  const value key[] = {name};
  return execute("delete a variable", "DELETE FROM variables WHERE name = $1", key) == 1;
}

void store_core::set_connection(const connection& c) {
  require_text(c.conn_id, "connection id");
  const std::pair<const std::string*, const char*> fields[] = {{&c.conn_type, "conn_type"}, {&c.host, "host"},
                                                               {&c.login, "login"},         {&c.password, "password"},
                                                               {&c.schema, "schema"},       {&c.extra, "extra"}};
  for (const auto& [text, field] : fields) require_text(*text, "connection '" + c.conn_id + "': " + field);
  std::vector<value> values;
  append(values, c);
  write_row("store a connection", all_writes().connections, values);
}

std::optional<connection> store_core::find_connection(const std::string& conn_id) {
  const value key[] = {conn_id};
  return first_of(
      list<connection>("read a connection", select_from<connection>("connections") + " WHERE conn_id = $1", key));
}

std::vector<connection> store_core::connections() {
  return list<connection>("list connections", select_from<connection>("connections") + " ORDER BY conn_id");
}

bool store_core::delete_connection(const std::string& conn_id) {
  const value key[] = {conn_id};
  return execute("delete a connection", "DELETE FROM connections WHERE conn_id = $1", key) == 1;
}

void store_core::set_pool(const pool_record& p) {
  if (p.name.empty()) throw usage_error("a pool needs a name");
  require_text(p.name, "pool name");
  require_text(p.description, "pool '" + p.name + "': description");
  if (p.slots < 0) throw usage_error("pool '" + p.name + "': slots must be at least 0, got " + std::to_string(p.slots));
  std::vector<value> values;
  append(values, p);
  write_row("set a pool", all_writes().pools, values);
}

namespace {
// Pools with the slots their queued and running tries take.
constexpr std::string_view pools_with_usage =
    "SELECT p.name, p.slots, p.description, "
    "COALESCE(SUM(CASE WHEN t.state = 'running' THEN t.pool_slots ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN t.state = 'queued' THEN t.pool_slots ELSE 0 END), 0) "
    "FROM pools p LEFT JOIN task_instances t ON t.pool = p.name AND t.state IN ('queued', 'running')";

pool_record read_pool(std::span<const value> row) {
  pool_record p = read<pool_record>(row);
  p.running_slots = static_cast<int>(integer_of(row[3]));
  p.queued_slots = static_cast<int>(integer_of(row[4]));
  return p;
}
}  // namespace

std::optional<pool_record> store_core::find_pool(const std::string& name) {
  const value key[] = {name};
  return transact("read a pool", access::read, [&](session& s) {
    std::optional<pool_record> out;
    s.exec(std::string(pools_with_usage) + " WHERE p.name = $1 GROUP BY p.name, p.slots, p.description", key,
           [&](std::span<const value> row) { out = read_pool(row); });
    return out;
  });
}

std::vector<pool_record> store_core::pools() {
  return transact("list pools", access::read, [&](session& s) {
    std::vector<pool_record> out;
    s.exec(std::string(pools_with_usage) + " GROUP BY p.name, p.slots, p.description ORDER BY p.name", {},
           [&](std::span<const value> row) { out.push_back(read_pool(row)); });
    return out;
  });
}

bool store_core::delete_pool(const std::string& name) {
  if (name == default_pool_name) throw usage_error("the default_pool cannot be deleted");
  const value key[] = {name};
  return execute("delete a pool", "DELETE FROM pools WHERE name = $1", key) == 1;
}

std::size_t store_core::clean(timestamp cutoff) {
  // Task instances, tries and XComs go with their run through ON DELETE CASCADE.
  const value before[] = {micros_of(cutoff)};
  const auto runs = execute("clean old runs", "DELETE FROM dag_runs WHERE state IN ('success', 'failed') AND end_date < $1", before);
  // Dataset events are history too (as Airflow's `db clean` has them), except those a run that
  // is kept lists as its upstream events, and those a consumer DAG still waits on (its next run
  // will list them).
  execute("clean old dataset events",
          "DELETE FROM dataset_events WHERE happened < $1"
          " AND NOT EXISTS (SELECT 1 FROM dataset_run_events l WHERE l.event_id = dataset_events.id)"
          " AND NOT EXISTS (SELECT 1 FROM dataset_queue q WHERE q.uri = dataset_events.uri AND dataset_events.id >= q.first_event_id)",
          before);
  return runs;
}

}  // namespace dag::detail
