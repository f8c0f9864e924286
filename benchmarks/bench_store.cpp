// The SQLite store's write path alone, fed the change sets the engine writes for a run of N
// independent tasks, so that the store's share of a run can be measured and schema or write-
// pattern changes compared without touching the library. Goes through dag::open_store and
// store::apply, as the engine does.
//
//   bench_store --db FILE [--tasks N] [--batch B] [variants...]
//
// The pattern (engine.cpp at the time of writing): one transaction creates the run and its N
// task instances; one sets every instance none -> scheduled (the first pass of a run with no
// dependencies); then each transaction finishes the previous batch of B tries (instance
// running -> success, try row upserted) and starts the next B (instance scheduled -> running,
// try row inserted as running).
//
// Variants, applied with plain SQL to a freshly migrated file before the measured part:
//   --no-start-try         write the try row only when the try ends (not also when it starts)
//   --no-scheduled-write   do not persist the none -> scheduled step
//   --drop-state-index     drop task_instances_by_state
//   --partial-state-index  replace it by one on (state) WHERE state IN ('queued', 'running')
//   --without-rowid        task_instances and task_tries as WITHOUT ROWID tables (same keys)
//   --no-fk                task_tries without its foreign key to task_instances
// Prints one RESULT line: microseconds per task for each phase and in all.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>

#include <dag/store/store.hpp>

namespace {

using wall = std::chrono::steady_clock;
double micros_since(wall::time_point t0) { return std::chrono::duration<double, std::micro>(wall::now() - t0).count(); }

struct options {
  std::string db;
  int tasks = 100000;
  int batch = 32;
  bool no_start_try = false, no_scheduled_write = false, drop_state_index = false, partial_state_index = false,
       without_rowid = false, no_fk = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "bench_store: " << why
            << "\nusage: bench_store --db FILE [--tasks N] [--batch B] [--no-start-try] [--no-scheduled-write]\n"
               "       [--drop-state-index] [--partial-state-index] [--without-rowid] [--no-fk]\n";
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--db") o.db = value();
    else if (a == "--tasks") o.tasks = std::atoi(value().c_str());
    else if (a == "--batch") o.batch = std::atoi(value().c_str());
    else if (a == "--no-start-try") o.no_start_try = true;
    else if (a == "--no-scheduled-write") o.no_scheduled_write = true;
    else if (a == "--drop-state-index") o.drop_state_index = true;
    else if (a == "--partial-state-index") o.partial_state_index = true;
    else if (a == "--without-rowid") o.without_rowid = true;
    else if (a == "--no-fk") o.no_fk = true;
    else usage("unknown option '" + a + "'");
  }
  if (o.db.empty()) usage("--db is required");
  if (o.tasks < 1 || o.batch < 1) usage("--tasks and --batch must be at least 1");
  return o;
}

// The tables as migration 1 creates them, optionally WITHOUT ROWID and without the tries' FK.
void reshape(const options& o) {
  SQLite::Database db(o.db, SQLite::OPEN_READWRITE);
  if (o.without_rowid || o.no_fk) {
    const char* suffix = o.without_rowid ? " WITHOUT ROWID" : "";
    db.exec("DROP TABLE xcom; DROP TABLE task_tries; DROP TABLE task_instances;");
    db.exec(std::string(R"sql(
CREATE TABLE task_instances (
  dag_id TEXT NOT NULL, run_id TEXT NOT NULL, task_id TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'none',
  try_number INTEGER NOT NULL DEFAULT 0, start_date INTEGER, end_date INTEGER, retry_at INTEGER, exit_code INTEGER,
  hostname TEXT NOT NULL DEFAULT '', pid INTEGER NOT NULL DEFAULT 0, log_path TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (dag_id, run_id, task_id),
  FOREIGN KEY (dag_id, run_id) REFERENCES dag_runs (dag_id, run_id) ON DELETE CASCADE))sql") + suffix + ";" +
            "CREATE INDEX task_instances_by_state ON task_instances (state);" + R"sql(
CREATE TABLE task_tries (
  dag_id TEXT NOT NULL, run_id TEXT NOT NULL, task_id TEXT NOT NULL, try_number INTEGER NOT NULL,
  state TEXT NOT NULL, start_date INTEGER, end_date INTEGER, exit_code INTEGER, hostname TEXT NOT NULL DEFAULT '',
  pid INTEGER NOT NULL DEFAULT 0, log_path TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (dag_id, run_id, task_id, try_number))sql" +
            (o.no_fk ? std::string(")")
                     : std::string(", FOREIGN KEY (dag_id, run_id, task_id) REFERENCES task_instances (dag_id, run_id, "
                                   "task_id) ON DELETE CASCADE)")) +
            suffix + ";" + R"sql(
CREATE TABLE xcom (
  dag_id TEXT NOT NULL, run_id TEXT NOT NULL, task_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (dag_id, run_id, task_id, key),
  FOREIGN KEY (dag_id, run_id, task_id) REFERENCES task_instances (dag_id, run_id, task_id) ON DELETE CASCADE);)sql");
  }
  if (o.drop_state_index || o.partial_state_index) db.exec("DROP INDEX task_instances_by_state");
  if (o.partial_state_index)
    db.exec("CREATE INDEX task_instances_by_state ON task_instances (state) WHERE state IN ('queued', 'running')");
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  std::filesystem::remove(o.db);
  dag::open_store("sqlite:" + o.db);  // creates and migrates, then closes
  reshape(o);
  auto store = dag::open_store("sqlite:" + o.db);

  const std::string dag_id = "bench_fanout_callable";
  const std::string run_id = "manual__2024-01-01T00:00:00+00:00";
  const std::string hostname = "benchhost";
  const auto now = std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
  const auto n = static_cast<std::size_t>(o.tasks);
  std::vector<dag::task_instance_record> tis(n);
  for (std::size_t i = 0; i < n; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "t%06zu", i);
    tis[i].dag_id = dag_id;
    tis[i].run_id = run_id;
    tis[i].task_id = id;
  }

  // 1. The run and its task instances.
  auto t = wall::now();
  {
    dag::change_set c;
    dag::run_record run;
    run.dag_id = dag_id;
    run.run_id = run_id;
    run.type = dag::run_type::manual;
    std::vector<std::string> ids;
    for (const auto& ti : tis) ids.push_back(ti.task_id);
    c.new_runs.emplace_back(run, std::move(ids));
    store->apply(c);
  }
  const double create_us = micros_since(t);

  // 2. none -> scheduled, all at once (the first pass).
  t = wall::now();
  if (!o.no_scheduled_write) {
    dag::change_set c;
    for (auto& ti : tis) {
      ti.state = dag::task_state::scheduled;
      c.task_instances.push_back({dag::task_state::none, 0, ti});
    }
    store->apply(c);
  }
  const double scheduled_us = micros_since(t);
  const dag::task_state before_start = o.no_scheduled_write ? dag::task_state::none : dag::task_state::scheduled;

  // 3. Batches: finish the previous B, start the next B, one transaction each.
  t = wall::now();
  std::size_t transactions = 0;
  std::size_t started = 0, finished = 0;
  while (finished < n) {
    dag::change_set c;
    for (; finished < started; ++finished) {
      auto& ti = tis[finished];
      ti.state = dag::task_state::success;
      ti.end_date = now;
      c.tries.push_back({ti.dag_id, ti.run_id, ti.task_id, ti.try_number, ti.state, ti.start_date, ti.end_date,
                         ti.exit_code, ti.hostname, ti.pid, ti.log_path, ti.message});
      c.task_instances.push_back({dag::task_state::running, ti.try_number, ti});
    }
    const std::size_t until = std::min(n, started + static_cast<std::size_t>(o.batch));
    for (; started < until; ++started) {
      auto& ti = tis[started];
      ti.state = dag::task_state::running;
      ti.try_number = 1;
      ti.start_date = now;
      ti.hostname = hostname;
      ti.log_path = "/tmp/logs/dag_id=" + ti.dag_id + "/run_id=" + ti.run_id + "/task_id=" + ti.task_id + "/attempt=1.log";
      c.task_instances.push_back({before_start, 0, ti});
      if (!o.no_start_try)
        c.tries.push_back({ti.dag_id, ti.run_id, ti.task_id, 1, ti.state, ti.start_date, std::nullopt, std::nullopt,
                           ti.hostname, 0, ti.log_path, {}});
    }
    auto result = store->apply(c);
    for (bool ok : result.task_instances_updated)
      if (!ok) {
        std::cerr << "bench_store: a compare-and-set lost, the pattern is wrong\n";
        return 1;
      }
    ++transactions;
  }
  const double steps_us = micros_since(t);
  const double per = static_cast<double>(n);
  std::printf(
      "RESULT tasks=%d batch=%d transactions=%zu create_us_per_task=%.2f scheduled_us_per_task=%.2f "
      "steps_us_per_task=%.2f total_us_per_task=%.2f\n",
      o.tasks, o.batch, transactions, create_us / per, scheduled_us / per, steps_us / per,
      (create_us + scheduled_us + steps_us) / per);
  return 0;
}
