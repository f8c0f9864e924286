// Embedding dagrun's engine in a program, with no daemon: one DAG of C++ callables and bash tasks,
// one run to its end on this thread, and the scheduler's HTTP face (/health, /metrics, /api/v1,
// the web UI) served while it runs. The run waits for its input file (argument 1; by default it
// is created at once). Prints each task's state; exits 0 if and only if the run succeeded.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <unistd.h>

#include <dag/dag.hpp>

namespace {

dag::definition make_dag(const std::string& input) {
  dag::definition d{"embedded_etl"};  // no schedule: runs only when the program creates one
  d.param("input", input);
  auto wait = d.bash("wait_for_input", "until [ -e '{{ params.input }}' ]; do sleep 0.05; done");
  auto extract = d.callable("extract", [](dag::task_context& ctx) {
    ctx.log("extracting rows for run " + ctx.run_id);
    return dag::operator_result::success("3");  // pushed to XCom as `return_value`
  });
  auto load = d.bash("load", "echo loading {{ ti.xcom_pull('extract') }} rows of {{ dag_id }}").retries(2);
  wait >> extract >> load;
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path scratch = fs::temp_directory_path() / ("dagrun-embedded-" + std::to_string(::getpid()));
  fs::create_directories(scratch);
  const std::string input = argc > 1 ? argv[1] : (scratch / "input.csv").string();
  if (argc <= 1) std::ofstream(input) << "id\n1\n2\n3\n";
  int status = 1;
  try {
    dag::engine_options options;
    options.store_url = "sqlite:" + (scratch / "dagrun.db").string();
    options.log_folder = scratch / "logs";
    options.create_scheduled_runs = false;  // only the run created below
    options.adopt_store_runs = false;
    dag::engine eng(options);  // a SQLite store at store_url, the built-in operators, the system clock
    eng.set_dags({make_dag(input)});  // checked here: default_args applied, any problem thrown

    dag::serve_options serving;
    serving.listen = "127.0.0.1:0";  // any free port
    dag::http_service http(eng, serving);
    std::cout << "serving http://127.0.0.1:" << http.port() << "/" << std::endl;

    const auto key = eng.create_run("embedded_etl", dag::run_type::manual, dag::system_clock().now());
    const dag::run_state state = eng.run_to_completion({*key}).front();
    for (const auto& ti : eng.store().task_instances(key->dag_id, key->run_id))
      std::cout << ti.task_id << ": " << dag::to_string(ti.state) << "\n";
    std::cout << "run " << key->run_id << ": " << dag::to_string(state) << "\n";
    status = state == dag::run_state::success ? 0 : 1;
  } catch (const dag::error& e) {
    std::cerr << e.what() << "\n";
    status = 2;
  }
  fs::remove_all(scratch);
  return status;
}
