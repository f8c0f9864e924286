// The metadata store, checked only through the dag::store interface so that the same cases run on
// every backend. A backend is a `test_database`: a fresh, empty database per case, stores opened
// on it (`make_store`), and raw SQL (`execute`) for the one set-up the interface cannot express.
// Today that is SQLite files in a temporary directory unique to this process; a PostgreSQL
// `test_database` (a database per case) runs the same cases.

#include <dag/core/error.hpp>
#include <dag/store/store.hpp>

#include <doctest/doctest.h>

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

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

// --- the backend ---------------------------------------------------------------------------------

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
class test_database {
public:
  test_database() {
    static int cases = 0;
    dir_ = scratch_dir() / std::to_string(++cases);
    fs::create_directories(dir_);
  }
  ~test_database() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  test_database(const test_database&) = delete;
  test_database& operator=(const test_database&) = delete;

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
  /// A directory the case may use for files of its own.
  const fs::path& dir() const { return dir_; }
  /// Text that names the database in error messages.
  std::string name() const { return file().string(); }

private:
  fs::path file() const { return dir_ / "dagrun.db"; }
  fs::path dir_;
};

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
  for (auto t : {dag::run_type::scheduled, dag::run_type::manual, dag::run_type::backfill})
    CHECK(dag::parse_run_type(dag::to_string(t)) == t);
  CHECK(dag::to_string(dag::run_type::manual) == "manual");
  CHECK_FALSE(dag::parse_run_type("Scheduled").has_value());
  CHECK_FALSE(dag::parse_run_type("").has_value());
}

TEST_CASE("Store.MigrateIsIdempotentAndRecordsTheVersion") {
  test_database db;
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

TEST_CASE("Store.ReopeningAFileKeepsItsData") {
  test_database db;
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

TEST_CASE("Store.RefusesADatabaseWithANewerSchema") {
  test_database db;
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

TEST_CASE("Store.CreatesARunWithItsTaskInstancesInStateNone") {
  test_database db;
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

TEST_CASE("Store.OneScheduledOrBackfillRunPerDateButManualRunsMayShareIt") {
  test_database db;
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

TEST_CASE("Store.RefusesADuplicateRunIdAndLeavesTheRunAlone") {
  test_database db;
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

TEST_CASE("Store.CompareAndSetUpdatesWinOnlyWhenNotStale") {
  test_database db;
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
    dag::change_set r;
    r.task_instances = {moving(run, "a", dag::task_state::running, 0, dag::task_state::failed, 0), retry};
    CHECK(s->apply(r).task_instances_updated == std::vector<bool>{false, true});

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
    CHECK(cleared.message.empty());
  }
}

TEST_CASE("Store.KeepsEveryTryByNumber") {
  test_database db;
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

TEST_CASE("Store.XComIsReplacedAndPulledByKey") {
  test_database db;
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

TEST_CASE("Store.ListsRunsByDagStateAndDateNewestFirst") {
  test_database db;
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

TEST_CASE("Store.FindsTaskInstancesInStatesAcrossRuns") {
  test_database db;
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

TEST_CASE("Store.VariablesCanBeSetReadListedAndDeleted") {
  test_database db;
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

TEST_CASE("Store.ConnectionsCanBeSetReadListedAndDeletedWithTheirPassword") {
  test_database db;
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

TEST_CASE("Store.PausesAndUnpausesDags") {
  test_database db;
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

TEST_CASE("Store.ImportErrorsAreReplacedAsAWhole") {
  test_database db;
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

TEST_CASE("Store.CleanDeletesOnlyOldFinishedRunsWithTheirChildren") {
  test_database db;
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

TEST_CASE("Store.AChangeSetIsAppliedWhollyOrNotAtAll") {
  test_database db;
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

TEST_CASE("Store.AppliesTenThousandTaskInstanceUpdatesInOneCall") {
  test_database db;
  auto s = db.make_store();
  const auto run = daily_run("big", utc(2024, 1, 1));
  constexpr std::size_t count = 10000;
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < count; ++i) ids.push_back("task_" + std::to_string(100000 + i));
  REQUIRE(s->apply(creating(run, ids)).runs_created == std::vector<bool>{true});

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

TEST_CASE("Store.TwoStoresOnOneDatabaseSeeEachOthersCommittedWrites") {
  test_database db;
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

TEST_CASE("Store.OpenStoreRefusesUnknownAndUnbuiltUrls") {
  check_usage_error([] { dag::open_store("postgresql://etl:hunter2@db:5432/dagrun"); },
                    "PostgreSQL support is not built yet", "hunter2");
  check_usage_error([] { dag::open_store("postgres://etl:hunter2@db/dagrun"); }, "PostgreSQL support is not built yet",
                    "hunter2");
  check_usage_error([] { dag::open_store("mysql://root:hunter2@db/dagrun"); }, "'mysql'", "hunter2");
  check_usage_error([] { dag::open_store("dagrun.db"); }, "use sqlite:dagrun.db");  // no scheme: a hint, no guess
  check_usage_error([] { dag::open_store(""); }, "sqlite:");
  check_usage_error([] { dag::open_store("sqlite:"); }, "no file");
  check_usage_error([] { dag::open_store("sqlite://"); }, "no file");
  check_usage_error([] { dag::open_store("sqlite://dagrun.db"); }, "host");
}

TEST_CASE("Store.OpenStoreReadsSqliteUrlsAsAirflowDoes") {
  test_database db;
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
  test_database db;
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

}  // namespace
