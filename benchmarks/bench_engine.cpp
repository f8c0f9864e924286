// In-process engine benchmarks: builds one DAG shape with the fluent API, runs it through
// dag::engine over a SQLite store (state persisted, as the CLI does) and prints one RESULT line
// of key=value pairs that benchmarks/run.sh parses. No timing assertions: it measures and reports.
//
//   bench_engine chain     --tasks N [--op bash|callable] [--parallelism P]
//   bench_engine fanout    --tasks N [--op bash|callable] [--max-active-tasks K] [--parallelism P]
//   bench_engine backfill  --days D --tasks T [--op bash|callable] [--parallelism P] [--max-active-runs R]
//                          [--max-active-tasks K]
// Common options: --dir DIR (scratch folder, default a fresh one under $TMPDIR, removed at the
// end), --db URL (default sqlite:DIR/dagrun.db; `sqlite::memory:` isolates the engine from the
// file system), --keep (keep DIR).
//
// The RESULT line also gives the scheduler passes (`engine::step`) of the run: their number, the
// first one's time (it looks at every task of the new run), their median, 99th percentile and
// longest, in milliseconds, and the engine thread's CPU time per task over creating and running
// the runs (engine_cpu_us_per_task: steadier than wall time on a shared machine).
//
// Exit status: 0 when every run succeeded, 1 when one did not, 2 on bad usage.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <time.h>
#include <unistd.h>

#include <dag/operators/builtin.hpp>
#include <dag/dag.hpp>
#include <dag/engine/engine.hpp>
#include <dag/load/check.hpp>
#include <dag/store/store.hpp>

namespace {

namespace fs = std::filesystem;
using wall = std::chrono::steady_clock;

double seconds_since(wall::time_point t0) { return std::chrono::duration<double>(wall::now() - t0).count(); }

// CPU time of the calling thread (the engine's), in seconds: on a shared machine, steadier than
// wall time.
double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct options {
  std::string mode;
  int tasks = 1000;
  int days = 365;
  std::string op = "bash";
  int parallelism = 32;  // dag::engine_options' default
  int max_active_tasks = 0;  // 0: the mode's default
  int max_active_runs = 16;  // Airflow's default, as in dag::definition
  std::string dir;
  std::string db;
  bool keep = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "bench_engine: " << why
            << "\nusage: bench_engine chain|fanout|backfill [--tasks N] [--days D] [--op bash|callable]\n"
               "       [--parallelism P] [--max-active-tasks K] [--max-active-runs R] [--dir DIR] [--db URL] [--keep]\n";
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  if (argc < 2) usage("no mode");
  o.mode = argv[1];
  if (o.mode != "chain" && o.mode != "fanout" && o.mode != "backfill") usage("unknown mode '" + o.mode + "'");
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    auto number = [&]() {
      const std::string v = value();
      try {
        return std::stoi(v);
      } catch (...) {
        usage(a + ": expected a number, got '" + v + "'");
      }
    };
    if (a == "--tasks") o.tasks = number();
    else if (a == "--days") o.days = number();
    else if (a == "--op") o.op = value();
    else if (a == "--parallelism") o.parallelism = number();
    else if (a == "--max-active-tasks") o.max_active_tasks = number();
    else if (a == "--max-active-runs") o.max_active_runs = number();
    else if (a == "--dir") o.dir = value();
    else if (a == "--db") o.db = value();
    else if (a == "--keep") o.keep = true;
    else usage("unknown option '" + a + "'");
  }
  if (o.op != "bash" && o.op != "callable") usage("--op: expected bash or callable");
  if (o.tasks < 1 || o.days < 1) usage("--tasks and --days must be at least 1");
  return o;
}

dag::task_handle add_noop(dag::definition& d, const std::string& id, const std::string& op) {
  if (op == "bash") return d.bash(id, "true");
  return d.callable(id, [](dag::task_context&) { return dag::operator_result::success(); });
}

std::string task_id(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "t%06d", i);
  return buf;
}

dag::definition make_dag(const options& o) {
  dag::definition d{"bench_" + o.mode + "_" + o.op};
  d.reserve_tasks(static_cast<std::size_t>(o.tasks));
  if (o.mode == "chain") {
    // A linear chain: t0 >> t1 >> ... ; one task at a time whatever the limits.
    d.max_active_tasks(o.max_active_tasks > 0 ? o.max_active_tasks : 16);
    auto prev = add_noop(d, task_id(0), o.op);
    for (int i = 1; i < o.tasks; ++i) prev = prev >> add_noop(d, task_id(i), o.op);
  } else if (o.mode == "fanout") {
    // Independent tasks; by default as many at once as the engine allows.
    d.max_active_tasks(o.max_active_tasks > 0 ? o.max_active_tasks : o.tasks);
    for (int i = 0; i < o.tasks; ++i) add_noop(d, task_id(i), o.op);
  } else {
    // backfill: a daily DAG of `tasks` independent no-op tasks.
    d.schedule("@daily").start_date("2024-01-01").catchup(false);
    d.max_active_runs(o.max_active_runs);
    d.max_active_tasks(o.max_active_tasks > 0 ? o.max_active_tasks : 16);
    for (int i = 0; i < o.tasks; ++i) add_noop(d, task_id(i), o.op);
  }
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  const fs::path dir = o.dir.empty() ? fs::temp_directory_path() / ("dagrun-bench-" + std::to_string(::getpid()))
                                     : fs::path(o.dir);
  fs::create_directories(dir);
  const std::string db_url = o.db.empty() ? "sqlite:" + (dir / "dagrun.db").string() : o.db;

  const auto t0 = wall::now();
  const dag::operator_catalog operators = dag::builtin_operators();
  dag::definition d = make_dag(o);
  if (auto problems = dag::check(d, operators); !problems.empty()) {
    for (const auto& p : problems) std::cerr << p.what() << "\n";
    return 2;
  }
  const std::string dag_id = d.id();
  const double t_build = seconds_since(t0);

  std::vector<dag::run_state> states;
  double t_setup = 0, t_create = 0, t_run = 0;
  double engine_cpu = 0;  // the engine thread's CPU over creating and running the runs
  std::size_t runs = 0;
  std::vector<double> passes;  // ms, in order
  {
    const auto t1 = wall::now();
    auto store = dag::open_store(db_url);
    dag::system_clock clock;
    dag::engine_options eo;
    eo.parallelism = o.parallelism;
    eo.log_folder = dir / "logs";
    eo.create_scheduled_runs = false;  // as `dagrun run` / `dagrun backfill`
    eo.adopt_store_runs = false;
    eo.on_pass = [&passes](std::chrono::steady_clock::duration took) { passes.push_back(std::chrono::duration<double, std::milli>(took).count()); };
    dag::engine eng(*store, operators, clock, eo);
    eng.set_dags({std::move(d)});
    t_setup = seconds_since(t1);

    const auto t2 = wall::now();
    const double cpu0 = thread_cpu_seconds();
    std::vector<dag::run_key> keys;
    if (o.mode == "backfill") {
      const dag::scheduled_dag* sd = eng.find_dag(dag_id);
      const auto start = dag::parse_time("2024-01-01");
      const auto dates = sd->times.runs_between(start, start + std::chrono::days(o.days - 1));
      for (const auto& info : dates)
        if (auto key = eng.create_run(dag_id, dag::run_type::backfill, info.logical_date)) keys.push_back(*key);
    } else {
      if (auto key = eng.create_run(dag_id, dag::run_type::manual, dag::parse_time("2024-01-01"))) keys.push_back(*key);
    }
    runs = keys.size();
    t_create = seconds_since(t2);

    const auto t3 = wall::now();
    states = eng.run_to_completion(keys);
    t_run = seconds_since(t3);
    engine_cpu = thread_cpu_seconds() - cpu0;
  }
  const double total = seconds_since(t0);

  const double first_pass = passes.empty() ? 0 : passes.front();
  std::sort(passes.begin(), passes.end());
  const auto pass_at = [&](double q) {
    return passes.empty() ? 0 : passes[static_cast<std::size_t>(q * static_cast<double>(passes.size() - 1))];
  };
  std::size_t ok = 0;
  for (auto s : states) ok += s == dag::run_state::success ? 1 : 0;
  const double task_count = static_cast<double>(o.tasks) * static_cast<double>(runs);
  std::printf(
      "RESULT mode=%s op=%s tasks=%d runs=%zu succeeded=%zu parallelism=%d build_s=%.4f setup_s=%.4f create_s=%.4f "
      "run_s=%.4f total_s=%.4f tasks_per_s=%.0f passes=%zu first_pass_ms=%.3f pass_median_ms=%.3f pass_p99_ms=%.3f "
      "pass_max_ms=%.3f engine_cpu_us_per_task=%.2f\n",
      o.mode.c_str(), o.op.c_str(), o.tasks, runs, ok, o.parallelism, t_build, t_setup, t_create, t_run, total,
      task_count / (t_create + t_run), passes.size(), first_pass, pass_at(0.5), pass_at(0.99), pass_at(1.0),
      engine_cpu * 1e6 / task_count);
  std::fflush(stdout);
  if (!o.keep && o.dir.empty()) fs::remove_all(dir);
  return ok == runs && runs > 0 ? 0 : 1;
}
