/// @file The REST API's task instances (api.hpp): listing (one run, `~`, the batch `list`) with
/// filters, one instance, marking, clearing, tries, dependencies, notes, logs and XComs.

#include "api.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>

namespace dag::detail {
namespace {

const definition* loaded(const api_call& call, const std::string& dag_id) {
  for (const auto& d : call.dags())
    if (d->id() == dag_id) return d.get();
  return nullptr;
}

// The states a listing's `state` filter names (empty: any), or nullopt when it names only states
// of Airflow's that no instance here ever has (`deferred`: no deferrable operators; `restarting`):
// Airflow's clients may ask for them, and they match nothing.
std::optional<std::set<task_state>> task_states_of(const std::vector<std::string>& names, const std::string& what) {
  std::set<task_state> out;
  for (const auto& name : names) {
    if (name == "deferred" || name == "restarting") continue;
    const auto state = parse_task_state(name);
    if (!state) throw usage_error(what + ": unknown task state '" + name + "'");
    out.insert(*state);
  }
  if (out.empty() && !names.empty()) return std::nullopt;
  return out;
}

// A duration bound in seconds as the store's microseconds: rounded inwards, so that the bound
// means what it says of the whole microseconds the store keeps.
std::optional<std::chrono::microseconds> duration_bound(const std::optional<double>& seconds, bool upper, const std::string& what) {
  if (!seconds) return std::nullopt;
  if (!std::isfinite(*seconds) || std::abs(*seconds) > 1e12) throw usage_error(what + ": expected a number of seconds");
  const std::chrono::duration<double> d(*seconds);
  return upper ? std::chrono::floor<std::chrono::microseconds>(d) : std::chrono::ceil<std::chrono::microseconds>(d);
}

// The date and duration filters of a task instance listing.
void add_ranges(task_instance_filter& f, const date_ranges& dates, const std::optional<double>& duration_from,
                const std::optional<double>& duration_to, const std::string& from_name, const std::string& to_name) {
  dates.bound(f);
  f.duration_from = duration_bound(duration_from, false, from_name);
  f.duration_to = duration_bound(duration_to, true, to_name);
}

// Airflow's order_by fields of task instance listings, as the store names them.
const std::map<std::string, std::string> instance_order{
    {"task_id", "task_id"},       {"dag_id", "dag_id"},         {"dag_run_id", "run_id"},
    {"execution_date", "logical_date"}, {"start_date", "start_date"}, {"end_date", "end_date"},
    {"duration", "duration"},     {"state", "state"},           {"try_number", "try_number"},
    {"map_index", "map_index"},   {"pool", "pool"},             {"pool_slots", "pool_slots"},
    {"queue", "queue"},           {"executor", "executor"},     {"updated_at", "updated_at"}};

// A page of the task instances `filter` selects, filtered, ordered, paged and counted by the
// database.
json instances_page(api_call& call, std::optional<task_instance_filter> selected, const page_request& page,
                    const std::map<std::string, std::string>& order) {
  const listing_order ordered = listing_order_of(page.order, order);
  if (!selected) return {{"task_instances", json::array()}, {"total_entries", 0}};  // task_states_of
  task_instance_filter& filter = *selected;
  filter.order = ordered;
  const std::size_t total = call.db.count_task_instances(filter);
  filter.limit = page.limit;
  filter.offset = page.offset;
  json listed = json::array();
  for (const auto& l : call.db.list_task_instances(filter))
    listed.push_back(task_instance_json(l.record, l.logical_date, loaded(call, l.record.dag_id)));
  return {{"task_instances", std::move(listed)}, {"total_entries", total}};
}

// The filters a GET listing of task instances takes from its query (nullopt: they match nothing).
std::optional<task_instance_filter> instance_filter_of_query(const api_call& call) {
  task_instance_filter f;
  auto states = task_states_of(call.query_list("state"), "state");
  for (auto& p : call.query_list("pool")) f.pools.insert(std::move(p));
  for (auto& q : call.query_list("queue")) f.queues.insert(std::move(q));
  for (auto& e : call.query_list("executor")) f.executors.insert(std::move(e));
  add_ranges(f, date_ranges::of_query(call), call.query_number("duration_gte"), call.query_number("duration_lte"),
             "duration_gte", "duration_lte");
  if (!states) return std::nullopt;
  f.states = std::move(*states);
  return f;
}

http_response list_instances(api_call& call) {
  std::set<std::string> dag_ids, run_ids;
  if (call.path("dag_id") != "~") dag_ids = {call.known_dag(call.path("dag_id"))};
  if (call.path("dag_run_id") != "~") {
    if (dag_ids.empty()) throw usage_error("dag_run_id: a run can be named only with its DAG (use ~ for both)");
    run_ids = {call.run(*dag_ids.begin(), call.path("dag_run_id")).run_id};
  }
  auto f = instance_filter_of_query(call);
  if (f) {
    f->dag_ids = std::move(dag_ids);
    f->run_ids = std::move(run_ids);
  }
  return json_response(200, instances_page(call, std::move(f), page_request::of_query(call), instance_order));
}

std::optional<double> body_number(const json& b, const std::string& name) {
  if (!b.contains(name) || b[name].is_null()) return std::nullopt;
  if (!b[name].is_number()) throw usage_error(name + ": expected a number");
  return b[name].get<double>();
}

std::set<std::string> string_set_field(const json& b, const std::string& name) {
  const auto list = string_list_field(b, name);
  return {list.begin(), list.end()};
}

// A body's `state` list. Airflow's TaskState has null for an instance with no state: dagrun's `none`.
std::vector<std::string> body_states(const json& b) {
  if (!b.contains("state") || !b["state"].is_array()) return string_list_field(b, "state");
  json named = b["state"];
  for (auto& v : named)
    if (v.is_null()) v = "none";
  return string_list_field(json{{"state", std::move(named)}}, "state");
}

http_response list_instances_batch(api_call& call) {
  const json& b = call.body();
  refuse_unknown_fields(b, {"dag_ids", "dag_run_ids", "task_ids", "execution_date_gte", "execution_date_lte", "start_date_gte",
                            "start_date_lte", "end_date_gte", "end_date_lte", "duration_gte", "duration_lte", "state",
                            "pool", "queue", "executor", "order_by", "page_offset", "page_limit"});
  task_instance_filter f;
  f.dag_ids = string_set_field(b, "dag_ids");
  f.run_ids = string_set_field(b, "dag_run_ids");
  f.task_ids = string_set_field(b, "task_ids");
  auto states = task_states_of(body_states(b), "state");
  f.pools = string_set_field(b, "pool");
  f.queues = string_set_field(b, "queue");
  f.executors = string_set_field(b, "executor");
  add_ranges(f, date_ranges::of_body(b), body_number(b, "duration_gte"), body_number(b, "duration_lte"), "duration_gte",
             "duration_lte");
  if (states) f.states = std::move(*states);
  return json_response(200, instances_page(call, states ? std::optional(std::move(f)) : std::nullopt,
                                           page_request::of_body(call, b), instance_order));
}

// The task instance a path names, with its run and DAG; not_found_error when the instance or its
// run is missing.
struct named_instance {
  const definition* dag;  // null when the DAG is not loaded (its file broken or gone)
  run_record run;
  task_instance_record ti;
};

// The map index a request names: the path's, else the query's, else -1 (not mapped).
int wanted_map_index(const api_call& call) {
  if (call.has_path("map_index")) return map_index_of(call.path("map_index"), "map_index");
  if (const auto in_query = call.query("map_index")) return map_index_of(*in_query, "map_index");
  return -1;
}

named_instance instance_of(api_call& call) {
  auto run = call.run(call.path("dag_id"), call.path("dag_run_id"));
  const std::string& task_id = call.path("task_id");
  const int map_index = wanted_map_index(call);
  bool mapped = false;
  for (auto& ti : call.db.task_instances(run.dag_id, run.run_id)) {
    if (ti.task_id != task_id) continue;
    if (ti.map_index == map_index) return {loaded(call, run.dag_id), std::move(run), std::move(ti)};
    mapped = true;
  }
  if (mapped && map_index < 0)
    throw not_found_error("task '" + task_id + "' is mapped: name its instance (…/" + task_id + "/{map_index}, or listMapped)");
  if (mapped) throw not_found_error("task '" + task_id + "' has no mapped instance " + std::to_string(map_index) + " in run '" + run.run_id + "'");
  throw not_found_error("run '" + run.run_id + "' has no task '" + task_id + "'");
}

// Airflow's listMapped: the instances of a mapped task in a run, by map index, with the
// filters of other task instance listings.
http_response list_mapped(api_call& call) {
  const auto run = call.run(call.path("dag_id"), call.path("dag_run_id"));
  const std::string& task_id = call.path("task_id");
  const auto* d = loaded(call, run.dag_id);
  const bool known = d ? d->find(task_id) != nullptr : std::ranges::any_of(call.db.task_instances(run.dag_id, run.run_id), [&](const auto& ti) {
    return ti.task_id == task_id;  // a DAG not loaded: its run's instances tell its tasks
  });
  if (!known) throw not_found_error("DAG '" + run.dag_id + "' has no task '" + task_id + "'");
  auto f = instance_filter_of_query(call);
  if (f) {
    f->dag_ids = {run.dag_id};
    f->run_ids = {run.run_id};
    f->task_ids = {task_id};
    f->mapped_only = true;
  }
  static const std::map<std::string, std::string> mapped_order{{"map_index", "map_index"}, {"state", "state"},
                                                               {"start_date", "start_date"}, {"end_date", "end_date"},
                                                               {"duration", "duration"},   {"try_number", "try_number"},
                                                               {"updated_at", "updated_at"}};
  return json_response(200, instances_page(call, std::move(f), page_request::of_query(call), mapped_order));
}

http_response get_instance(api_call& call) {
  const auto named = instance_of(call);
  return json_response(200, task_instance_json(named.ti, named.run.logical_date, named.dag));
}

task_state new_state_field(const json& body) {
  const std::string text = string_field(body, "new_state");
  const auto state = parse_task_state(text);
  if (!state || (*state != task_state::success && *state != task_state::failed && *state != task_state::skipped))
    throw usage_error("new_state: expected success, failed or skipped, got '" + text + "'");
  return *state;
}

// Airflow's "update the state of a task instance": mark success, failed or skipped.
http_response patch_instance(api_call& call) {
  const auto named = instance_of(call);
  const json& b = call.body();
  refuse_unknown_fields(b, {"dry_run", "new_state"});
  mark_selection which;
  which.dag_id = named.run.dag_id;
  which.run_id = named.run.run_id;
  which.task_ids = {named.ti.task_id};
  if (named.ti.map_index >= 0) which.map_index = named.ti.map_index;
  which.state = new_state_field(b);
  which.dry_run = bool_field(b, "dry_run", true);  // Airflow's default (SetSingleTaskInstanceStateFormSchema)
  mark_task_instances(call.db, which, call.dag(named.run.dag_id), call.now.precise_now());
  if (!which.dry_run) call.record("mark_" + std::string(to_string(which.state)), named.ti);
  // The answer names the instance whether or not its state changed (it may already have had it).
  return json_response(200, references({{which.dag_id, which.run_id, named.ti.task_id}}, call.db).front());
}

http_response update_instances_state(api_call& call) {
  const auto& d = call.dag(call.path("dag_id"));
  const json& b = call.body();
  refuse_unknown_fields(b, {"dry_run", "task_id", "dag_run_id", "execution_date", "include_upstream", "include_downstream",
                            "include_future", "include_past", "new_state"});
  if (bool_field(b, "include_future", false) || bool_field(b, "include_past", false))
    throw usage_error("include_future: marking other runs at once is not supported; mark each run");
  mark_selection which;
  which.dag_id = d.id();
  which.task_ids = {string_field(b, "task_id")};
  if (!d.find(which.task_ids.front())) throw usage_error("task_id: DAG '" + d.id() + "' has no task '" + which.task_ids.front() + "'");
  if (b.contains("dag_run_id") && !b["dag_run_id"].is_null()) {
    which.run_id = call.run(d.id(), string_field(b, "dag_run_id")).run_id;
  } else if (const auto date = time_field(b, "execution_date")) {
    run_filter at;
    at.dag_id = d.id();
    at.logical_from = at.logical_to = *date;
    const auto runs = call.db.runs(at);
    if (runs.empty()) throw not_found_error("DAG '" + d.id() + "' has no run at " + format_iso(*date));
    which.run_id = runs.front().run_id;
  } else {
    throw usage_error("dag_run_id: name the run (or its execution_date)");
  }
  which.state = new_state_field(b);
  which.dry_run = bool_field(b, "dry_run", true);  // Airflow's default
  which.upstream = bool_field(b, "include_upstream", false);
  which.downstream = bool_field(b, "include_downstream", false);
  const auto marked = mark_task_instances(call.db, which, d, call.now.precise_now());
  if (!which.dry_run)
    call.record("mark_" + std::string(to_string(which.state)), d.id(), which.run_id, which.task_ids.front(),
                {{"task_instances", marked.size()}});
  return json_response(200, {{"task_instances", references(marked, call.db)}});
}

http_response clear_instances(api_call& call) {
  const auto& d = call.dag(call.path("dag_id"));
  const json& b = call.body();
  // Clearing is destructive: a field this server does not know is refused, not ignored.
  refuse_unknown_fields(b, {"dry_run", "only_failed", "only_running", "task_ids", "start_date", "end_date", "dag_run_id",
                            "include_upstream", "include_downstream", "include_future", "include_past", "reset_dag_runs",
                            "include_subdags", "include_parentdag"});
  // Airflow's clients send these at values that mean what dagrun does anyway; others are refused.
  if (!bool_field(b, "reset_dag_runs", true)) throw usage_error("reset_dag_runs: false is not supported (a cleared run is always queued again)");
  if (bool_field(b, "only_running", false)) throw usage_error("only_running: not supported (a running try is not cleared)");
  bool_field(b, "include_subdags", false);    // dagrun has no subDAGs:
  bool_field(b, "include_parentdag", false);  // either value means the same
  clear_selection which;
  which.dag_id = d.id();
  which.logical_from = time_field(b, "start_date");
  which.logical_to = time_field(b, "end_date");
  which.failed_only = bool_field(b, "only_failed", true);  // Airflow's defaults: failed ones,
  which.dry_run = bool_field(b, "dry_run", true);          // and only say what would be cleared
  which.upstream = bool_field(b, "include_upstream", false);
  which.downstream = bool_field(b, "include_downstream", false);
  which.past = bool_field(b, "include_past", false);
  which.future = bool_field(b, "include_future", false);
  if (b.contains("dag_run_id") && !b["dag_run_id"].is_null()) which.run_id = call.run(d.id(), string_field(b, "dag_run_id")).run_id;
  if ((which.past || which.future) && !which.run_id)
    throw usage_error("include_past, include_future: name the run they count from (dag_run_id)");
  if (b.contains("task_ids")) {
    // Airflow's items: a task id (all its instances) or [task id, map index] (that instance).
    if (!b["task_ids"].is_array()) throw usage_error("task_ids: expected a list of task ids");
    if (b["task_ids"].size() > max_list_items) throw usage_error("task_ids: at most " + std::to_string(max_list_items) + " values");
    std::set<std::string> ids, whole;
    for (const auto& t : b["task_ids"]) {
      const bool pair = t.is_array() && t.size() == 2 && t[0].is_string() && t[1].is_number_integer();
      if (!t.is_string() && !pair) throw usage_error("task_ids: expected a task id or [task id, map index]");
      const std::string id = pair ? t[0].get<std::string>() : t.get<std::string>();
      if (!d.find(id)) throw usage_error("task_ids: DAG '" + d.id() + "' has no task '" + id + "'");
      ids.insert(id);
      if (!pair) {
        whole.insert(id);
        continue;
      }
      const auto index = t[1].get<std::int64_t>();
      if (index < 0 || index > std::numeric_limits<int>::max()) throw usage_error("task_ids: a map index is 0 or more");
      which.only_instances[id].insert(static_cast<int>(index));
    }
    for (const auto& id : whole) which.only_instances.erase(id);  // named whole too: all its instances
    which.task_matches = [ids](const std::string& task_id) { return ids.contains(task_id); };
  }
  const auto cleared = clear_task_instances(call.db, which, &d);
  if (!which.dry_run) call.record("clear", d.id(), which.run_id.value_or(""), "", {{"task_instances", cleared.size()}});
  return json_response(200, {{"task_instances", references(cleared, call.db)}});
}

json try_json(const try_record& t, const named_instance& named) {
  task_instance_record as_instance = named.ti;
  as_instance.try_number = t.try_number;
  as_instance.state = t.state;
  as_instance.start_date = t.start_date;
  as_instance.end_date = t.end_date;
  as_instance.hostname = t.hostname;
  as_instance.pid = t.pid;
  return task_instance_json(as_instance, named.run.logical_date, named.dag);
}

http_response list_tries(api_call& call) {
  const auto named = instance_of(call);
  json all = json::array();
  for (const auto& t : tries_of(call.db, named.run.dag_id, named.run.run_id, named.ti.task_id, named.ti.map_index))
    all.push_back(try_json(t, named));
  return json_response(200, page_of(call, "task_instances", all));
}

int try_number_of(const std::string& text) { return whole_number_of(text, "task_try_number"); }

http_response get_try(api_call& call) {
  const auto named = instance_of(call);
  const int number = try_number_of(call.path("task_try_number"));
  const auto found = find_try(call.db, named.run.dag_id, named.run.run_id, named.ti.task_id, number, named.ti.map_index);
  if (!found) throw not_found_error("task '" + named.ti.task_id + "' has no try " + std::to_string(number) + " in run '" + named.run.run_id + "'");
  return json_response(200, try_json(*found, named));
}

// Airflow's extra links of an instance (name → URL): dagrun's operators define none.
http_response extra_links(api_call& call) {
  instance_of(call);  // 404 for no such instance
  return json_response(200, json::object());
}

// Why a task instance is not running: its upstream tasks, or its own state.
http_response dependencies(api_call& call) {
  const auto named = instance_of(call);
  json deps = json::array();
  const auto state = named.ti.state;
  if (state == task_state::success || state == task_state::failed || state == task_state::skipped ||
      state == task_state::upstream_failed) {
    deps.push_back({{"name", "Task Instance State"},
                    {"reason", "Task is in the '" + std::string(to_string(state)) + "' state which is not a valid state for execution."}});
  } else if (state == task_state::none || state == task_state::scheduled) {
    std::map<std::string, task_state> states;
    for (const auto& ti : call.db.task_instances(named.run.dag_id, named.run.run_id)) states[ti.task_id] = ti.state;
    std::string waiting;
    if (const auto* t = named.dag ? named.dag->find(named.ti.task_id) : nullptr)
      for (const auto& up : t->dependencies) {
        const auto it = states.find(up);
        const task_state s = it == states.end() ? task_state::none : it->second;
        if (s != task_state::success && s != task_state::skipped && s != task_state::failed && s != task_state::upstream_failed)
          waiting += (waiting.empty() ? "" : ", ") + up;
      }
    if (!waiting.empty())
      deps.push_back({{"name", "Trigger Rule"}, {"reason", "upstream tasks have not finished: " + waiting}});
    if (call.db.paused_dags().contains(named.run.dag_id))
      deps.push_back({{"name", "DAG Paused"}, {"reason", "the DAG is paused"}});
  }
  return json_response(200, {{"dependencies", deps}});
}

http_response set_instance_note(api_call& call) {
  const auto named = instance_of(call);
  const json& b = call.body();
  refuse_unknown_fields(b, {"note"});
  const std::string note = string_field(b, "note");
  // One instance's note: the map index the path names, -1 on the route without one (as Airflow).
  call.db.set_note(named.run.dag_id, named.run.run_id, named.ti.task_id, note, named.ti.map_index);
  call.record("set_task_instance_note", named.ti, {{"note", note}});
  return get_instance(call);
}

// A try's log. The continuation token is the byte offset read up to: given back, the answer is
// what the try wrote since (a running try's log grows).
http_response get_log(api_call& call) {
  const auto named = instance_of(call);
  const int number = try_number_of(call.path("task_try_number"));
  const auto found = find_try(call.db, named.run.dag_id, named.run.run_id, named.ti.task_id, number, named.ti.map_index);
  if (!found || found->log_path.empty())
    throw not_found_error("task '" + named.ti.task_id + "' has no try " + std::to_string(number) + " in run '" + named.run.run_id + "'");
  const bool full = call.query_flag("full_content").value_or(false);
  std::size_t from = 0;
  if (const auto token = call.query("token")) {
    if (token->empty() || token->size() > 15 || token->find_first_not_of("0123456789") != std::string::npos)
      throw usage_error("token: not a continuation token of this server ('" + *token + "')");
    from = static_cast<std::size_t>(std::stoull(*token));
  }
  const auto accept = call.request.headers.find("accept");
  const bool text = accept != call.request.headers.end() && accept->second.find("text/plain") != std::string::npos &&
                    accept->second.find("application/json") == std::string::npos;
  if (full && text && from == 0) {
    // Airflow's full_content as text: the whole log, streamed from its file whatever its size.
    http_response whole{200, "text/plain; charset=utf-8", ""};
    if (std::ifstream(found->log_path).good()) whole.file = found->log_path;  // no file: the try logged nothing
    return whole;
  }
  if (full && from == 0) {
    // Airflow's full_content as JSON: the whole log, up to log_json_whole_bytes.
    const auto [content, end] = log_start(found->log_path, log_view_head_bytes, log_json_whole_bytes - log_view_head_bytes);
    return json_response(200, {{"content", content}, {"continuation_token", std::to_string(end)}});
  }
  // Otherwise its first 64 KiB and last 4 MiB (log_excerpt), or what was added since the token.
  const auto [content, end] = log_since(found->log_path, from);
  if (text) return {200, "text/plain; charset=utf-8", content};
  return json_response(200, {{"content", content}, {"continuation_token", std::to_string(end)}});
}

json xcom_json(const xcom_record& x, const run_record& run, bool with_value) {
  json out{{"dag_id", x.dag_id}, {"dag_run_id", x.run_id}, {"task_id", x.task_id}, {"key", x.key},
           {"execution_date", format_iso(run.logical_date)}, {"timestamp", optional_time(run.start_date).is_null() ? json(format_iso(run.logical_date)) : optional_time(run.start_date)},
           {"map_index", x.map_index}};
  if (with_value) out["value"] = x.value;
  return out;
}

http_response list_xcoms(api_call& call) {
  xcom_filter f{std::nullopt, std::nullopt, std::nullopt, std::nullopt, call.query("xcom_key"), 0, 0};
  std::map<std::pair<std::string, std::string>, run_record> runs;  // of the entries, for their dates
  if (call.path("dag_id") != "~" && call.path("dag_run_id") != "~" && call.path("task_id") != "~") {
    auto named = instance_of(call);
    f.dag_id = named.run.dag_id, f.run_id = named.run.run_id, f.task_id = named.ti.task_id, f.map_index = named.ti.map_index;
    runs.emplace(std::pair{named.run.dag_id, named.run.run_id}, std::move(named.run));
  } else {
    // Airflow's `~` for any DAG, run or task.
    if (call.path("dag_id") != "~") f.dag_id = call.known_dag(call.path("dag_id"));
    if (call.path("dag_run_id") != "~") {
      if (!f.dag_id) throw usage_error("dag_run_id: a run can be named only with its DAG (use ~ for both)");
      f.run_id = call.run(*f.dag_id, call.path("dag_run_id")).run_id;
    }
    if (call.path("task_id") != "~") f.task_id = call.path("task_id");
    if (const auto m = call.query("map_index")) f.map_index = map_index_of(*m, "map_index");
  }
  const std::size_t total = call.db.count_xcoms(f);
  f.limit = call.limit();
  f.offset = call.offset();
  json listed = json::array();
  for (const auto& x : call.db.xcoms(f)) {
    auto at = runs.find({x.dag_id, x.run_id});
    if (at == runs.end()) at = runs.emplace(std::pair{x.dag_id, x.run_id}, call.run(x.dag_id, x.run_id)).first;
    listed.push_back(xcom_json(x, at->second, false));
  }
  return json_response(200, {{"xcom_entries", std::move(listed)}, {"total_entries", total}});
}

http_response get_xcom(api_call& call) {
  const auto named = instance_of(call);
  call.query_flag("deserialize");  // values are text: either way the same
  call.query_flag("stringify");
  const std::string& key = call.path("xcom_key");
  for (const auto& x : call.db.xcoms(xcom_filter{named.run.dag_id, named.run.run_id, named.ti.task_id, named.ti.map_index, key, 1, 0}))
    return json_response(200, xcom_json(x, named.run, true));
  throw not_found_error("task '" + named.ti.task_id + "' pushed no XCom '" + key + "' in run '" + named.run.run_id + "'");
}

}  // namespace

json task_instance_json(const task_instance_record& ti, time_point logical_date, const definition* d) {
  const auto duration = seconds_between(ti.start_date, ti.end_date);
  const task* t = d ? d->find(ti.task_id) : nullptr;
  return {{"task_id", ti.task_id},
          {"task_display_name", ti.task_id},
          {"dag_id", ti.dag_id},
          {"dag_run_id", ti.run_id},
          {"execution_date", format_iso(logical_date)},
          {"start_date", optional_time(ti.start_date)},
          {"end_date", optional_time(ti.end_date)},
          {"duration", duration ? json(*duration) : json(nullptr)},
          {"state", ti.state == task_state::none ? json(nullptr) : json(std::string(to_string(ti.state)))},
          {"try_number", ti.try_number},
          {"map_index", ti.map_index},
          {"max_tries", t ? ti.cleared_tries + t->settings.retry.retries : ti.try_number},
          {"hostname", ti.hostname},
          {"unixname", ""},
          // The pool its latest try took; before any, the task's.
          {"pool", t && ti.try_number == 0 ? t->settings.pool : ti.pool},
          {"pool_slots", t && ti.try_number == 0 ? t->settings.pool_slots : ti.pool_slots},
          // The queue its latest try was sent to; before any (or before the store kept it), the task's.
          {"queue", !ti.queue.empty() ? json(ti.queue) : t ? json(t->settings.queue) : json(nullptr)},
          {"priority_weight", t ? json(t->settings.priority_weight) : json(nullptr)},
          {"operator", t ? json(t->operator_name) : json(nullptr)},
          {"queued_when", nullptr},
          {"pid", ti.pid == 0 ? json(nullptr) : json(ti.pid)},
          {"executor", text_or_null(ti.executor)},
          {"executor_config", "{}"},
          {"sla_miss", nullptr},
          {"rendered_map_index", nullptr},
          {"rendered_fields", json::object()},
          {"trigger", nullptr},
          {"triggerer_job", nullptr},
          {"note", text_or_null(ti.note)}};
}

json references(const std::vector<task_instance_ref>& refs, store& s) {
  json out = json::array();
  std::map<std::string, std::string> dates;  // run id → logical date, read once per run
  for (const auto& r : refs) {
    auto it = dates.find(r.run_id);
    if (it == dates.end()) {
      const auto run = s.find_run(r.dag_id, r.run_id);
      it = dates.emplace(r.run_id, run ? format_iso(run->logical_date) : "").first;
    }
    out.push_back({{"dag_id", r.dag_id}, {"dag_run_id", r.run_id}, {"task_id", r.task_id}, {"execution_date", it->second}});
  }
  return out;
}

std::vector<api_route> task_instance_routes() {
  const std::vector<std::string> filters{"limit",          "offset",         "order_by",     "execution_date_gte",
                                         "execution_date_lte", "start_date_gte", "start_date_lte", "end_date_gte",
                                         "end_date_lte",   "updated_at_gte", "updated_at_lte", "duration_gte",
                                         "duration_lte",   "state",          "pool",         "queue",
                                         "executor"};
  const std::string ti = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}";
  return {
      {"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", "get_task_instances", "TaskInstance", filters, "", 200,
       "TaskInstanceCollection", list_instances},
      {"POST", "/dags/~/dagRuns/~/taskInstances/list", "get_task_instances_batch", "TaskInstance", {}, "ListTaskInstanceForm", 200,
       "TaskInstanceCollection", list_instances_batch},
      {"GET", ti, "get_task_instance", "TaskInstance", {}, "", 200, "TaskInstance", get_instance},
      {"PATCH", ti, "patch_task_instance", "TaskInstance", {}, "UpdateTaskInstance", 200, "TaskInstanceReference", patch_instance},
      {"POST", "/dags/{dag_id}/updateTaskInstancesState", "post_set_task_instances_state", "TaskInstance", {},
       "UpdateTaskInstancesState", 200, "TaskInstanceReferenceCollection", update_instances_state},
      {"POST", "/dags/{dag_id}/clearTaskInstances", "post_clear_task_instances", "DAG", {}, "ClearTaskInstances", 200,
       "TaskInstanceReferenceCollection", clear_instances},
      {"GET", ti + "/tries", "get_task_instance_tries", "TaskInstance", {"limit", "offset", "order_by"}, "", 200,
       "TaskInstanceCollection", list_tries},
      {"GET", ti + "/tries/{task_try_number}", "get_task_instance_try_details", "TaskInstance", {}, "", 200, "TaskInstance", get_try},
      {"GET", ti + "/dependencies", "get_task_instance_dependencies", "TaskInstance", {}, "", 200,
       "TaskInstanceDependencyCollection", dependencies},
      {"PATCH", ti + "/setNote", "set_task_instance_note", "TaskInstance", {}, "SetTaskInstanceNote", 200, "TaskInstance",
       set_instance_note},
      {"GET", ti + "/listMapped", "get_mapped_task_instances", "TaskInstance", filters, "", 200, "TaskInstanceCollection", list_mapped},
      {"GET", ti + "/links", "get_extra_links", "TaskInstance", {}, "", 200, "ExtraLinkCollection", extra_links},
      {"GET", ti + "/{map_index}", "get_mapped_task_instance", "TaskInstance", {}, "", 200, "TaskInstance", get_instance},
      {"PATCH", ti + "/{map_index}", "patch_mapped_task_instance", "TaskInstance", {}, "UpdateTaskInstance", 200,
       "TaskInstanceReference", patch_instance},
      {"PATCH", ti + "/{map_index}/setNote", "set_mapped_task_instance_note", "TaskInstance", {}, "SetTaskInstanceNote", 200,
       "TaskInstance", set_instance_note},
      {"GET", ti + "/{map_index}/dependencies", "get_mapped_task_instance_dependencies", "TaskInstance", {}, "", 200,
       "TaskInstanceDependencyCollection", dependencies},
      {"GET", ti + "/{map_index}/tries", "get_mapped_task_instance_tries", "TaskInstance", {"limit", "offset", "order_by"}, "", 200,
       "TaskInstanceCollection", list_tries},
      {"GET", ti + "/{map_index}/tries/{task_try_number}", "get_mapped_task_instance_try_details", "TaskInstance", {}, "", 200,
       "TaskInstance", get_try},
      {"GET", ti + "/logs/{task_try_number}", "get_log", "TaskInstance", {"full_content", "map_index", "token"}, "", 200, "Log", get_log},
      {"GET", ti + "/xcomEntries", "get_xcom_entries", "XCom", {"map_index", "xcom_key", "limit", "offset"}, "", 200, "XComCollection",
       list_xcoms},
      {"GET", ti + "/xcomEntries/{xcom_key}", "get_xcom_entry", "XCom", {"map_index", "deserialize", "stringify"}, "", 200, "XCom",
       get_xcom},
  };
}

}  // namespace dag::detail
