// The web UI's Grid page on the server: a DAG of T tasks × R finished runs seeded straight into a
// SQLite store (every task instance with a state, a try, start and end), then the page
// `/dags/bench_grid?limit=R` rendered N times through the HTTP face's handler (no socket, as
// tests/test_web_ui.cpp asks it). Prints one RESULT line of key=value pairs that
// benchmarks/run.sh parses: the median, 90th percentile and fastest render in ms (wall clock) and
// the median CPU time of a render (this thread's own: on a shared machine, time spent waiting for a
// CPU is in the wall clock but not here), and the page's size. No timing assertions: it measures and reports (issue 12's goal: under 100 ms for 100 × 100
// in a Release build).
//
//   bench_ui [--tasks T] [--runs R] [--renders N] [--groups G] [--dir DIR] [--keep]
//
// --tasks 100, --runs 100 (at most 100, the grid's page size), --renders 50 by default. --groups G
// puts the tasks into G task groups and renders the page with every group open (`open=*`), so the
// groups' rows and their aggregated states are measured too. --dir: scratch folder (default a
// fresh one under $TMPDIR, removed at the end unless --keep).
//
// Exit status: 0 when every render answered 200, 1 when one did not, 2 on bad usage.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <time.h>
#include <unistd.h>

#include <dag/core/time.hpp>
#include <dag/dag.hpp>
#include <dag/http/face.hpp>
#include <dag/load/check.hpp>
#include <dag/metrics/registry.hpp>
#include <dag/model/operations.hpp>
#include <dag/operators/builtin.hpp>
#include <dag/store/store.hpp>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct options {
  int tasks = 100;
  int runs = 100;
  int renders = 50;
  int groups = 0;
  std::string dir;
  bool keep = false;
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "bench_ui: " << problem << "\nusage: bench_ui [--tasks T] [--runs R] [--renders N] [--groups G] [--dir DIR] [--keep]\n";
  std::exit(2);
}

int positive(const std::string& name, const char* text, int most) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (!end || *end || v < 1 || v > most) usage(name + " takes a whole number from 1 to " + std::to_string(most));
  return static_cast<int>(v);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--tasks") o.tasks = positive(a, value(), 100000);
    else if (a == "--runs") o.runs = positive(a, value(), 100);
    else if (a == "--renders") o.renders = positive(a, value(), 100000);
    else if (a == "--groups") o.groups = positive(a, value(), 100000);
    else if (a == "--dir") o.dir = value();
    else if (a == "--keep") o.keep = true;
    else usage("unknown argument '" + a + "'");
  }
  return o;
}

// This thread's CPU time in ms.
double cpu_ms() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// A fixed "now" a little after the last run, so that nothing on the page is in progress.
struct fixed_clock final : dag::clock {
  dag::time_point at;
  dag::time_point now() const override { return at; }
};

// T tasks, each after the one three places before it (a braid, as wide as it is long), spread
// over G groups when asked.
dag::definition grid_dag(const options& o) {
  dag::definition d{"bench_grid"};
  d.schedule("@daily").start_date("2024-01-01");
  std::vector<dag::task_handle> made;
  std::vector<dag::group_handle> groups;
  for (int g = 0; g < o.groups; ++g) groups.push_back(d.group("g" + std::to_string(g)));
  for (int i = 0; i < o.tasks; ++i) {
    const std::string name = "task_" + std::to_string(i);
    made.push_back(groups.empty() ? d.bash(name, "true")
                                  : groups[static_cast<std::size_t>(i * o.groups / o.tasks)].bash(name, "true"));
    if (i >= 3) made[static_cast<std::size_t>(i - 3)] >> made.back();
  }
  return d;
}

// R daily runs, all finished: every task instance success, but one in seven runs with a failed
// task and its downstream upstream_failed, as a grid of real history has.
void seed(dag::store& db, const dag::definition& d, int runs) {
  const auto first = dag::parse_time("2024-01-01T00:00:00Z");
  for (int day = 0; day < runs; ++day) {
    const auto run = dag::trigger_run(db, d, first + std::chrono::days(day));
    if (!run) throw std::runtime_error("the run of day " + std::to_string(day) + " exists already");
    const bool failing = day % 7 == 0;
    dag::change_set c;
    const auto start = dag::timestamp(run->logical_date) + 1s;
    std::size_t k = 0;
    for (auto ti : db.task_instances(d.id(), run->run_id)) {
      const auto offset = std::chrono::seconds(static_cast<long>(k++ % 50));
      ti.state = !failing || k < 40 ? dag::task_state::success : k == 40 ? dag::task_state::failed : dag::task_state::upstream_failed;
      ti.try_number = 1;
      ti.start_date = start + offset;
      ti.end_date = start + offset + 5s;
      c.task_instances.push_back({dag::task_state::none, 0, ti});
      c.tries.push_back(dag::try_record_of(ti));
    }
    c.runs.push_back({d.id(), run->run_id, dag::run_state::queued, failing ? dag::run_state::failed : dag::run_state::success, start,
                      start + 60s});
    db.apply(c);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  const bool own_dir = o.dir.empty();
  const fs::path dir = own_dir ? fs::temp_directory_path() / ("dagrun-bench-ui-" + std::to_string(::getpid())) : fs::path(o.dir);
  fs::create_directories(dir);
  int status = 0;
  try {
    dag::definition d = grid_dag(o);
    if (const auto problems = dag::check(d, dag::builtin_operators()); !problems.empty()) {
      std::cerr << "bench_ui: the DAG is not valid: " << problems.front().what() << "\n";
      return 1;
    }
    const std::string url = "sqlite:" + (dir / "dagrun.db").string();
    const auto seeding = std::chrono::steady_clock::now();
    {
      auto db = dag::open_store(url);
      seed(*db, d, o.runs);
    }
    const double seed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - seeding).count();

    fixed_clock clock;
    clock.at = dag::parse_time("2024-01-01T00:00:00Z") + std::chrono::days(o.runs + 1);
    dag::metrics_registry metrics;
    dag::http_face face(dag::http_face_options{url, "", std::nullopt, 30s, {}, 100}, metrics, clock);
    face.set_dags({d});
    const std::string target = "/dags/bench_grid?limit=" + std::to_string(o.runs) + (o.groups ? "&open=*" : "");
    const dag::http_request request{"GET", target, {{"host", "127.0.0.1:8080"}, {"accept", "text/html"}}, "", "127.0.0.1"};
    std::size_t bytes = face.handle(request).body.size();  // warm: the face opens its connection
    std::vector<double> ms, cpu;
    for (int i = 0; i < o.renders; ++i) {
      const auto began = std::chrono::steady_clock::now();
      const double cpu_began = cpu_ms();
      const auto r = face.handle(request);
      cpu.push_back(cpu_ms() - cpu_began);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count());
      if (r.status != 200) {
        std::cerr << "bench_ui: " << target << " answered " << r.status << "\n";
        status = 1;
      }
      bytes = r.body.size();
    }
    std::sort(ms.begin(), ms.end());
    const auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * static_cast<double>(ms.size())))]; };
    std::printf("RESULT tasks=%d runs=%d groups=%d renders=%d median_ms=%.2f p90_ms=%.2f min_ms=%.2f cpu_median_ms=%.2f page_kib=%zu "
                "seed_s=%.2f\n",
                o.tasks, o.runs, o.groups, o.renders, median_of(ms), at(0.9), ms.front(), median_of(cpu), bytes / 1024, seed_s);
  } catch (const std::exception& e) {
    std::cerr << "bench_ui: " << e.what() << "\n";
    status = 1;
  }
  if (own_dir && !o.keep) fs::remove_all(dir);
  return status;
}
