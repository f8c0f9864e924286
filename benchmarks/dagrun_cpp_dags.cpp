// dagrun's command line (dag::runner) with the benchmarks' C++ DAGs built in, so that the CLI
// code paths (`run`, `backfill`) can be measured with no-op C++ callables, which YAML cannot
// express. Every argument goes to dagrun::run_cli as is:
//
//   dagrun_cpp_dags backfill bench_daily_callables --start 2024-01-01 --end 2024-12-30
//       --dags EMPTY_DIR --db sqlite:FILE --logs DIR
//
// DAGs: bench_daily_callables (@daily, 10 independent no-op callables, like the YAML
// bench_daily_bash of run.sh) and bench_callables (independent no-op callables, as many as
// $BENCH_CALLABLES says, default 100,000, with max_active_tasks as high, for `run`).
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <cli.hpp>
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
  return {daily, wide};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  dag::system_clock clock;
  return dagrun::run_cli(args, std::cout, std::cerr, clock, bench_dags());
}
