// A program of your own that links libdag and dagrun's runner: it builds its DAGs in C++ and hands
// them to dagrun's command line, so `./own_main run nightly_report`, `./own_main schedule`,
// `./own_main dags list` … work on them (beside any DAGs of the --dags folder).
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <dag/runner/cli.hpp>
#include <dag/dag.hpp>

namespace {

using namespace std::chrono_literals;

std::vector<dag::definition> my_dags() {
  dag::definition d{"nightly_report"};
  d.description("Counts yesterday's orders and publishes a report")
      .schedule("@daily")
      .start_date("2024-01-01")
      .catchup(false)
      .tags({"example", "reports"});

  // A callable's return value is its XCom, which later tasks read in templates.
  auto count = d.callable("count_orders", [](dag::task_context& ctx) {
    ctx.log("counting the orders of " + dag::format_iso(ctx.data_interval_start));
    return dag::operator_result::success("42");
  });
  auto render = d.bash("render_report", "echo \"{{ ti.xcom_pull('count_orders') }} orders on {{ ds }}\"")
                    .retries(2)
                    .retry_delay(30s)
                    .execution_timeout(10min);
  // Any operator by name, with its fields (as in YAML): the same as d.bash(...).
  auto archive = d.add_task("archive_counts", "bash").field("bash_command", "echo archived {{ ti.xcom_pull('count_orders') }}");
  auto publish = d.callable("publish", [](dag::task_context& ctx) {
    ctx.log("publishing the report of run " + ctx.run_id);
    return dag::operator_result::success();
  });
  publish.trigger(dag::trigger_rule::none_failed);  // also after a skipped upstream
  count >> dag::tasks{render, archive} >> publish;

  return {d};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  dag::system_clock clock;
  return dagrun::run_cli(args, std::cout, std::cerr, clock, my_dags());
}
