// The seed's batch_processing_pipeline as a C++ DAG library (dag_id batch_processing_pipeline_cpp):
// the same tasks, SQL and settings as dags/batch_processing_pipeline.yaml, against the `warehouse`
// connection (DAGRUN_CONN_WAREHOUSE) and the table of dags/sql/workflows.sql.
#include <chrono>
#include <vector>

#include <dag/load/cpp_library.hpp>

namespace {

using namespace std::chrono_literals;

std::vector<dag::definition> batch_processing_dags() {
  dag::task_options defaults;
  defaults.owner = "multi-agent-platform";
  defaults.retries = 2;
  defaults.retry_delay = 5min;

  dag::definition d{"batch_processing_pipeline_cpp"};
  d.description("Process batch workflows")
      .schedule("6h")
      .timezone("UTC")
      .start_date("2024-01-01")
      .catchup(false)
      .max_active_runs(1)
      .max_active_tasks(8)
      .tags({"batch", "processing"})
      .param("limit", "100")
      .default_args(defaults);

  auto process = d.add_task("process_pending_workflows", "postgres")
                     .field("conn_id", "warehouse")
                     .field("sql",
                            "SELECT id, config FROM workflows WHERE status = 'pending' "
                            "AND created_at < NOW() - INTERVAL '5 minutes' LIMIT {{ params.limit }}");
  auto cleanup = d.add_task("cleanup_completed_workflows", "postgres")
                     .field("conn_id", "warehouse")
                     .field("sql",
                            "DELETE FROM workflows WHERE status IN ('completed', 'failed') "
                            "AND completed_at < NOW() - INTERVAL '30 days'");
  auto reports = d.bash("generate_reports",
                        "echo \"generating reports for {{ data_interval_start }} to {{ data_interval_end }}\"");
  process >> dag::tasks{cleanup, reports};

  std::vector<dag::definition> out;
  out.push_back(std::move(d));
  return out;
}

}  // namespace

DAGRUN_DAGS(batch_processing_dags)
