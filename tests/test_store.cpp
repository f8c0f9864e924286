// The metadata store, checked only through the dag::store interface so that the same cases run on
// every backend. A backend is a test database type: a fresh, empty database per case, stores opened
// on it (`make_store`), and raw SQL (`execute`) for the one set-up the interface cannot express.
// Every shared case is a template over the backends and runs once per backend
// (`Store.Case<sqlite>`, `Store.Case<postgres>`):
//  - sqlite: SQLite files in a temporary directory unique to this process;
//  - postgres: a database per case (`dagrun_t_<pid>_<n>`, dropped afterwards) on the server named by
//    DAGRUN_TEST_POSTGRES_URL. Without that variable the PostgreSQL cases fail, saying how to start
//    a throwaway server: CI always sets it, and a skipped backend would pass unnoticed.
// PostgreSQL-only cases (`Store.Postgres…`) check what only a server can do: racing writers and
// migrations, sessions killed server-side, and connections cut around COMMIT (through a proxy).

#include <dag/core/error.hpp>
#include <dag/core/log_file.hpp>
#include <dag/store/store.hpp>

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

// libpqxx reaches this test through dag::store's own (private) link; the test uses it only to
// create and drop databases and to play the administrator.
#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/eventually.hpp"
#include "support/flaky_proxy.hpp"
#include "support/private_server.hpp"

namespace doctest {
template <>
struct StringMaker<dag::time_point> {
  static String convert(dag::time_point t) { return dag::format_iso(t).c_str(); }
};
template <>
struct StringMaker<dag::timestamp> {
  static String convert(dag::timestamp t) { return (std::to_string(t.time_since_epoch().count()) + "us").c_str(); }
};
}  // namespace doctest

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// --- the backends --------------------------------------------------------------------------------

/// This process's scratch directory, removed when the process ends.
class scratch_root {
public:
  scratch_root() : path_(fs::temp_directory_path() / ("dagrun-test-store-" + std::to_string(::getpid()))) {
    fs::remove_all(path_);  // a leftover of an earlier process that had this pid
    fs::create_directories(path_);
  }
  ~scratch_root() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  scratch_root(const scratch_root&) = delete;
  scratch_root& operator=(const scratch_root&) = delete;
  const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

const fs::path& scratch_dir() {
  static scratch_root root;
  return root.path();
}

/// A fresh SQLite database for one test case, in its own directory, removed afterwards.
class sqlite_database {
public:
  sqlite_database() {
    static int cases = 0;
    dir_ = scratch_dir() / std::to_string(++cases);
    fs::create_directories(dir_);
  }
  ~sqlite_database() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  sqlite_database(const sqlite_database&) = delete;
  sqlite_database& operator=(const sqlite_database&) = delete;

  /// The `--db` URL of the database.
  std::string url() const { return "sqlite:" + file().string(); }
  /// A new store object on the database (each one its own connection).
  std::unique_ptr<dag::store> make_store() const { return dag::open_store(url()); }
  /// Runs raw SQL on the database, bypassing the store.
  void execute(const std::string& sql) const {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(file().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    const std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    REQUIRE_MESSAGE(rc == SQLITE_OK, message);
  }
  /// The first column of the first row of `sql` on the database, as text.
  std::optional<std::string> query(const std::string& sql) const {
    sqlite3* db = nullptr;
    sqlite3_stmt* st = nullptr;
    std::optional<std::string> out;
    int rc = sqlite3_open_v2(file().c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr)
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    const std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_finalize(st);
    sqlite3_close(db);
    REQUIRE_MESSAGE(rc == SQLITE_OK, message);
    return out;
  }
  /// The SQL that made table or index `name` (sqlite_master's), or empty when there is none.
  std::string definition_of(const std::string& name) const {
    return query("SELECT sql FROM sqlite_master WHERE name = '" + name + "'").value_or("");
  }
  /// The schema's `key` and `instant` types on this backend (for tables an older schema had).
  static constexpr const char* key_type = "TEXT";
  static constexpr const char* instant_type = "INTEGER";
  /// A directory the case may use for files of its own.
  const fs::path& dir() const { return dir_; }
  /// Text that names the database in error messages.
  std::string name() const { return file().string(); }

private:
  fs::path file() const { return dir_ / "dagrun.db"; }
  fs::path dir_;
};

/// The server the PostgreSQL cases use (DAGRUN_TEST_POSTGRES_URL); fails the case when unset.
std::string postgres_server_url() {
  const char* url = std::getenv("DAGRUN_TEST_POSTGRES_URL");
  if (url == nullptr || *url == '\0')
    FAIL("DAGRUN_TEST_POSTGRES_URL is not set, so the PostgreSQL store cannot be tested. Start a throwaway "
         "server with `scripts/test-postgres.sh start DIR PORT` (e.g. scripts/test-postgres.sh start "
         "/tmp/dagrun-pg 54329), export the URL it prints as DAGRUN_TEST_POSTGRES_URL, and stop it afterwards "
         "with `scripts/test-postgres.sh stop DIR`.");
  return url;
}

/// `url` with its query parameters extended by `extra` (`key=value&…`); libpq lets a later
/// parameter override the path's database and the host and port.
std::string with_parameters(const std::string& url, const std::string& extra) {
  return url + (url.find('?') == std::string::npos ? '?' : '&') + extra;
}

/// Runs one statement outside any transaction on a new connection to `url`; returns the first
/// column of the first row, if any.
std::optional<std::string> run_sql(const std::string& url, const std::string& sql) {
  pqxx::connection c{url};
  pqxx::nontransaction tx{c};
  const pqxx::result r = tx.exec(sql);
  if (r.empty() || r.columns() == 0 || r[0][0].is_null()) return std::nullopt;
  return r[0][0].as<std::string>();
}

/// A fresh PostgreSQL database for one test case, dropped afterwards.
class postgres_database {
public:
  postgres_database() : server_(postgres_server_url()) {
    static int cases = 0;
    name_ = "dagrun_t_" + std::to_string(::getpid()) + "_" + std::to_string(++cases);
    try {
      run_sql(server_, "DROP DATABASE IF EXISTS " + name_);  // a leftover of an earlier process with this pid
      run_sql(server_, "CREATE DATABASE " + name_);
    } catch (const std::exception& e) {
      FAIL("cannot create the test database " << name_ << " on DAGRUN_TEST_POSTGRES_URL (is the server running? "
                                              "scripts/test-postgres.sh start DIR PORT): "
                                              << e.what());
    }
    url_ = with_parameters(server_, "dbname=" + name_);
  }
  ~postgres_database() {
    try {
      kill_sessions();
      run_sql(server_, "DROP DATABASE IF EXISTS " + name_);
    } catch (const std::exception& e) {
      MESSAGE("could not drop " << name_ << ": " << e.what());
    }
  }
  postgres_database(const postgres_database&) = delete;
  postgres_database& operator=(const postgres_database&) = delete;

  /// The `--db` URL of the database.
  std::string url() const { return url_; }
  /// A new store object on the database (each one its own connection).
  std::unique_ptr<dag::store> make_store() const { return dag::open_store(url()); }
  /// Runs raw SQL on the database, bypassing the store.
  void execute(const std::string& sql) const {
    try {
      run_sql(url_, sql);
    } catch (const std::exception& e) {
      FAIL(sql << ": " << e.what());
    }
  }
  /// The definition of index `name` (pg_indexes'), or empty when there is none. (Tables have none
  /// here: only indexes are asked for on this backend.)
  std::string definition_of(const std::string& name) const {
    return query("SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = '" + name + "'")
        .value_or("");
  }
  /// The schema's `key` and `instant` types on this backend (for tables an older schema had).
  static constexpr const char* key_type = "TEXT COLLATE \"C\"";
  static constexpr const char* instant_type = "BIGINT";
  /// The first column of the first row of `sql` on the database.
  std::optional<std::string> query(const std::string& sql) const { return run_sql(url_, sql); }
  /// Text that names the database in error messages.
  std::string name() const { return name_; }
  /// The server's URL (its maintenance database).
  const std::string& server() const { return server_; }

  /// Terminates every session on the database, as an administrator or a failover would, and waits
  /// until they are gone; returns how many there were.
  int kill_sessions() const {
    const std::string where = " FROM pg_stat_activity WHERE datname = '" + name_ +
                              "' AND backend_type = 'client backend' AND pid <> pg_backend_pid()";
    const int killed = std::stoi(run_sql(server_, "SELECT count(pg_terminate_backend(pid))" + where).value_or("0"));
    for (int i = 0; i < 500 && run_sql(server_, "SELECT count(*)" + where) != "0"; ++i) std::this_thread::sleep_for(10ms);
    return killed;
  }

private:
  std::string server_;
  std::string name_;
  std::string url_;
};

}  // namespace

TYPE_TO_STRING_AS("sqlite", sqlite_database);
TYPE_TO_STRING_AS("postgres", postgres_database);

/// Every backend, for TEST_CASE_TEMPLATE.
#define STORE_BACKENDS sqlite_database, postgres_database

namespace {

// --- records -------------------------------------------------------------------------------------

/// An instant from UTC calendar fields.
dag::time_point utc(int y, unsigned m, unsigned d, int hh = 0) {
  const std::chrono::sys_days day{std::chrono::year{y} / std::chrono::month{m} / std::chrono::day{d}};
  return dag::time_point{day} + std::chrono::hours{hh};
}

/// The same instant with microseconds, as start and end dates carry them.
dag::timestamp at(dag::time_point t, std::chrono::microseconds plus = 0us) { return dag::timestamp{t} + plus; }

/// A run of `type` with a daily interval from `date` and the Airflow run id.
dag::run_record daily_run(const std::string& dag_id, dag::time_point date,
                          dag::run_type type = dag::run_type::scheduled) {
  dag::run_record r;
  r.dag_id = dag_id;
  r.run_id = dag::make_run_id(type, date);
  r.type = type;
  r.logical_date = date;
  r.interval = {date, date + 24h};
  return r;
}

/// A change set creating one run with these tasks.
dag::change_set creating(const dag::run_record& run, std::vector<std::string> task_ids) {
  dag::change_set c;
  c.new_runs.emplace_back(run, std::move(task_ids));
  return c;
}

/// A task instance update moving a task from (expected, expected_try) to (state, try_number).
dag::task_instance_update moving(const dag::run_record& run, const std::string& task_id, dag::task_state expected,
                                 int expected_try, dag::task_state state, int try_number) {
  dag::task_instance_update u;
  u.expected = expected;
  u.expected_try = expected_try;
  u.record.dag_id = run.dag_id;
  u.record.run_id = run.run_id;
  u.record.task_id = task_id;
  u.record.state = state;
  u.record.try_number = try_number;
  return u;
}

/// A run update moving a run from `expected` to `state`.
dag::run_update moving(const dag::run_record& run, dag::run_state expected, dag::run_state state) {
  dag::run_update u;
  u.dag_id = run.dag_id;
  u.run_id = run.run_id;
  u.expected = expected;
  u.state = state;
  return u;
}

/// A try record.
dag::try_record a_try(const dag::run_record& run, const std::string& task_id, int number, dag::task_state state) {
  dag::try_record t;
  t.dag_id = run.dag_id;
  t.run_id = run.run_id;
  t.task_id = task_id;
  t.try_number = number;
  t.state = state;
  return t;
}

/// An XCom record.
dag::xcom_record an_xcom(const dag::run_record& run, const std::string& task_id, const std::string& key,
                         const std::string& value) {
  return {run.dag_id, run.run_id, task_id, key, value};
}

void check_same_run(const dag::run_record& got, const dag::run_record& want) {
  CHECK(got.dag_id == want.dag_id);
  CHECK(got.run_id == want.run_id);
  CHECK(got.type == want.type);
  CHECK(got.state == want.state);
  CHECK(got.logical_date == want.logical_date);
  CHECK(got.interval == want.interval);
  CHECK(got.start_date == want.start_date);
  CHECK(got.end_date == want.end_date);
  CHECK(got.conf == want.conf);
}

std::vector<std::string> run_ids(const std::vector<dag::run_record>& runs) {
  std::vector<std::string> out;
  for (const auto& r : runs) out.push_back(r.run_id);
  return out;
}

std::vector<std::string> task_ids(const std::vector<dag::task_instance_record>& tis) {
  std::vector<std::string> out;
  for (const auto& t : tis) out.push_back(t.task_id);
  return out;
}

/// Checks that `call` throws dag::usage_error whose message contains `part` and not `secret`.
template <class F>
void check_usage_error(F&& call, const std::string& part, const std::string& secret = "\x01") {
  try {
    call();
    FAIL("no usage_error, expected one mentioning '" << part << "'");
  } catch (const dag::usage_error& e) {
    const std::string what = e.what();
    CHECK_MESSAGE(what.find(part) != std::string::npos, what);
    CHECK_MESSAGE(what.find(secret) == std::string::npos, what);
  }
}

// --- cases ---------------------------------------------------------------------------------------

TEST_CASE("Store.RunIdsAndTypesUseAirflowNames") {
  CHECK(dag::make_run_id(dag::run_type::scheduled, utc(2024, 1, 1)) == "scheduled__2024-01-01T00:00:00+00:00");
  CHECK(dag::make_run_id(dag::run_type::manual, utc(2024, 3, 31, 6)) == "manual__2024-03-31T06:00:00+00:00");
  CHECK(dag::make_run_id(dag::run_type::backfill, utc(2023, 12, 31, 23)) == "backfill__2023-12-31T23:00:00+00:00");
  CHECK(dag::make_run_id(dag::run_type::dataset_triggered, utc(2024, 1, 1)) == "dataset_triggered__2024-01-01T00:00:00+00:00");
  for (auto t : {dag::run_type::scheduled, dag::run_type::manual, dag::run_type::backfill})
    CHECK(dag::parse_run_type(dag::to_string(t)) == t);
  CHECK(dag::to_string(dag::run_type::manual) == "manual");
  CHECK_FALSE(dag::parse_run_type("Scheduled").has_value());
  CHECK_FALSE(dag::parse_run_type("").has_value());
}

TEST_CASE_TEMPLATE("Store.MigrateIsIdempotentAndRecordsTheVersion", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const int version = s->schema_version();
  CHECK(version >= 1);
  s->set_variable("kept", "yes");
  s->migrate();
  s->migrate();
  CHECK(s->schema_version() == version);
  CHECK(s->variable("kept") == "yes");
  // Opening migrates too, and finds nothing left to do.
  CHECK(db.make_store()->schema_version() == version);
}

TEST_CASE_TEMPLATE("Store.MigratesAVersionOneDatabaseKeepingItsRows", database, STORE_BACKENDS) {
  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  {
    auto s = db.make_store();
    REQUIRE(s->apply(creating(run, {"extract"})).runs_created == std::vector<bool>{true});
  }
  // What a version 1 database looks like: without the columns and tables later migrations add.
  db.execute("ALTER TABLE task_instances DROP COLUMN first_start_date");
  db.execute("ALTER TABLE task_instances DROP COLUMN cleared_tries");
  db.execute("ALTER TABLE task_instances DROP COLUMN note");
  db.execute("ALTER TABLE dag_runs DROP COLUMN note");
  db.execute("DROP TABLE event_log");
  db.execute("ALTER TABLE connections DROP COLUMN extra");
  db.execute("DROP TABLE pools");
  db.execute("DROP INDEX task_instances_in_flight");
  db.execute("ALTER TABLE task_instances DROP COLUMN pool");
  db.execute("ALTER TABLE task_instances DROP COLUMN pool_slots");
  for (const char* table : {"dataset_run_events", "dataset_queue", "dataset_consumers", "dataset_events", "datasets"})
    db.execute(std::string("DROP TABLE ") + table);
  db.execute("ALTER TABLE dag_runs DROP COLUMN updated_at");
  db.execute("ALTER TABLE task_instances DROP COLUMN updated_at");
  db.execute("ALTER TABLE task_instances DROP COLUMN queue");
  db.execute("ALTER TABLE task_instances DROP COLUMN executor");
  db.execute("DELETE FROM schema_version WHERE version > 1");
  auto s = db.make_store();
  CHECK(s->schema_version() == 12);
  // Migration 8: a row written before was changed when it last started or ended; this one never did.
  dag::task_instance_filter changed;
  changed.updated_from = dag::timestamp{};
  CHECK(s->count_task_instances(changed) == 0);
  CHECK(s->datasets().empty());
  // Migration 5: the default pool, and every task instance in it.
  CHECK(s->find_pool("default_pool")->slots == 128);
  // Migration 4: a connection keeps its extra (the URI's query, as Airflow's JSON object).
  s->set_connection(dag::parse_connection_uri("api", "https://api.example/v1?token=abc&verify=false"));
  CHECK(s->find_connection("api")->extra == R"({"token":"abc","verify":"false"})");
  const auto tis = s->task_instances("etl", run.run_id);
  REQUIRE(tis.size() == 1);
  CHECK(tis[0].task_id == "extract");
  CHECK_FALSE(tis[0].first_start_date.has_value());
  CHECK(tis[0].cleared_tries == 0);
  CHECK(tis[0].note.empty());
  CHECK(tis[0].pool == "default_pool");
  CHECK(tis[0].pool_slots == 1);
  CHECK(s->events({}).empty());
}

/// Checks `t` is the failed first try of "extract" that the migration tests write (every column set).
void check_first_failed_try(const dag::try_record& t) {
  CHECK(t.try_number == 1);
  CHECK(t.state == dag::task_state::failed);
  CHECK(t.start_date == dag::timestamp{100us});
  CHECK(t.end_date == dag::timestamp{200us});
  CHECK(t.exit_code == 3);
  CHECK(t.hostname == "worker-2");
  CHECK(t.pid == 7);
  CHECK(t.log_path == "logs/extract/1.log");
  CHECK(t.message == "exit status 3");
}

TEST_CASE_TEMPLATE("Store.MigrationSixKeepsEveryTaskInstanceTryAndXComAsUnmapped", database, STORE_BACKENDS) {
  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  const int latest = [&] {
    auto s = db.make_store();
    REQUIRE(s->apply(creating(run, {})).runs_created == std::vector<bool>{true});
    CHECK(s->set_note("etl", run.run_id, "", "nightly load"));
    return s->schema_version();
  }();
  // A version 5 database: task instances, tries and XComs keyed without a map index (the tables
  // of migrations 1, 2, 3 and 5), and no datasets (migration 7).
  for (const char* table : {"dataset_run_events", "dataset_queue", "dataset_consumers", "dataset_events", "datasets",
                            "xcom", "task_tries", "task_instances"})
    db.execute(std::string("DROP TABLE ") + table);
  // Nor the columns migration 8 added to the tables kept.
  for (const char* column : {"dag_runs DROP COLUMN updated_at", "event_log DROP COLUMN map_index", "event_log DROP COLUMN try_number"})
    db.execute(std::string("ALTER TABLE ") + column);
  db.execute("DELETE FROM schema_version WHERE version > 5");
  const std::string key = database::key_type, instant = database::instant_type;
  db.execute("CREATE TABLE task_instances (dag_id " + key + " NOT NULL, run_id " + key + " NOT NULL, task_id " + key +
             " NOT NULL, state TEXT NOT NULL DEFAULT 'none', try_number INTEGER NOT NULL DEFAULT 0, start_date " + instant +
             ", end_date " + instant + ", retry_at " + instant +
             ", exit_code INTEGER, hostname TEXT NOT NULL DEFAULT '', pid INTEGER NOT NULL DEFAULT 0, "
             "log_path TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '', first_start_date " + instant +
             ", cleared_tries INTEGER NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '', pool " + key +
             " NOT NULL DEFAULT 'default_pool', pool_slots INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (dag_id, run_id, task_id), "
             "FOREIGN KEY (dag_id, run_id) REFERENCES dag_runs (dag_id, run_id) ON DELETE CASCADE)");
  db.execute("CREATE INDEX task_instances_by_state ON task_instances (state)");
  db.execute("CREATE INDEX task_instances_by_pool ON task_instances (pool, state)");
  db.execute("CREATE TABLE task_tries (dag_id " + key + " NOT NULL, run_id " + key + " NOT NULL, task_id " + key +
             " NOT NULL, try_number INTEGER NOT NULL, state TEXT NOT NULL, start_date " + instant + ", end_date " + instant +
             ", exit_code INTEGER, hostname TEXT NOT NULL DEFAULT '', pid INTEGER NOT NULL DEFAULT 0, "
             "log_path TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '', PRIMARY KEY (dag_id, run_id, task_id, try_number), "
             "FOREIGN KEY (dag_id, run_id, task_id) REFERENCES task_instances (dag_id, run_id, task_id) ON DELETE CASCADE)");
  db.execute("CREATE TABLE xcom (dag_id " + key + " NOT NULL, run_id " + key + " NOT NULL, task_id " + key + " NOT NULL, key " +
             key + " NOT NULL, value TEXT NOT NULL, PRIMARY KEY (dag_id, run_id, task_id, key), FOREIGN KEY (dag_id, run_id, task_id) "
             "REFERENCES task_instances (dag_id, run_id, task_id) ON DELETE CASCADE)");
  // Its rows: a task that failed once and then succeeded (every column set), one still waiting.
  const std::string r = "'etl', '" + run.run_id + "', ";
  db.execute("INSERT INTO task_instances (dag_id, run_id, task_id, state, try_number, start_date, end_date, retry_at, exit_code, "
             "hostname, pid, log_path, message, first_start_date, cleared_tries, note, pool, pool_slots) VALUES (" + r +
             "'extract', 'success', 2, 1000, 2000, 1500, 0, 'worker-1', 4242, 'logs/extract/2.log', 'done', 900, 1, "
             "'checked by hand', 'warehouse', 2)");
  db.execute("INSERT INTO task_instances (dag_id, run_id, task_id) VALUES (" + r + "'load')");
  db.execute("INSERT INTO task_tries (dag_id, run_id, task_id, try_number, state, start_date, end_date, exit_code, hostname, pid, "
             "log_path, message) VALUES (" + r + "'extract', 1, 'failed', 100, 200, 3, 'worker-2', 7, 'logs/extract/1.log', "
             "'exit status 3'), (" + r + "'extract', 2, 'success', 1000, 2000, 0, 'worker-1', 4242, 'logs/extract/2.log', 'done')");
  db.execute("INSERT INTO xcom (dag_id, run_id, task_id, key, value) VALUES (" + r + "'extract', 'return_value', '42'), (" + r +
             "'extract', 'rows', '[1,2]')");

  auto s = db.make_store();  // migrates from 5
  CHECK(s->schema_version() == latest);
  CHECK(s->find_run("etl", run.run_id)->note == "nightly load");
  const auto tis = s->task_instances("etl", run.run_id);
  REQUIRE(tis.size() == 2);
  const auto& extract = tis[0];
  CHECK(extract.task_id == "extract");
  CHECK(extract.map_index == -1);
  CHECK(extract.state == dag::task_state::success);
  CHECK(extract.try_number == 2);
  CHECK(extract.start_date == dag::timestamp{1000us});
  CHECK(extract.end_date == dag::timestamp{2000us});
  CHECK(extract.retry_at == dag::timestamp{1500us});
  CHECK(extract.exit_code == 0);
  CHECK(extract.hostname == "worker-1");
  CHECK(extract.pid == 4242);
  CHECK(extract.log_path == "logs/extract/2.log");
  CHECK(extract.message == "done");
  CHECK(extract.first_start_date == dag::timestamp{900us});
  CHECK(extract.cleared_tries == 1);
  CHECK(extract.note == "checked by hand");
  CHECK(extract.pool == "warehouse");
  CHECK(extract.pool_slots == 2);
  CHECK(tis[1].task_id == "load");
  CHECK(tis[1].map_index == -1);
  CHECK(tis[1].state == dag::task_state::none);
  CHECK(tis[1].pool == "default_pool");
  const auto tries = s->tries("etl", run.run_id, "extract");
  REQUIRE(tries.size() == 2);
  CHECK(tries[0].map_index == -1);
  check_first_failed_try(tries[0]);
  CHECK(tries[1].try_number == 2);
  CHECK(tries[1].state == dag::task_state::success);
  const auto xcoms = s->xcoms("etl", run.run_id, "extract");
  REQUIRE(xcoms.size() == 2);
  CHECK(xcoms[0].key == "return_value");
  CHECK(xcoms[0].value == "42");
  CHECK(xcoms[0].map_index == -1);
  CHECK(xcoms[1].key == "rows");
  CHECK(xcoms[1].map_index == -1);
  CHECK(s->xcom("etl", run.run_id, "extract") == "42");

  // The new keys: instances of the same task with a map index sit beside the unmapped one, with
  // tries and XComs of their own; the old rows still take their own updates.
  dag::change_set mapped;
  for (int k = 0; k < 2; ++k) {
    auto u = moving(run, "extract", dag::task_state::none, 0, dag::task_state::success, 1);
    u.record.map_index = k;
    mapped.task_instances.push_back(u);
    mapped.tries.push_back(dag::try_record_of(u.record));
    auto x = an_xcom(run, "extract", "return_value", std::to_string(k));
    x.map_index = k;
    mapped.xcoms.push_back(x);
  }
  mapped.task_instances.push_back(moving(run, "load", dag::task_state::none, 0, dag::task_state::queued, 1));
  CHECK(s->apply(mapped).task_instances_updated == std::vector<bool>{true, true, true});
  CHECK(s->task_instances("etl", run.run_id).size() == 4);
  CHECK(s->tries("etl", run.run_id, "extract", 1).size() == 1);
  CHECK(s->tries("etl", run.run_id, "extract").size() == 2);  // the unmapped instance's, untouched
  CHECK(s->xcoms("etl", run.run_id, "extract").size() == 4);
  // Deleting the run takes every row of every instance with it (the foreign keys were kept).
  CHECK(s->delete_run("etl", run.run_id));
  CHECK(s->task_instances("etl", run.run_id).empty());
  CHECK(s->tries("etl", run.run_id, "extract").empty());
  CHECK(s->xcoms("etl", run.run_id, "extract").empty());
}

TEST_CASE_TEMPLATE("Store.MigrationTenKeepsEveryTryAndCountsTheTriesInFlight", database, STORE_BACKENDS) {
  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  const int latest = [&] {
    auto s = db.make_store();
    REQUIRE(s->apply(creating(run, {"extract", "load"})).runs_created == std::vector<bool>{true});
    dag::change_set c;
    c.task_instances.push_back(moving(run, "extract", dag::task_state::none, 0, dag::task_state::running, 2));
    c.task_instances.push_back(moving(run, "load", dag::task_state::none, 0, dag::task_state::queued, 1));
    c.task_instances[0].record.pool_slots = 3;
    dag::try_record failed = a_try(run, "extract", 1, dag::task_state::failed);
    failed.start_date = dag::timestamp{100us};
    failed.end_date = dag::timestamp{200us};
    failed.exit_code = 3;
    failed.hostname = "worker-2";
    failed.pid = 7;
    failed.log_path = "logs/extract/1.log";
    failed.message = "exit status 3";
    c.tries.push_back(failed);
    REQUIRE(s->apply(c).task_instances_updated == std::vector<bool>{true, true});
    return s->schema_version();
  }();
  // A version 9 database: tries in a table of their own beside their key's index, and two
  // indexes of the instances in flight.
  const std::string key = database::key_type, instant = database::instant_type;
  db.execute("CREATE TABLE task_tries_9 (dag_id " + key + " NOT NULL, run_id " + key + " NOT NULL, task_id " + key +
             " NOT NULL, map_index INTEGER NOT NULL DEFAULT -1, try_number INTEGER NOT NULL, state TEXT NOT NULL, start_date " +
             instant + ", end_date " + instant + ", exit_code INTEGER, hostname TEXT NOT NULL DEFAULT '', pid INTEGER NOT NULL "
             "DEFAULT 0, log_path TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '', PRIMARY KEY (dag_id, run_id, "
             "task_id, map_index, try_number), FOREIGN KEY (dag_id, run_id, task_id, map_index) REFERENCES task_instances "
             "(dag_id, run_id, task_id, map_index) ON DELETE CASCADE)");
  db.execute("INSERT INTO task_tries_9 SELECT * FROM task_tries");
  db.execute("DROP TABLE task_tries");
  db.execute("ALTER TABLE task_tries_9 RENAME TO task_tries");
  db.execute("DROP INDEX task_instances_in_flight");
  db.execute("CREATE INDEX task_instances_in_flight ON task_instances (state) WHERE state IN ('queued', 'running')");
  db.execute("CREATE INDEX task_instances_by_pool ON task_instances (pool, state) WHERE state IN ('queued', 'running')");
  db.execute("DELETE FROM schema_version WHERE version > 9");

  auto s = db.make_store();  // migrates from 9
  CHECK(s->schema_version() == latest);
  // One index of the instances in flight, by state and pool; on SQLite the tries in their key's B-tree.
  CHECK(db.definition_of("task_instances_in_flight").find("(state, pool)") != std::string::npos);
  CHECK(db.definition_of("task_instances_by_pool").empty());
  CHECK(db.definition_of("task_instances_by_state").empty());
  if constexpr (std::is_same_v<database, sqlite_database>)
    CHECK(db.definition_of("task_tries").find("WITHOUT ROWID") != std::string::npos);
  const auto tries = s->tries("etl", run.run_id, "extract");
  REQUIRE(tries.size() == 2);
  check_first_failed_try(tries[0]);
  CHECK(tries[1].try_number == 2);  // the try the instance is on, as it shows it (migration 11)
  CHECK(tries[1].state == dag::task_state::running);
  // The instances in flight, by state and by pool, as recovery and the pools' counts ask for them.
  const auto in_flight = s->task_instances_in({dag::task_state::queued, dag::task_state::running});
  REQUIRE(in_flight.size() == 2);
  CHECK(in_flight[0].task_id == "extract");
  CHECK(in_flight[1].task_id == "load");
  const auto pool = s->find_pool("default_pool");
  REQUIRE(pool);
  CHECK(pool->running_slots == 3);
  CHECK(pool->queued_slots == 1);
  // A try written again replaces its row; the task instance's end takes it out of the counts.
  dag::change_set ended;
  ended.task_instances.push_back(moving(run, "extract", dag::task_state::running, 2, dag::task_state::success, 2));
  dag::try_record again = a_try(run, "extract", 1, dag::task_state::failed);
  again.message = "exit status 4";
  ended.tries.push_back(again);
  ended.tries.push_back(a_try(run, "extract", 2, dag::task_state::success));
  REQUIRE(s->apply(ended).task_instances_updated == std::vector<bool>{true});
  const auto after = s->tries("etl", run.run_id, "extract");
  REQUIRE(after.size() == 2);
  CHECK(after[0].message == "exit status 4");
  CHECK(after[1].state == dag::task_state::success);
  CHECK(s->find_pool("default_pool")->running_slots == 0);
  CHECK(s->task_instances_in({dag::task_state::running}).empty());
}

/// Rows of task_tries on the database (not the tries store::tries shows).
template <class Database>
int try_rows(const Database& db) {
  return std::stoi(db.query("SELECT count(*) FROM task_tries").value_or("-1"));
}

/// A change set of these task instance updates alone.
dag::change_set updating(std::vector<dag::task_instance_update> updates) {
  dag::change_set c;
  c.task_instances = std::move(updates);
  return c;
}

/// The instance `was` moved to `state` (try `try_number`): an update that expects what `was` shows.
dag::task_instance_update moved(const dag::task_instance_record& was, dag::task_state state, int try_number) {
  dag::task_instance_update u{was.state, was.try_number, was};
  u.record.state = state;
  u.record.try_number = try_number;
  return u;
}

TEST_CASE_TEMPLATE("Store.AnUpdateOfTheStateAloneWritesTheStateAndKeepsItsCompareAndSetAndOrder", database, STORE_BACKENDS) {
  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  auto s = db.make_store();
  REQUIRE(s->apply(creating(run, {"a", "b", "c", "e"})).runs_created == std::vector<bool>{true});
  const auto instance = [&](const std::string& task) {
    for (const auto& ti : s->task_instances("etl", run.run_id))
      if (ti.task_id == task) return ti;
    return dag::task_instance_record{};
  };
  const auto state_only = [&](const std::string& task, dag::task_state expected) {
    dag::task_instance_record r = instance(task);
    if (r.task_id.empty()) {  // no row: what the engine reads for it
      r.dag_id = "etl";
      r.run_id = run.run_id;
      r.task_id = task;
    }
    dag::task_instance_update u{expected, 0, r};
    u.record.state = dag::task_state::scheduled;
    // Not the row's: written only by an update of every field, which this one is not.
    u.record.hostname = "not written";
    u.state_only = true;
    return u;
  };
  // Two instances scheduled (a batch), one whose writer saw another state (it loses), one of a
  // task added after the run was created (its row is made, as for any update expecting none).
  const auto result = s->apply(updating({state_only("a", dag::task_state::none), state_only("e", dag::task_state::none),
                                         state_only("b", dag::task_state::running), state_only("d", dag::task_state::none)}));
  CHECK(result.task_instances_updated == std::vector<bool>{true, true, false, true});
  for (const char* task : {"a", "e", "d"}) {
    CAPTURE(task);
    CHECK(instance(task).state == dag::task_state::scheduled);
    CHECK(instance(task).hostname.empty());
  }
  CHECK(instance("b").state == dag::task_state::none);
  // An instance updated twice in one change set: the state alone first, then every field. Written
  // in that order (the second expects what the first leaves), so the first is written whole too.
  auto skipped = moved(instance("c"), dag::task_state::skipped, 0);
  skipped.expected = dag::task_state::scheduled;
  skipped.record.message = "skipped by its branch";
  CHECK(s->apply(updating({state_only("c", dag::task_state::none), skipped})).task_instances_updated ==
        std::vector<bool>{true, true});
  CHECK(instance("c").state == dag::task_state::skipped);
  CHECK(instance("c").message == "skipped by its branch");
}

TEST_CASE_TEMPLATE("Store.ATryItsInstanceShowsHasNoRowUntilTheInstanceMovesOffIt", database, STORE_BACKENDS) {
  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  auto s = db.make_store();
  REQUIRE(s->apply(creating(run, {"load"})).runs_created == std::vector<bool>{true});
  const auto instance = [&] { return s->task_instances("etl", run.run_id).at(0); };
  // Applies `u` with the try it ends, if any, as the engine writes an end; returns whether it won.
  const auto write = [&](const dag::task_instance_update& u, bool ends_try) -> bool {
    dag::change_set c;
    c.task_instances.push_back(u);
    if (ends_try) c.tries.push_back(dag::try_record_of(u.record));
    return s->apply(c).task_instances_updated.at(0);
  };

  // Try 1 starts, and fails with a retry to come: the instance shows it, with no row of its own.
  auto start = moved(instance(), dag::task_state::running, 1);
  start.record.start_date = dag::timestamp{100us};
  start.record.hostname = "worker-1";
  start.record.log_path = "logs/load/1.log";
  REQUIRE(write(start, false));
  auto end = moved(instance(), dag::task_state::up_for_retry, 1);
  end.record.end_date = dag::timestamp{200us};
  end.record.exit_code = 3;
  end.record.message = "exit status 3";
  REQUIRE(write(end, true));
  CHECK(try_rows(db) == 0);
  auto tries = s->tries("etl", run.run_id, "load");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0] == dag::try_record_of(end.record));

  // The retry moves the instance off try 1 (scheduled, then try 2 starts): try 1 is kept as it was.
  REQUIRE(write(moved(instance(), dag::task_state::scheduled, 1), false));
  CHECK(try_rows(db) == 1);
  auto retry = moved(instance(), dag::task_state::running, 2);
  retry.record.start_date = dag::timestamp{300us};
  retry.record.end_date.reset();
  retry.record.exit_code.reset();
  retry.record.message.clear();
  retry.record.log_path = "logs/load/2.log";
  REQUIRE(write(retry, false));
  auto success = moved(instance(), dag::task_state::success, 2);
  success.record.end_date = dag::timestamp{400us};
  REQUIRE(write(success, true));
  tries = s->tries("etl", run.run_id, "load");
  REQUIRE(tries.size() == 2);
  CHECK(tries[0] == dag::try_record_of(end.record));
  CHECK(tries[1] == dag::try_record_of(success.record));
  CHECK(try_rows(db) == 1);

  // Marked failed by hand, then cleared: try 2 stays what it was, a success.
  auto marked = moved(instance(), dag::task_state::failed, 2);
  marked.record.message = "marked failed";
  REQUIRE(write(marked, false));
  REQUIRE(write(moved(instance(), dag::task_state::none, 2), false));
  tries = s->tries("etl", run.run_id, "load");
  REQUIRE(tries.size() == 2);
  CHECK(tries[0] == dag::try_record_of(end.record));
  CHECK(tries[1] == dag::try_record_of(success.record));
  CHECK(try_rows(db) == 2);
  // An update that moves nothing off a try keeps nothing: a cleared instance scheduled, a note.
  REQUIRE(write(moved(instance(), dag::task_state::scheduled, 2), false));
  CHECK(s->set_note("etl", run.run_id, "load", "looked at it"));
  CHECK(try_rows(db) == 2);
}

TEST_CASE_TEMPLATE("Store.ALogFileInTheEnginesLayoutIsKeptAsItsFolderAndReadWhole", database, STORE_BACKENDS) {
  // A try's log file in the layout of dag/core/log_file.hpp takes its folder's room in its rows
  // (a try's start grows the instance's row by little); every other path is kept as it is.
  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  auto s = db.make_store();
  REQUIRE(s->apply(creating(run, {"load", "copy"})).runs_created == std::vector<bool>{true});
  const auto instance = [&](const std::string& task_id, int map_index = -1) {
    for (const auto& ti : s->task_instances("etl", run.run_id))
      if (ti.task_id == task_id && ti.map_index == map_index) return ti;
    FAIL("no instance " << task_id << " " << map_index);
    return dag::task_instance_record{};
  };
  const auto stored = [&](const std::string& table, const std::string& task_id = "load", int map_index = -1) {
    return db.query("SELECT log_path FROM " + table + " WHERE task_id = '" + task_id + "' AND map_index = " +
                    std::to_string(map_index) + " ORDER BY try_number DESC LIMIT 1")
        .value_or("?");
  };
  const auto write = [&](std::vector<dag::task_instance_update> updates) -> std::vector<bool> {
    dag::change_set c;
    c.task_instances = std::move(updates);
    return s->apply(c).task_instances_updated;
  };
  const auto log_of = [&](std::string_view folder, int try_number, const std::string& task_id = "load", int map_index = -1) {
    return dag::log_file_of(folder, "etl", run.run_id, task_id, map_index, try_number);
  };
  const auto starting = [&](const dag::task_instance_record& ti, int try_number, const std::string& path) {
    auto u = moved(ti, dag::task_state::running, try_number);
    u.record.start_date = dag::timestamp{100us * try_number};
    u.record.log_path = path;
    return u;
  };

  // Two instances in one change set (PostgreSQL's set-based write of many rows), each its layout.
  REQUIRE(write({starting(instance("load"), 1, log_of("/var/log/dagrun", 1)),
                 starting(instance("copy"), 1, log_of("/var/log/dagrun", 1, "copy"))}) == std::vector<bool>{true, true});
  CHECK(stored("task_instances") == "/var/log/dagrun/");
  CHECK(stored("task_instances", "copy") == "/var/log/dagrun/");
  CHECK(instance("load").log_path == log_of("/var/log/dagrun", 1));
  CHECK(instance("copy").log_path == log_of("/var/log/dagrun", 1, "copy"));
  // The try an instance is on, read as a try (from the instance's row).
  REQUIRE(s->tries("etl", run.run_id, "load").size() == 1);
  CHECK(s->tries("etl", run.run_id, "load")[0].log_path == log_of("/var/log/dagrun", 1));
  // Moved off its try (retried): the try's row keeps it the same way, and reads it whole.
  auto retry = moved(instance("load"), dag::task_state::up_for_retry, 1);
  retry.record.end_date = dag::timestamp{200us};
  REQUIRE(write({retry}) == std::vector<bool>{true});
  REQUIRE(write({moved(instance("load"), dag::task_state::scheduled, 1)}) == std::vector<bool>{true});
  CHECK(stored("task_tries") == "/var/log/dagrun/");
  REQUIRE(s->tries("etl", run.run_id, "load").size() == 1);
  CHECK(s->tries("etl", run.run_id, "load")[0].log_path == log_of("/var/log/dagrun", 1));

  // A mapped task's instance (its row made by the update: the task was mapped after the run began).
  auto mapped = starting(instance("copy"), 1, log_of("logs", 1, "copy", 3));
  mapped.record.map_index = 3;
  mapped.expected = dag::task_state::none;
  mapped.expected_try = 0;
  REQUIRE(write({mapped}) == std::vector<bool>{true});
  CHECK(stored("task_instances", "copy", 3) == "logs/");
  CHECK(instance("copy", 3).log_path == log_of("logs", 1, "copy", 3));

  // Paths of any other shape are kept whole: not the layout, the layout of another try or
  // instance, no folder.
  for (const std::string& path : {std::string("logs/load/2.log"), log_of("/var/log/dagrun", 1), log_of("/l", 2, "load", 0),
                                  log_of("", 2), std::string()}) {
    CAPTURE(path);
    REQUIRE(write({starting(instance("load"), 2, path)}) == std::vector<bool>{true});
    CHECK(stored("task_instances") == path);
    CHECK(instance("load").log_path == path);
    auto back = moved(instance("load"), dag::task_state::scheduled, 1);
    back.record.log_path = instance("load").log_path;
    REQUIRE(write({back}) == std::vector<bool>{true});
  }
  // A folder is no log file (it would read back as one): refused, and nothing of its change set
  // written (the other instance's end is not either).
  auto done = moved(instance("copy"), dag::task_state::success, 1);
  done.record.end_date = dag::timestamp{500us};
  check_usage_error([&] { write({done, starting(instance("load"), 2, "/var/log/dagrun/")}); },
                    "log_path '/var/log/dagrun/' ends with '/'");
  CHECK(instance("load").state == dag::task_state::scheduled);
  CHECK(instance("copy").state == dag::task_state::running);
}

TEST_CASE_TEMPLATE("Store.TheSqlThatGoesBackBeforeMigrationTwelveWritesEveryLogFileWhole", database, STORE_BACKENDS) {
  // docs/reliability.md, "Upgrading": the SQL that writes every log file whole, as a dagrun
  // before migration 12 reads it, and gives the database that version back.
  std::ifstream doc(std::string(DAG_SOURCE_DIR) + "/docs/reliability.md");
  const std::string text{std::istreambuf_iterator<char>(doc), std::istreambuf_iterator<char>()};
  const auto after = text.find("Migration 12");
  REQUIRE(after != std::string::npos);
  const auto open = text.find("```sql\n", after);
  REQUIRE(open != std::string::npos);
  const auto close = text.find("```", open + 7);
  REQUIRE(close != std::string::npos);
  const std::string sql = text.substr(open + 7, close - open - 7);

  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  auto s = db.make_store();
  REQUIRE(s->apply(creating(run, {"load", "copy"})).runs_created == std::vector<bool>{true});
  const auto log_of = [&](const std::string& task_id, int map_index, int try_number) {
    return dag::log_file_of("/var/log/dagrun", "etl", run.run_id, task_id, map_index, try_number);
  };
  dag::change_set c;
  for (const auto& ti : s->task_instances("etl", run.run_id)) {
    auto u = moved(ti, dag::task_state::running, 1);
    u.record.log_path = log_of(ti.task_id, -1, 1);
    c.task_instances.push_back(u);
  }
  auto mapped = *std::find_if(c.task_instances.begin(), c.task_instances.end(),
                              [](const auto& u) { return u.record.task_id == "copy"; });
  mapped.record.map_index = 2;
  mapped.record.log_path = log_of(mapped.record.task_id, 2, 1);
  c.task_instances.push_back(mapped);
  REQUIRE(s->apply(c).task_instances_updated == std::vector<bool>{true, true, true});
  // The first one retried: its try 1 is a row of task_tries, and it is on try 2.
  const auto load = [&] {
    for (const auto& ti : s->task_instances("etl", run.run_id))
      if (ti.task_id == "load") return ti;
    FAIL("no instance of load");
    return dag::task_instance_record{};
  };
  REQUIRE(s->apply(updating({moved(load(), dag::task_state::scheduled, 1)})).task_instances_updated == std::vector<bool>{true});
  auto again = moved(load(), dag::task_state::running, 2);
  again.record.log_path = log_of("load", -1, 2);
  REQUIRE(s->apply(updating({again})).task_instances_updated == std::vector<bool>{true});
  REQUIRE(db.query("SELECT count(*) FROM task_instances WHERE log_path = '/var/log/dagrun/'") == "3");
  REQUIRE(db.query("SELECT count(*) FROM task_tries WHERE log_path = '/var/log/dagrun/'") == "1");

  s.reset();
  db.execute(sql);
  CHECK(db.query("SELECT max(version) FROM schema_version") == "11");
  CHECK(db.query("SELECT log_path FROM task_instances WHERE task_id = 'load' AND map_index = -1") == log_of("load", -1, 2));
  CHECK(db.query("SELECT log_path FROM task_instances WHERE task_id = 'copy' AND map_index = -1") == log_of("copy", -1, 1));
  CHECK(db.query("SELECT log_path FROM task_instances WHERE task_id = 'copy' AND map_index = 2") == log_of("copy", 2, 1));
  CHECK(db.query("SELECT log_path FROM task_tries WHERE task_id = 'load'") == log_of("load", -1, 1));
  // And this dagrun, migrating again, reads them as it wrote them.
  auto back = db.make_store();
  CHECK(back->schema_version() == 12);
  CHECK(back->tries("etl", run.run_id, "load").at(0).log_path == log_of("load", -1, 1));
  CHECK(back->tries("etl", run.run_id, "load").at(1).log_path == log_of("load", -1, 2));
}

TEST_CASE_TEMPLATE("Store.AClearOfManyInstancesKeepsEachTryItMovesThemOffInOneGo", database, STORE_BACKENDS) {
  // A clear of a whole run (here 7,000 instances: more than one batch of PostgreSQL's set-based
  // writes) keeps the try each instance showed as a row, as it was; an update that loses its
  // compare-and-set (the instance moved on meanwhile) keeps nothing.
  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  auto s = db.make_store();
  constexpr int count = 7000;
  std::vector<std::string> task_ids;
  for (int i = 0; i < count; ++i) {
    const std::string number = std::to_string(i);
    task_ids.push_back("t" + std::string(4 - number.size(), '0') + number);  // in the store's order
  }
  REQUIRE(s->apply(creating(run, task_ids)).runs_created == std::vector<bool>{true});
  dag::change_set ended;
  for (const auto& ti : s->task_instances("etl", run.run_id)) {
    auto u = moved(ti, dag::task_state::success, 1);
    u.record.start_date = dag::timestamp{100us};
    u.record.end_date = dag::timestamp{200us};
    u.record.message = "done " + ti.task_id;
    ended.task_instances.push_back(u);
    ended.tries.push_back(dag::try_record_of(u.record));
  }
  REQUIRE(s->apply(ended).applied);
  CHECK(try_rows(db) == 0);

  dag::change_set clear;
  for (const auto& ti : s->task_instances("etl", run.run_id)) clear.task_instances.push_back(moved(ti, dag::task_state::none, 1));
  clear.task_instances.back().expected_try = 2;  // stale: the instance is on try 1
  const std::string stale = clear.task_instances.back().record.task_id;
  REQUIRE(stale == "t6999");
  const auto result = s->apply(clear);
  CHECK(std::count(result.task_instances_updated.begin(), result.task_instances_updated.end(), true) == count - 1);
  CHECK(try_rows(db) == count - 1);
  for (const char* task : {"t0000", "t4999", "t5000", "t6998"}) {  // both sides of PostgreSQL's batches of 5,000
    const auto tries = s->tries("etl", run.run_id, task);
    REQUIRE(tries.size() == 1);
    CHECK(tries[0].state == dag::task_state::success);
    CHECK(tries[0].message == std::string("done ") + task);
  }
  const auto kept = s->tries("etl", run.run_id, stale);  // still the instance's own try, shown
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].state == dag::task_state::success);
}

TEST_CASE_TEMPLATE("Store.AnEndAndWhatItsPassDoesNextKeepTheTryThatEnded", database, STORE_BACKENDS) {
  // One pass, as the engine writes it: try 1 fails with a retry to come, and in the same pass the
  // retry starts (try 2), or the run's dagrun_timeout skips the instance (still on try 1). With the
  // try's record in the change set, as the engine sends it, and without (from the update alone).
  for (const bool retried : {true, false}) {
    for (const bool with_record : {true, false}) {
      CAPTURE(retried);
      CAPTURE(with_record);
      database db;
      const auto run = daily_run("etl", utc(2024, 1, 1));
      auto s = db.make_store();
      REQUIRE(s->apply(creating(run, {"load"})).runs_created == std::vector<bool>{true});
      auto start = moved(s->task_instances("etl", run.run_id).at(0), dag::task_state::running, 1);
      start.record.start_date = dag::timestamp{100us};
      start.record.log_path = "logs/load/1.log";
      REQUIRE(s->apply(updating({start})).task_instances_updated == std::vector<bool>{true});
      auto end = moved(start.record, dag::task_state::up_for_retry, 1);
      end.record.end_date = dag::timestamp{200us};
      end.record.message = "exit status 3";
      auto next = moved(end.record, retried ? dag::task_state::running : dag::task_state::skipped, retried ? 2 : 1);
      if (retried) {
        next.record.start_date = dag::timestamp{300us};
        next.record.end_date.reset();
        next.record.log_path = "logs/load/2.log";
      }
      next.record.message = retried ? "" : "the run exceeded its dagrun_timeout";
      dag::change_set pass = updating({end, next});
      if (with_record) pass.tries = {dag::try_record_of(end.record)};
      pass.all_or_nothing = true;
      REQUIRE(s->apply(pass).task_instances_updated == std::vector<bool>{true, true});
      const auto tries = s->tries("etl", run.run_id, "load");
      REQUIRE(tries.size() == (retried ? 2 : 1));
      CHECK(tries[0] == dag::try_record_of(end.record));  // the try as it ended, not as skipped
      if (retried) CHECK(tries[1] == dag::try_record_of(next.record));
      CHECK(try_rows(db) == 1);
    }
  }
}

TEST_CASE_TEMPLATE("Store.ARescheduledTryWaitingForASlotIsKeptWhenCleared", database, STORE_BACKENDS) {
  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  auto s = db.make_store();
  REQUIRE(s->apply(creating(run, {"wait"})).runs_created == std::vector<bool>{true});
  auto start = moved(s->task_instances("etl", run.run_id).at(0), dag::task_state::running, 1);
  start.record.start_date = dag::timestamp{100us};
  REQUIRE(s->apply(updating({start})).task_instances_updated == std::vector<bool>{true});
  // The poke ends rescheduled; its next poke is due, but waits for a slot.
  auto poked = moved(start.record, dag::task_state::up_for_reschedule, 1);
  poked.record.first_start_date = dag::timestamp{100us};
  poked.record.end_date = dag::timestamp{200us};
  dag::change_set end;
  end.task_instances = {poked};
  end.tries = {dag::try_record_of(poked.record)};
  REQUIRE(s->apply(end).task_instances_updated == std::vector<bool>{true});
  auto waiting = moved(poked.record, dag::task_state::scheduled, 1);
  REQUIRE(s->apply(updating({waiting})).task_instances_updated == std::vector<bool>{true});
  CHECK(try_rows(db) == 0);
  auto tries = s->tries("etl", run.run_id, "wait");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0] == dag::try_record_of(poked.record));  // up_for_reschedule, from its first poke
  // Cleared (its first start forgotten): the try is kept as it was.
  auto cleared = moved(waiting.record, dag::task_state::none, 1);
  cleared.record.first_start_date.reset();
  REQUIRE(s->apply(updating({cleared})).task_instances_updated == std::vector<bool>{true});
  CHECK(try_rows(db) == 1);
  tries = s->tries("etl", run.run_id, "wait");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0] == dag::try_record_of(poked.record));
}

TEST_CASE_TEMPLATE("Store.ATrysLateEndSaysMoreThanTheRowKeptWhenItsInstanceWasCleared", database, STORE_BACKENDS) {
  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  auto s = db.make_store();
  REQUIRE(s->apply(creating(run, {"load", "poke"})).runs_created == std::vector<bool>{true});
  const auto instance = [&](const std::string& task_id) {
    for (auto& ti : s->task_instances("etl", run.run_id))
      if (ti.task_id == task_id) return ti;
    FAIL("no instance " << task_id);
    return dag::task_instance_record{};
  };
  dag::change_set starts;
  for (const char* task_id : {"load", "poke"}) {
    starts.task_instances.push_back(moved(instance(task_id), dag::task_state::running, 1));
    starts.task_instances.back().record.start_date = dag::timestamp{100us};
  }
  REQUIRE(s->apply(starts).task_instances_updated == std::vector<bool>{true, true});
  // Both are cleared while their tries run: the tries are kept as running.
  dag::change_set clears;
  for (const char* task_id : {"load", "poke"}) clears.task_instances.push_back(moved(instance(task_id), dag::task_state::none, 1));
  REQUIRE(s->apply(clears).task_instances_updated == std::vector<bool>{true, true});
  CHECK(try_rows(db) == 2);
  CHECK(s->tries("etl", run.run_id, "load").at(0).state == dag::task_state::running);
  // Their ends come late: refused for the instances, written for the tries (a try's end, and a
  // poke's end where the try has no other row than the one kept while it ran).
  dag::change_set ends;
  auto load_end = moved(instance("load"), dag::task_state::success, 1);
  load_end.expected = dag::task_state::running;
  load_end.record.start_date = dag::timestamp{100us};
  load_end.record.end_date = dag::timestamp{500us};
  auto poke_end = moved(instance("poke"), dag::task_state::up_for_reschedule, 1);
  poke_end.expected = dag::task_state::running;
  poke_end.record.start_date = dag::timestamp{100us};
  poke_end.record.end_date = dag::timestamp{600us};
  ends.task_instances = {load_end, poke_end};
  ends.tries.push_back(dag::try_record_of(load_end.record));
  ends.tries_if_absent.push_back(dag::try_record_of(poke_end.record));
  REQUIRE(s->apply(ends).task_instances_updated == std::vector<bool>{false, false});
  CHECK(s->tries("etl", run.run_id, "load").at(0) == dag::try_record_of(load_end.record));
  CHECK(s->tries("etl", run.run_id, "poke").at(0) == dag::try_record_of(poke_end.record));
  // A poke's end where the try has an ended row leaves that row as it is.
  dag::change_set again;
  auto later = poke_end;
  later.record.end_date = dag::timestamp{700us};
  again.tries_if_absent.push_back(dag::try_record_of(later.record));
  s->apply(again);
  CHECK(s->tries("etl", run.run_id, "poke").at(0) == dag::try_record_of(poke_end.record));
}

TEST_CASE_TEMPLATE("Store.AnEndTheInstanceShowsReplacesEveryRowOfItsTry", database, STORE_BACKENDS) {
  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  auto s = db.make_store();
  REQUIRE(s->apply(creating(run, {"wait"})).runs_created == std::vector<bool>{true});
  auto start = moved(s->task_instances("etl", run.run_id).at(0), dag::task_state::running, 1);
  start.record.start_date = dag::timestamp{100us};
  start.record.first_start_date = dag::timestamp{50us};  // a rescheduled try: its first poke started at 50
  REQUIRE(s->apply(updating({start})).task_instances_updated == std::vector<bool>{true});
  // A late end of an earlier poke, refused while the instance is on the try: no row, the
  // instance shows the try.
  dag::try_record earlier = a_try(run, "wait", 1, dag::task_state::up_for_reschedule);
  earlier.start_date = dag::timestamp{50us};
  earlier.end_date = dag::timestamp{60us};
  dag::change_set late;
  late.tries_if_absent.push_back(earlier);
  s->apply(late);
  CHECK(try_rows(db) == 0);
  CHECK(s->tries("etl", run.run_id, "wait").at(0).state == dag::task_state::running);
  // A row of the try written all the same (a record given alone is written as given).
  dag::change_set given;
  given.tries.push_back(earlier);
  s->apply(given);
  CHECK(try_rows(db) == 1);
  // The try ends: the instance shows it, from its first poke, and the earlier row goes.
  auto end = moved(s->task_instances("etl", run.run_id).at(0), dag::task_state::success, 1);
  end.expected_start = dag::timestamp{100us};
  end.record.start_date = end.record.first_start_date;
  end.record.first_start_date.reset();
  end.record.end_date = dag::timestamp{900us};
  dag::change_set e;
  e.task_instances.push_back(end);
  e.tries.push_back(dag::try_record_of(end.record));
  REQUIRE(s->apply(e).task_instances_updated == std::vector<bool>{true});
  CHECK(try_rows(db) == 0);
  const auto tries = s->tries("etl", run.run_id, "wait");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0].state == dag::task_state::success);
  CHECK(tries[0].start_date == dag::timestamp{50us});
  CHECK(tries[0].end_date == dag::timestamp{900us});
}

TEST_CASE_TEMPLATE("Store.MigrationElevenLeavesTheTryAnInstanceIsOnToTheInstance", database, STORE_BACKENDS) {
  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  {
    auto s = db.make_store();
    REQUIRE(s->apply(creating(run, {"wait", "load"})).runs_created == std::vector<bool>{true});
    dag::change_set c;
    for (auto& ti : s->task_instances("etl", run.run_id)) {
      // wait: rescheduled, its next poke running; load: try 1 failed, try 2 running.
      const bool wait = ti.task_id == "wait";
      c.task_instances.push_back(moved(ti, dag::task_state::running, wait ? 1 : 2));
      c.task_instances.back().record.start_date = dag::timestamp{300us};
      if (wait) c.task_instances.back().record.first_start_date = dag::timestamp{100us};
    }
    REQUIRE(s->apply(c).task_instances_updated == std::vector<bool>{true, true});
  }
  // A version 10 database wrote a row for every poke's end and every try's end.
  dag::try_record poke = a_try(run, "wait", 1, dag::task_state::up_for_reschedule);
  poke.start_date = dag::timestamp{100us};
  poke.end_date = dag::timestamp{200us};
  dag::try_record failed = a_try(run, "load", 1, dag::task_state::failed);
  failed.end_date = dag::timestamp{200us};
  {
    dag::change_set rows;
    rows.tries = {poke, failed};
    db.make_store()->apply(rows);
  }
  REQUIRE(try_rows(db) == 2);
  db.execute("DELETE FROM schema_version WHERE version > 10");

  auto s = db.make_store();  // migrates from 10
  CHECK(s->schema_version() == 12);
  CHECK(try_rows(db) == 1);  // the poke's row went: its instance shows the try
  auto waits = s->tries("etl", run.run_id, "wait");
  REQUIRE(waits.size() == 1);
  CHECK(waits[0].state == dag::task_state::running);
  CHECK(waits[0].start_date == dag::timestamp{100us});  // from its first poke
  auto loads = s->tries("etl", run.run_id, "load");
  REQUIRE(loads.size() == 2);
  CHECK(loads[0] == failed);
  CHECK(loads[1].state == dag::task_state::running);
}

TEST_CASE_TEMPLATE("Store.ReopeningAFileKeepsItsData", database, STORE_BACKENDS) {
  database db;
  const auto run = daily_run("etl", utc(2024, 1, 1));
  {
    auto s = db.make_store();
    REQUIRE(s->apply(creating(run, {"extract", "load"})).runs_created == std::vector<bool>{true});
    s->set_variable("v", "1");
    s->set_connection({"warehouse", "postgresql", "db.example", 5432, "etl", "pw", "dw"});
    s->set_paused("etl", true);
    s->set_import_errors({{"dags/bad.yaml", "dags/bad.yaml:3: unknown operator 'bsh'"}});
  }
  auto s = db.make_store();
  auto found = s->find_run("etl", run.run_id);
  REQUIRE(found.has_value());
  check_same_run(*found, run);
  CHECK(task_ids(s->task_instances("etl", run.run_id)) == std::vector<std::string>{"extract", "load"});
  CHECK(s->variable("v") == "1");
  REQUIRE(s->find_connection("warehouse").has_value());
  CHECK(s->find_connection("warehouse")->password == "pw");
  CHECK(s->paused_dags() == std::set<std::string>{"etl"});
  CHECK(s->import_errors().size() == 1);
}

TEST_CASE_TEMPLATE("Store.DatasetEventsQueueForConsumersAndARunTakesThemOnce", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  s->register_datasets({"s3://b/x"}, {{"report", {"s3://b/x", "s3://b/y"}}});
  CHECK(s->datasets().size() == 2);  // the consumer's datasets are datasets too
  dag::dataset_event_record e;
  e.uri = "s3://b/nowhere";
  CHECK_FALSE(s->add_dataset_event(e));  // an unknown dataset
  e.uri = "s3://b/x";
  e.when = at(utc(2024, 1, 1), 5us);
  const auto first = s->add_dataset_event(e);
  REQUIRE(first);
  CHECK(first->id > 0);
  e.when = at(utc(2024, 1, 2));
  REQUIRE(s->add_dataset_event(e));
  CHECK(s->find_dataset("s3://b/x")->updated_at == at(utc(2024, 1, 2)));
  CHECK(s->queued_datasets() == std::map<std::string, std::set<std::string>>{{"report", {"s3://b/x"}}});

  // A task's event is recorded once per try, whoever reports it.
  dag::change_set task_end;
  task_end.dataset_events.push_back({0, "s3://b/y", "{}", "load", "manual__x", "put", 1, at(utc(2024, 1, 3))});
  task_end.dataset_events.push_back(task_end.dataset_events.back());
  // Each instance of a mapped task has its own try: one event each.
  task_end.dataset_events.push_back({0, "s3://b/y", "{}", "load", "manual__x", "each", 1, at(utc(2024, 1, 3)), 0});
  task_end.dataset_events.push_back({0, "s3://b/y", "{}", "load", "manual__x", "each", 1, at(utc(2024, 1, 3)), 1});
  s->apply(task_end);
  dag::dataset_event_filter of_load;
  of_load.source_dag_id = "load";
  of_load.source_task_id = "each";
  CHECK(s->dataset_events(of_load).size() == 2);
  of_load.source_map_index = 1;
  REQUIRE(s->dataset_events(of_load).size() == 1);
  CHECK(s->dataset_events(of_load).front().source_map_index == 1);
  of_load.source_map_index.reset();
  of_load.source_task_id = "put";
  CHECK(s->dataset_events(of_load).size() == 1);
  of_load.source_task_id.reset();

  dag::run_record run = daily_run("report", utc(2024, 1, 4), dag::run_type::dataset_triggered);
  CHECK(run.run_id == "dataset_triggered__2024-01-04T00:00:00+00:00");
  CHECK_FALSE(s->create_dataset_run(run, {"a"}, {"s3://b/x", "s3://b/z"}));  // s3://b/z is not queued: nothing happens
  CHECK_FALSE(s->find_run("report", run.run_id));
  CHECK(s->create_dataset_run(run, {"a"}, {"s3://b/x", "s3://b/y"}));
  CHECK(s->find_run("report", run.run_id)->type == dag::run_type::dataset_triggered);
  CHECK(task_ids(s->task_instances("report", run.run_id)) == std::vector<std::string>{"a"});
  CHECK(s->triggering_dataset_events("report", run.run_id).size() == 5);  // x twice, y from put and each instance
  CHECK(s->runs_triggered_by(first->id).size() == 1);
  CHECK(s->queued_datasets().empty());
  CHECK_FALSE(s->create_dataset_run(daily_run("report", utc(2024, 1, 5), dag::run_type::dataset_triggered), {"a"},
                                    {"s3://b/x", "s3://b/y"}));  // taken already

  // A DAG that no longer consumes a dataset loses its queue entry for it; deleting the run
  // forgets its triggering events.
  e.when = at(utc(2024, 1, 6));
  REQUIRE(s->add_dataset_event(e));
  s->register_datasets({}, {{"report", {"s3://b/y"}}});
  CHECK(s->queued_datasets().empty());
  REQUIRE(s->delete_run("report", run.run_id));
  CHECK(s->triggering_dataset_events("report", run.run_id).empty());
  CHECK(s->dataset_events({}).size() == 6);
}

TEST_CASE_TEMPLATE("Store.RefusesADatabaseWithANewerSchema", database, STORE_BACKENDS) {
  database db;
  const int known = db.make_store()->schema_version();
  const int newer = known + 5;
  db.execute("INSERT INTO schema_version (version, applied_at) VALUES (" + std::to_string(newer) + ", 0)");
  try {
    db.make_store();
    FAIL("a database with a newer schema was opened");
  } catch (const dag::usage_error& e) {
    FAIL("a newer schema is not bad usage: " << e.what());
  } catch (const dag::error& e) {
    const std::string what = e.what();
    CHECK_MESSAGE(what.find("database schema version " + std::to_string(newer) + " is newer than this dagrun (" +
                            std::to_string(known) + ")") != std::string::npos,
                  what);
    CHECK_MESSAGE(what.find(db.name()) != std::string::npos, what);
  }
}

TEST_CASE_TEMPLATE("Store.CreatesARunWithItsTaskInstancesInStateNone", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  auto run = daily_run("etl", utc(2024, 1, 1));
  run.conf = R"({"limit": 5})";
  run.start_date = at(utc(2024, 1, 2), 123456us);
  const auto result = s->apply(creating(run, {"transform", "extract", "load"}));
  CHECK(result.runs_created == std::vector<bool>{true});
  CHECK(result.runs_updated.empty());
  CHECK(result.task_instances_updated.empty());

  auto found = s->find_run("etl", run.run_id);
  REQUIRE(found.has_value());
  check_same_run(*found, run);
  CHECK_FALSE(s->find_run("etl", "manual__nope").has_value());
  CHECK_FALSE(s->find_run("other", run.run_id).has_value());

  const auto tis = s->task_instances("etl", run.run_id);
  CHECK(task_ids(tis) == std::vector<std::string>{"extract", "load", "transform"});
  for (const auto& ti : tis) {
    CAPTURE(ti.task_id);
    CHECK(ti.dag_id == "etl");
    CHECK(ti.run_id == run.run_id);
    CHECK(ti.state == dag::task_state::none);
    CHECK(ti.try_number == 0);
    CHECK_FALSE(ti.start_date.has_value());
    CHECK_FALSE(ti.end_date.has_value());
    CHECK_FALSE(ti.retry_at.has_value());
    CHECK_FALSE(ti.exit_code.has_value());
    CHECK(ti.hostname.empty());
    CHECK(ti.pid == 0);
    CHECK(ti.log_path.empty());
    CHECK(ti.message.empty());
  }
  CHECK(s->apply(dag::change_set{}).runs_created.empty());  // nothing to do is fine
}

TEST_CASE_TEMPLATE("Store.OneScheduledOrBackfillRunPerDateButManualRunsMayShareIt", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto date = utc(2024, 1, 1);
  const auto scheduled = daily_run("etl", date);
  REQUIRE(s->apply(creating(scheduled, {"a"})).runs_created == std::vector<bool>{true});

  dag::change_set more;
  const auto backfill = daily_run("etl", date, dag::run_type::backfill);
  auto rescheduled = daily_run("etl", date);
  rescheduled.run_id = "scheduled__again";  // another scheduler, another id, same date
  const auto manual = daily_run("etl", date, dag::run_type::manual);
  auto manual_too = manual;
  manual_too.run_id = "manual__second";
  const auto other_dag = daily_run("reports", date);
  for (const auto& r : {backfill, rescheduled, manual, manual_too, other_dag}) more.new_runs.emplace_back(r, std::vector<std::string>{"a", "b"});
  CHECK(s->apply(more).runs_created == std::vector<bool>{false, false, true, true, true});

  // A refused run gets no task instances; the existing one keeps its own.
  CHECK(s->task_instances("etl", backfill.run_id).empty());
  CHECK(s->task_instances("etl", "scheduled__again").empty());
  CHECK(task_ids(s->task_instances("etl", scheduled.run_id)) == std::vector<std::string>{"a"});
  CHECK(task_ids(s->task_instances("etl", manual.run_id)) == std::vector<std::string>{"a", "b"});

  // Within one change set too: the second run for a date loses to the first.
  dag::change_set both;
  both.new_runs.emplace_back(daily_run("etl", utc(2024, 1, 2), dag::run_type::backfill), std::vector<std::string>{"a"});
  both.new_runs.emplace_back(daily_run("etl", utc(2024, 1, 2)), std::vector<std::string>{"a"});
  CHECK(s->apply(both).runs_created == std::vector<bool>{true, false});
}

TEST_CASE_TEMPLATE("Store.RefusesADuplicateRunIdAndLeavesTheRunAlone", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1), dag::run_type::manual);
  REQUIRE(s->apply(creating(run, {"a"})).runs_created == std::vector<bool>{true});
  dag::change_set progress;
  progress.runs.push_back(moving(run, dag::run_state::queued, dag::run_state::running));
  progress.task_instances.push_back(moving(run, "a", dag::task_state::none, 0, dag::task_state::running, 1));
  REQUIRE(s->apply(progress).task_instances_updated == std::vector<bool>{true});

  auto again = run;
  again.logical_date = again.interval.start = utc(2024, 6, 1);
  CHECK(s->apply(creating(again, {"a", "b"})).runs_created == std::vector<bool>{false});
  const auto found = s->find_run("etl", run.run_id);
  REQUIRE(found.has_value());
  CHECK(found->state == dag::run_state::running);
  CHECK(found->logical_date == utc(2024, 1, 1));
  const auto tis = s->task_instances("etl", run.run_id);
  REQUIRE(task_ids(tis) == std::vector<std::string>{"a"});
  CHECK(tis[0].state == dag::task_state::running);
}

TEST_CASE_TEMPLATE("Store.CompareAndSetUpdatesWinOnlyWhenNotStale", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a", "b"})).runs_created == std::vector<bool>{true});

  SUBCASE("runs") {
    auto start = moving(run, dag::run_state::queued, dag::run_state::running);
    start.start_date = at(utc(2024, 1, 2), 5us);
    dag::change_set c;
    c.runs = {start, start};  // applied in order: the second one saw a state that is gone
    CHECK(s->apply(c).runs_updated == std::vector<bool>{true, false});

    auto finish = moving(run, dag::run_state::running, dag::run_state::success);
    finish.end_date = at(utc(2024, 1, 2, 1));
    auto stale = moving(run, dag::run_state::queued, dag::run_state::failed);
    auto missing = finish;
    missing.run_id = "scheduled__missing";
    c.runs = {stale, finish, missing};
    CHECK(s->apply(c).runs_updated == std::vector<bool>{false, true, false});

    const auto found = s->find_run("etl", run.run_id);
    REQUIRE(found.has_value());
    CHECK(found->state == dag::run_state::success);
    CHECK(found->start_date == start.start_date);  // kept: the finishing update gave none
    CHECK(found->end_date == finish.end_date);

    c.runs = {moving(run, dag::run_state::success, dag::run_state::failed)};  // gives no dates
    CHECK(s->apply(c).runs_updated == std::vector<bool>{true});
    const auto refound = s->find_run("etl", run.run_id);
    REQUIRE(refound.has_value());
    CHECK(refound->state == dag::run_state::failed);
    CHECK(refound->start_date == start.start_date);
    CHECK(refound->end_date == finish.end_date);
  }

  SUBCASE("task instances") {
    auto run_it = moving(run, "a", dag::task_state::none, 0, dag::task_state::running, 1);
    run_it.record.start_date = at(utc(2024, 1, 2), 42us);
    run_it.record.hostname = "worker-1";
    run_it.record.pid = 4242;
    run_it.record.log_path = "logs/etl/a/1.log";
    dag::change_set c;
    c.task_instances = {run_it,
                        moving(run, "a", dag::task_state::none, 0, dag::task_state::queued, 1),  // stale state
                        moving(run, "b", dag::task_state::none, 1, dag::task_state::queued, 1),  // stale try
                        // A task added to the DAG after the run was created: its instance is created.
                        moving(run, "zzz", dag::task_state::none, 0, dag::task_state::queued, 1),
                        moving(run, "yyy", dag::task_state::running, 1, dag::task_state::queued, 2)};  // no such row
    CHECK(s->apply(c).task_instances_updated == std::vector<bool>{true, false, false, true, false});

    auto retry = moving(run, "a", dag::task_state::running, 1, dag::task_state::up_for_retry, 1);
    retry.record.start_date = run_it.record.start_date;
    retry.record.end_date = at(utc(2024, 1, 2, 1));
    retry.record.retry_at = at(utc(2024, 1, 2, 2));
    retry.record.exit_code = 3;
    retry.record.hostname = "worker-1";
    retry.record.pid = 4242;
    retry.record.log_path = "logs/etl/a/1.log";
    retry.record.message = "exit status 3";
    retry.record.first_start_date = at(utc(2024, 1, 1, 23));
    retry.record.cleared_tries = 2;
    retry.expected_start = run_it.record.start_date;  // the start the writer saw, and the row has
    // The end of another poke of the same try (a rescheduled sensor's): its start is not the row's.
    auto other_poke = moving(run, "a", dag::task_state::running, 1, dag::task_state::success, 1);
    other_poke.expected_start = *run_it.record.start_date - 60s;
    dag::change_set r;
    r.task_instances = {moving(run, "a", dag::task_state::running, 0, dag::task_state::failed, 0), other_poke, retry};
    CHECK(s->apply(r).task_instances_updated == std::vector<bool>{false, false, true});

    const auto tis = s->task_instances("etl", run.run_id);
    REQUIRE(tis.size() == 3);
    CHECK(tis[2].task_id == "zzz");
    CHECK(tis[2].state == dag::task_state::queued);
    const auto& a = tis[0];
    CHECK(a.state == dag::task_state::up_for_retry);
    CHECK(a.try_number == 1);
    CHECK(a.start_date == retry.record.start_date);
    CHECK(a.end_date == retry.record.end_date);
    CHECK(a.retry_at == retry.record.retry_at);
    CHECK(a.exit_code == 3);
    CHECK(a.hostname == "worker-1");
    CHECK(a.pid == 4242);
    CHECK(a.log_path == "logs/etl/a/1.log");
    CHECK(a.message == "exit status 3");
    CHECK(a.first_start_date == retry.record.first_start_date);
    CHECK(a.cleared_tries == 2);
    CHECK(tis[1].state == dag::task_state::none);
    CHECK(tis[1].try_number == 0);

    // Every field is written: an update that leaves an optional empty clears it.
    auto again = moving(run, "a", dag::task_state::up_for_retry, 1, dag::task_state::scheduled, 1);
    dag::change_set g;
    g.task_instances = {again};
    CHECK(s->apply(g).task_instances_updated == std::vector<bool>{true});
    const auto cleared = s->task_instances("etl", run.run_id)[0];
    CHECK_FALSE(cleared.retry_at.has_value());
    CHECK_FALSE(cleared.exit_code.has_value());
    CHECK_FALSE(cleared.first_start_date.has_value());
    CHECK(cleared.cleared_tries == 0);
    CHECK(cleared.message.empty());
  }
}

TEST_CASE_TEMPLATE("Store.AnAddedTaskIsCreatedBeforeLaterUpdatesOfItInTheSameChangeSet", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a"})).runs_created == std::vector<bool>{true});

  // A task added to the DAG after the run was created, moved twice in one step (applied in order,
  // so the second move sees the first), then claimed by a writer that still thinks it absent.
  dag::change_set c;
  c.task_instances = {moving(run, "added", dag::task_state::none, 0, dag::task_state::scheduled, 0),
                      moving(run, "added", dag::task_state::scheduled, 0, dag::task_state::queued, 1),
                      moving(run, "added", dag::task_state::none, 0, dag::task_state::running, 1)};
  CHECK(s->apply(c).task_instances_updated == std::vector<bool>{true, true, false});
  const auto tis = s->task_instances("etl", run.run_id);
  REQUIRE(tis.size() == 2);
  CHECK(tis[1].task_id == "added");
  CHECK(tis[1].state == dag::task_state::queued);
  CHECK(tis[1].try_number == 1);
}

TEST_CASE_TEMPLATE("Store.ARunsFirstUpdatesInTheChangeSetThatCreatesItAreWrittenAsItsNewRows", database, STORE_BACKENDS) {
  // The scheduler writes a run with its first pass: the first update of a new instance that
  // expects a new row (none, no try) is that row as the update leaves it. A claim is still
  // counted against its pool, a stale update still loses, and a run that existed takes none of it.
  database db;
  auto s = db.make_store();
  s->set_pool({"one", 1, ""});
  const auto run = daily_run("etl", utc(2024, 1, 1), dag::run_type::backfill);
  dag::change_set c = creating(run, {"a", "b", "c", "d", "e"});
  c.task_instances.push_back(moving(run, "a", dag::task_state::none, 0, dag::task_state::scheduled, 0));
  c.task_instances.push_back(moving(run, "a", dag::task_state::scheduled, 0, dag::task_state::queued, 1));
  c.task_instances.push_back(moving(run, "b", dag::task_state::none, 0, dag::task_state::queued, 1));
  c.task_instances.push_back(moving(run, "c", dag::task_state::scheduled, 0, dag::task_state::queued, 1));  // stale
  c.task_instances.push_back(moving(run, "d", dag::task_state::none, 0, dag::task_state::skipped, 0));
  c.task_instances.push_back(moving(run, "e", dag::task_state::none, 0, dag::task_state::queued, 1));
  c.task_instances[2].record.pool = "one";
  c.task_instances[4].record.message = "ruled out by branch";
  c.task_instances[5].record.pool = "one";  // its one slot taken by b's claim
  c.runs.push_back(moving(run, dag::run_state::queued, dag::run_state::running));
  auto result = s->apply(c);
  CHECK(result.runs_created == std::vector<bool>{true});
  CHECK(result.runs_updated == std::vector<bool>{true});
  CHECK(result.task_instances_updated == std::vector<bool>{true, true, true, false, true, false});
  auto tis = s->task_instances("etl", run.run_id);
  REQUIRE(tis.size() == 5);
  CHECK(tis[0].state == dag::task_state::queued);
  CHECK(tis[0].try_number == 1);
  CHECK(tis[1].state == dag::task_state::queued);
  CHECK(tis[1].pool == "one");
  CHECK(tis[2].state == dag::task_state::none);
  CHECK(tis[3].state == dag::task_state::skipped);
  CHECK(tis[3].message == "ruled out by branch");
  CHECK(tis[3].map_index == -1);
  CHECK(tis[4].state == dag::task_state::none);
  CHECK(s->find_run("etl", run.run_id)->state == dag::run_state::running);
  CHECK(s->find_pool("one")->queued_slots == 1);

  // Another run with that date (a scheduled one: one run a date) is not created; what was decided
  // for it is refused, as lost, and the run that holds the date keeps its rows.
  const auto same_date = daily_run("etl", utc(2024, 1, 1));
  dag::change_set again = creating(same_date, {"a", "x"});
  again.task_instances.push_back(moving(same_date, "a", dag::task_state::none, 0, dag::task_state::scheduled, 0));
  again.task_instances.push_back(moving(same_date, "x", dag::task_state::none, 0, dag::task_state::queued, 1));
  again.runs.push_back(moving(same_date, dag::run_state::queued, dag::run_state::running));
  result = s->apply(again);
  CHECK(result.runs_created == std::vector<bool>{false});
  CHECK(result.runs_updated == std::vector<bool>{false});
  CHECK(result.task_instances_updated == std::vector<bool>{false, false});
  CHECK_FALSE(s->find_run("etl", same_date.run_id));
  CHECK(s->task_instances("etl", same_date.run_id).empty());
  tis = s->task_instances("etl", run.run_id);
  REQUIRE(tis.size() == 5);
  CHECK(tis[0].state == dag::task_state::queued);

  // The same run id: the run that has it keeps its state and rows.
  dag::change_set same_id = creating(run, {"a", "b", "c"});
  same_id.task_instances.push_back(moving(run, "c", dag::task_state::none, 0, dag::task_state::scheduled, 0));
  same_id.runs.push_back(moving(run, dag::run_state::running, dag::run_state::success));
  result = s->apply(same_id);
  CHECK(result.runs_created == std::vector<bool>{false});
  CHECK(result.runs_updated == std::vector<bool>{false});
  CHECK(result.task_instances_updated == std::vector<bool>{false});
  CHECK(s->find_run("etl", run.run_id)->state == dag::run_state::running);
  CHECK(s->task_instances("etl", run.run_id)[2].state == dag::task_state::none);

  // The same, all or nothing: nothing is written.
  again.all_or_nothing = true;
  dag::change_set with_it = creating(daily_run("etl", utc(2024, 1, 2)), {"a"});
  again.new_runs.push_back(with_it.new_runs.front());
  result = s->apply(again);
  CHECK_FALSE(result.applied);
  CHECK_FALSE(s->find_run("etl", daily_run("etl", utc(2024, 1, 2)).run_id));
}

TEST_CASE_TEMPLATE("Store.TextThatIsNotUtf8OrHoldsANulByteIsWrittenNotRefused", database, STORE_BACKENDS) {
  // A bash task's XCom is its last line as printed, its message may quote its output: Latin-1 or
  // binary. PostgreSQL's text holds neither a NUL nor bytes that are not UTF-8; refused, such an
  // end would fail every pass that writes it, and the scheduler would stall on it for good. There
  // each such byte becomes U+FFFD (as in JSON text); SQLite keeps the bytes.
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a", "b", "c"})).runs_created == std::vector<bool>{true});
  const std::string odd("caf\xe9 \0 \xff\xfe ok \xe2\x82\xac", 16);  // Latin-1, NUL, stray bytes, then a real euro sign
  dag::change_set c;
  c.task_instances = {moving(run, "a", dag::task_state::none, 0, dag::task_state::success, 1)};
  c.task_instances[0].record.message = odd;
  dag::try_record t;
  t.dag_id = "etl";
  t.run_id = run.run_id;
  t.task_id = "a";
  t.try_number = 1;
  t.state = dag::task_state::success;
  t.message = odd;
  c.tries.push_back(t);
  c.xcoms.push_back({"etl", run.run_id, "a", "return_value", odd});
  REQUIRE(s->apply(c).task_instances_updated == std::vector<bool>{true});
  const std::string held = std::is_same_v<database, postgres_database>
                               ? std::string("caf\xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd ok \xe2\x82\xac")
                               : odd;
  CHECK(s->xcom("etl", run.run_id, "a") == held);
  CHECK(s->task_instances("etl", run.run_id)[0].message == held);
  const auto tries = s->tries("etl", run.run_id, "a");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0].message == held);

  // The same text in a batch of two rows (PostgreSQL sends one row as scalar parameters and a
  // batch as arrays, whose elements are quoted: quotes and backslashes too).
  const std::string quoted = odd + " \"q\" \\b";
  dag::change_set two;
  for (const std::string task : {"b", "c"}) {
    two.task_instances.push_back(moving(run, task, dag::task_state::none, 0, dag::task_state::success, 1));
    two.task_instances.back().record.message = quoted;
    t.task_id = task;
    t.message = quoted;
    two.tries.push_back(t);
    two.xcoms.push_back({"etl", run.run_id, task, "return_value", quoted});
  }
  REQUIRE(s->apply(two).task_instances_updated == std::vector<bool>{true, true});
  const std::string held_quoted = held + " \"q\" \\b";
  for (const std::string task : {"b", "c"}) {
    CAPTURE(task);
    CHECK(s->xcom("etl", run.run_id, task) == held_quoted);
    const auto instances = s->task_instances("etl", run.run_id);
    const auto it = std::find_if(instances.begin(), instances.end(), [&](const auto& i) { return i.task_id == task; });
    REQUIRE(it != instances.end());
    CHECK(it->message == held_quoted);
    const auto its_tries = s->tries("etl", run.run_id, task);
    REQUIRE(its_tries.size() == 1);
    CHECK(its_tries[0].message == held_quoted);
  }
}

TEST_CASE_TEMPLATE("Store.KeysThatDifferOnlyInBytesPostgreSqlCannotHoldAreOneKeyThere", database, STORE_BACKENDS) {
  // Two XCom keys that differ only in bytes that are not UTF-8 are one key once PostgreSQL holds
  // them (each such byte is U+FFFD there): in one set-based statement they would make the upsert
  // touch a row twice, which PostgreSQL refuses, and the whole step would fail every pass.
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a"})).runs_created == std::vector<bool>{true});
  dag::change_set c;
  c.task_instances = {moving(run, "a", dag::task_state::none, 0, dag::task_state::success, 1)};
  c.xcoms.push_back({"etl", run.run_id, "a", "k\xe9", "first"});
  c.xcoms.push_back({"etl", run.run_id, "a", "k\xff", "second"});
  REQUIRE(s->apply(c).task_instances_updated == std::vector<bool>{true});
  const auto held = s->xcoms("etl", run.run_id, "a");
  if constexpr (std::is_same_v<database, postgres_database>) {
    REQUIRE(held.size() == 1);  // written in order, as one by one: the later value stays
    CHECK(held[0].key == "k\xef\xbf\xbd");
    CHECK(held[0].value == "second");
  } else {
    REQUIRE(held.size() == 2);
    CHECK(held[0].value == "first");
    CHECK(held[1].value == "second");
  }
}

TEST_CASE_TEMPLATE("Store.AnAllOrNothingChangeSetWritesNothingWhenOneCompareAndSetLoses", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a", "b"})).runs_created == std::vector<bool>{true});
  {
    dag::change_set c;  // the XCom the second change set would delete
    c.task_instances = {moving(run, "a", dag::task_state::none, 0, dag::task_state::success, 1)};
    c.xcoms.push_back({"etl", run.run_id, "a", "return_value", "kept"});
    REQUIRE(s->apply(c).task_instances_updated == std::vector<bool>{true});
  }
  // b's compare-and-set is stale (it is in none, not running): nothing of the set is written.
  dag::change_set c;
  c.all_or_nothing = true;
  c.task_instances = {moving(run, "a", dag::task_state::success, 1, dag::task_state::none, 1),
                      moving(run, "b", dag::task_state::running, 1, dag::task_state::success, 1)};
  c.xcom_deletes.push_back({"etl", run.run_id, "a", "", ""});
  c.runs.push_back({"etl", run.run_id, dag::run_state::running, dag::run_state::queued, std::nullopt, std::nullopt});
  const auto lost = s->apply(c);
  CHECK_FALSE(lost.applied);
  CHECK(lost.task_instances_updated == std::vector<bool>{true, false});  // which lost, as seen inside
  const auto tis = s->task_instances("etl", run.run_id);
  CHECK(tis[0].state == dag::task_state::success);  // rolled back
  CHECK(s->xcom("etl", run.run_id, "a") == "kept");
  CHECK(s->find_run("etl", run.run_id)->state == run.state);
  // The same set when every compare-and-set wins is written whole.
  c.task_instances.pop_back();
  c.runs.front().expected = run.state;
  const auto won = s->apply(c);
  CHECK(won.applied);
  CHECK(s->task_instances("etl", run.run_id)[0].state == dag::task_state::none);
  CHECK_FALSE(s->xcom("etl", run.run_id, "a").has_value());
  CHECK(s->find_run("etl", run.run_id)->state == dag::run_state::queued);
}

TEST_CASE_TEMPLATE("Store.KeepsEveryTryByNumber", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a", "b"})).runs_created == std::vector<bool>{true});

  auto first = a_try(run, "a", 1, dag::task_state::up_for_retry);
  first.start_date = at(utc(2024, 1, 2), 1us);
  first.end_date = at(utc(2024, 1, 2), 2us);
  first.exit_code = 1;
  first.hostname = "h1";
  first.pid = 11;
  first.log_path = "logs/a/1.log";
  first.message = "exit status 1";
  auto second = a_try(run, "a", 2, dag::task_state::running);
  second.log_path = "logs/a/2.log";
  dag::change_set c;
  c.tries = {second, first};
  s->apply(c);

  second.state = dag::task_state::success;
  second.exit_code = 0;
  second.end_date = at(utc(2024, 1, 2, 1));
  c.tries = {second};
  s->apply(c);

  const auto tries = s->tries("etl", run.run_id, "a");
  REQUIRE(tries.size() == 2);
  CHECK(tries[0].try_number == 1);
  CHECK(tries[0].state == dag::task_state::up_for_retry);
  CHECK(tries[0].start_date == first.start_date);
  CHECK(tries[0].end_date == first.end_date);
  CHECK(tries[0].exit_code == 1);
  CHECK(tries[0].hostname == "h1");
  CHECK(tries[0].pid == 11);
  CHECK(tries[0].log_path == "logs/a/1.log");
  CHECK(tries[0].message == "exit status 1");
  CHECK(tries[1].try_number == 2);
  CHECK(tries[1].state == dag::task_state::success);
  CHECK(tries[1].exit_code == 0);
  CHECK(tries[1].log_path == "logs/a/2.log");
  CHECK_FALSE(tries[1].start_date.has_value());
  CHECK(tries[1].end_date == second.end_date);
  CHECK(s->tries("etl", run.run_id, "b").empty());
}

TEST_CASE_TEMPLATE("Store.XComIsReplacedAndPulledByKey", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  const auto other = daily_run("etl", utc(2024, 1, 2));
  s->apply(creating(run, {"a", "b"}));
  s->apply(creating(other, {"a"}));
  dag::change_set c;
  c.xcoms = {an_xcom(run, "a", "return_value", "first"), an_xcom(run, "a", "rows", R"([[1,"x"]])")};
  s->apply(c);
  CHECK(s->xcom("etl", run.run_id, "a") == "first");
  CHECK(s->xcom("etl", run.run_id, "a", "rows") == R"([[1,"x"]])");
  c.xcoms = {an_xcom(run, "a", "return_value", "second")};
  s->apply(c);
  CHECK(s->xcom("etl", run.run_id, "a") == "second");
  CHECK(s->xcom("etl", run.run_id, "a", "rows") == R"([[1,"x"]])");
  CHECK_FALSE(s->xcom("etl", run.run_id, "b").has_value());
  CHECK_FALSE(s->xcom("etl", other.run_id, "a").has_value());
  CHECK_FALSE(s->xcom("etl", run.run_id, "a", "missing").has_value());
}

TEST_CASE_TEMPLATE("Store.DeletesATaskInstancesXComsBeforeWritingNewOnes", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a", "b"})).runs_created == std::vector<bool>{true});
  dag::change_set put;
  put.xcoms = {{"etl", run.run_id, "a", "return_value", "1"}, {"etl", run.run_id, "a", "other", "2"},
               {"etl", run.run_id, "b", "return_value", "3"}};
  s->apply(put);
  dag::change_set clear;
  clear.xcom_deletes = {{"etl", run.run_id, "a", "", ""}};
  CHECK_FALSE(clear.empty());
  s->apply(clear);
  CHECK_FALSE(s->xcom("etl", run.run_id, "a").has_value());
  CHECK(s->xcom("etl", run.run_id, "b") == "3");
  // In one change set the delete comes first, so a new value survives it.
  dag::change_set both;
  both.xcom_deletes = {{"etl", run.run_id, "b", "", ""}};
  both.xcoms = {{"etl", run.run_id, "b", "return_value", "4"}};
  s->apply(both);
  CHECK(s->xcom("etl", run.run_id, "b") == "4");
}

TEST_CASE_TEMPLATE("Store.MappedTaskInstancesTriesAndXComsAreKeyedByMapIndex", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"list", "each"})).runs_created == std::vector<bool>{true});
  const auto tis_before = s->task_instances("etl", run.run_id);
  REQUIRE(tis_before.size() == 2);
  CHECK(tis_before[0].map_index == -1);  // a task that is not mapped (yet)

  // Expanding: the unexpanded instance goes, three instances come (created by their updates).
  dag::change_set expand;
  dag::task_instance_record unexpanded;
  unexpanded.dag_id = "etl";
  unexpanded.run_id = run.run_id;
  unexpanded.task_id = "each";
  expand.task_instance_deletes = {unexpanded};
  for (int k = 0; k < 3; ++k) {
    auto u = moving(run, "each", dag::task_state::none, 0, dag::task_state::scheduled, 0);
    u.record.map_index = k;
    expand.task_instances.push_back(u);
  }
  CHECK(s->apply(expand).task_instances_updated == std::vector<bool>{true, true, true});
  auto tis = s->task_instances("etl", run.run_id);
  REQUIRE(tis.size() == 4);
  CHECK(tis[0].task_id == "each");  // by task id, then map index
  CHECK(tis[0].map_index == 0);
  CHECK(tis[2].map_index == 2);
  CHECK(tis[2].state == dag::task_state::scheduled);
  CHECK(tis[3].task_id == "list");

  // Each instance moves, tries and pushes on its own.
  dag::change_set ran;
  for (int k = 0; k < 3; ++k) {
    auto u = moving(run, "each", dag::task_state::scheduled, 0, dag::task_state::success, 1);
    u.record.map_index = k;
    ran.task_instances.push_back(u);
    dag::try_record t = dag::try_record_of(u.record);
    ran.tries.push_back(t);
    auto x = an_xcom(run, "each", "return_value", k == 1 ? "two words" : std::to_string(k * 10));
    x.map_index = k;
    ran.xcoms.push_back(x);
  }
  auto stale = moving(run, "each", dag::task_state::scheduled, 0, dag::task_state::failed, 1);
  stale.record.map_index = 1;
  ran.task_instances.push_back(stale);  // after the instance moved on: loses
  CHECK(s->apply(ran).task_instances_updated == std::vector<bool>{true, true, true, false});
  CHECK(s->tries("etl", run.run_id, "each", 2).size() == 1);
  CHECK(s->tries("etl", run.run_id, "each").empty());  // map index -1: none
  // xcom_pull of a mapped task: its instances' values in map index order, as one JSON list.
  CHECK(s->xcom("etl", run.run_id, "each") == R"([0,"two words",20])");
  CHECK(s->xcoms("etl", run.run_id, "each").size() == 3);

  // Clearing one instance deletes its XCom only.
  dag::change_set clear;
  clear.xcom_deletes = {{"etl", run.run_id, "each", "", "", 1}};
  s->apply(clear);
  CHECK(s->xcom("etl", run.run_id, "each") == "[0,20]");
  // A note is one instance's (Airflow's …/{task_id}/{map_index}/setNote); map index -1 names none here.
  CHECK(s->set_note("etl", run.run_id, "each", "instance 1 only", 1));
  CHECK_FALSE(s->set_note("etl", run.run_id, "each", "no such instance", 3));
  CHECK_FALSE(s->set_note("etl", run.run_id, "each", "the task is mapped"));
  for (const auto& ti : s->task_instances("etl", run.run_id))
    if (ti.task_id == "each") CHECK(ti.note == (ti.map_index == 1 ? "instance 1 only" : ""));
  CHECK(s->delete_run("etl", run.run_id));
  CHECK(s->task_instances("etl", run.run_id).empty());
}

TEST_CASE("Store.AMappedTasksXComListTakesTextThatIsNotUtf8") {
  // A bash task's XCom is its last line as printed: Latin-1 text must become U+FFFD in the list,
  // not an exception (which failed every scheduler pass that expanded over it or pulled it).
  dag::xcom_record latin1;
  latin1.map_index = 0;
  latin1.value = "caf\xe9";
  dag::xcom_record plain;
  plain.map_index = 1;
  plain.value = "ok";
  CHECK(dag::mapped_xcom_list({plain, latin1}) == "[\"caf\xef\xbf\xbd\",\"ok\"]");
}

TEST_CASE_TEMPLATE("Store.AutomatedRunsAreTheScheduledAndBackfillOnes", database, STORE_BACKENDS) {
  // What the time schedule continues from: a dataset-triggered run (of a DAG once scheduled on
  // datasets) is no step of it, as a manual run is none.
  database db;
  auto s = db.make_store();
  for (const auto& run : {daily_run("etl", utc(2024, 1, 1)), daily_run("etl", utc(2024, 1, 2), dag::run_type::backfill),
                          daily_run("etl", utc(2024, 1, 3), dag::run_type::manual),
                          daily_run("etl", utc(2024, 1, 4), dag::run_type::dataset_triggered)})
    REQUIRE(s->apply(creating(run, {"extract"})).runs_created == std::vector<bool>{true});
  dag::run_filter automated;
  automated.automated_only = true;
  std::vector<dag::run_type> types;
  for (const auto& r : s->runs(automated)) types.push_back(r.type);
  CHECK(types == std::vector<dag::run_type>{dag::run_type::backfill, dag::run_type::scheduled});
  CHECK(s->count_runs(automated) == 2);
}

TEST_CASE_TEMPLATE("Store.ListsRunsByDagStateAndDateNewestFirst", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const std::vector<dag::run_state> states{dag::run_state::success, dag::run_state::failed, dag::run_state::success,
                                           dag::run_state::running, dag::run_state::queued};
  dag::change_set c;
  for (unsigned day = 1; day <= 5; ++day) {
    auto r = daily_run("etl", utc(2024, 1, day));
    r.state = states[day - 1];
    c.new_runs.emplace_back(r, std::vector<std::string>{"a"});
  }
  auto manual = daily_run("etl", utc(2024, 1, 3, 12), dag::run_type::manual);
  c.new_runs.emplace_back(manual, std::vector<std::string>{"a"});
  c.new_runs.emplace_back(daily_run("reports", utc(2024, 1, 4, 6)), std::vector<std::string>{"a"});
  REQUIRE(s->apply(c).runs_created == std::vector<bool>(7, true));

  const auto id = [](unsigned day) { return dag::make_run_id(dag::run_type::scheduled, utc(2024, 1, day)); };
  const std::string reports_run = dag::make_run_id(dag::run_type::scheduled, utc(2024, 1, 4, 6));

  dag::run_filter all;
  CHECK(run_ids(s->runs(all)) ==
        std::vector<std::string>{id(5), reports_run, id(4), manual.run_id, id(3), id(2), id(1)});

  dag::run_filter etl;
  etl.dag_id = "etl";
  CHECK(run_ids(s->runs(etl)) == std::vector<std::string>{id(5), id(4), manual.run_id, id(3), id(2), id(1)});

  auto finished = etl;
  finished.states = {dag::run_state::success, dag::run_state::failed};
  CHECK(run_ids(s->runs(finished)) == std::vector<std::string>{id(3), id(2), id(1)});

  auto window = etl;
  window.logical_from = utc(2024, 1, 2);
  window.logical_to = utc(2024, 1, 4);  // both ends included
  CHECK(run_ids(s->runs(window)) == std::vector<std::string>{id(4), manual.run_id, id(3), id(2)});

  auto newest = etl;
  newest.limit = 2;
  CHECK(run_ids(s->runs(newest)) == std::vector<std::string>{id(5), id(4)});

  auto combined = window;
  combined.states = {dag::run_state::success, dag::run_state::queued};
  combined.limit = 1;
  CHECK(run_ids(s->runs(combined)) == std::vector<std::string>{manual.run_id});  // a manual run starts queued

  dag::run_filter nothing;
  nothing.dag_id = "nope";
  CHECK(s->runs(nothing).empty());

  const auto listed = s->runs(etl);
  REQUIRE(listed.size() == 6);
  check_same_run(listed[2], manual);
}

TEST_CASE_TEMPLATE("Store.ListsRunsByStartAndEndDateAndSeveralDagsPagesThemAndCountsThem", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  // Day d started at d 01:00:00.000250 and ended an hour later; day 4 is running, day 5 queued.
  dag::change_set c;
  for (unsigned day = 1; day <= 5; ++day) {
    auto r = daily_run("etl", utc(2024, 1, day));
    if (day <= 4) r.start_date = at(utc(2024, 1, day, 1), 250us);
    if (day <= 3) r.end_date = at(utc(2024, 1, day, 2));
    r.state = day <= 3 ? dag::run_state::success : day == 4 ? dag::run_state::running : dag::run_state::queued;
    c.new_runs.emplace_back(r, std::vector<std::string>{"a"});
  }
  c.new_runs.emplace_back(daily_run("reports", utc(2024, 1, 2, 6)), std::vector<std::string>{"a"});
  c.new_runs.emplace_back(daily_run("other", utc(2024, 1, 3, 6)), std::vector<std::string>{"a"});
  REQUIRE(s->apply(c).runs_created == std::vector<bool>(7, true));
  const auto id = [](unsigned day) { return dag::make_run_id(dag::run_type::scheduled, utc(2024, 1, day)); };

  dag::run_filter started;
  started.start_from = at(utc(2024, 1, 2, 1), 250us);  // to the microsecond, both ends included
  started.start_to = at(utc(2024, 1, 4, 1), 250us);
  CHECK(run_ids(s->runs(started)) == std::vector<std::string>{id(4), id(3), id(2)});
  started.start_to = at(utc(2024, 1, 4, 1), 249us);
  CHECK(run_ids(s->runs(started)) == std::vector<std::string>{id(3), id(2)});

  dag::run_filter ended;  // a run not ended yet meets no bound on its end
  ended.end_from = at(utc(2024, 1, 2));
  CHECK(run_ids(s->runs(ended)) == std::vector<std::string>{id(3), id(2)});
  ended.end_from.reset();
  ended.end_to = at(utc(2024, 1, 1, 2));
  CHECK(run_ids(s->runs(ended)) == std::vector<std::string>{id(1)});
  CHECK(s->count_runs(ended) == 1);

  dag::run_filter two_dags;
  two_dags.dag_ids = {"reports", "other"};
  CHECK(run_ids(s->runs(two_dags)) == std::vector<std::string>{dag::make_run_id(dag::run_type::scheduled, utc(2024, 1, 3, 6)),
                                                               dag::make_run_id(dag::run_type::scheduled, utc(2024, 1, 2, 6))});
  two_dags.dag_id = "reports";  // both must hold
  CHECK(s->count_runs(two_dags) == 1);
  two_dags.dag_id = "etl";
  CHECK(s->runs(two_dags).empty());

  // Pages in the listing's order, and the count of every match whatever the page.
  dag::run_filter etl;
  etl.dag_id = "etl";
  etl.limit = 2;
  etl.offset = 1;
  CHECK(run_ids(s->runs(etl)) == std::vector<std::string>{id(4), id(3)});
  CHECK(s->count_runs(etl) == 5);
  etl.limit = 0;  // an offset alone: the rest
  etl.offset = 3;
  CHECK(run_ids(s->runs(etl)) == std::vector<std::string>{id(2), id(1)});
  etl.offset = 10;
  CHECK(s->runs(etl).empty());
  CHECK(s->count_runs(etl) == 5);
  etl.offset = 0;
  etl.states = {dag::run_state::success};
  etl.start_from = at(utc(2024, 1, 2));
  CHECK(s->count_runs(etl) == 2);
  CHECK(s->count_runs(dag::run_filter{}) == 7);
}

// "task_id[map_index]@day" of each listed instance (the day of its run's logical date).
std::vector<std::string> listed(const std::vector<dag::listed_task_instance>& tis) {
  std::vector<std::string> out;
  for (const auto& l : tis) {
    const auto day = std::chrono::year_month_day(std::chrono::floor<std::chrono::days>(l.logical_date)).day();
    out.push_back((l.record.dag_id == "etl" ? "" : l.record.dag_id + ".") + l.record.task_id +
                  (l.record.map_index >= 0 ? "[" + std::to_string(l.record.map_index) + "]" : "") + "@" +
                  std::to_string(static_cast<unsigned>(day)));
  }
  return out;
}

TEST_CASE_TEMPLATE("Store.ListsTaskInstancesAcrossRunsFilteredOrderedPagedAndCountedInSql", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  // etl on days 1-3 with tasks a and b (and m, mapped into 2 instances, on day 3); reports on day 2.
  const auto day = [](unsigned d) { return daily_run("etl", utc(2024, 1, d)); };
  const auto reports = daily_run("reports", utc(2024, 1, 2));
  dag::change_set c;
  for (unsigned d = 1; d <= 3; ++d) c.new_runs.emplace_back(day(d), std::vector<std::string>{"a", "b"});
  c.new_runs.emplace_back(reports, std::vector<std::string>{"a"});
  REQUIRE(s->apply(c).runs_created == std::vector<bool>(4, true));
  dag::change_set u;
  // Day 1: a succeeded in 10 s, b failed after 30 s; day 2: a runs; reports' a succeeded in 20 s.
  const auto ran = [&](const dag::run_record& run, const std::string& task, dag::task_state state, std::optional<int> seconds) {
    auto m = moving(run, task, dag::task_state::none, 0, state, 1);
    m.record.start_date = at(run.logical_date + 1h, 250us);
    if (seconds) m.record.end_date = *m.record.start_date + std::chrono::seconds(*seconds);
    u.task_instances.push_back(m);
  };
  ran(day(1), "a", dag::task_state::success, 10);
  ran(day(1), "b", dag::task_state::failed, 30);
  ran(day(2), "a", dag::task_state::running, std::nullopt);
  ran(reports, "a", dag::task_state::success, 20);
  for (int i = 0; i < 2; ++i) {
    auto m = moving(day(3), "m", dag::task_state::none, 0, dag::task_state::none, 0);
    m.record.map_index = i;
    u.task_instances.push_back(m);
  }
  REQUIRE(s->apply(u).task_instances_updated == std::vector<bool>(6, true));

  // The listing's own order: newest run first, then DAG, run, task and map index.
  const std::vector<std::string> everything{"a@3", "b@3", "m[0]@3", "m[1]@3", "a@2", "b@2", "reports.a@2", "a@1", "b@1"};
  CHECK(listed(s->list_task_instances({})) == everything);
  CHECK(s->count_task_instances({}) == everything.size());
  CHECK(s->list_task_instances({}).back().logical_date == utc(2024, 1, 1));

  dag::task_instance_filter f;
  f.dag_ids = {"etl"};
  f.states = {dag::task_state::success, dag::task_state::failed};
  CHECK(listed(s->list_task_instances(f)) == std::vector<std::string>{"a@1", "b@1"});
  f.dag_ids = {"etl", "reports"};
  CHECK(s->count_task_instances(f) == 3);

  dag::task_instance_filter runs_and_tasks;
  runs_and_tasks.run_ids = {day(2).run_id, day(3).run_id};  // reports' run on day 2 has the same id
  runs_and_tasks.task_ids = {"a"};
  CHECK(listed(s->list_task_instances(runs_and_tasks)) == std::vector<std::string>{"a@3", "a@2", "reports.a@2"});

  dag::task_instance_filter dates;
  dates.logical_from = utc(2024, 1, 2);
  dates.logical_to = utc(2024, 1, 2);
  CHECK(s->count_task_instances(dates) == 3);
  dates = {};
  dates.start_from = at(utc(2024, 1, 2, 1), 250us);  // to the microsecond, both ends included
  CHECK(listed(s->list_task_instances(dates)) == std::vector<std::string>{"a@2", "reports.a@2"});
  dates.start_from.reset();
  dates.end_to = at(utc(2024, 1, 1, 1), 10s + 250us);  // an instance not ended meets no bound on its end
  CHECK(listed(s->list_task_instances(dates)) == std::vector<std::string>{"a@1"});

  dag::task_instance_filter durations;  // one not ended has no duration
  durations.duration_from = 20s;
  CHECK(listed(s->list_task_instances(durations)) == std::vector<std::string>{"reports.a@2", "b@1"});
  durations.duration_to = 25s;
  CHECK(listed(s->list_task_instances(durations)) == std::vector<std::string>{"reports.a@2"});
  durations.duration_from.reset();
  CHECK(s->count_task_instances(durations) == 2);

  dag::task_instance_filter mapped;
  mapped.mapped_only = true;
  CHECK(listed(s->list_task_instances(mapped)) == std::vector<std::string>{"m[0]@3", "m[1]@3"});
  mapped.mapped_only = false;
  mapped.map_index = 1;
  CHECK(listed(s->list_task_instances(mapped)) == std::vector<std::string>{"m[1]@3"});

  // Ordered by a field, ties in the listing's order; no value (no duration) first ascending, last descending.
  dag::task_instance_filter ordered;
  ordered.order = {"duration", true};
  CHECK(listed(s->list_task_instances(ordered)) ==
        std::vector<std::string>{"b@1", "reports.a@2", "a@1", "a@3", "b@3", "m[0]@3", "m[1]@3", "a@2", "b@2"});
  ordered.order = {"duration", false};
  CHECK(listed(s->list_task_instances(ordered)) ==
        std::vector<std::string>{"a@3", "b@3", "m[0]@3", "m[1]@3", "a@2", "b@2", "a@1", "reports.a@2", "b@1"});
  ordered.order = {"logical_date", false};
  CHECK(listed(s->list_task_instances(ordered)).front() == "a@1");
  ordered.order = {"task_id", true};
  ordered.limit = 3;
  ordered.offset = 1;
  CHECK(listed(s->list_task_instances(ordered)) == std::vector<std::string>{"m[1]@3", "b@3", "b@2"});
  CHECK(s->count_task_instances(ordered) == everything.size());  // the count, whatever the page
  ordered.limit = 0;  // an offset alone: the rest
  ordered.offset = 7;
  CHECK(listed(s->list_task_instances(ordered)) == std::vector<std::string>{"reports.a@2", "a@1"});
  ordered.order = {"colour", false};
  check_usage_error([&] { s->list_task_instances(ordered); }, "cannot order by 'colour'");
}

/// The wall clock to the microsecond, as the store stamps rows (updated_at).
dag::timestamp wall_now() { return std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now()); }

TEST_CASE_TEMPLATE("Store.EveryWriteOfARunOrTaskInstanceStampsWhenItChangedAndListingsFilterAndOrderOnIt", database,
                   STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto one = daily_run("etl", utc(2024, 1, 1)), two = daily_run("etl", utc(2024, 1, 2));
  const auto since = [&](dag::timestamp from) {
    dag::run_filter runs;
    runs.updated_from = from;
    dag::task_instance_filter tis;
    tis.updated_from = from;
    tis.order = {"updated_at", true};
    std::vector<std::string> out = run_ids(s->runs(runs));
    for (const auto& l : s->list_task_instances(tis)) out.push_back(l.record.task_id + "@" + (l.record.run_id == one.run_id ? "1" : "2"));
    return out;
  };
  const auto created = wall_now();
  dag::change_set c;
  c.new_runs = {{one, {"a", "b"}}, {two, {"a"}}};
  REQUIRE(s->apply(c).runs_created == std::vector<bool>{true, true});
  CHECK(since(created).size() == 5);  // both runs and their three task instances, stamped when created
  dag::run_filter before;
  before.updated_to = created;
  CHECK(s->count_runs(before) == 0);

  // A task instance update stamps its row only; a run update its run only.
  const auto moved = wall_now();
  CHECK(since(moved).empty());
  dag::change_set m;
  m.task_instances = {moving(one, "a", dag::task_state::none, 0, dag::task_state::queued, 1)};
  m.runs = {moving(two, dag::run_state::queued, dag::run_state::running)};
  REQUIRE(s->apply(m).task_instances_updated == std::vector<bool>{true});
  CHECK(since(moved) == std::vector<std::string>{two.run_id, "a@1"});
  dag::task_instance_filter until;
  until.updated_to = moved;
  CHECK(s->count_task_instances(until) == 2);  // the two not written since

  // A note is a change; a compare-and-set that loses changes nothing; a task added after its run
  // was created is stamped when its row is made.
  const auto noted = wall_now();
  CHECK(s->set_note("etl", one.run_id, "b", "looked at"));
  CHECK(s->set_note("etl", one.run_id, "", "rerun"));
  dag::change_set late;
  late.task_instances = {moving(one, "a", dag::task_state::none, 0, dag::task_state::queued, 1),  // stale: loses
                         moving(two, "c", dag::task_state::none, 0, dag::task_state::scheduled, 0)};
  CHECK(s->apply(late).task_instances_updated == std::vector<bool>{false, true});
  CHECK(since(noted) == std::vector<std::string>{one.run_id, "c@2", "b@1"});  // newest change first

  // Ordered by it, ties in the listing's own order.
  dag::run_filter ordered;
  ordered.order = {"updated_at", false};
  CHECK(run_ids(s->runs(ordered)) == std::vector<std::string>{two.run_id, one.run_id});
}

TEST_CASE_TEMPLATE("Store.TaskInstancesKeepTheQueueAndExecutorOfTheirLatestTryFilteredAndOrderedInSql", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a", "b", "c"})).runs_created == std::vector<bool>{true});
  dag::change_set c;
  const auto tried = [&](const std::string& task, const std::string& queue, const std::string& executor) {
    auto m = moving(run, task, dag::task_state::none, 0, dag::task_state::running, 1);
    m.record.queue = queue;
    m.record.executor = executor;
    c.task_instances.push_back(m);
  };
  tried("a", "default", "LocalExecutor");
  tried("b", "gpu", "QueueExecutor");
  REQUIRE(s->apply(c).task_instances_updated == std::vector<bool>{true, true});
  const auto tis = s->task_instances("etl", run.run_id);
  CHECK(tis[1].queue == "gpu");
  CHECK(tis[1].executor == "QueueExecutor");
  CHECK(tis[2].queue.empty());  // no try yet
  CHECK(tis[2].executor.empty());

  const auto ids = [&](const dag::task_instance_filter& f) {
    std::vector<std::string> out;
    for (const auto& l : s->list_task_instances(f)) out.push_back(l.record.task_id);
    return out;
  };
  dag::task_instance_filter f;
  f.queues = {"gpu", "io"};
  CHECK(ids(f) == std::vector<std::string>{"b"});
  f.executors = {"LocalExecutor"};  // both must hold
  CHECK(s->count_task_instances(f) == 0);
  f.queues.clear();
  CHECK(ids(f) == std::vector<std::string>{"a"});
  dag::task_instance_filter ordered;
  ordered.order = {"queue", true};
  CHECK(ids(ordered) == std::vector<std::string>{"b", "a", "c"});
  ordered.order = {"executor", false};
  CHECK(ids(ordered) == std::vector<std::string>{"c", "a", "b"});
}

TEST_CASE_TEMPLATE("Store.ListsRunsEventsDatasetEventsAndXComsOrderedAndPagedInSql", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  // Runs: day 1 started last, day 2 first, day 3 (manual) not at all.
  auto one = daily_run("etl", utc(2024, 1, 1));
  auto two = daily_run("etl", utc(2024, 1, 2));
  const auto three = daily_run("etl", utc(2024, 1, 3), dag::run_type::manual);
  one.start_date = at(utc(2024, 1, 5));
  two.start_date = at(utc(2024, 1, 4));
  dag::change_set c;
  for (const auto& r : {one, two, three}) c.new_runs.emplace_back(r, std::vector<std::string>{"a"});
  s->apply(c);
  dag::run_filter runs;
  runs.order = {"start_date", false};
  CHECK(run_ids(s->runs(runs)) == std::vector<std::string>{three.run_id, two.run_id, one.run_id});
  runs.order = {"start_date", true};
  CHECK(run_ids(s->runs(runs)) == std::vector<std::string>{one.run_id, two.run_id, three.run_id});
  runs.order = {"manual", true};
  runs.limit = 1;
  CHECK(run_ids(s->runs(runs)) == std::vector<std::string>{three.run_id});
  runs.order = {"logical_date", false};
  runs.offset = 1;
  CHECK(run_ids(s->runs(runs)) == std::vector<std::string>{two.run_id});
  runs.order = {"conf", false};
  check_usage_error([&] { s->runs(runs); }, "cannot order by 'conf'");

  // The event log: by event sets, ordered by owner, paged and counted.
  const auto when = at(utc(2024, 1, 1, 12));
  dag::change_set e;
  e.events = {{0, when, "trigger", "carol", "etl", "", "", ""},
              {0, when + 1h, "clear", "alice", "etl", "", "", ""},
              {0, when + 2h, "trigger", "bob", "etl", "", "", ""},
              {0, when + 3h, "pause", "dave", "etl", "", "", ""}};
  s->apply(e);
  const auto owners = [](const std::vector<dag::event_record>& listed_events) {
    std::vector<std::string> out;
    for (const auto& x : listed_events) out.push_back(x.owner);
    return out;
  };
  dag::event_filter events;
  events.not_events = {"pause"};
  CHECK(owners(s->events(events)) == std::vector<std::string>{"bob", "alice", "carol"});  // newest first
  events.order = {"owner", false};
  events.limit = 2;
  events.offset = 1;
  CHECK(owners(s->events(events)) == std::vector<std::string>{"bob", "carol"});
  CHECK(s->count_events(events) == 3);
  events.events = {"trigger", "pause"};
  events.order = {"when", true};
  events.limit = 0;
  events.offset = 0;
  CHECK(owners(s->events(events)) == std::vector<std::string>{"bob", "carol"});
  CHECK(s->count_events(events) == 2);

  // Dataset events: ordered by URI or by their dataset's id, paged and counted.
  s->register_datasets({"s3://z", "s3://a"}, {});
  for (const auto* uri : {"s3://a", "s3://z", "s3://a"}) {
    dag::dataset_event_record x;
    x.uri = uri;
    x.when = when;
    REQUIRE(s->add_dataset_event(x));
  }
  const auto uris = [](const std::vector<dag::dataset_event_record>& listed_events) {
    std::vector<std::string> out;
    for (const auto& x : listed_events) out.push_back(x.uri);
    return out;
  };
  dag::dataset_event_filter dataset_events;
  CHECK(uris(s->dataset_events(dataset_events)) == std::vector<std::string>{"s3://a", "s3://z", "s3://a"});
  dataset_events.order = {"uri", true};
  CHECK(uris(s->dataset_events(dataset_events)) == std::vector<std::string>{"s3://z", "s3://a", "s3://a"});
  dataset_events.order = {"dataset_id", false};  // s3://z was registered first
  dataset_events.offset = 1;
  CHECK(uris(s->dataset_events(dataset_events)) == std::vector<std::string>{"s3://a", "s3://a"});
  dataset_events.uri = "s3://a";
  CHECK(s->count_dataset_events(dataset_events) == 2);

  // XComs of one task instance: by key and map index, paged and counted.
  dag::change_set x;
  x.xcoms = {an_xcom(one, "a", "rows", "2"), an_xcom(one, "a", "return_value", "1"), an_xcom(one, "a", "size", "3")};
  s->apply(x);
  dag::xcom_filter xcoms{"etl", one.run_id, "a", -1, std::nullopt, 2, 1};
  const auto keys = [&] {
    std::vector<std::string> out;
    for (const auto& v : s->xcoms(xcoms)) out.push_back(v.key);
    return out;
  };
  CHECK(keys() == std::vector<std::string>{"rows", "size"});
  CHECK(s->count_xcoms(xcoms) == 3);
  xcoms.key = "size";
  xcoms.offset = 0;
  CHECK(keys() == std::vector<std::string>{"size"});
  xcoms.key.reset();
  xcoms.map_index = 0;  // no instance 0: the task is not mapped
  CHECK(s->count_xcoms(xcoms) == 0);
}

TEST_CASE_TEMPLATE("Store.FindsTaskInstancesInStatesAcrossRuns", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto r1 = daily_run("etl", utc(2024, 1, 1));
  const auto r2 = daily_run("etl", utc(2024, 1, 2));
  const auto r3 = daily_run("alpha", utc(2024, 1, 2));
  dag::change_set c;
  c.new_runs = {{r1, {"a", "b"}}, {r2, {"a", "b"}}, {r3, {"x"}}};
  s->apply(c);
  dag::change_set u;
  u.task_instances = {moving(r1, "b", dag::task_state::none, 0, dag::task_state::running, 1),
                      moving(r2, "a", dag::task_state::none, 0, dag::task_state::queued, 1),
                      moving(r3, "x", dag::task_state::none, 0, dag::task_state::running, 1),
                      moving(r1, "a", dag::task_state::none, 0, dag::task_state::success, 1)};
  REQUIRE(s->apply(u).task_instances_updated == std::vector<bool>(4, true));

  const auto active = s->task_instances_in({dag::task_state::running, dag::task_state::queued});
  REQUIRE(active.size() == 3);
  CHECK(active[0].dag_id == "alpha");
  CHECK(active[1].run_id == r1.run_id);
  CHECK(active[1].task_id == "b");
  CHECK(active[1].state == dag::task_state::running);
  CHECK(active[2].run_id == r2.run_id);
  CHECK(active[2].task_id == "a");
  CHECK(active[2].state == dag::task_state::queued);
  CHECK(s->task_instances_in({dag::task_state::none}).size() == 1);
  CHECK(s->task_instances_in({dag::task_state::up_for_retry}).empty());
  CHECK(s->task_instances_in({}).empty());
}

TEST_CASE_TEMPLATE("Store.NotesSurviveASchedulersStaleWriteAndXComsAreListedByKey", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  s->apply(creating(run, {"a"}));
  auto stale = s->task_instances("etl", run.run_id).front();  // read before the note is set
  CHECK(s->set_note("etl", run.run_id, "", "rerun after the outage"));
  CHECK(s->set_note("etl", run.run_id, "a", "checked by hand"));
  CHECK_FALSE(s->set_note("etl", "nope", "", "x"));
  CHECK_FALSE(s->set_note("etl", run.run_id, "nope", "x"));
  // A scheduler writes back its copy of the record (without the note): the note stays.
  dag::change_set c;
  stale.state = dag::task_state::queued;
  c.task_instances.push_back({dag::task_state::none, 0, stale});
  REQUIRE(s->apply(c).task_instances_updated == std::vector<bool>{true});
  const auto ti = s->task_instances("etl", run.run_id).front();
  CHECK(ti.state == dag::task_state::queued);
  CHECK(ti.note == "checked by hand");
  CHECK(s->find_run("etl", run.run_id)->note == "rerun after the outage");
  dag::change_set x;
  x.xcoms = {an_xcom(run, "a", "rows", "2"), an_xcom(run, "a", "return_value", "1")};
  s->apply(x);
  const auto all = s->xcoms("etl", run.run_id, "a");
  REQUIRE(all.size() == 2);
  CHECK(all[0].key == "return_value");
  CHECK(all[1].key == "rows");
}

TEST_CASE_TEMPLATE("Store.EventLogIsWrittenWithChangeSetsAndFiltered", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto at = dag::timestamp(utc(2024, 1, 1, 12));
  dag::change_set c;
  c.events = {{0, at, "trigger", "alice", "etl", "manual__1", "", R"({"conf":{}})"},
              {0, at + std::chrono::hours(1), "pause", "token", "etl", "", "", ""},
              {0, at + std::chrono::hours(2), "variable.set", "bob", "", "", "", ""}};
  s->apply(c);
  const auto all = s->events({});
  REQUIRE(all.size() == 3);
  CHECK(all[0].event == "variable.set");  // newest first
  CHECK(all[2].owner == "alice");
  CHECK(all[2].extra == R"({"conf":{}})");
  CHECK(all[2].when == at);
  CHECK(all[0].id > all[2].id);
  dag::event_filter of_etl;
  of_etl.dag_id = "etl";
  CHECK(s->events(of_etl).size() == 2);
  dag::event_filter later;
  later.after = at + std::chrono::minutes(30);
  later.owner = "token";
  REQUIRE(s->events(later).size() == 1);
  CHECK(s->events(later)[0].event == "pause");
  CHECK(s->find_event(all[1].id)->event == "pause");
  CHECK_FALSE(s->find_event(all[0].id + 100).has_value());
}

TEST_CASE_TEMPLATE("Store.EventLogEntriesAboutATaskInstanceKeepItsMapIndexAndTryAndAreFilteredByThem", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto at = dag::timestamp(utc(2024, 1, 1, 12));
  dag::change_set c;
  c.events = {{0, at, "mark_success", "alice", "maps", "manual__1", "fan", "", 2, 1},
              {0, at, "set_task_instance_note", "alice", "etl", "manual__1", "load", "", -1, 3},
              {0, at, "pause", "bob", "etl", "", "", ""}};
  s->apply(c);
  const auto all = s->events({});
  REQUIRE(all.size() == 3);
  CHECK_FALSE(all[0].map_index.has_value());  // not about a task instance
  CHECK_FALSE(all[0].try_number.has_value());
  CHECK(all[2].map_index == 2);
  CHECK(all[2].try_number == 1);
  const auto events = [&](const dag::event_filter& f) {
    std::vector<std::string> out;
    for (const auto& e : s->events(f)) out.push_back(e.event);
    return out;
  };
  dag::event_filter f;
  f.map_index = -1;  // a task that is not mapped
  CHECK(events(f) == std::vector<std::string>{"set_task_instance_note"});
  f.map_index = 2;
  CHECK(events(f) == std::vector<std::string>{"mark_success"});
  f.try_number = 3;  // both must hold
  CHECK(s->count_events(f) == 0);
  f.map_index.reset();
  CHECK(events(f) == std::vector<std::string>{"set_task_instance_note"});
}

TEST_CASE_TEMPLATE("Store.DeletesARunOrAllOfADagWithTheirRows", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto one = daily_run("etl", utc(2024, 1, 1));
  const auto two = daily_run("etl", utc(2024, 1, 2));
  const auto other = daily_run("report", utc(2024, 1, 1));
  for (const auto& r : {one, two, other}) s->apply(creating(r, {"a"}));
  dag::change_set x;
  x.xcoms = {an_xcom(one, "a", "return_value", "1")};
  s->apply(x);
  s->set_paused("etl", true);
  CHECK(s->delete_run("etl", one.run_id));
  CHECK_FALSE(s->delete_run("etl", one.run_id));
  CHECK_FALSE(s->find_run("etl", one.run_id).has_value());
  CHECK(s->task_instances("etl", one.run_id).empty());
  CHECK(s->xcoms("etl", one.run_id, "a").empty());
  CHECK(s->delete_dag("etl") == 1);
  CHECK(s->runs({}).size() == 1);
  CHECK_FALSE(s->paused_dags().contains("etl"));
  CHECK(s->find_run("report", other.run_id).has_value());
}

TEST_CASE_TEMPLATE("Store.VariablesCanBeSetReadListedAndDeleted", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  CHECK(s->variables().empty());
  CHECK_FALSE(s->variable("env").has_value());
  s->set_variable("env", "prod");
  s->set_variable("batch_size", "100");
  s->set_variable("empty", "");
  s->set_variable("env", "staging");
  CHECK(s->variable("env") == "staging");
  CHECK(s->variable("empty") == "");
  CHECK(s->variables() == std::map<std::string, std::string>{{"batch_size", "100"}, {"empty", ""}, {"env", "staging"}});
  CHECK(s->delete_variable("env"));
  CHECK_FALSE(s->delete_variable("env"));
  CHECK_FALSE(s->variable("env").has_value());
  CHECK(s->variables().size() == 2);
}

TEST_CASE_TEMPLATE("Store.VariablesConnectionsAndPoolsRefuseTextThatIsNotUtf8", database, STORE_BACKENDS) {
  // PostgreSQL would hold such text converted (each bad byte U+FFFD): a name would no longer match,
  // a value would not read back as set. Both backends refuse it alike, naming the field but never
  // quoting the value (it may be a secret), and store nothing.
  database db;
  auto s = db.make_store();
  const std::string latin1 = "caf\xe9", nul("a\0b", 3);
  check_usage_error([&] { s->set_variable(latin1, "v"); }, "variable name: must be UTF-8 text without NUL bytes");
  check_usage_error([&] { s->set_variable("v", nul); }, "variable 'v': value: must be UTF-8");
  check_usage_error([&] { s->set_variable("v", "s3cr\xe9t"); }, "value", "s3cr");
  CHECK(s->variables().empty());
  check_usage_error([&] { s->set_connection({latin1, "http", "h", std::nullopt, "", "", ""}); }, "connection id");
  check_usage_error([&] { s->set_connection({"api", "http", "h", std::nullopt, "me", "pw\xff!", ""}); },
                    "connection 'api': password: must be UTF-8", "pw");
  check_usage_error([&] { s->set_connection({"api", "http", "h", std::nullopt, "", "", "", "{\"k\": \"\xff\"}"}); },
                    "connection 'api': extra");
  CHECK(s->connections().empty());
  check_usage_error([&] { s->set_pool({latin1, 1, ""}); }, "pool name: must be UTF-8");
  check_usage_error([&] { s->set_pool({"api", 1, nul}); }, "pool 'api': description");
  CHECK(s->pools().size() == 1);  // default_pool only
  s->set_variable("caf\xc3\xa9", "\xe2\x82\xac");  // real UTF-8 is text
  CHECK(s->variable("caf\xc3\xa9") == "\xe2\x82\xac");
}

TEST_CASE_TEMPLATE("Store.PoolsCanBeSetReadListedAndDeletedAndCountTheirSlots", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  // Airflow's default pool is there from the start, with 128 slots, and cannot be deleted.
  REQUIRE(s->pools().size() == 1);
  CHECK(s->pools()[0].name == "default_pool");
  CHECK(s->pools()[0].slots == 128);
  check_usage_error([&] { s->delete_pool("default_pool"); }, "default_pool");
  check_usage_error([&] { s->set_pool({"bad", -1, ""}); }, "at least 0");
  check_usage_error([&] { s->set_pool({"", 1, ""}); }, "name");

  s->set_pool({"warehouse", 3, "the DW's connections"});
  s->set_pool({"api", 1, ""});
  s->set_pool({"api", 2, "rate limited"});
  const auto api = s->find_pool("api");
  REQUIRE(api);
  CHECK(api->slots == 2);
  CHECK(api->description == "rate limited");
  CHECK_FALSE(s->find_pool("nothing").has_value());
  std::vector<std::string> names;
  for (const auto& p : s->pools()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"api", "default_pool", "warehouse"});

  // A running try takes its slots, a queued one too; a finished one gives them back.
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a", "b", "c"})).runs_created == std::vector<bool>{true});
  dag::change_set start;
  start.task_instances.push_back(moving(run, "a", dag::task_state::none, 0, dag::task_state::running, 1));
  start.task_instances.push_back(moving(run, "b", dag::task_state::none, 0, dag::task_state::queued, 1));
  for (auto& u : start.task_instances) u.record.pool = "warehouse";
  start.task_instances[0].record.pool_slots = 2;
  CHECK(s->apply(start).task_instances_updated == std::vector<bool>{true, true});
  auto warehouse = s->find_pool("warehouse");
  REQUIRE(warehouse);
  CHECK(warehouse->running_slots == 2);
  CHECK(warehouse->queued_slots == 1);
  CHECK(warehouse->occupied_slots() == 3);
  CHECK(warehouse->open_slots() == 0);
  CHECK(s->task_instances("etl", run.run_id)[0].pool == "warehouse");
  CHECK(s->task_instances("etl", run.run_id)[0].pool_slots == 2);
  CHECK(dag::pool_json(*warehouse) ==
        R"({"name": "warehouse", "slots": 3, "occupied_slots": 3, "running_slots": 2, "queued_slots": 1, "open_slots": 0, "description": "the DW's connections"})");

  // A full pool refuses a try as a lost compare-and-set; one ending in the same change set
  // frees its slots for a try after it.
  dag::change_set full;
  full.task_instances.push_back(moving(run, "c", dag::task_state::none, 0, dag::task_state::running, 1));
  full.task_instances[0].record.pool = "warehouse";
  CHECK(s->apply(full).task_instances_updated == std::vector<bool>{false});
  dag::change_set swap;
  swap.task_instances.push_back(full.task_instances[0]);
  auto done = moving(run, "b", dag::task_state::queued, 1, dag::task_state::success, 1);
  done.record.pool = "warehouse";
  swap.task_instances.push_back(done);
  CHECK(s->apply(swap).task_instances_updated == std::vector<bool>{true, true});
  CHECK(s->find_pool("warehouse")->open_slots() == 0);

  // A pool that does not exist admits nothing.
  const auto other = daily_run("etl", utc(2024, 1, 2));
  REQUIRE(s->apply(creating(other, {"a"})).runs_created == std::vector<bool>{true});
  dag::change_set nowhere;
  nowhere.task_instances.push_back(moving(other, "a", dag::task_state::none, 0, dag::task_state::running, 1));
  nowhere.task_instances[0].record.pool = "missing";
  CHECK(s->apply(nowhere).task_instances_updated == std::vector<bool>{false});

  CHECK(s->delete_pool("api"));
  CHECK_FALSE(s->delete_pool("api"));
  CHECK(s->pools().size() == 2);
}

TEST_CASE_TEMPLATE("Store.AMappedInstanceEndingFreesItsSlotForAnotherInstanceClaimedBeforeIt", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  s->set_pool({"one", 1, ""});
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"each"})).runs_created == std::vector<bool>{true});
  const auto instance = [&](int map_index, dag::task_state expected, int expected_try, dag::task_state state, int try_number) {
    auto u = moving(run, "each", expected, expected_try, state, try_number);
    u.record.map_index = map_index;
    u.record.pool = "one";
    return u;
  };
  dag::change_set expand;
  expand.task_instance_deletes = {s->task_instances("etl", run.run_id)[0]};
  expand.task_instances = {instance(0, dag::task_state::none, 0, dag::task_state::scheduled, 0),
                           instance(1, dag::task_state::none, 0, dag::task_state::running, 1)};
  REQUIRE(s->apply(expand).task_instances_updated == std::vector<bool>{true, true});
  // Instance 1 holds the pool's only slot. In one change set instance 0 claims it and instance 1
  // ends: the end is written before the claim (it is another instance's row, though of the same
  // task), so the claim finds the slot free.
  dag::change_set swap;
  swap.task_instances = {instance(0, dag::task_state::scheduled, 0, dag::task_state::running, 1),
                         instance(1, dag::task_state::running, 1, dag::task_state::success, 1)};
  CHECK(s->apply(swap).task_instances_updated == std::vector<bool>{true, true});
  const auto tis = s->task_instances("etl", run.run_id);
  REQUIRE(tis.size() == 2);
  CHECK(tis[0].state == dag::task_state::running);
  CHECK(tis[1].state == dag::task_state::success);
  CHECK(s->find_pool("one")->running_slots == 1);
}

TEST_CASE_TEMPLATE("Store.TwoStoresNeverOverfillAPool", database, STORE_BACKENDS) {
  database db;
  auto one = db.make_store();
  auto two = db.make_store();
  one->set_pool({"pair", 2, ""});
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(one->apply(creating(run, {"a", "b", "c", "d"})).runs_created == std::vector<bool>{true});
  // Two schedulers, each claiming two tries in the pool of two at the same time.
  const auto claims = [&](dag::store& s, std::vector<std::string> ids) {
    dag::change_set c;
    for (const auto& id : ids) {
      c.task_instances.push_back(moving(run, id, dag::task_state::none, 0, dag::task_state::running, 1));
      c.task_instances.back().record.pool = "pair";
    }
    const auto won = s.apply(c).task_instances_updated;
    return static_cast<int>(std::count(won.begin(), won.end(), true));
  };
  std::atomic<int> won_by_two{0};
  std::thread other([&] { won_by_two = claims(*two, {"c", "d"}); });
  const int won_by_one = claims(*one, {"a", "b"});
  other.join();
  CHECK(won_by_one + won_by_two == 2);
  CHECK(one->find_pool("pair")->running_slots == 2);
}

TEST_CASE_TEMPLATE("Store.TwoStoresClaimingOneTryEachNeverOverfillAPool", database, STORE_BACKENDS) {
  // A change set's only claim (a chain's next task) counts its pool's slots in its own statement:
  // two schedulers claiming one try each, at the same time, in a pool of one, round after round.
  database db;
  auto one = db.make_store();
  auto two = db.make_store();
  one->set_pool({"single", 1, ""});
  dag::store* stores[2] = {one.get(), two.get()};
  std::barrier sync(2);
  for (unsigned round = 1; round <= 20; ++round) {
    CAPTURE(round);
    const auto run = daily_run("etl", utc(2024, 1, round));
    REQUIRE(one->apply(creating(run, {"a", "b"})).runs_created == std::vector<bool>{true});
    const auto claim = [&](int who) -> bool {
      dag::change_set c;
      c.task_instances.push_back(moving(run, who == 0 ? "a" : "b", dag::task_state::none, 0, dag::task_state::running, 1));
      c.task_instances.back().record.pool = "single";
      sync.arrive_and_wait();
      return stores[who]->apply(c).task_instances_updated.at(0);
    };
    bool won_by_two = false;
    std::thread other([&] { won_by_two = claim(1); });
    const bool won_by_one = claim(0);
    other.join();
    REQUIRE(won_by_one != won_by_two);
    CHECK(one->find_pool("single")->running_slots == 1);
    // The winner ends, and gives the slot back for the next round.
    auto end = moving(run, won_by_one ? "a" : "b", dag::task_state::running, 1, dag::task_state::success, 1);
    end.record.pool = "single";
    REQUIRE(one->apply(updating({end})).task_instances_updated == std::vector<bool>{true});
    CHECK(one->find_pool("single")->running_slots == 0);
  }
}

TEST_CASE_TEMPLATE("Store.ConnectionsCanBeSetReadListedAndDeletedWithTheirPassword", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  CHECK(s->connections().empty());
  s->set_connection({"warehouse", "postgresql", "db.example", 5432, "etl", "s3cret", "dw"});
  s->set_connection({"api", "https", "api.example", std::nullopt, "", "", "/v1"});
  auto w = s->find_connection("warehouse");
  REQUIRE(w.has_value());
  CHECK(w->conn_type == "postgresql");
  CHECK(w->host == "db.example");
  CHECK(w->port == 5432);
  CHECK(w->login == "etl");
  CHECK(w->password == "s3cret");
  CHECK(w->schema == "dw");
  auto api = s->find_connection("api");
  REQUIRE(api.has_value());
  CHECK_FALSE(api->port.has_value());
  CHECK(api->schema == "/v1");

  s->set_connection({"warehouse", "postgresql", "db2.example", 6432, "etl", "n3w", "dw"});
  const auto all = s->connections();
  REQUIRE(all.size() == 2);
  CHECK(all[0].conn_id == "api");
  CHECK(all[1].conn_id == "warehouse");
  CHECK(all[1].host == "db2.example");
  CHECK(all[1].port == 6432);
  CHECK(all[1].password == "n3w");

  CHECK(s->delete_connection("api"));
  CHECK_FALSE(s->delete_connection("api"));
  CHECK_FALSE(s->find_connection("api").has_value());
  CHECK(s->connections().size() == 1);
}

TEST_CASE_TEMPLATE("Store.PausesAndUnpausesDags", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  CHECK(s->paused_dags().empty());
  s->set_paused("a", true);
  s->set_paused("b", true);
  s->set_paused("b", true);
  CHECK(s->paused_dags() == std::set<std::string>{"a", "b"});
  s->set_paused("a", false);
  s->set_paused("new", false);  // a DAG never seen before is recorded, unpaused
  CHECK(s->paused_dags() == std::set<std::string>{"b"});
}

TEST_CASE_TEMPLATE("Store.ImportErrorsAreReplacedAsAWhole", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  CHECK(s->import_errors().empty());
  s->set_import_errors({{"dags/b.yaml", "dags/b.yaml:3: unknown operator 'bsh'"},
                        {"dags/a.yaml", "dags/a.yaml:1: missing dag_id"},
                        {"dags/b.yaml", "dags/b.yaml:9: unknown task 'x'"}});
  auto errors = s->import_errors();
  REQUIRE(errors.size() == 3);  // in the order given, several per file allowed
  CHECK(errors[0].file == "dags/b.yaml");
  CHECK(errors[0].message == "dags/b.yaml:3: unknown operator 'bsh'");
  CHECK(errors[1].file == "dags/a.yaml");
  CHECK(errors[2].message == "dags/b.yaml:9: unknown task 'x'");
  s->set_import_errors({{"dags/c.yaml", "dags/c.yaml:2: bad schedule"}});
  errors = s->import_errors();
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].file == "dags/c.yaml");
  s->set_import_errors({});
  CHECK(s->import_errors().empty());
}

TEST_CASE_TEMPLATE("Store.CleanDeletesOnlyOldFinishedRunsWithTheirChildren", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto cutoff = at(utc(2024, 2, 1));
  struct seed {
    dag::run_record run;
    bool deleted;
  };
  std::vector<seed> seeds;
  const auto add = [&](unsigned day, dag::run_state state, std::optional<dag::timestamp> end, bool deleted) {
    auto r = daily_run("etl", utc(2024, 1, day));
    r.state = state;
    r.end_date = end;
    seeds.push_back({r, deleted});
  };
  add(1, dag::run_state::success, at(utc(2024, 1, 2)), true);
  add(2, dag::run_state::failed, cutoff - 1us, true);
  add(3, dag::run_state::success, cutoff, false);             // not before the cutoff
  add(4, dag::run_state::success, at(utc(2024, 3, 1)), false);  // recent
  add(5, dag::run_state::running, at(utc(2024, 1, 6)), false);  // not finished
  add(6, dag::run_state::queued, std::nullopt, false);
  add(7, dag::run_state::success, std::nullopt, false);         // finished but no end recorded

  dag::change_set c;
  for (const auto& sd : seeds) {
    c.new_runs.emplace_back(sd.run, std::vector<std::string>{"a", "b"});
    c.tries.push_back(a_try(sd.run, "a", 1, dag::task_state::success));
    c.xcoms.push_back(an_xcom(sd.run, "a", "return_value", "v"));
  }
  REQUIRE(s->apply(c).runs_created == std::vector<bool>(seeds.size(), true));

  CHECK(s->clean(cutoff) == 2);
  for (const auto& sd : seeds) {
    CAPTURE(sd.run.run_id);
    CHECK(s->find_run("etl", sd.run.run_id).has_value() != sd.deleted);
    CHECK(s->task_instances("etl", sd.run.run_id).size() == (sd.deleted ? 0U : 2U));
    CHECK(s->tries("etl", sd.run.run_id, "a").size() == (sd.deleted ? 0U : 1U));
    CHECK(s->xcom("etl", sd.run.run_id, "a").has_value() != sd.deleted);
  }
  CHECK(s->task_instances_in({dag::task_state::none}).size() == 2 * (seeds.size() - 2));
  CHECK(s->clean(cutoff) == 0);

  // The date of a cleaned scheduled run is free again (a backfill may recreate it).
  CHECK(s->apply(creating(seeds[0].run, {"a"})).runs_created == std::vector<bool>{true});
}

TEST_CASE_TEMPLATE("Store.CleanDeletesOldDatasetEventsButThoseAConsumerWaitsOn", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  s->register_datasets({"s3://b/old", "s3://b/waiting"}, {{"report", {"s3://b/waiting", "s3://b/other"}}});
  const auto event = [&](const char* uri, dag::timestamp when) {
    dag::dataset_event_record e;
    e.uri = uri;
    e.when = when;
    REQUIRE(s->add_dataset_event(e));
  };
  const auto cutoff = at(utc(2024, 2, 1));
  event("s3://b/old", at(utc(2024, 1, 1)));      // history: cleaned
  event("s3://b/waiting", at(utc(2024, 1, 1)));  // queued for report, whose run has not come: kept
  event("s3://b/old", at(utc(2024, 3, 1)));      // recent: kept
  CHECK(s->clean(cutoff) == 0);  // it counts runs
  dag::dataset_event_filter all;
  const auto left = s->dataset_events(all);
  REQUIRE(left.size() == 2);
  std::set<std::pair<std::string, dag::timestamp>> kept;
  for (const auto& e : left) kept.emplace(e.uri, e.when);
  CHECK(kept == std::set<std::pair<std::string, dag::timestamp>>{{"s3://b/waiting", at(utc(2024, 1, 1))},
                                                                 {"s3://b/old", at(utc(2024, 3, 1))}});
  // Once report's run took the queued event, the run lists it: kept while the run is.
  CHECK(s->create_dataset_run(daily_run("report", utc(2024, 1, 4), dag::run_type::dataset_triggered), {"a"}, {"s3://b/waiting"}));
  CHECK(s->queued_datasets().empty());
  s->clean(cutoff);
  CHECK(s->dataset_events(all).size() == 2);
}

TEST_CASE_TEMPLATE("Store.AChangeSetIsAppliedWhollyOrNotAtAll", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  s->apply(creating(run, {"a"}));

  dag::change_set c;
  c.new_runs.emplace_back(daily_run("etl", utc(2024, 1, 2)), std::vector<std::string>{"a"});
  c.task_instances.push_back(moving(run, "a", dag::task_state::none, 0, dag::task_state::running, 1));
  c.xcoms.push_back(an_xcom(run, "a", "return_value", "v"));
  c.tries.push_back(a_try(run, "no_such_task", 1, dag::task_state::running));  // a try needs its task instance
  try {
    s->apply(c);
    FAIL("a try of a task instance that does not exist was stored");
  } catch (const dag::error& e) {  // never a raw database exception
    const std::string what = e.what();
    CHECK_MESSAGE(what.find(db.name()) != std::string::npos, what);
    CHECK_MESSAGE(what.find("apply changes") != std::string::npos, what);
  }
  CHECK(s->runs({}).size() == 1);
  CHECK(s->task_instances("etl", run.run_id)[0].state == dag::task_state::none);
  CHECK_FALSE(s->xcom("etl", run.run_id, "a").has_value());

  // The store is still usable afterwards.
  c.tries.clear();
  const auto result = s->apply(c);
  CHECK(result.runs_created == std::vector<bool>{true});
  CHECK(result.task_instances_updated == std::vector<bool>{true});
}

TEST_CASE_TEMPLATE("Store.AppliesTenThousandTaskInstanceUpdatesInOneCall", database, STORE_BACKENDS) {
  database db;
  auto s = db.make_store();
  const auto run = daily_run("big", utc(2024, 1, 1));
  constexpr std::size_t count = 10000;
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < count; ++i) ids.push_back("task_" + std::to_string(100000 + i));
  REQUIRE(s->apply(creating(run, ids)).runs_created == std::vector<bool>{true});
  s->set_pool({"default_pool", static_cast<int>(count), ""});  // room for every try queued here

  dag::change_set c;
  for (const auto& id : ids) {
    auto u = moving(run, id, dag::task_state::none, 0, dag::task_state::queued, 1);
    u.record.hostname = "host";
    c.task_instances.push_back(u);
  }
  c.task_instances.push_back(moving(run, ids[7], dag::task_state::none, 0, dag::task_state::failed, 1));  // stale by now
  const auto result = s->apply(c);
  REQUIRE(result.task_instances_updated.size() == count + 1);
  CHECK(static_cast<std::size_t>(std::count(result.task_instances_updated.begin(), result.task_instances_updated.end(), true)) ==
        count);
  CHECK_FALSE(result.task_instances_updated.back());

  const auto tis = s->task_instances("big", run.run_id);
  REQUIRE(tis.size() == count);
  CHECK(std::all_of(tis.begin(), tis.end(), [](const auto& ti) {
    return ti.state == dag::task_state::queued && ti.try_number == 1 && ti.hostname == "host";
  }));
  CHECK(s->task_instances_in({dag::task_state::queued}).size() == count);
  CHECK(s->task_instances_in({dag::task_state::none, dag::task_state::failed}).empty());
}

TEST_CASE_TEMPLATE("Store.TwoStoresOnOneDatabaseSeeEachOthersCommittedWrites", database, STORE_BACKENDS) {
  database db;
  auto one = db.make_store();
  auto two = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));

  one->set_variable("v", "from one");
  CHECK(two->variable("v") == "from one");
  REQUIRE(two->apply(creating(run, {"a"})).runs_created == std::vector<bool>{true});
  CHECK(one->find_run("etl", run.run_id).has_value());
  // Both schedulers try to create the same run: only one does.
  CHECK(one->apply(creating(run, {"a"})).runs_created == std::vector<bool>{false});

  // Both try to claim the same task instance: the second, now stale, loses.
  dag::change_set claim;
  claim.task_instances.push_back(moving(run, "a", dag::task_state::none, 0, dag::task_state::queued, 1));
  CHECK(one->apply(claim).task_instances_updated == std::vector<bool>{true});
  CHECK(two->apply(claim).task_instances_updated == std::vector<bool>{false});
  CHECK(two->task_instances("etl", run.run_id)[0].state == dag::task_state::queued);

  two->set_paused("etl", true);
  CHECK(one->paused_dags() == std::set<std::string>{"etl"});
}

TEST_CASE("Store.OpenStoreRefusesUnknownUrls") {
  check_usage_error([] { dag::open_store("mysql://root:hunter2@db/dagrun"); }, "'mysql'", "hunter2");
  check_usage_error([] { dag::open_store("dagrun.db"); }, "use sqlite:dagrun.db");  // no scheme: a hint, no guess
  check_usage_error([] { dag::open_store(""); }, "sqlite:");
  check_usage_error([] { dag::open_store("sqlite:"); }, "no file");
  check_usage_error([] { dag::open_store("sqlite://"); }, "no file");
  check_usage_error([] { dag::open_store("sqlite://dagrun.db"); }, "host");
  // libpq quotes a URL it cannot read; the user:password part must not come with it.
  check_usage_error([] { dag::open_store("postgresql://etl:hunter2@[::1/dagrun"); }, "not a valid PostgreSQL URL",
                    "hunter2");
}

TEST_CASE("Store.OpenStoreNamesAnUnreachablePostgresServerButNeverThePassword") {
  // Port 1 on loopback refuses at once; the first connection is not retried, so this is quick.
  for (const std::string url : {"postgresql://etl:hunter2@127.0.0.1:1/dagrun", "postgres://etl:hunter2@127.0.0.1:1/dagrun",
                                "postgresql+psycopg2://etl:hunter2@127.0.0.1:1/dagrun"}) {
    CAPTURE(url);
    const auto started = std::chrono::steady_clock::now();
    try {
      dag::open_store(url);
      FAIL("connected to port 1");
    } catch (const dag::usage_error& e) {
      FAIL("not a usage error: " << e.what());
    } catch (const dag::error& e) {
      const std::string what = e.what();
      CHECK_MESSAGE(what.find("127.0.0.1:1/dagrun: cannot connect") != std::string::npos, what);
      CHECK_MESSAGE(what.find("hunter2") == std::string::npos, what);
    }
    CHECK(std::chrono::steady_clock::now() - started < 10s);
  }
}

TEST_CASE("Store.OpenStoreReadsSqliteUrlsAsAirflowDoes") {
  sqlite_database db;
  const fs::path absolute = db.dir() / "absolute.db";
  // sqlite:////abs/path: SQLAlchemy's three slashes, then the absolute path.
  dag::open_store("sqlite:///" + absolute.string())->set_variable("x", "1");
  CHECK(fs::exists(absolute));
  CHECK(dag::open_store("sqlite:" + absolute.string())->variable("x") == "1");

  // Relative paths are relative to the working directory in both forms.
  struct working_directory {
    fs::path saved = fs::current_path();
    explicit working_directory(const fs::path& to) { fs::current_path(to); }
    ~working_directory() { fs::current_path(saved); }
  } in_dir(db.dir());
  dag::open_store("sqlite:relative.db");
  CHECK(fs::exists(db.dir() / "relative.db"));
  dag::open_store("sqlite:///alchemy.db");
  CHECK(fs::exists(db.dir() / "alchemy.db"));

  // A private in-memory database, gone with its store.
  auto memory = dag::open_store("sqlite::memory:");
  memory->set_variable("x", "1");
  CHECK(memory->variable("x") == "1");
  CHECK_FALSE(fs::exists(db.dir() / ":memory:"));
}

TEST_CASE("Store.OpenFailsNamingAPathThatCannotBeOpened") {
  sqlite_database db;
  for (const fs::path& bad : {db.dir() / "missing" / "deeper" / "dagrun.db", db.dir()}) {
    CAPTURE(bad.string());
    try {
      dag::open_store("sqlite:" + bad.string());
      FAIL("opened " << bad.string());
    } catch (const dag::usage_error& e) {
      FAIL("not a usage error: " << e.what());
    } catch (const dag::error& e) {
      const std::string what = e.what();
      CHECK_MESSAGE(what.find(bad.string()) != std::string::npos, what);
    }
  }
}

TEST_CASE("Store.SqliteWalIsCheckpointedWhileOneWriterNeverPauses") {
  // Checkpoints run on a thread of the store's own; the writer still starts the WAL over now and
  // then, so a writer that never pauses (a long chain of tasks) does not grow it for ever.
  sqlite_database db;
  auto writer = db.make_store();
  const std::string value(8 * 1024, 'v');  // a few pages per commit
  for (int i = 0; i < 6000; ++i) writer->set_variable("v" + std::to_string(i % 50), value + std::to_string(i));
  const auto wal = fs::path(db.name() + "-wal");
  REQUIRE(fs::exists(wal));
  // Without checkpoints: over 18,000 pages (74 MB). The writer starts over at 4,000 (16 MB), or
  // later when the thread's checkpoint holds the lock then (longer on a loaded machine): the bound
  // only says that the WAL started over at least once.
  CHECK(fs::file_size(wal) < 60u * 1024 * 1024);
  auto reader = db.make_store();
  CHECK(reader->variable("v49") == value + "5999");
  writer.reset();  // the last connection checkpoints and removes the WAL
  reader.reset();
  CHECK_FALSE(fs::exists(wal));
  CHECK(db.make_store()->variable("v0") == value + "5950");
}

namespace {

// How many of this process's file descriptors are open on `file` (the checkpoint thread's
// connection is the second one on a store's database).
int descriptors_on(const fs::path& file) {
  int n = 0;
  std::error_code ec;
  for (const auto& fd : fs::directory_iterator("/proc/self/fd", ec)) {
    std::error_code link_ec;
    if (fs::read_symlink(fd.path(), link_ec) == fs::canonical(file) && !link_ec) ++n;
  }
  return n;
}

// The WAL's checkpoint sequence number (bytes 12–15 of its header, big-endian), read through
// `wal_fd`: one more each time the WAL starts over.
std::uint32_t wal_restarts(int wal_fd) {
  unsigned char header[16] = {};
  if (::pread(wal_fd, header, sizeof header, 0) != static_cast<ssize_t>(sizeof header)) return 0;
  return std::uint32_t{header[12]} << 24 | std::uint32_t{header[13]} << 16 | std::uint32_t{header[14]} << 8 | header[15];
}

}  // namespace

TEST_CASE("Store.SqliteWalCheckpointThreadOpensAFileUriDatabase") {
  // A `file:` URI (which this SQLite reads as one): the thread opens the file the writer has open,
  // not a file named after the URI's text.
  sqlite_database db;
  auto writer = dag::open_store("sqlite:file:" + fs::path(db.name()).string() + "?cache=private");
  const std::string value(8 * 1024, 'v');
  for (int i = 0; i < 1500; ++i) writer->set_variable("v" + std::to_string(i % 50), value + std::to_string(i));  // changed values (SQLite skips writing an unchanged one): asks for a checkpoint
  CHECK(dag_test::eventually([&] { return descriptors_on(fs::path(db.name())) == 2; }));
}

TEST_CASE("Store.SqliteWalCheckpointThreadOpensItsConnectionAgainAfterAFailure") {
#if defined(__SANITIZE_ADDRESS__)
  // The sanitizers' runtime needs file descriptors of its own (it reads /proc/self/maps to look at
  // a pointer): with none to be had it reports errors that are not there (an "invalid vptr" in
  // std::thread). This test runs in the build without sanitizers.
  MESSAGE("not run under the sanitizers, which need the file descriptors this test takes away");
  return;
#endif
  sqlite_database db;
  auto writer = db.make_store();
  const std::string value(8 * 1024, 'v');
  writer->set_variable("v", value);
  REQUIRE(descriptors_on(fs::path(db.name())) == 1);
  const int wal_fd = ::open((db.name() + "-wal").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(wal_fd >= 0);
  {
    // No file descriptor to be had: the thread, asked for a checkpoint, cannot open its connection
    // and the writer checkpoints itself meanwhile (the WAL still starts over).
    rlimit before{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &before) == 0);
    const int lowest_free = ::dup(0);
    REQUIRE(lowest_free >= 0);
    ::close(lowest_free);
    rlimit limited = before;
    limited.rlim_cur = static_cast<rlim_t>(lowest_free);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &limited) == 0);
    const std::uint32_t restarts = wal_restarts(wal_fd);
    int i = 0;
    for (; i < 20000 && wal_restarts(wal_fd) < restarts + 2; ++i) writer->set_variable("v" + std::to_string(i % 50), value + std::to_string(i));
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &before) == 0);
    CHECK(i < 20000);
    // Whether the thread has a connection now is not asked: an ask of the last writes may reach
    // it only after the limit was lifted (the asks are not waited for), and then it opens one.
    // While the limit held it could open none; that it opens one afterwards is checked below.
  }
  ::close(wal_fd);
  // Descriptors again: a later ask opens it.
  int i = 0;
  for (; i < 20000 && descriptors_on(fs::path(db.name())) < 2; ++i) writer->set_variable("v" + std::to_string(i % 50), value + std::to_string(i));
  CHECK(dag_test::eventually([&] { return descriptors_on(fs::path(db.name())) == 2; }));
  CHECK(writer->variable("v") == value);
}

namespace {

// Counts, and can fail, the writes the OS's VFS makes to WAL files: through its table of system
// calls (sqlite3_vfs::xSetSystemCall), so that SQLite's own writes are seen without tracing. Only
// while no other thread uses SQLite (the table is the process's).
class wal_write_probe {
public:
  wal_write_probe() : vfs_(sqlite3_vfs_find(nullptr)) {
    REQUIRE(vfs_ != nullptr);
    original_ = vfs_->xGetSystemCall(vfs_, "pwrite64");
    REQUIRE(static_cast<bool>(original_));
    REQUIRE(vfs_->xSetSystemCall(vfs_, "pwrite64", reinterpret_cast<sqlite3_syscall_ptr>(&counted)) == SQLITE_OK);
    calls_ = 0;
    bytes_ = 0;
    overwrites_ = 0;
    full_ = false;
    fail_large_ = 0;
  }
  ~wal_write_probe() { vfs_->xSetSystemCall(vfs_, "pwrite64", original_); }
  wal_write_probe(const wal_write_probe&) = delete;
  wal_write_probe& operator=(const wal_write_probe&) = delete;

  int calls() const { return calls_; }
  long bytes() const { return bytes_; }
  /// Writes to a WAL that began inside the frames its index in shared memory published at that
  /// moment (the commits every connection sees): none may. (The WAL header a restart writes at
  /// offset 0 comes after the index was set to no frames.)
  int overwrites() const { return overwrites_; }
  /// From now on every write to a WAL fails as on a full disk (ENOSPC), or no longer.
  void disk_full(bool full) { full_ = full; }
  /// The next `n` writes to a WAL larger than any SQLite makes itself (a page and a frame header,
  /// 4 KiB pages here) fail as on a full disk: writes of what the store's VFS gathered.
  void fail_gathered_writes(int n) { fail_large_ = n; }

private:
  /// Where the frames the WAL index of `wal` publishes end in it (WalIndexHdr's mxFrame and
  /// szPage, native byte order), or 0. Read through SQLite's own descriptor of the index: closing
  /// one of our own would release every lock this process holds on the file.
  static off_t published_end(const std::string& wal) {
    const std::string shm = wal.substr(0, wal.size() - 4) + "-shm";
    std::error_code ec;
    for (const auto& fd : fs::directory_iterator("/proc/self/fd", ec)) {
      std::error_code link_ec;
      if (fs::read_symlink(fd.path(), link_ec).string() != shm || link_ec) continue;
      unsigned char header[20] = {};
      if (::pread(std::stoi(fd.path().filename().string()), header, sizeof header, 0) != static_cast<ssize_t>(sizeof header))
        return 0;
      std::uint16_t page = 0;
      std::uint32_t frames = 0;
      std::memcpy(&page, header + 14, sizeof page);
      std::memcpy(&frames, header + 16, sizeof frames);
      const off_t page_size = page == 1 ? 65536 : page;
      return frames == 0 ? 0 : 32 + static_cast<off_t>(frames) * (24 + page_size);
    }
    return 0;
  }
  static ssize_t counted(int fd, const void* data, size_t size, off_t offset) {
    std::error_code ec;
    const std::string target = fs::read_symlink("/proc/self/fd/" + std::to_string(fd), ec).string();
    if (!ec && target.ends_with("-wal")) {
      const bool fail_gathered = size > 24 + 4096 && fail_large_ > 0;
      if (fail_gathered) --fail_large_;
      if (full_ || fail_gathered) {
        errno = ENOSPC;
        return -1;
      }
      ++calls_;
      bytes_ += static_cast<long>(size);
      if (offset < published_end(target)) ++overwrites_;
    }
    return reinterpret_cast<ssize_t (*)(int, const void*, size_t, off_t)>(original_)(fd, data, size, offset);
  }

  sqlite3_vfs* vfs_;
  static inline sqlite3_syscall_ptr original_ = nullptr;
  static inline std::atomic<int> calls_ = 0;
  static inline std::atomic<long> bytes_ = 0;
  static inline std::atomic<int> overwrites_ = 0;
  static inline std::atomic<bool> full_ = false;
  static inline std::atomic<int> fail_large_ = 0;
};

/// Task ids enough for a commit of several pages.
std::vector<std::string> many_task_ids(int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back("a_task_with_a_long_enough_name_" + std::to_string(i));
  return ids;
}

/// A read-only connection of the OS's VFS to an SQLite file, for the first column of queries.
class raw_sqlite {
public:
  explicit raw_sqlite(const std::string& file) {
    if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK)
      throw std::runtime_error("cannot open " + file + ": " + sqlite3_errmsg(db_));
    sqlite3_busy_timeout(db_, 5000);
  }
  ~raw_sqlite() { sqlite3_close(db_); }
  raw_sqlite(const raw_sqlite&) = delete;
  raw_sqlite& operator=(const raw_sqlite&) = delete;
  /// The first column of the first row of `sql`, as text.
  std::string first(const char* sql) {
    sqlite3_stmt* st = nullptr;
    std::string out;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &st, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    const std::string message = sqlite3_errmsg(db_);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) throw std::runtime_error(std::string(sql) + ": " + message);
    return out;
  }

private:
  sqlite3* db_ = nullptr;
};

/// PRAGMA integrity_check of the SQLite database `file`, on a connection of its own.
std::string integrity_of(const std::string& file) { return raw_sqlite(file).first("PRAGMA integrity_check"); }

}  // namespace

TEST_CASE("Store.SqliteCommitReachesTheWalInOneWriteOf64KiBAtMost") {
  // SQLite writes a frame's header and its page with two writes each; the store's VFS gathers a
  // commit's frames and writes them at once (at most 64 KiB a call, as SQLite's own writes).
  sqlite_database db;
  auto s = db.make_store();
  REQUIRE(s->apply(creating(daily_run("warm", utc(2024, 1, 1)), {"a"})).runs_created == std::vector<bool>{true});
  wal_write_probe probe;
  REQUIRE(s->apply(creating(daily_run("etl", utc(2024, 1, 2)), many_task_ids(200))).runs_created == std::vector<bool>{true});
  constexpr long frame = 24 + 4096;
  CHECK(probe.bytes() >= 4 * frame);  // several pages: eight writes or more without gathering
  CHECK(probe.bytes() % frame == 0);  // whole frames only
  CHECK(probe.calls() == (probe.bytes() + 65535) / 65536);
}

TEST_CASE("Store.SqliteCommitWhoseWalWriteFailsIsNotMadeAndTheNextOneIs") {
  // A full disk fails the commit that could not be written, with SQLite's error; nothing of it is
  // seen, nothing committed before is lost, and once there is room the same store writes again.
  sqlite_database db;
  auto s = db.make_store();
  const auto kept = daily_run("etl", utc(2024, 1, 1));
  const auto lost = daily_run("etl", utc(2024, 1, 2));
  const auto later = daily_run("etl", utc(2024, 1, 3));
  REQUIRE(s->apply(creating(kept, many_task_ids(100))).runs_created == std::vector<bool>{true});
  {
    wal_write_probe probe;
    probe.disk_full(true);
    CHECK_THROWS_WITH_AS(s->apply(creating(lost, many_task_ids(100))), doctest::Contains("full"), dag::error);
  }
  CHECK(s->apply(creating(later, many_task_ids(100))).runs_created == std::vector<bool>{true});
  auto reader = db.make_store();
  dag::run_filter etl;
  etl.dag_id = "etl";
  std::set<std::string> ids;
  for (const auto& r : reader->runs(etl)) ids.insert(r.run_id);
  CHECK(ids == std::set<std::string>{kept.run_id, later.run_id});
  CHECK(reader->task_instances("etl", later.run_id).size() == 100);
  CHECK(reader->task_instances("etl", lost.run_id).empty());
  s.reset();
  reader.reset();
  CHECK(integrity_of(db.name()) == "ok");
}

TEST_CASE("Store.SqliteReadersSeeEveryCommitWholeWhileTheWriterGathersItsWal") {
  // Another connection (the OS's VFS, as another process would have) reads while the store
  // commits runs of many task instances each: every run it sees has all of its instances, which
  // it reads from WAL frames the store gathered. A commit published before its frames were in the
  // file would show runs without instances, or fail as a corrupt database.
  sqlite_database db;
  auto s = db.make_store();
  constexpr int tasks = 60;
  REQUIRE(s->apply(creating(daily_run("etl", utc(2020, 1, 1)), many_task_ids(tasks))).runs_created == std::vector<bool>{true});
  std::atomic<bool> done = false;
  std::atomic<int> looks = 0;
  std::atomic<bool> failed = false;
  std::string problem;  // the reader's, read after it is joined
  std::thread reader([&] {
    try {
      raw_sqlite r(db.name());
      while (!done || looks < 50) {
        r.first("BEGIN");  // both counts from one snapshot
        const int runs = std::stoi(r.first("SELECT count(*) FROM dag_runs"));
        const int instances = std::stoi(r.first("SELECT count(*) FROM task_instances"));
        r.first("COMMIT");
        if (instances != runs * tasks) {
          problem = std::to_string(runs) + " runs with " + std::to_string(instances) + " task instances";
          failed = true;
          return;
        }
        ++looks;
      }
    } catch (const std::exception& e) {
      problem = e.what();
      failed = true;
    }
  });
  for (int day = 1; day <= 300 && !failed; ++day)
    REQUIRE(s->apply(creating(daily_run("etl", utc(2020, 1, 1) + std::chrono::days(day)), many_task_ids(tasks))).runs_created ==
            std::vector<bool>{true});
  done = true;
  reader.join();
  CHECK_MESSAGE(problem.empty(), problem);
  CHECK(looks >= 50);
  s.reset();
  CHECK(integrity_of(db.name()) == "ok");
}

TEST_CASE("Store.SqliteTransactionRolledBackAfterSpillingLeavesNothingToOverwriteTheNextWriter") {
  // A change set larger than SQLite's page cache spills pages to the WAL before its commit; when
  // it then loses (all or nothing) it is rolled back. Another store commits next, where the spilled
  // frames were: nothing the first store gathered may reach the file after that.
  sqlite_database db;
  auto first = db.make_store();
  auto second = db.make_store();
  const auto existing = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(first->apply(creating(existing, {"a"})).runs_created == std::vector<bool>{true});
  wal_write_probe probe;
  dag::change_set big = creating(daily_run("big", utc(2024, 1, 1)), many_task_ids(30000));
  big.all_or_nothing = true;
  big.task_instances.push_back(moving(existing, "a", dag::task_state::running, 1, dag::task_state::success, 1));  // loses
  REQUIRE_FALSE(first->apply(big).applied);
  const auto next = daily_run("etl", utc(2024, 1, 2));
  REQUIRE(second->apply(creating(next, many_task_ids(3000))).runs_created == std::vector<bool>{true});
  // The first store reads (its WAL too) and writes again; both see the second's commit whole.
  dag::run_filter all;
  CHECK(first->runs(all).size() == 2);
  CHECK(first->task_instances("etl", next.run_id).size() == 3000);
  REQUIRE(first->apply(creating(daily_run("etl", utc(2024, 1, 3)), {"b"})).runs_created == std::vector<bool>{true});
  CHECK(second->task_instances("etl", next.run_id).size() == 3000);
  CHECK(probe.overwrites() == 0);
  first.reset();
  second.reset();
  CHECK(integrity_of(db.name()) == "ok");
}

TEST_CASE("Store.SqliteWalOfARolledBackTransactionIsNotWrittenOverTheNextWritersFrames") {
  // The same through SQLite itself on the store's VFS (registered by the first store opened), with
  // a cache of a few pages: a transaction spills a large value's pages to the WAL and is rolled
  // back without reading any of them again; another connection commits where they were; the first
  // then reads. Nothing of the rolled-back transaction may reach the file after the second commit.
  sqlite_database db;
  db.make_store().reset();
  const std::string file = db.name();
  const auto open = [&](sqlite3*& c) {
    REQUIRE(sqlite3_open_v2(file.c_str(), &c, SQLITE_OPEN_READWRITE, "dagrun-wal") == SQLITE_OK);
    sqlite3_busy_timeout(c, 5000);
  };
  const auto run = [](sqlite3* c, const char* sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(c, sql, nullptr, nullptr, &message);
    const std::string text = message ? message : "";
    sqlite3_free(message);
    REQUIRE_MESSAGE(rc == SQLITE_OK, sql << ": " << text);
  };
  wal_write_probe probe;
  sqlite3* first = nullptr;
  sqlite3* second = nullptr;
  open(first);
  open(second);
  run(first, "PRAGMA cache_size = 5; CREATE TABLE spilled (value BLOB); CREATE TABLE kept (value BLOB)");
  run(first, "BEGIN IMMEDIATE; INSERT INTO spilled VALUES (zeroblob(400000)); ROLLBACK");
  run(second, "INSERT INTO kept VALUES (randomblob(200000))");
  run(first, "SELECT count(*) FROM spilled; SELECT length(value) FROM kept");
  run(first, "INSERT INTO kept VALUES (randomblob(10))");
  CHECK(probe.overwrites() == 0);
  sqlite3_close(first);
  sqlite3_close(second);
  raw_sqlite check(file);
  CHECK(check.first("SELECT count(*) FROM kept") == "2");
  CHECK(check.first("SELECT count(*) FROM spilled") == "0");
  CHECK(check.first("PRAGMA integrity_check") == "ok");
}

TEST_CASE("Store.SqliteSpillingTransactionWhoseGatheredWriteFailsIsNotMade") {
  // A write of what the store's VFS gathered fails once, in the middle of a transaction that spills
  // (as a disk that is full for a moment): the transaction fails, whatever SQLite does next in it,
  // and nothing of it is seen; the store then writes again.
  sqlite_database db;
  wal_write_probe probe;  // before the store: it stops when no other thread uses SQLite
  auto s = db.make_store();
  const auto lost = daily_run("big", utc(2024, 1, 1));
  const auto later = daily_run("big", utc(2024, 1, 2));
  REQUIRE(s->apply(creating(daily_run("etl", utc(2024, 1, 1)), {"a"})).runs_created == std::vector<bool>{true});
  probe.fail_gathered_writes(1);
  CHECK_THROWS_AS(s->apply(creating(lost, many_task_ids(30000))), dag::error);
  CHECK(probe.overwrites() == 0);
  CHECK(s->apply(creating(later, many_task_ids(100))).runs_created == std::vector<bool>{true});
  dag::run_filter big;
  big.dag_id = "big";
  const auto runs = s->runs(big);
  REQUIRE(runs.size() == 1);
  CHECK(runs.front().run_id == later.run_id);
  CHECK(s->task_instances("big", lost.run_id).empty());
  s.reset();
  CHECK(integrity_of(db.name()) == "ok");
}

TEST_CASE("Store.SqliteCommitThatRewroteSpilledFramesSurvivesACrashRightAfterIt") {
  // A page spilled early in a large transaction and changed again before its commit is written
  // over its frame, and SQLite then rewrites the checksums of the frames after it, the commit
  // frame's last. A copy of the files taken right after the commit (as a crash would leave them,
  // without the shared-memory index) must recover the transaction whole.
  sqlite_database db;
  wal_write_probe probe;  // before the store: it stops when no other thread uses SQLite
  auto s = db.make_store();
  const auto run = daily_run("big", utc(2024, 1, 1));
  const auto ids = many_task_ids(30000);
  dag::change_set big = creating(run, ids);
  big.task_instances.push_back(moving(run, ids.front(), dag::task_state::none, 0, dag::task_state::scheduled, 0));
  REQUIRE(s->apply(big).runs_created == std::vector<bool>{true});
  CHECK(probe.overwrites() == 0);  // the commit frame's rewritten header went out before it was published
  const fs::path copy = db.dir() / "copy.db";
  fs::copy_file(db.name() + "-wal", copy.string() + "-wal");
  fs::copy_file(db.name(), copy);
  raw_sqlite recovered(copy.string());
  CHECK(recovered.first("SELECT count(*) FROM task_instances WHERE dag_id = 'big'") == "30000");
  CHECK(recovered.first("SELECT state FROM task_instances WHERE dag_id = 'big' AND task_id = 'a_task_with_a_long_enough_name_0'") ==
        "scheduled");
  CHECK(recovered.first("PRAGMA integrity_check") == "ok");
  s.reset();
}

// --- PostgreSQL only -----------------------------------------------------------------------------

using dag_test::flaky_proxy;


/// A change set claiming task `a` of `run` (none → queued, try 1) and starting the run.
dag::change_set claiming(const dag::run_record& run) {
  dag::change_set c;
  c.runs.push_back(moving(run, dag::run_state::queued, dag::run_state::running));
  c.task_instances.push_back(moving(run, "a", dag::task_state::none, 0, dag::task_state::queued, 1));
  return c;
}

TEST_CASE("Store.PostgresSchedulersRacingToCreateARunCreateItOnce") {
  postgres_database db;
  db.make_store();  // migrated before the race
  constexpr unsigned days = 30;
  std::unique_ptr<dag::store> stores[2] = {db.make_store(), db.make_store()};
  std::barrier sync(2);
  std::vector<int> won[2] = {std::vector<int>(days), std::vector<int>(days)};
  std::string errors[2];
  const auto race = [&](int who) {
    try {
      for (unsigned day = 1; day <= days; ++day) {
        // Even days: both create the same run; odd days: a scheduled and a backfill run (other ids,
        // same date), which the partial unique index keeps to one.
        const auto type = day % 2 == 1 && who == 1 ? dag::run_type::backfill : dag::run_type::scheduled;
        const auto run = daily_run("etl", utc(2024, 1, day), type);
        sync.arrive_and_wait();
        won[who][day - 1] = stores[who]->apply(creating(run, {"a", "b"})).runs_created.at(0) ? 1 : 0;
      }
    } catch (const std::exception& e) {
      errors[who] = e.what();
      sync.arrive_and_drop();  // never leave the other thread waiting
    }
  };
  std::thread other(race, 1);
  race(0);
  other.join();
  CHECK(errors[0].empty());
  CHECK(errors[1].empty());
  for (unsigned day = 0; day < days; ++day) {
    CAPTURE(day);
    CHECK(won[0][day] + won[1][day] == 1);
  }
  dag::run_filter etl;
  etl.dag_id = "etl";
  const auto runs = stores[0]->runs(etl);
  CHECK(runs.size() == days);
  for (const auto& r : runs) CHECK(stores[1]->task_instances("etl", r.run_id).size() == 2);
}

TEST_CASE("Store.PostgresReconnectsAfterTheServerKillsItsSession") {
  postgres_database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  s->set_variable("v", "1");

  REQUIRE(db.kill_sessions() == 1);
  CHECK(s->variable("v") == "1");  // a read
  REQUIRE(db.kill_sessions() == 1);
  CHECK(s->apply(creating(run, {"a", "b"})).runs_created == std::vector<bool>{true});  // a write
  REQUIRE(db.kill_sessions() == 1);
  const auto claimed = s->apply(claiming(run));
  CHECK(claimed.runs_updated == std::vector<bool>{true});
  CHECK(claimed.task_instances_updated == std::vector<bool>{true});
  REQUIRE(db.kill_sessions() == 1);
  CHECK(s->delete_variable("v"));  // the answer comes from the attempt that ran
  REQUIRE(db.kill_sessions() == 1);
  CHECK(s->schema_version() >= 1);

  const auto tis = s->task_instances("etl", run.run_id);
  REQUIRE(tis.size() == 2);
  CHECK(tis[0].state == dag::task_state::queued);
  CHECK(tis[1].state == dag::task_state::none);
  CHECK_FALSE(s->variable("v").has_value());
  CHECK(db.kill_sessions() == 1);  // still one connection per store
}

/// A chain's step: try 1 of `ended` succeeds (with its try, as the engine writes an end) and
/// `next` is claimed (none → queued, try 1).
dag::change_set chain_step(const dag::run_record& run, const std::string& ended, const std::string& next) {
  dag::change_set c;
  c.task_instances = {moving(run, ended, dag::task_state::running, 1, dag::task_state::success, 1),
                      moving(run, next, dag::task_state::none, 0, dag::task_state::queued, 1)};
  c.tries.push_back(dag::try_record_of(c.task_instances[0].record));
  return c;
}

/// Whether `s` starts try 1 of `task_id` (from `expected`, try 1 unless none) running.
bool starts(dag::store& s, const dag::run_record& run, const std::string& task_id, dag::task_state expected) {
  const int expected_try = expected == dag::task_state::none ? 0 : 1;
  return s.apply(updating({moving(run, task_id, expected, expected_try, dag::task_state::running, 1)})).task_instances_updated.at(0);
}

TEST_CASE("Store.PostgresWritesAChainsStepInFourRoundTrips") {
  // A chain's step (a try ends, the next task is claimed) is the scheduler's commonest write. Its
  // BEGIN goes with the lock of the claimed task's pool, the claim counts the pool's slots in its
  // own statement, and the delete of a row of the ended try (almost never there) goes with the
  // mark and the COMMIT: four round trips (BEGIN and locks, the end, the claim, the COMMIT).
  postgres_database db;
  db.make_store();
  flaky_proxy proxy(db.server());
  auto s = dag::open_store(proxy.url(db.url()));
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a", "b", "c"})).runs_created == std::vector<bool>{true});
  REQUIRE(starts(*s, run, "a", dag::task_state::none));
  const auto step = [&](const std::string& ended, const std::string& next) {
    return s->apply(chain_step(run, ended, next)).task_instances_updated;
  };
  REQUIRE(step("a", "b") == std::vector<bool>{true, true});  // every statement prepared on this connection
  REQUIRE(starts(*s, run, "b", dag::task_state::queued));
  // A row of b's try left behind (as a late end of an earlier poke leaves one): the step deletes it.
  db.execute("INSERT INTO task_tries (dag_id, run_id, task_id, try_number, state) VALUES ('etl', '" + run.run_id +
             "', 'b', 1, 'running')");
  const int before = proxy.round_trips();
  CHECK(step("b", "c") == std::vector<bool>{true, true});
  CHECK(proxy.round_trips() - before == 4);
  CHECK(try_rows(db) == 0);
  const auto tis = s->task_instances("etl", run.run_id);
  REQUIRE(tis.size() == 3);
  CHECK(tis[1].state == dag::task_state::success);
  CHECK(tis[2].state == dag::task_state::queued);
  CHECK(s->find_pool("default_pool")->queued_slots == 1);
}

TEST_CASE("Store.PostgresFailsAWriteWhoseDeferredDeleteFailsAndKeepsNothingOfIt") {
  // A delete sent with the COMMIT that fails takes the whole transaction with it, as it would
  // have sent on its own: nothing of the change set is written, and the error says why.
  postgres_database db;
  auto s = db.make_store();
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a", "b"})).runs_created == std::vector<bool>{true});
  REQUIRE(starts(*s, run, "a", dag::task_state::none));
  db.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no deletes "
             "today'; END $$; CREATE TRIGGER refuse BEFORE DELETE ON task_tries FOR EACH STATEMENT EXECUTE FUNCTION refuse()");
  const dag::change_set c = chain_step(run, "a", "b");
  CHECK_THROWS_WITH_AS(s->apply(c), doctest::Contains("no deletes today"), dag::error);
  const auto tis = s->task_instances("etl", run.run_id);
  REQUIRE(tis.size() == 2);
  CHECK(tis[0].state == dag::task_state::running);
  CHECK(tis[1].state == dag::task_state::none);
  // The store goes on: the next write finds the connection out of the failed transaction.
  db.execute("DROP TRIGGER refuse ON task_tries");
  CHECK(s->apply(c).task_instances_updated == std::vector<bool>{true, true});
}

TEST_CASE("Store.PostgresLearnsThatACommitWhoseReplyWasLostWentThrough") {
  postgres_database db;
  db.make_store();
  flaky_proxy proxy(db.server());
  auto s = dag::open_store(proxy.url(db.url()));
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a"})).runs_created == std::vector<bool>{true});

  proxy.arm(flaky_proxy::cut::reply_lost);
  const auto result = s->apply(claiming(run));
  CHECK(proxy.cuts() == 1);
  // The commit went through: a blind retry would have found its own update stale and reported
  // the claim as lost, and the scheduler would never have run the task.
  CHECK(result.runs_updated == std::vector<bool>{true});
  CHECK(result.task_instances_updated == std::vector<bool>{true});
  const auto tis = s->task_instances("etl", run.run_id);
  REQUIRE(tis.size() == 1);
  CHECK(tis[0].state == dag::task_state::queued);
  CHECK(tis[0].try_number == 1);
}

TEST_CASE("Store.PostgresSettlesACommitThatNeverArrivedAndRetriesIt") {
  postgres_database db;
  db.make_store();
  flaky_proxy proxy(db.server());
  auto s = dag::open_store(proxy.url(db.url()));
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a"})).runs_created == std::vector<bool>{true});

  // The old session keeps its transaction and its row locks: the store must end it to learn that
  // it did not commit, then run the transaction again.
  proxy.arm(flaky_proxy::cut::never_arrives);
  const auto started = std::chrono::steady_clock::now();
  const auto result = s->apply(claiming(run));
  CHECK(std::chrono::steady_clock::now() - started < 20s);
  CHECK(proxy.cuts() == 1);
  CHECK(result.runs_updated == std::vector<bool>{true});
  CHECK(result.task_instances_updated == std::vector<bool>{true});
  CHECK(s->task_instances("etl", run.run_id)[0].state == dag::task_state::queued);
  CHECK(db.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND state LIKE 'idle in transaction%'") == "0");
}

TEST_CASE("Store.PostgresSettlesACommitLostInAServerCrashByWhatItWrote" * doctest::timeout(180)) {
  // A COMMIT never reaches the server, which then crashes: its transaction's writes were still in
  // the server's memory, so after the restart the transaction's id can be handed to another
  // transaction, which commits. The store must not take that commit for its own (it would report a
  // claim that is not in the database), nor terminate that other transaction's session.
  dag_test::private_server server;
  postgres_database db;
  db.make_store();
  flaky_proxy proxy(db.server());
  auto s = dag::open_store(proxy.url(db.url()));
  const auto run = daily_run("etl", utc(2024, 1, 1));
  REQUIRE(s->apply(creating(run, {"a"})).runs_created == std::vector<bool>{true});

  proxy.arm(flaky_proxy::cut::never_arrives_then_unreachable);
  std::optional<dag::change_result> result;
  std::string failed;
  std::thread writer([&] {
    try {
      result = s->apply(claiming(run));
    } catch (const std::exception& e) {
      failed = e.what();
    }
  });
  // However the steps below end, the writer is let through and joined (its retries give up
  // within about 30 s), so that the test's server and database are cleaned up.
  struct joined {
    flaky_proxy& proxy;
    std::thread& writer;
    ~joined() {
      proxy.reopen();
      if (writer.joinable()) writer.join();
    }
  } join_writer{proxy, writer};
  const bool cut = dag_test::eventually([&] { return proxy.cuts() == 1; }, 20s);
  const auto lost_xid = db.query("SELECT backend_xid FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND state LIKE 'idle in transaction%'");
  server.crash();
  server.start();
  // Hand out transaction ids, each committed, until the lost one's is passed.
  long long handed = 0;
  if (lost_xid) {
    pqxx::connection c{db.url()};
    for (int i = 0; i < 100000 && handed <= std::stoll(*lost_xid); ++i) {
      pqxx::work w{c};
      handed = w.exec1("SELECT txid_current()")[0].as<long long>();
      w.commit();
    }
  }
  const auto reused = lost_xid ? db.query("SELECT txid_status(" + *lost_xid + ")") : std::nullopt;
  proxy.reopen();
  writer.join();
  REQUIRE(cut);
  REQUIRE(lost_xid.has_value());
  // Whether the id went to another transaction depends on whether the lost one's records had left
  // the server's memory; when it did, txid_status tells that one's outcome, not ours.
  WARN_MESSAGE(reused == "committed", "lost transaction " << *lost_xid << " after the restart: "
                                       << reused.value_or("unknown") << " (the case this test is for needs committed)");
  CHECK_MESSAGE(failed.empty(), failed);
  REQUIRE(result.has_value());
  CHECK(result->runs_updated == std::vector<bool>{true});
  CHECK(result->task_instances_updated == std::vector<bool>{true});
  const auto tis = s->task_instances("etl", run.run_id);
  REQUIRE(tis.size() == 1);
  CHECK(tis[0].state == dag::task_state::queued);
  CHECK(tis[0].try_number == 1);
}

TEST_CASE("Store.PostgresRoleWithoutRightsOnTheCommitMarksIsToldWhichRightsItNeeds") {
  postgres_database db;
  db.make_store();  // migrated, and the commit marks' table made, by the owner
  const std::string role = "dagrun_t_runtime_" + std::to_string(::getpid());
  struct dropped {
    const postgres_database& db;
    std::string role;
    ~dropped() {
      try {
        run_sql(db.url(), "DROP OWNED BY " + role);
        run_sql(db.server(), "DROP ROLE IF EXISTS " + role);
      } catch (const std::exception& e) {
        MESSAGE("could not drop role " << role << ": " << e.what());
      }
    }
  } drop_role{db, role};
  run_sql(db.server(), "DROP ROLE IF EXISTS " + role);
  db.execute("CREATE ROLE " + role + " LOGIN");
  db.execute("GRANT USAGE ON SCHEMA public TO " + role);
  db.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO " + role);
  db.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO " + role);
  db.execute("REVOKE ALL ON dagrun_commit_marks FROM " + role);
  auto s = dag::open_store(with_parameters(db.url(), "user=" + role));
  try {
    s->set_variable("v", "1");
    FAIL("wrote without rights on the commit marks");
  } catch (const dag::error& e) {
    const std::string what = e.what();
    CHECK_MESSAGE(what.find("permission denied for table dagrun_commit_marks") != std::string::npos, what);
    CHECK_MESSAGE(what.find("SELECT, INSERT, UPDATE and DELETE on dagrun_commit_marks") != std::string::npos, what);
  }
  CHECK_FALSE(db.make_store()->variable("v").has_value());
  db.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON dagrun_commit_marks TO " + role);
  s->set_variable("v", "1");
  CHECK(db.make_store()->variable("v") == "1");
}

TEST_CASE("Store.PostgresGivesUpNamingTheServerWhenItStaysUnreachable") {
  postgres_database db;
  db.make_store();
  flaky_proxy proxy(db.server());
  auto s = dag::open_store(proxy.url(db.url()));
  s->set_variable("v", "1");
  proxy.go_down();
  const auto started = std::chrono::steady_clock::now();
  try {
    s->variable("v");
    FAIL("read a variable from a server that is gone");
  } catch (const dag::usage_error& e) {
    FAIL("not a usage error: " << e.what());
  } catch (const dag::error& e) {
    const auto waited = std::chrono::steady_clock::now() - started;
    const std::string what = e.what();
    CHECK_MESSAGE(what.find("cannot read a variable") != std::string::npos, what);
    CHECK_MESSAGE(what.find("127.0.0.1:" + std::to_string(proxy.port()) + "/" + db.name()) != std::string::npos, what);
    CHECK(waited >= 20s);  // it kept trying for its budget (about 30 s)…
    CHECK(waited < 60s);   // …and no longer
  }
}

TEST_CASE("Store.PostgresMigrationsRacingFromSeveralThreadsRunOnce") {
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    postgres_database db;  // empty: every store below finds the schema missing
    constexpr int threads = 4;
    std::barrier sync(threads);
    std::vector<int> versions(threads, -1);
    std::vector<std::string> errors(threads);
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i)
      pool.emplace_back([&, i] {
        sync.arrive_and_wait();
        try {
          versions[static_cast<std::size_t>(i)] = db.make_store()->schema_version();
        } catch (const std::exception& e) {
          errors[static_cast<std::size_t>(i)] = e.what();
        }
      });
    for (auto& t : pool) t.join();
    for (int i = 0; i < threads; ++i) {
      CHECK(errors[static_cast<std::size_t>(i)].empty());
      CHECK(versions[static_cast<std::size_t>(i)] == versions[0]);
    }
    CHECK(versions[0] >= 1);
    CHECK(db.query("SELECT count(*) FROM schema_version") == std::to_string(versions[0]));
  }
}

TEST_CASE("Store.PostgresUrlsMayUseEverySchemeSpelling") {
  postgres_database db;
  const std::string url = db.url();
  const std::size_t scheme_end = url.find("://");
  REQUIRE(scheme_end != std::string::npos);
  const std::string rest = url.substr(scheme_end);
  dag::open_store("postgresql" + rest)->set_variable("v", "1");
  CHECK(dag::open_store("postgres" + rest)->variable("v") == "1");
  CHECK(dag::open_store("postgresql+psycopg2" + rest)->variable("v") == "1");
}

}  // namespace
