/// @file The REST API's datasets (api.hpp): the datasets with the DAGs that produce and consume
/// them, their events (listed, and posted by external producers), and the events that triggered a
/// run — Airflow 2's Dataset endpoints.

#include "api.hpp"

#include <algorithm>

namespace dag::detail {
namespace {

// Airflow's BasicDAGRun.
json basic_run_json(const run_record& r) {
  return {{"run_id", r.run_id},
          {"dag_id", r.dag_id},
          {"logical_date", format_iso(r.logical_date)},
          {"start_date", optional_time(r.start_date)},
          {"end_date", optional_time(r.end_date)},
          {"data_interval_start", format_iso(r.interval.start)},
          {"data_interval_end", format_iso(r.interval.end)},
          {"state", std::string(to_string(r.state))}};
}

json extra_json(const std::string& text) {
  auto extra = json::parse(text, nullptr, false);
  return extra.is_object() ? extra : json::object();
}

// The store's datasets with their uses by the loaded DAGs.
json dataset_json(const dataset_record& d, const std::map<std::string, dataset_uses>& uses) {
  const std::string at = format_iso(d.created_at);
  json consuming = json::array(), producing = json::array();
  if (const auto u = uses.find(d.uri); u != uses.end()) {
    for (const auto& dag_id : u->second.consuming_dags)
      consuming.push_back({{"dag_id", dag_id}, {"created_at", at}, {"updated_at", at}});
    for (const auto& [dag_id, task_id] : u->second.producing_tasks)
      producing.push_back({{"dag_id", dag_id}, {"task_id", task_id}, {"created_at", at}, {"updated_at", at}});
  }
  return {{"id", d.id},
          {"uri", d.uri},
          {"extra", extra_json(d.extra)},
          {"created_at", at},
          {"updated_at", format_iso(d.updated_at)},
          {"consuming_dags", consuming},
          {"producing_tasks", producing}};
}

// Airflow's DatasetEvent, without the runs it triggered (with_runs adds them). `ids`: the
// datasets' ids by URI.
json event_json(const dataset_event_record& e, const std::map<std::string, std::int64_t>& ids) {
  const auto id = ids.find(e.uri);
  return {{"id", e.id},
          {"dataset_id", id == ids.end() ? json(nullptr) : json(id->second)},
          {"dataset_uri", e.uri},
          {"extra", extra_json(e.extra)},
          {"source_dag_id", text_or_null(e.source_dag_id)},
          {"source_task_id", text_or_null(e.source_task_id)},
          {"source_run_id", text_or_null(e.source_run_id)},
          {"source_map_index", e.source_task_id.empty() ? json(nullptr) : json(e.source_map_index)},
          {"created_dagruns", json::array()},
          {"timestamp", format_iso(e.when)}};
}

// `events` (DatasetEvent objects) with the runs each triggered: a query per event, so only for
// a page.
json with_runs(json events, store& db) {
  for (auto& e : events) {
    auto& runs = e["created_dagruns"];
    for (const auto& r : db.runs_triggered_by(e["id"].get<std::int64_t>())) runs.push_back(basic_run_json(r));
  }
  return events;
}

std::map<std::string, std::int64_t> dataset_ids(store& db) {
  std::map<std::string, std::int64_t> out;
  for (const auto& d : db.datasets()) out.emplace(d.uri, d.id);
  return out;
}

http_response list_datasets(api_call& call) {
  const auto uses = dataset_uses_of(call.dags());
  const auto pattern = call.query("uri_pattern");
  const auto dag_ids = call.query_list("dag_ids");
  json all = json::array();
  for (const auto& d : call.db.datasets()) {
    if (pattern && !contains_like(d.uri, *pattern)) continue;
    if (!dag_ids.empty()) {
      // Airflow: datasets a DAG of the list consumes or produces.
      const auto u = uses.find(d.uri);
      bool used = false;
      for (const auto& id : dag_ids)
        if (u != uses.end())
          used = used ||
                 std::find(u->second.consuming_dags.begin(), u->second.consuming_dags.end(), id) != u->second.consuming_dags.end() ||
                 std::any_of(u->second.producing_tasks.begin(), u->second.producing_tasks.end(),
                             [&](const auto& p) { return p.first == id; });
      if (!used) continue;
    }
    all.push_back(dataset_json(d, uses));
  }
  order_by(call, all, {"id", "uri", "created_at", "updated_at"});
  return json_response(200, page_of(call, "datasets", all));
}

http_response get_dataset(api_call& call) {
  const auto& uri = call.path("uri");
  const auto d = call.db.find_dataset(uri);
  if (!d) throw not_found_error("no dataset '" + uri + "'");
  return json_response(200, dataset_json(*d, dataset_uses_of(call.dags())));
}

http_response list_dataset_events(api_call& call) {
  const auto ids = dataset_ids(call.db);
  dataset_event_filter f;
  if (const auto wanted = call.query("dataset_id")) {
    const auto it = std::find_if(ids.begin(), ids.end(), [&](const auto& p) { return std::to_string(p.second) == *wanted; });
    if (it == ids.end()) return json_response(200, page_of(call, "dataset_events", json::array()));
    f.uri = it->first;
  }
  f.source_dag_id = call.query("source_dag_id");
  f.source_task_id = call.query("source_task_id");
  f.source_run_id = call.query("source_run_id");
  if (const auto index = call.query("source_map_index")) f.source_map_index = map_index_of(*index, "source_map_index");
  f.order = listing_order_of(call.query("order_by"), {{"id", "id"},
                                                      {"timestamp", "when"},
                                                      {"dataset_id", "dataset_id"},
                                                      {"dataset_uri", "uri"},
                                                      {"source_dag_id", "source_dag_id"},
                                                      {"source_task_id", "source_task_id"},
                                                      {"source_run_id", "source_run_id"}});
  const std::size_t total = call.db.count_dataset_events(f);
  f.limit = call.limit();
  f.offset = call.offset();
  json listed = json::array();
  for (const auto& e : call.db.dataset_events(f)) listed.push_back(event_json(e, ids));
  return json_response(200, {{"dataset_events", with_runs(std::move(listed), call.db)}, {"total_entries", total}});
}

http_response post_dataset_event(api_call& call) {
  const json& body = call.body();
  refuse_unknown_fields(body, {"dataset_uri", "extra"});
  const std::string uri = string_field(body, "dataset_uri");
  std::string extra = "{}";
  if (body.contains("extra") && !body["extra"].is_null()) {
    if (!body["extra"].is_object()) throw usage_error("extra: expected an object");
    extra = json_dump(body["extra"]);
  }
  const auto e = dag::post_dataset_event(call.db, uri, extra);
  if (!e) throw not_found_error("no dataset '" + uri + "'");
  call.record("dataset_event.create", "", "", "", {{"uri", uri}});
  return json_response(200, event_json(*e, dataset_ids(call.db)));
}

http_response upstream_dataset_events(api_call& call) {
  const run_record run = call.run(call.path("dag_id"), call.path("dag_run_id"));
  const auto ids = dataset_ids(call.db);
  json all = json::array();
  for (const auto& e : call.db.triggering_dataset_events(run.dag_id, run.run_id)) all.push_back(event_json(e, ids));
  const std::size_t total = all.size();
  return json_response(200, {{"dataset_events", with_runs(std::move(all), call.db)}, {"total_entries", total}});
}

}  // namespace

std::vector<api_route> dataset_routes() {
  return {
      {"GET", "/datasets", "get_datasets", "Dataset", {"limit", "offset", "order_by", "uri_pattern", "dag_ids"}, "", 200,
       "DatasetCollection", list_datasets},
      {"GET", "/datasets/events", "get_dataset_events", "Dataset",
       {"limit", "offset", "order_by", "dataset_id", "source_dag_id", "source_task_id", "source_run_id", "source_map_index"},
       "", 200, "DatasetEventCollection", list_dataset_events},
      {"POST", "/datasets/events", "create_dataset_event", "Dataset", {}, "CreateDatasetEvent", 200, "DatasetEvent",
       post_dataset_event},
      {"GET", "/datasets/{uri}", "get_dataset", "Dataset", {}, "", 200, "Dataset", get_dataset},
      {"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}/upstreamDatasetEvents", "get_upstream_dataset_events", "DAGRun", {}, "",
       200, "DatasetEventCollection", upstream_dataset_events},
  };
}

}  // namespace dag::detail
