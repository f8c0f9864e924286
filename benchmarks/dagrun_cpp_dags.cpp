// dagrun's command line (dag::runner) with the benchmarks' C++ DAGs built in, so that the CLI
// code paths (`run`, `backfill`) can be measured with no-op C++ callables, which YAML cannot
// express. Every argument goes to dagrun::run_cli as is:
//
//   dagrun_cpp_dags backfill bench_daily_callables --start 2024-01-01 --end 2024-12-30
//       --dags EMPTY_DIR --db sqlite:FILE --logs DIR
//
// DAGs: bench_daily_callables (@daily, 10 independent no-op callables, like the YAML
// bench_daily_bash of run.sh) and bench_callables (independent no-op callables, as many as
// $BENCH_CALLABLES says, default 100,000, with max_active_tasks as high, for `run`) and
// bench_chain_callables (no-op callables in a line, $BENCH_CHAIN of them, default 200: the queue
// latency case of benchmarks/queue.sh). $BENCH_DAGS, a comma-separated list of DAG ids, keeps
// only those (so that a scheduler daemon does not also start the @daily one); the others are
// not even built.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <dag/runner/cli.hpp>
#include <dag/dag.hpp>

namespace {

dag::operator_result noop(dag::task_context&) { return dag::operator_result::success(); }

// Whether the DAG `id` is built: all of them, or those $BENCH_DAGS names. A DAG left out is never
// built, so that a backfill of the 10-task DAG does not pay for building (and copying, and
// checking) the 100,000-task one.
bool wanted(const std::string& id) {
  const char* only = std::getenv("BENCH_DAGS");
  return !only || (std::string(",") + only + ",").find("," + id + ",") != std::string::npos;
}

std::vector<dag::definition> bench_dags() {
  std::vector<dag::definition> all;
  if (wanted("bench_daily_callables")) {
    dag::definition daily{"bench_daily_callables"};
    daily.schedule("@daily").start_date("2024-01-01").catchup(false);
    for (int i = 0; i < 10; ++i) daily.callable("t" + std::to_string(i), noop);
    all.push_back(std::move(daily));
  }
  if (wanted("bench_callables")) {
    int n = 100000;
    if (const char* v = std::getenv("BENCH_CALLABLES")) n = std::max(1, std::atoi(v));
    dag::definition wide{"bench_callables"};
    wide.max_active_tasks(n).reserve_tasks(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) wide.callable("t" + std::to_string(i), noop);
    all.push_back(std::move(wide));
  }
  if (wanted("bench_chain_callables")) {
    int chain_n = 200;
    if (const char* v = std::getenv("BENCH_CHAIN")) chain_n = std::max(1, std::atoi(v));
    dag::definition chain{"bench_chain_callables"};
    chain.reserve_tasks(static_cast<std::size_t>(chain_n));
    std::optional<dag::task_handle> previous;
    for (int i = 0; i < chain_n; ++i) {
      auto t = chain.callable("t" + std::to_string(i), noop);
      if (previous) *previous >> t;
      previous = t;
    }
    all.push_back(std::move(chain));
  }
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  dag::system_clock clock;
  return dagrun::run_cli(args, std::cout, std::cerr, clock, bench_dags());
}
