// The one builder of a try's context (see try_context.hpp).
#include <dag/engine/try_context.hpp>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <dag/core/json_text.hpp>
#include <dag/core/environment.hpp>
#include <dag/core/secret_mask.hpp>
#include <dag/exec/executor.hpp>

namespace dag {

try_sources store_sources(store& s, std::string dag_id, std::string run_id) {
  try_sources out;
  out.variable = [&s](std::string_view name) -> std::optional<std::string> {
    if (auto v = variable_from_environment(name)) return v;
    return s.variable(std::string(name));
  };
  out.connection = [&s](std::string_view id) -> std::optional<connection> {
    if (auto c = connection_from_environment(id)) return c;
    return s.find_connection(std::string(id));
  };
  out.xcom = [&s, dag_id = std::move(dag_id), run_id = std::move(run_id)](std::string_view task_id) {
    return s.xcom(dag_id, run_id, std::string(task_id));
  };
  return out;
}

std::map<std::string, std::string> render_fields(const task& t, const operator_spec* spec, const template_context& tc) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : t.fields) {
    bool templated = false;
    if (spec)
      for (const auto& f : spec->fields) templated = templated || (f.name == name && f.kind == field_kind::templated);
    if (!value.text.empty() || (value.entries.empty() && value.items.empty()))
      out[name] = templated ? render(std::string_view(value.text), tc) : value.text;
    for (const auto& [key, item] : value.entries) out[name + "." + key] = render(std::string_view(item), tc);
    for (std::size_t i = 0; i < value.items.size(); ++i) out[name + "." + std::to_string(i)] = render(std::string_view(value.items[i]), tc);
  }
  return out;
}

task_context make_try_context(const definition& d, const task& t, const operator_spec* op, const run_record& run,
                              const try_spec& which, const try_sources& sources) {
  task_context ctx;
  ctx.dag_id = d.id();
  ctx.task_id = t.id;
  ctx.run_id = run.run_id;
  ctx.logical_date = run.logical_date;
  ctx.data_interval_start = run.interval.start;
  ctx.data_interval_end = run.interval.end;
  ctx.try_number = which.try_number;
  ctx.waited = which.waited;
  ctx.log_path = which.log_path;
  ctx.params = d.params();
  // Airflow: a run's conf overrides the DAG's params of the same name.
  if (run.conf.size() > 2) {
    const auto conf = nlohmann::json::parse(run.conf, nullptr, false);
    if (conf.is_object())
      for (const auto& [k, v] : conf.items()) ctx.params[k] = v.is_string() ? v.get<std::string>() : json_dump(v);
  }
  if (t.settings.execution_timeout)
    ctx.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*t.settings.execution_timeout);

  const template_context tc{.dag_id = ctx.dag_id,
                            .task_id = ctx.task_id,
                            .run_id = ctx.run_id,
                            .logical_date = ctx.logical_date,
                            .data_interval_start = ctx.data_interval_start,
                            .data_interval_end = ctx.data_interval_end,
                            .try_number = ctx.try_number,
                            .params = ctx.params,
                            .variable = sources.variable,
                            .connection = sources.connection,
                            .xcom_pull = sources.xcom,
                            .mask_secret = [&ctx](std::string_view secret) { add_secret(ctx.secrets, secret); }};
  try {
    ctx.fields = render_fields(t, op, tc);
  } catch (const error& e) {
    ctx.fields = {{std::string(render_error_field), e.what()}};
  }
  finish_try_context(ctx, sources.connection);
  return ctx;
}

void finish_try_context(task_context& ctx, const connection_source& connections) {
  ctx.environment = {{"DAGRUN_DAG_ID", ctx.dag_id},
                     {"DAGRUN_TASK_ID", ctx.task_id},
                     {"DAGRUN_RUN_ID", ctx.run_id},
                     {"DAGRUN_LOGICAL_DATE", format_iso(ctx.logical_date)},
                     {"DAGRUN_TRY_NUMBER", std::to_string(ctx.try_number)},
                     {"DAGRUN_OWNER_PID", std::to_string(::getpid())}};
  std::string id;
  std::optional<connection> resolved;
  if (const auto field = ctx.fields.find("conn_id"); field != ctx.fields.end() && connections) {
    id = field->second;
    resolved = connections(id);
  }
  if (resolved) add_secret(ctx.secrets, resolved->password);
  ctx.connection_lookup = [id = std::move(id), resolved = std::move(resolved)](std::string_view wanted) {
    return wanted == id ? resolved : std::nullopt;
  };
}

}  // namespace dag
