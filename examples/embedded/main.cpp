// Embedding dagrun's engine in a program, with no daemon: a SQLite store in a temporary folder, one
// DAG of C++ callables and a bash task, one run to its end on this thread. Prints each task's
// state; exits 0 if and only if the run succeeded.
#include <filesystem>
#include <iostream>
#include <string>

#include <unistd.h>

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
  namespace fs = std::filesystem;
  const fs::path scratch = fs::temp_directory_path() / ("dagrun-embedded-" + std::to_string(::getpid()));
  fs::create_directories(scratch);
  bool succeeded = false;
  try {
    dag::engine_options options;
    options.store_url = "sqlite:" + (scratch / "dagrun.db").string();
    options.log_folder = scratch / "logs";
    options.create_scheduled_runs = false;  // only the run created below
    options.adopt_store_runs = false;
    // The defaults: a SQLite store at store_url, the built-in operators, the system clock.
    dag::engine eng(options);
    // The engine checks the DAG (default_args applied) and throws dag::error listing any problem.
    eng.set_dags({make_dag()});

    // nullopt only when a run of that id exists, which a fresh store never has.
    if (const auto key = eng.create_run("embedded_etl", dag::run_type::manual, dag::system_clock().now())) {
      const dag::run_state state = eng.run_to_completion({*key}).front();
      for (const auto& ti : eng.store().task_instances(key->dag_id, key->run_id))
        std::cout << ti.task_id << ": " << dag::to_string(ti.state) << "\n";
      std::cout << "run " << key->run_id << ": " << dag::to_string(state) << "\n";
      succeeded = state == dag::run_state::success;
    }
  } catch (const dag::error& e) {
    std::cerr << e.what() << "\n";
    fs::remove_all(scratch);
    return 2;
  }
  fs::remove_all(scratch);
  return succeeded ? 0 : 1;
}
