// Embedding dagrun's engine in a program, with no daemon: a SQLite store in a temporary folder, one
// DAG of C++ callables and a bash task, one run to its end on this thread. Prints each task's
// state; exits 0 if and only if the run succeeded.
#include <filesystem>
#include <iostream>
#include <string>

#include <unistd.h>

#include <builtin.hpp>
#include <dag/dag.hpp>
#include <dag/engine/engine.hpp>
#include <dag/store/store.hpp>

namespace {

dag::definition make_dag() {
  dag::definition d{"embedded_etl"};  // no schedule: runs only when the program creates one
  auto extract = d.callable("extract", [](dag::task_context& ctx) {
    ctx.log("extracting rows for run " + ctx.run_id);
    return dag::operator_result::success("3");  // pushed to XCom as `return_value`
  });
  auto transform = d.callable("transform", [](dag::task_context& ctx) {
    ctx.log("transforming, try " + std::to_string(ctx.try_number));
    return dag::operator_result::success();
  });
  auto load = d.bash("load", "echo loading {{ ti.xcom_pull('extract') }} rows of {{ dag_id }}");
  extract >> transform >> load;
  return d;
}

}  // namespace

int main() {
  const dag::operator_catalog operators = dag::builtin_operators();
  // The engine takes checked DAGs: check() validates the definition and applies default_args.
  dag::definition d = make_dag();
  if (auto problems = dag::check(d, operators); !problems.empty()) {
    for (const auto& p : problems) std::cerr << p.what() << "\n";
    return 2;
  }

  namespace fs = std::filesystem;
  const fs::path scratch = fs::temp_directory_path() / ("dagrun-embedded-" + std::to_string(::getpid()));
  fs::create_directories(scratch);
  bool succeeded = false;
  {
    auto store = dag::open_store("sqlite:" + (scratch / "dagrun.db").string());
    dag::system_clock clock;
    dag::engine_options options;
    options.log_folder = scratch / "logs";
    options.create_scheduled_runs = false;  // only the run created below
    options.adopt_store_runs = false;
    dag::engine eng(*store, operators, clock, options);
    eng.set_dags({d});

    // nullopt only when a run of that id exists, which a fresh store never has.
    if (const auto key = eng.create_run(d.id(), dag::run_type::manual, clock.now())) {
      const dag::run_state state = eng.run_to_completion({*key}).front();
      for (const auto& ti : store->task_instances(key->dag_id, key->run_id))
        std::cout << ti.task_id << ": " << dag::to_string(ti.state) << "\n";
      std::cout << "run " << key->run_id << ": " << dag::to_string(state) << "\n";
      succeeded = state == dag::run_state::success;
    }
  }
  fs::remove_all(scratch);
  return succeeded ? 0 : 1;
}
