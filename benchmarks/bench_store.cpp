// The store's write path alone, fed the change sets the engine writes for a run of N
// independent tasks, so that the store's share of a run can be measured and schema or write-
// pattern changes compared without touching the library. Goes through dag::open_store and
// store::apply, as the engine does.
//
//   bench_store --db FILE|URL [--tasks N] [--batch B] [variants...]
//
// FILE is a SQLite file (recreated); a `postgresql://` URL names a PostgreSQL database, which
// must be empty (create a fresh one per run: the run the benchmark writes must not exist yet).
//
// The pattern (engine.cpp at the time of writing): one transaction creates the run and its N
// task instances; one sets every instance none -> scheduled (the first pass of a run with no
// dependencies); then each transaction finishes the previous batch of B tries (instance
// running -> success, the try's row written: a try's row is written once, when it ends) and
// starts the next B (instance scheduled -> running).
//
// Variants (SQLite only, but for --presized-rows), made on a freshly migrated file before the
// measured part by editing the CREATE statements the store's migrations left (so they follow the
// schema as it changes):
//   --no-scheduled-write   do not persist the none -> scheduled step
//   --without-rowid        task_instances as a WITHOUT ROWID table too (same keys; the tries are one)
//   --no-fk                task_tries without its foreign key to task_instances
//   --tries-rowid          task_tries as a rowid table (its key a separate unique index)
//   --presized-rows        the none -> scheduled pass also writes the start, end, host and log path
//                          a try's start and end will write, so that rows do not grow in the steps
//                          (an upper bound for rows made at their final size; not what the engine does)
//   --raw-int-keys         not the store: the same statements through SQLiteCpp on tables keyed by
//                          integers (run, task index, try) and states stored as integers, as a
//                          lower bound for what a schema change could give
// Prints one RESULT line: microseconds per task for each phase and in all.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <dag/store/store.hpp>

namespace {

using wall = std::chrono::steady_clock;
double micros_since(wall::time_point t0) { return std::chrono::duration<double, std::micro>(wall::now() - t0).count(); }

struct options {
  std::string db;
  int tasks = 100000;
  int batch = 32;
  bool no_scheduled_write = false, without_rowid = false, no_fk = false, tries_rowid = false, presized_rows = false, raw_int_keys = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "bench_store: " << why
            << "\nusage: bench_store --db FILE|URL [--tasks N] [--batch B] [--no-scheduled-write] [--without-rowid]\n"
               "       [--no-fk] [--tries-rowid] [--presized-rows] [--raw-int-keys]\n";
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
    else if (a == "--no-scheduled-write") o.no_scheduled_write = true;
    else if (a == "--without-rowid") o.without_rowid = true;
    else if (a == "--no-fk") o.no_fk = true;
    else if (a == "--tries-rowid") o.tries_rowid = true;
    else if (a == "--presized-rows") o.presized_rows = true;
    else if (a == "--raw-int-keys") o.raw_int_keys = true;
    else usage("unknown option '" + a + "'");
  }
  if (o.presized_rows && (o.no_scheduled_write || o.raw_int_keys))
    usage("--presized-rows writes the sizes in the none -> scheduled pass: not with --no-scheduled-write or --raw-int-keys");
  if (o.db.empty()) usage("--db is required");
  if (o.db.starts_with("postgres") && (o.no_scheduled_write || o.without_rowid || o.no_fk || o.tries_rowid || o.raw_int_keys))
    usage("the variants apply to SQLite files only");
  if (o.tasks < 1 || o.batch < 1) usage("--tasks and --batch must be at least 1");
  return o;
}

// The store's two busiest tables made again from the CREATE statements its migrations left, edited
// as the variants say. The file is fresh (no rows), and its connection does not enforce foreign
// keys, so the parent can be dropped under the tables that refer to it.
void reshape(const options& o) {
  if (!o.without_rowid && !o.no_fk && !o.tries_rowid) return;
  SQLite::Database db(o.db, SQLite::OPEN_READWRITE);
  auto schema_of = [&db](const std::string& where) {
    std::vector<std::string> out;
    SQLite::Statement q(db, "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND " + where);
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  };
  const auto only = [&schema_of](const std::string& table) {
    auto found = schema_of("type = 'table' AND name = '" + table + "'");
    if (found.size() != 1) throw std::runtime_error("bench_store: no table " + table + " in the store's schema");
    return found.front();
  };
  std::string instances = only("task_instances"), tries = only("task_tries");
  const auto indexes = schema_of("type = 'index' AND tbl_name IN ('task_instances', 'task_tries')");
  if (o.without_rowid && instances.find("WITHOUT ROWID") == std::string::npos) instances += " WITHOUT ROWID";
  if (o.tries_rowid) {
    const auto at = tries.rfind(" WITHOUT ROWID");
    if (at == std::string::npos) throw std::runtime_error("bench_store: task_tries is a rowid table already:\n" + tries);
    tries.erase(at);
  }
  if (o.no_fk) {
    // ",\n  FOREIGN KEY (...)\n    REFERENCES task_instances (...) ON DELETE CASCADE" up to the closing parenthesis
    const auto fk = tries.find("FOREIGN KEY");
    const auto comma = tries.rfind(',', fk);
    const auto end = tries.find("ON DELETE CASCADE", fk);
    if (fk == std::string::npos || comma == std::string::npos || end == std::string::npos)
      throw std::runtime_error("bench_store: task_tries has no foreign key to remove:\n" + tries);
    tries.erase(comma, end + std::string_view("ON DELETE CASCADE").size() - comma);
  }
  db.exec("DROP TABLE task_tries; DROP TABLE task_instances;");
  db.exec(instances);
  db.exec(tries);
  for (const auto& index : indexes) db.exec(index);
}

// The same write pattern on integer-keyed tables, straight through SQLiteCpp.
int raw_int_keys(const options& o) {
  std::filesystem::remove(o.db);
  SQLite::Database db(o.db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
  db.exec(R"sql(
CREATE TABLE runs (id INTEGER PRIMARY KEY, dag_id TEXT NOT NULL, run_id TEXT NOT NULL, UNIQUE (dag_id, run_id));
CREATE TABLE ti (run INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE, task INTEGER NOT NULL,
  state INTEGER NOT NULL DEFAULT 0, try_number INTEGER NOT NULL DEFAULT 0, start_date INTEGER, end_date INTEGER,
  hostname TEXT NOT NULL DEFAULT '', log_path TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run, task)) WITHOUT ROWID;
CREATE INDEX ti_active ON ti (state) WHERE state IN (3, 4);
CREATE TABLE tries (run INTEGER NOT NULL, task INTEGER NOT NULL, try_number INTEGER NOT NULL, state INTEGER NOT NULL,
  start_date INTEGER, end_date INTEGER, hostname TEXT NOT NULL DEFAULT '', log_path TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '', PRIMARY KEY (run, task, try_number)) WITHOUT ROWID;
INSERT INTO runs (id, dag_id, run_id) VALUES (1, 'bench_fanout_callable', 'manual__2024-01-01T00:00:00+00:00');
)sql");
  SQLite::Statement begin(db, "BEGIN IMMEDIATE"), commit(db, "COMMIT");
  SQLite::Statement insert_ti(db, "INSERT INTO ti (run, task) VALUES (1, ?1)");
  SQLite::Statement update_ti(db,
                              "UPDATE ti SET state = ?3, try_number = ?4, start_date = ?5, end_date = ?6, hostname = ?7, "
                              "log_path = ?8, message = ?9 WHERE run = ?1 AND task = ?2 AND state = ?10 AND try_number = ?11");
  SQLite::Statement upsert_try(db,
                               "INSERT INTO tries (run, task, try_number, state, start_date, end_date, hostname, log_path, "
                               "message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (run, task, try_number) DO "
                               "UPDATE SET state = excluded.state, end_date = excluded.end_date, message = excluded.message");
  auto exec = [](SQLite::Statement& s) {
    const int changed = s.exec();
    s.reset();
    return changed;
  };
  const int n = o.tasks;
  const std::string host = "benchhost";
  auto log_path = [](int i) {
    return "/tmp/logs/dag_id=bench_fanout_callable/run_id=manual__2024-01-01T00:00:00+00:00/task_id=t" +
           std::to_string(i) + "/attempt=1.log";
  };
  enum { none = 0, scheduled = 2, running = 4, success = 5 };
  auto t = wall::now();
  exec(begin);
  for (int i = 0; i < n; ++i) {
    insert_ti.bind(1, i);
    exec(insert_ti);
  }
  exec(commit);
  const double create_us = micros_since(t);
  t = wall::now();
  if (!o.no_scheduled_write) {
    exec(begin);
    for (int i = 0; i < n; ++i) {
      update_ti.bind(1, 1), update_ti.bind(2, i), update_ti.bind(3, scheduled), update_ti.bind(4, 0);
      update_ti.bind(5), update_ti.bind(6), update_ti.bind(7, ""), update_ti.bind(8, ""), update_ti.bind(9, "");
      update_ti.bind(10, none), update_ti.bind(11, 0);
      if (exec(update_ti) != 1) return 1;
    }
    exec(commit);
  }
  const double scheduled_us = micros_since(t);
  const int before_start = o.no_scheduled_write ? none : scheduled;
  t = wall::now();
  std::size_t transactions = 0;
  int started = 0, finished = 0;
  const std::int64_t now = 1700000000000000;
  while (finished < n) {
    exec(begin);
    for (; finished < started; ++finished) {
      const std::string path = log_path(finished);
      update_ti.bind(1, 1), update_ti.bind(2, finished), update_ti.bind(3, success), update_ti.bind(4, 1);
      update_ti.bind(5, now), update_ti.bind(6, now), update_ti.bind(7, host), update_ti.bind(8, path);
      update_ti.bind(9, ""), update_ti.bind(10, running), update_ti.bind(11, 1);
      if (exec(update_ti) != 1) return 1;
      upsert_try.bind(1, 1), upsert_try.bind(2, finished), upsert_try.bind(3, 1), upsert_try.bind(4, success);
      upsert_try.bind(5, now), upsert_try.bind(6, now), upsert_try.bind(7, host), upsert_try.bind(8, path);
      upsert_try.bind(9, "");
      exec(upsert_try);
    }
    const int until = std::min(n, started + o.batch);
    for (; started < until; ++started) {
      const std::string path = log_path(started);
      update_ti.bind(1, 1), update_ti.bind(2, started), update_ti.bind(3, running), update_ti.bind(4, 1);
      update_ti.bind(5, now), update_ti.bind(6), update_ti.bind(7, host), update_ti.bind(8, path);
      update_ti.bind(9, ""), update_ti.bind(10, before_start), update_ti.bind(11, 0);
      if (exec(update_ti) != 1) return 1;
    }
    exec(commit);
    ++transactions;
  }
  const double steps_us = micros_since(t);
  const double per = static_cast<double>(n);
  std::printf(
      "RESULT raw_int_keys=1 tasks=%d batch=%d transactions=%zu create_us_per_task=%.2f scheduled_us_per_task=%.2f "
      "steps_us_per_task=%.2f total_us_per_task=%.2f\n",
      o.tasks, o.batch, transactions, create_us / per, scheduled_us / per, steps_us / per,
      (create_us + scheduled_us + steps_us) / per);
  return 0;
}

}  // namespace

int measure(const options& o);

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  try {
    return o.raw_int_keys ? raw_int_keys(o) : measure(o);
  } catch (const std::exception& e) {
    std::cerr << "bench_store: " << e.what() << "\n";
    return 1;
  }
}

int measure(const options& o) {
  const bool postgres = o.db.starts_with("postgres");
  if (!postgres) {
    std::filesystem::remove(o.db);
    dag::open_store("sqlite:" + o.db);  // creates and migrates, then closes
    reshape(o);
  }
  auto store = dag::open_store(postgres ? o.db : "sqlite:" + o.db);

  const std::string dag_id = "bench_fanout_callable";
  const std::string run_id = "manual__2024-01-01T00:00:00+00:00";
  const std::string hostname = "benchhost";
  const auto now = std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
  const auto n = static_cast<std::size_t>(o.tasks);
  std::vector<dag::task_instance_record> tis(n);
  for (std::size_t i = 0; i < n; ++i) {
    char id[32];
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
  const auto log_path_of = [](const dag::task_instance_record& ti) {
    return "/tmp/logs/dag_id=" + ti.dag_id + "/run_id=" + ti.run_id + "/task_id=" + ti.task_id + "/attempt=1.log";
  };

  // 2. none -> scheduled, all at once (the first pass).
  t = wall::now();
  if (!o.no_scheduled_write) {
    dag::change_set c;
    for (auto& ti : tis) {
      ti.state = dag::task_state::scheduled;
      if (o.presized_rows) {
        ti.start_date = ti.end_date = now;
        ti.hostname = hostname;
        ti.log_path = log_path_of(ti);
      }
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
      c.task_instances.back().expected_start = ti.start_date;  // an end names its poke, as the engine's do
    }
    const std::size_t until = std::min(n, started + static_cast<std::size_t>(o.batch));
    for (; started < until; ++started) {
      auto& ti = tis[started];
      ti.state = dag::task_state::running;
      ti.try_number = 1;
      ti.start_date = now;
      if (!o.presized_rows) ti.end_date.reset();  // presized: the end's stamp stays in place, the same size
      ti.hostname = hostname;
      ti.log_path = log_path_of(ti);
      c.task_instances.push_back({before_start, 0, ti});
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
