/// @file The REST API's DAG runs (api.hpp): listing (one DAG or `~`, and the batch `list`) with
/// filters and order, trigger, state, clear, delete and notes.

#include "api.hpp"

#include <algorithm>
#include <map>

namespace dag::detail {
namespace {

run_state run_state_named(const std::string& text, const std::string& what) {
  const auto s = parse_run_state(text);
  if (!s) throw usage_error(what + ": unknown state '" + text + "' (queued, running, success, failed)");
  return *s;
}

// Airflow's order_by fields of run listings, as the store names them.
const std::map<std::string, std::string> run_order{
    {"dag_run_id", "run_id"},   {"dag_id", "dag_id"},         {"execution_date", "logical_date"},
    {"logical_date", "logical_date"}, {"start_date", "start_date"}, {"end_date", "end_date"},
    {"state", "state"},         {"run_type", "run_type"},     {"data_interval_start", "data_interval_start"},
    {"data_interval_end", "data_interval_end"}, {"external_trigger", "manual"}, {"updated_at", "updated_at"}};

// The runs a listing's filters select, as the store filters them.
run_filter run_filter_of(const std::vector<std::string>& dag_ids, const std::vector<std::string>& states,
                         const std::string& states_name, const date_ranges& dates) {
  run_filter f;
  f.dag_ids.insert(dag_ids.begin(), dag_ids.end());
  for (const auto& s : states) f.states.insert(run_state_named(s, states_name));
  dates.bound(f);
  return f;
}

// A page of the runs `filter` selects, filtered, ordered, paged and counted by the database.
json runs_page(api_call& call, run_filter filter, const page_request& page) {
  const std::size_t total = call.db.count_runs(filter);
  filter.order = listing_order_of(page.order, run_order);
  filter.limit = page.limit;
  filter.offset = page.offset;
  json runs = json::array();
  for (const auto& r : call.db.runs(filter)) runs.push_back(run_json(r));
  return {{"dag_runs", std::move(runs)}, {"total_entries", total}};
}

http_response list_runs(api_call& call) {
  std::vector<std::string> dag_ids;
  if (call.path("dag_id") != "~") dag_ids = {call.known_dag(call.path("dag_id"))};
  const auto filter = run_filter_of(dag_ids, call.query_list("state"), "state", date_ranges::of_query(call));
  json page = runs_page(call, filter, page_request::of_query(call));
  for (auto& r : page["dag_runs"]) r = only_fields(call, std::move(r), "a DAG run");
  return json_response(200, page);
}

// Airflow's ListDagRunsForm: the same filters in a body, with its own paging fields.
http_response list_runs_batch(api_call& call) {
  const json& b = call.body();
  refuse_unknown_fields(b, {"order_by", "page_offset", "page_limit", "dag_ids", "states", "execution_date_gte",
                            "execution_date_lte", "start_date_gte", "start_date_lte", "end_date_gte", "end_date_lte"});
  const auto filter = run_filter_of(string_list_field(b, "dag_ids"), string_list_field(b, "states"), "states", date_ranges::of_body(b));
  return json_response(200, runs_page(call, filter, page_request::of_body(call, b)));
}

http_response trigger(api_call& call) {
  const auto& d = call.dag(call.path("dag_id"));
  const json& b = call.body();
  refuse_unknown_fields(b, {"dag_run_id", "logical_date", "execution_date", "conf", "note", "data_interval_start", "data_interval_end"});
  if (b.contains("data_interval_start") || b.contains("data_interval_end"))
    throw usage_error("data_interval_start: dagrun derives a run's data interval from its logical date; leave it out");
  const time_point date = time_field(b, "logical_date").value_or(time_field(b, "execution_date").value_or(call.now.now()));
  // The caller's id, as Airflow's: its allowed_run_id_pattern (`^[A-Za-z0-9_.~:+-]+$`), at most
  // 248 characters (a try's log folder is named `run_id=` and the id, and a name holds 255 bytes;
  // Airflow's column holds 250), not `~` (which means every run in a path), and not one that names
  // another kind of run (scheduled__…, as Airflow 3 refuses). Else `manual__<logical date>`.
  std::string run_id = make_run_id(run_type::manual, date);
  if (b.contains("dag_run_id") && !b["dag_run_id"].is_null()) {
    run_id = string_field(b, "dag_run_id");
    if (run_id.empty() || run_id.size() > 248 ||
        run_id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~:+-") != std::string::npos)
      throw usage_error("dag_run_id: expected 1 to 248 of the characters A-Z a-z 0-9 _ . ~ : + - (Airflow's "
                        "allowed_run_id_pattern)");
    if (run_id == "~") throw usage_error("dag_run_id: '~' stands for every run in a path; name the run otherwise");
    for (const run_type other : {run_type::scheduled, run_type::backfill, run_type::dataset_triggered})
      if (run_id.starts_with(std::string(to_string(other)) + "__"))
        throw usage_error("dag_run_id: '" + run_id + "' is the form of a " + std::string(to_string(other)) +
                          " run's id; a triggered run needs another");
  }
  if (b.contains("conf") && !b["conf"].is_object() && !b["conf"].is_null()) throw usage_error("conf: expected a JSON object");
  std::string note;
  if (b.contains("note") && !b["note"].is_null()) note = string_field(b, "note");
  const auto run = trigger_run(call.db, d, date, b.contains("conf") && b["conf"].is_object() ? json_dump(b["conf"]) : "{}",
                               note, run_id);
  if (!run) throw conflict_error("a run " + run_id + " of " + d.id() + " already exists");
  call.record("trigger", d.id(), run->run_id, "", {{"conf", b.value("conf", json::object())}});
  return json_response(200, run_json(call.run(d.id(), run->run_id)));
}

http_response get_run(api_call& call) {
  return json_response(200, only_fields(call, run_json(call.run(call.path("dag_id"), call.path("dag_run_id"))), "a DAG run"));
}

http_response delete_run(api_call& call) {
  const auto run = call.run(call.path("dag_id"), call.path("dag_run_id"));
  call.db.delete_run(run.dag_id, run.run_id);
  call.record("delete_dag_run", run.dag_id, run.run_id);
  return {204, "application/json", ""};
}

http_response patch_run_state(api_call& call) {
  const auto run = call.run(call.path("dag_id"), call.path("dag_run_id"));
  const json& b = call.body();
  refuse_unknown_fields(b, {"state"});
  const std::string text = string_field(b, "state");
  const auto state = parse_run_state(text);
  if (!state || *state == run_state::running) throw usage_error("state: expected success, failed or queued, got '" + text + "'");
  set_run_state(call.db, call.dag(run.dag_id), run.run_id, *state, call.now.precise_now());
  call.record("set_dag_run_state", run.dag_id, run.run_id, "", {{"state", text}});
  return json_response(200, run_json(call.run(run.dag_id, run.run_id)));
}

http_response clear_run(api_call& call) {
  const auto run = call.run(call.path("dag_id"), call.path("dag_run_id"));
  const json& b = call.body();
  refuse_unknown_fields(b, {"dry_run"});
  clear_selection which;
  which.dag_id = run.dag_id;
  which.run_id = run.run_id;
  which.dry_run = bool_field(b, "dry_run", true);  // Airflow's default
  const auto& d = call.dag(run.dag_id);
  const auto cleared = clear_task_instances(call.db, which, &d);
  if (which.dry_run) {
    json tis = json::array();
    const auto instances = call.db.task_instances(run.dag_id, run.run_id);
    for (const auto& ref : cleared)
      for (const auto& ti : instances)
        if (ti.task_id == ref.task_id && ti.map_index == ref.map_index) tis.push_back(task_instance_json(ti, run.logical_date, &d));
    return json_response(200, {{"task_instances", tis}, {"total_entries", tis.size()}});
  }
  call.record("clear_dag_run", run.dag_id, run.run_id, "", {{"task_instances", cleared.size()}});
  return json_response(200, run_json(call.run(run.dag_id, run.run_id)));
}

http_response set_run_note(api_call& call) {
  const auto run = call.run(call.path("dag_id"), call.path("dag_run_id"));
  const json& b = call.body();
  refuse_unknown_fields(b, {"note"});
  const std::string note = string_field(b, "note");
  call.db.set_note(run.dag_id, run.run_id, "", note);
  call.record("set_dag_run_note", run.dag_id, run.run_id, "", {{"note", note}});
  return json_response(200, run_json(call.run(run.dag_id, run.run_id)));
}

}  // namespace

json run_json(const run_record& r) {
  const json conf = json::parse(r.conf, nullptr, false);
  return {{"dag_run_id", r.run_id},
          {"dag_id", r.dag_id},
          {"logical_date", format_iso(r.logical_date)},
          {"execution_date", format_iso(r.logical_date)},
          {"data_interval_start", format_iso(r.interval.start)},
          {"data_interval_end", format_iso(r.interval.end)},
          {"start_date", optional_time(r.start_date)},
          {"end_date", optional_time(r.end_date)},
          {"last_scheduling_decision", nullptr},
          {"state", std::string(to_string(r.state))},
          {"run_type", std::string(to_string(r.type))},
          {"external_trigger", r.type == run_type::manual},
          {"conf", conf.is_object() ? conf : json::object()},
          {"note", text_or_null(r.note)}};
}

std::vector<api_route> run_routes() {
  const std::vector<std::string> filters{"limit",          "offset",         "order_by",       "execution_date_gte",
                                         "execution_date_lte", "start_date_gte", "start_date_lte", "end_date_gte",
                                         "end_date_lte",   "updated_at_gte", "updated_at_lte", "state",
                                         "fields"};
  const std::string run = "/dags/{dag_id}/dagRuns/{dag_run_id}";
  return {
      {"GET", "/dags/{dag_id}/dagRuns", "get_dag_runs", "DAGRun", filters, "", 200, "DAGRunCollection", list_runs},
      {"POST", "/dags/{dag_id}/dagRuns", "post_dag_run", "DAGRun", {}, "DAGRun", 200, "DAGRun", trigger},
      {"POST", "/dags/~/dagRuns/list", "get_dag_runs_batch", "DAGRun", {}, "ListDagRunsForm", 200, "DAGRunCollection", list_runs_batch},
      {"GET", run, "get_dag_run", "DAGRun", {"fields"}, "", 200, "DAGRun", get_run},
      {"DELETE", run, "delete_dag_run", "DAGRun", {}, "", 204, "", delete_run},
      {"PATCH", run, "update_dag_run_state", "DAGRun", {}, "UpdateDagRunState", 200, "DAGRun", patch_run_state},
      {"POST", run + "/clear", "clear_dag_run", "DAGRun", {}, "ClearDagRun", 200, "DAGRunOrTaskInstances", clear_run},
      {"PATCH", run + "/setNote", "set_dag_run_note", "DAGRun", {}, "SetDagRunNote", 200, "DAGRun", set_run_note},
  };
}

}  // namespace dag::detail
