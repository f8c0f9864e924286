/// @file The REST API's DAGs (api.hpp): listing with filters, one DAG, pausing one or many,
/// deleting a DAG's records, details, tasks, sources, stats and warnings.

#include "api.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

namespace dag::detail {
namespace {

// A DAG file's token: its path in hex. Only the files of loaded DAGs are served by token, so a
// token cannot name any other file.
std::string file_token_of(const std::string& path) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (char c : path) {
    const auto byte = static_cast<unsigned char>(c);
    out += digits[byte >> 4];
    out += digits[byte & 15];
  }
  return out;
}

json schedule_of(const definition& d) {
  if (d.schedule().empty()) return nullptr;
  try {
    const auto span = parse_duration(d.schedule());
    return {{"__type", "TimeDelta"}, {"days", span.count() / 86400}, {"seconds", span.count() % 86400}, {"microseconds", 0}};
  } catch (const error&) {
    return {{"__type", "CronExpression"}, {"value", d.schedule()}};
  }
}

json time_delta(std::chrono::seconds span) {
  return {{"__type", "TimeDelta"}, {"days", span.count() / 86400}, {"seconds", span.count() % 86400}, {"microseconds", 0}};
}

std::vector<std::string> owners_of(const definition& d) {
  std::set<std::string> owners;
  for (const auto& t : d.all_tasks()) owners.insert(t.settings.owner);
  return {owners.begin(), owners.end()};
}

json dag_detail_json(const definition& d, bool paused) {
  json out = dag_json(d, paused);
  json params = json::object();
  for (const auto& [name, value] : d.params()) params[name] = {{"__class", "airflow.models.param.Param"}, {"value", value}};
  out.update({{"timezone", d.timezone()},
              {"catchup", d.catchup()},
              {"orientation", "LR"},
              {"concurrency", d.max_active_tasks()},
              {"start_date", d.start_date() ? json(format_iso(*d.start_date())) : json(nullptr)},
              {"end_date", d.end_date() ? json(format_iso(*d.end_date())) : json(nullptr)},
              {"dag_run_timeout", nullptr},
              {"doc_md", nullptr},
              {"params", params},
              {"is_paused_upon_creation", nullptr},
              {"last_parsed", nullptr},
              {"template_search_path", nullptr},
              {"render_template_as_native_obj", false}});
  return out;
}

// The DAGs a listing or a PATCH of many selects, in dag_id order. A PATCH's `dag_id_pattern` of
// `~` selects every DAG, as Airflow's (patch_dags).
std::vector<const definition*> selected_dags(const api_call& call, const std::set<std::string>& paused, bool patching) {
  const auto tags = call.query_list("tags");
  auto pattern = call.query("dag_id_pattern");
  if (patching && pattern == "~") pattern = "%";
  const auto only_paused = call.query_flag("paused");
  call.query_flag("only_active");  // every loaded DAG is active: either value selects them all
  std::vector<const definition*> out;
  for (const auto& d : call.dags()) {
    if (pattern && !contains_like(d->id(), *pattern)) continue;
    if (only_paused && *only_paused != paused.contains(d->id())) continue;
    if (!tags.empty() && std::none_of(tags.begin(), tags.end(), [&](const std::string& t) {
          return std::find(d->tags().begin(), d->tags().end(), t) != d->tags().end();
        }))
      continue;
    out.push_back(d.get());
  }
  std::sort(out.begin(), out.end(), [](const definition* a, const definition* b) { return a->id() < b->id(); });
  return out;
}

// The body of a PATCH: Airflow's DAG with only `is_paused` writable.
bool paused_field(api_call& call) {
  const json& b = call.body();
  for (const auto& mask : call.query_list("update_mask"))
    if (mask != "is_paused") throw usage_error("update_mask: only is_paused can be updated, not '" + mask + "'");
  if (!b.contains("is_paused") || !b["is_paused"].is_boolean()) throw usage_error("is_paused: expected true or false");
  return b["is_paused"].get<bool>();
}

const std::vector<std::string> dag_order{"dag_id", "is_paused", "fileloc", "description", "max_active_runs", "max_active_tasks"};

http_response list_dags(api_call& call) {
  const auto paused = call.db.paused_dags();
  json all = json::array();
  for (const auto* d : selected_dags(call, paused, false)) all.push_back(dag_json(*d, paused.contains(d->id())));
  order_by(call, all, dag_order);
  json page = page_of(call, "dags", all);
  for (auto& d : page["dags"]) d = only_fields(call, d, "a DAG");
  return json_response(200, page);
}

http_response patch_dags(api_call& call) {
  const bool pause = paused_field(call);
  if (!call.query("dag_id_pattern"))
    throw usage_error("dag_id_pattern: name the DAGs to change (`~` or `%` for all, or a part of their ids); Airflow "
                      "requires it too");
  const auto paused = call.db.paused_dags();
  json all = json::array();
  for (const auto* d : selected_dags(call, paused, true)) {
    set_paused(call.db, d->id(), pause);
    call.record(pause ? "pause" : "unpause", d->id());
    all.push_back(dag_json(*d, pause));
  }
  return json_response(200, page_of(call, "dags", all));
}

http_response get_dag(api_call& call) {
  const auto& d = call.dag(call.path("dag_id"));
  return json_response(200, only_fields(call, dag_json(d, call.db.paused_dags().contains(d.id())), "a DAG"));
}

http_response patch_dag(api_call& call) {
  const auto& d = call.dag(call.path("dag_id"));
  const bool pause = paused_field(call);
  set_paused(call.db, d.id(), pause);
  call.record(pause ? "pause" : "unpause", d.id());
  return json_response(200, dag_json(d, pause));
}

http_response delete_dag(api_call& call) {
  // Its history, loaded or not (Airflow's delete_dag works from its tables): a DAG whose file is
  // gone can be cleaned up.
  const std::string dag_id = call.known_dag(call.path("dag_id"));
  const std::size_t runs = delete_dag_history(call.db, dag_id);
  call.record("delete_dag", dag_id, "", "", {{"runs_deleted", runs}});
  return {204, "application/json", ""};
}

http_response dag_details(api_call& call) {
  const auto& d = call.dag(call.path("dag_id"));
  return json_response(200, only_fields(call, dag_detail_json(d, call.db.paused_dags().contains(d.id())), "a DAG"));
}

http_response list_tasks(api_call& call) {
  const auto& d = call.dag(call.path("dag_id"));
  json all = json::array();
  for (const auto& t : d.all_tasks()) all.push_back(task_json(d, t));
  order_by(call, all, {"task_id", "owner", "retries", "priority_weight", "queue", "trigger_rule"});
  return json_response(200, {{"tasks", all}, {"total_entries", all.size()}});
}

http_response get_task(api_call& call) {
  const auto& d = call.dag(call.path("dag_id"));
  const auto* t = d.find(call.path("task_id"));
  if (!t) throw not_found_error("DAG '" + d.id() + "' has no task '" + call.path("task_id") + "'");
  return json_response(200, task_json(d, *t));
}

http_response dag_source(api_call& call) {
  const std::string& token = call.path("file_token");
  for (const auto& d : call.dags()) {
    if (d->where().file.empty() || file_token_of(d->where().file) != token) continue;
    std::ifstream in(d->where().file, std::ios::binary);
    if (!in) throw not_found_error("the file of DAG '" + d->id() + "' cannot be read now");
    const std::string content{std::istreambuf_iterator<char>(in), {}};
    const auto accept = call.request.headers.find("accept");
    if (accept != call.request.headers.end() && accept->second.find("application/json") == std::string::npos &&
        accept->second.find("text/plain") != std::string::npos)
      return {200, "text/plain; charset=utf-8", content};
    return json_response(200, {{"content", content}});
  }
  throw not_found_error("no loaded DAG has the file token '" + token + "'");
}

http_response dag_stats(api_call& call) {
  auto ids = call.query_list("dag_ids");
  if (ids.empty())
    for (const auto& d : call.dags()) ids.push_back(d->id());
  json all = json::array();
  for (const auto& id : ids) all.push_back({{"dag_id", id}});
  // Counted by the database, for the page's DAGs only: a DAG's history may be long.
  json page = page_of(call, "dags", all);
  for (auto& entry : page["dags"]) {
    json stats = json::array();
    for (const run_state state : {run_state::queued, run_state::running, run_state::success, run_state::failed}) {
      run_filter counted;
      counted.dag_id = entry["dag_id"].get<std::string>();
      counted.states = {state};
      stats.push_back({{"state", std::string(to_string(state))}, {"count", call.db.count_runs(counted)}});
    }
    entry["stats"] = std::move(stats);
  }
  return json_response(200, page);
}

http_response dag_warnings(api_call& call) {
  if (const auto id = call.query("dag_id")) call.dag(*id);
  // dagrun refuses a DAG it would warn about (it is an import error instead): there are none.
  return json_response(200, page_of(call, "dag_warnings", json::array()));
}

}  // namespace

json dag_json(const definition& d, bool paused) {
  json tags = json::array();
  for (const auto& t : d.tags()) tags.push_back({{"name", t}});
  return {{"dag_id", d.id()},
          {"dag_display_name", d.id()},
          {"root_dag_id", nullptr},
          {"description", text_or_null(d.description())},
          {"is_paused", paused},
          {"is_active", true},
          {"is_subdag", false},
          {"last_parsed_time", nullptr},
          {"last_pickled", nullptr},
          {"last_expired", nullptr},
          {"scheduler_lock", nullptr},
          {"pickle_id", nullptr},
          {"default_view", "grid"},
          {"fileloc", d.where().file},
          {"file_token", file_token_of(d.where().file)},
          {"owners", owners_of(d)},
          {"schedule_interval", schedule_of(d)},
          {"timetable_summary", text_or_null(d.schedule_summary())},
          {"timetable_description", text_or_null(d.dataset_schedule() ? "on dataset updates: " + d.dataset_schedule()->text() : d.schedule())},
          {"timezone", d.timezone()},
          {"catchup", d.catchup()},
          {"max_active_runs", d.max_active_runs()},
          {"max_active_tasks", d.max_active_tasks()},
          {"has_task_concurrency_limits", false},
          {"has_import_errors", false},
          {"next_dagrun", nullptr},
          {"next_dagrun_data_interval_start", nullptr},
          {"next_dagrun_data_interval_end", nullptr},
          {"next_dagrun_create_after", nullptr},
          {"max_consecutive_failed_dag_runs", nullptr},
          {"tags", tags}};
}

json task_json(const definition& d, const task& t) {
  std::vector<std::string> downstream;
  for (const auto& other : d.all_tasks())
    if (std::find(other.dependencies.begin(), other.dependencies.end(), t.id) != other.dependencies.end())
      downstream.push_back(other.id);
  const auto& s = t.settings;
  return {{"class_ref", {{"module_path", "dagrun.operators"}, {"class_name", t.operator_name}}},
          {"task_id", t.id},
          {"task_display_name", t.id},
          {"owner", s.owner},
          {"start_date", d.start_date() ? json(format_iso(*d.start_date())) : json(nullptr)},
          {"end_date", d.end_date() ? json(format_iso(*d.end_date())) : json(nullptr)},
          {"trigger_rule", std::string(to_string(s.trigger))},
          {"extra_links", json::array()},
          {"depends_on_past", s.depends_on_past},
          {"is_mapped", t.mapping.mapped()},
          {"wait_for_downstream", s.wait_for_downstream},
          {"retries", s.retry.retries},
          {"queue", s.queue},
          {"executor", nullptr},
          {"pool", s.pool},
          {"pool_slots", s.pool_slots},
          {"execution_timeout", s.execution_timeout ? time_delta(std::chrono::duration_cast<std::chrono::seconds>(*s.execution_timeout))
                                                    : json(nullptr)},
          {"retry_delay", time_delta(std::chrono::duration_cast<std::chrono::seconds>(s.retry.retry_delay))},
          {"retry_exponential_backoff", s.retry.exponential_backoff},
          {"priority_weight", s.priority_weight},
          {"weight_rule", "downstream"},
          {"ui_color", "#ffffff"},
          {"ui_fgcolor", "#000000"},
          {"template_fields", json::array()},
          {"downstream_task_ids", downstream},
          {"doc_md", nullptr}};
}

std::vector<api_route> dag_routes() {
  const std::vector<std::string> listing{"limit", "offset", "order_by", "tags", "only_active", "paused", "fields", "dag_id_pattern"};
  return {
      {"GET", "/dags", "get_dags", "DAG", listing, "", 200, "DAGCollection", list_dags},
      {"PATCH", "/dags", "patch_dags", "DAG", {"limit", "offset", "tags", "update_mask", "only_active", "dag_id_pattern"}, "DAGPatch", 200,
       "DAGCollection", patch_dags},
      {"GET", "/dags/{dag_id}", "get_dag", "DAG", {"fields"}, "", 200, "DAG", get_dag},
      {"PATCH", "/dags/{dag_id}", "patch_dag", "DAG", {"update_mask"}, "DAGPatch", 200, "DAG", patch_dag},
      {"DELETE", "/dags/{dag_id}", "delete_dag", "DAG", {}, "", 204, "", delete_dag},
      {"GET", "/dags/{dag_id}/details", "get_dag_details", "DAG", {"fields"}, "", 200, "DAGDetail", dag_details},
      {"GET", "/dags/{dag_id}/tasks", "get_tasks", "DAG", {"order_by"}, "", 200, "TaskCollection", list_tasks},
      {"GET", "/dags/{dag_id}/tasks/{task_id}", "get_task", "DAG", {}, "", 200, "Task", get_task},
      {"GET", "/dagSources/{file_token}", "get_dag_source", "DAG", {}, "", 200, "DAGSource", dag_source},
      {"GET", "/dagStats", "get_dag_stats", "DagStats", {"dag_ids", "limit", "offset"}, "", 200, "DagStatsCollection", dag_stats},
      {"GET", "/dagWarnings", "get_dag_warnings", "DagWarning", {"dag_id", "warning_type", "limit", "offset", "order_by"}, "", 200,
       "DagWarningCollection", dag_warnings},
  };
}

}  // namespace dag::detail
