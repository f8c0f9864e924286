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
// only those (so that a scheduler daemon does not also start the @daily one).
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

std::vector<dag::definition> bench_dags() {
  dag::definition daily{"bench_daily_callables"};
  daily.schedule("@daily").start_date("2024-01-01").catchup(false);
  for (int i = 0; i < 10; ++i) daily.callable("t" + std::to_string(i), noop);

  int n = 100000;
  if (const char* v = std::getenv("BENCH_CALLABLES")) n = std::max(1, std::atoi(v));
  dag::definition wide{"bench_callables"};
  wide.max_active_tasks(n);
  for (int i = 0; i < n; ++i) wide.callable("t" + std::to_string(i), noop);
  int chain_n = 200;
  if (const char* v = std::getenv("BENCH_CHAIN")) chain_n = std::max(1, std::atoi(v));
  dag::definition chain{"bench_chain_callables"};
  std::optional<dag::task_handle> previous;
  for (int i = 0; i < chain_n; ++i) {
    auto t = chain.callable("t" + std::to_string(i), noop);
    if (previous) *previous >> t;
    previous = t;
  }

  std::vector<dag::definition> all{daily, wide, chain};
  if (const char* only = std::getenv("BENCH_DAGS")) {
    const std::string keep = std::string(",") + only + ",";
    std::erase_if(all, [&](const dag::definition& d) { return keep.find("," + d.id() + ",") == std::string::npos; });
  }
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  dag::system_clock clock;
  return dagrun::run_cli(args, std::cout, std::cerr, clock, bench_dags());
}
