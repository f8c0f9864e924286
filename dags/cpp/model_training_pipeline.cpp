// The seed's model_training_pipeline as a C++ DAG library: dagrun loads model_training_pipeline_cpp.so
// from its DAGs folder. Same settings as dags/model_training_pipeline.yaml (the seed's Airflow DAG);
// each step is a C++ callable that logs what it does, ready to be replaced by the real work.
#include <chrono>
#include <string>
#include <vector>

#include <dag/load/cpp_library.hpp>

namespace {

using namespace std::chrono_literals;

// A task body that logs `what` with the run's logical date (Airflow's `ds`).
auto step(std::string what) {
  return [what = std::move(what)](dag::task_context& ctx) {
    ctx.log(what + " for " + dag::format_iso(ctx.logical_date).substr(0, 10) + " (" + ctx.run_id + ")");
    return dag::operator_result::success();
  };
}

std::vector<dag::definition> model_training_dags() {
  dag::task_options defaults;
  defaults.owner = "multi-agent-platform";
  defaults.email_on_failure = true;
  defaults.email_on_retry = false;
  defaults.retries = 1;
  defaults.retry_delay = 5min;

  // dag_id differs from the YAML twin's, so both can sit in one DAGs folder.
  dag::definition d{"model_training_pipeline_cpp"};
  d.description("Train and deploy agent models")
      .schedule("1d")
      .timezone("UTC")
      .start_date("2024-01-01")
      .catchup(false)
      .tags({"ml", "training"})
      .default_args(defaults);

  auto extract = d.callable("extract_training_data", step("extracting training data"));
  auto preprocess = d.callable("preprocess_data", step("preprocessing and cleaning training data"));
  auto train = d.callable("train_models", step("training agent models"));
  auto validate = d.callable("validate_models", step("validating model performance"));
  auto deploy = d.callable("deploy_models", step("deploying models to production"));
  extract >> preprocess >> train >> validate >> deploy;

  std::vector<dag::definition> out;
  out.push_back(std::move(d));
  return out;
}

}  // namespace

DAGRUN_DAGS(model_training_dags)
