#pragma once
/// @file The one place a try's context is built: ids and dates, params, `execution_timeout`,
/// fields rendered, connections resolved and secrets collected. The engine, `dagrun test` and queue
/// workers (which complete the context the scheduler built and sent) all use it, so a try sees the
/// same fields and masked secrets wherever it runs; the `DAGRUN_*` environment of its processes
/// comes from the context alone (try_environment, dag/core/operator.hpp).

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dag/core/connection.hpp>
#include <dag/core/definition.hpp>
#include <dag/core/operator.hpp>
#include <dag/store/store.hpp>
#include <dag/template/template.hpp>

namespace dag {

/// Looks a connection up by id; nullopt when it is not defined.
using connection_source = std::function<std::optional<connection>(std::string_view id)>;

/// Where a try reads what lives outside its DAG. Each lookup returns nullopt when the name is not
/// defined; an empty one defines nothing.
struct try_sources {
  /// `{{ var.value.NAME }}`.
  std::function<std::optional<std::string>(std::string_view name)> variable;
  /// `{{ conn.ID.ATTR }}` and the connections of `conn_id` fields.
  connection_source connection;
  /// `{{ ti.xcom_pull(task_ids='TASK', key='KEY') }}`: TASK's XCom under KEY in the try's run.
  std::function<std::optional<std::string>(std::string_view task_id, std::string_view key)> xcom;
  /// `{{ prev_data_interval_start_success }}` and friends: the newest successful run of the DAG
  /// whose logical date is before `before`; nullopt when there is none (or no store).
  std::function<std::optional<run_record>(time_point before)> previous_success;
  /// `{{ triggering_dataset_events }}`: the dataset events that triggered the try's run (read
  /// only for dataset-triggered runs).
  std::function<std::vector<dataset_event_record>()> triggering_dataset_events;
};

/// The sources of the tries of run `run_id` of `dag_id`: `DAGRUN_VAR_*` and `DAGRUN_CONN_*` first
/// (they win, as Airflow's `AIRFLOW_VAR_*` and `AIRFLOW_CONN_*` do), then the variables,
/// connections, that run's XComs and the DAG's earlier runs in `s`, which must outlive the sources.
try_sources store_sources(store& s, std::string dag_id, std::string run_id);

/// Which try of a run a context is for.
struct try_spec {
  int try_number = 1;                   ///< 1 for the first try
  int map_index = -1;                   ///< a mapped task's instance, -1 when not mapped
  std::chrono::microseconds waited{0};  ///< time since a rescheduled try first started
  std::filesystem::path log_path;       ///< its log file
  timestamp start_date{};               ///< when the scheduler started it (this poke); zero: not known
};

/// The context try `which` of task `t` (of DAG `d`, in `run`) runs with: ids and dates, the DAG's
/// params with the run's conf over them, `execution_timeout`, its fields rendered through
/// `sources` (`op` says which fields are templates; null: none), and what finish_try_context adds
/// for this process (the connections resolved through `sources`). Every secret that rendering or
/// resolving touches (connection passwords, values of variables whose names look secret) is in
/// `secrets`. A field that cannot be rendered does not throw: `fields[render_error_field]` holds
/// why, and the try fails with it.
task_context make_try_context(const definition& d, const task& t, const operator_spec* op, const run_record& run,
                              const try_spec& which, const try_sources& sources);

/// Completes a context for the process that runs the try: the connection the `conn_id` field
/// names, resolved now through `connections` (operators run on other threads, or on a worker, where
/// the sources are not at hand): `connection_lookup` answers from it, and its secrets
/// (add_connection_secrets) join `secrets`. Called by make_try_context, and by a worker on the
/// context the queue brought, with its own environment's connections. (The `DAGRUN_*` environment,
/// with the process that runs the try as its owner, is made when a process starts: try_environment.)
void finish_try_context(task_context& ctx, const connection_source& connections);

/// This process's id, read once (getpid is a system call; a try's start records it twice).
int this_process_id();

/// Adds what of `c` a log must never show to `secrets`: its password, and the values of the
/// members of its `extra` whose names look secret (`token`, `api_key`, …).
void add_connection_secrets(std::vector<std::string>& secrets, const connection& c);

/// Renders a task's fields for one try: templated fields through `tc`, map and list entries as
/// `name.key` / `name.N`. Throws dag::error when a template cannot be rendered.
std::map<std::string, std::string> render_fields(const task& t, const operator_spec* spec, const template_context& tc);

}  // namespace dag
