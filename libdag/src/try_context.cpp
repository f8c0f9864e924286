// The one builder of a try's context (see try_context.hpp).
#include <dag/engine/try_context.hpp>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <dag/core/json_text.hpp>
#include <dag/core/environment.hpp>
#include <dag/core/params.hpp>
#include <dag/core/secret_mask.hpp>
#include <dag/exec/executor.hpp>
#include <dag/schedule/timetable.hpp>

namespace dag {

void add_connection_secrets(std::vector<std::string>& secrets, const connection& c) {
  add_secret(secrets, c.password);
  if (c.extra.empty()) return;
  const auto extra = nlohmann::json::parse(c.extra, nullptr, false);
  if (!extra.is_object()) return;
  for (const auto& [name, value] : extra.items())
    if (looks_secret(name)) add_secret(secrets, value.is_string() ? value.get<std::string>() : value.dump());
}

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
  out.previous_success = [&s, dag_id](time_point before) -> std::optional<run_record> {
    run_filter f;
    f.dag_id = dag_id;
    f.states = {run_state::success};
    f.logical_to = before - std::chrono::seconds{1};
    f.limit = 1;
    auto runs = s.runs(f);
    if (runs.empty()) return std::nullopt;
    return runs.front();
  };
  out.triggering_dataset_events = [&s, dag_id, run_id] { return s.triggering_dataset_events(dag_id, run_id); };
  out.xcom = [&s, dag_id = std::move(dag_id), run_id = std::move(run_id)](std::string_view task_id, std::string_view key) {
    return s.xcom(dag_id, run_id, std::string(task_id), std::string(key));
  };
  return out;
}

namespace {

bool mentions(const task& t, std::string_view word) {
  for (const auto& [name, value] : t.fields) {
    if (value.text.find(word) != std::string::npos) return true;
    for (const auto& [key, item] : value.entries)
      if (item.find(word) != std::string::npos) return true;
    for (const auto& item : value.items)
      if (item.find(word) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::map<std::string, std::string> render_fields(const task& t, const operator_spec* spec, const template_context& tc) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : t.fields) {
    bool templated = false;
    if (spec)
      for (const auto& f : spec->fields) templated = templated || (f.name == name && f.kind == field_kind::templated);
    // A literal value (a mapped instance's from an XCom) is data: never rendered. (A copy, as
    // clang 14 refuses a lambda that captures a structured binding.)
    const bool literal = value.literal;
    const auto rendered = [&](const std::string& text) { return literal ? text : render(std::string_view(text), tc); };
    if (!value.text.empty() || (value.entries.empty() && value.items.empty()))
      out[name] = templated ? rendered(value.text) : value.text;
    for (const auto& [key, item] : value.entries) out[name + "." + key] = rendered(item);
    for (std::size_t i = 0; i < value.items.size(); ++i) out[name + "." + std::to_string(i)] = rendered(value.items[i]);
  }
  return out;
}

namespace {

// The fields of `t` rendered for the try `ctx` is being made for (its ids, dates and params set).
std::map<std::string, std::string> rendered_fields(const definition& d, const task& t, const operator_spec* op,
                                                   const run_record& run, task_context& ctx,
                                                   const std::set<std::string>& typed, const try_sources& sources) {
  // Airflow 2's prev_ds/next_ds: a manual run has its own logical date for both; a scheduled
  // run has the schedule's neighbours (none for a DAG without a schedule).
  std::optional<time_point> prev_logical, next_logical;
  if (run.type == run_type::manual) {
    prev_logical = next_logical = run.logical_date;
  } else if (!d.schedule().empty()) {
    try {
      const timetable tt(d);
      if (auto prev = tt.latest_run(run.logical_date); prev && prev->logical_date < run.logical_date)
        prev_logical = prev->logical_date;
      if (auto next = tt.next_run(run.interval)) next_logical = next->logical_date;
    } catch (const error&) {
      // A schedule that does not parse never produced this run: leave the names None.
    }
  }
  // Airflow's triggering_dataset_events: by dataset URI, the events that triggered the run.
  nlohmann::json triggering = nlohmann::json::object();
  if (run.type == run_type::dataset_triggered && sources.triggering_dataset_events)
    for (const auto& e : sources.triggering_dataset_events()) {
      auto extra = nlohmann::json::parse(e.extra, nullptr, false);
      triggering[e.uri].push_back({{"uri", e.uri},
                                   {"extra", extra.is_discarded() ? nlohmann::json::object() : extra},
                                   {"timestamp", format_iso(e.when)},
                                   {"source_dag_id", e.source_dag_id},
                                   {"source_run_id", e.source_run_id},
                                   {"source_task_id", e.source_task_id}});
    }
  // The previous successful run costs the store a query per try: asked only when a field can
  // name it (the names are reachable by name alone, and all three end in `_success`).
  std::optional<run_record> previous;
  if (sources.previous_success && mentions(t, "_success")) previous = sources.previous_success(run.logical_date);
  std::optional<time_point> previous_start;
  if (previous && previous->start_date) previous_start = std::chrono::floor<std::chrono::seconds>(*previous->start_date);

  const template_context tc{.dag_id = ctx.dag_id,
                            .task_id = ctx.task_id,
                            .run_id = ctx.run_id,
                            .run_type = std::string(to_string(run.type)),
                            .logical_date = ctx.logical_date,
                            .data_interval_start = ctx.data_interval_start,
                            .data_interval_end = ctx.data_interval_end,
                            .try_number = ctx.try_number,
                            .map_index = ctx.map_index,
                            .params = ctx.params,
                            .typed_params = typed,
                            .conf = run.conf.empty() ? std::string("{}") : run.conf,
                            .triggering_dataset_events = json_dump(triggering),
                            .owner = t.settings.owner,
                            .prev_logical_date = prev_logical,
                            .next_logical_date = next_logical,
                            .prev_data_interval_start_success = previous ? std::optional(previous->interval.start) : std::nullopt,
                            .prev_data_interval_end_success = previous ? std::optional(previous->interval.end) : std::nullopt,
                            .prev_start_date_success = previous_start,
                            .variable = sources.variable,
                            .connection = sources.connection,
                            .xcom_pull = sources.xcom,
                            .mask_secret = [&ctx](std::string_view secret) { add_secret(ctx.secrets, secret); }};
  try {
    return render_fields(t, op, tc);
  } catch (const error& e) {
    return {{std::string(render_error_field), e.what()}};
  }
}

}  // namespace

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
  ctx.map_index = which.map_index;
  ctx.waited = which.waited;
  ctx.start_date = which.start_date;
  ctx.log_path = which.log_path;
  ctx.params = d.params();
  // Airflow: a run's conf overrides the DAG's params of the same name; other keys stay in
  // `dag_run.conf` only, so a trigger cannot invent params the DAG never declared.
  // A typed param's value is JSON text (see definition::param_schema).
  std::set<std::string> typed;
  for (const auto& [name, schema] : d.param_schemas())
    if (param_is_typed(schema)) typed.insert(name);
  if (run.conf.size() > 2 && d.conf_overrides_params()) {
    const auto conf = nlohmann::json::parse(run.conf, nullptr, false);
    if (conf.is_object())
      for (const auto& [k, v] : conf.items())
        if (auto p = ctx.params.find(k); p != ctx.params.end())
          p->second = v.is_string() && !typed.contains(k) ? v.get<std::string>() : json_dump(v);
  }
  if (t.settings.execution_timeout)
    ctx.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*t.settings.execution_timeout);

  // Everything below serves templates only: a task without fields (most C++ callables) skips it.
  if (!t.fields.empty()) ctx.fields = rendered_fields(d, t, op, run, ctx, typed, sources);
  finish_try_context(ctx, sources.connection);
  return ctx;
}

int this_process_id() {
  // dagrun never forks without exec (child processes are spawned), so the id cannot change.
  static const int id = static_cast<int>(::getpid());
  return id;
}

void finish_try_context(task_context& ctx, const connection_source& connections) {
  std::string id;
  std::optional<connection> resolved;
  if (const auto field = ctx.fields.find("conn_id"); field != ctx.fields.end() && connections) {
    id = field->second;
    resolved = connections(id);
  }
  if (!resolved) {
    // Captures nothing, so std::function holds it without an allocation (most tries name none).
    ctx.connection_lookup = [](std::string_view) -> std::optional<connection> { return std::nullopt; };
    return;
  }
  add_connection_secrets(ctx.secrets, *resolved);
  ctx.connection_lookup = [id = std::move(id), resolved = std::move(resolved)](std::string_view wanted) {
    return wanted == id ? resolved : std::nullopt;
  };
}

}  // namespace dag
