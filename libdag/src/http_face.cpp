// The daemon's HTTP face: health, metrics, and the REST API in Airflow's shape.
#include <dag/http/face.hpp>

#include <chrono>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include <dag/core/json_text.hpp>
#include <dag/engine/engine.hpp>
#include <dag/engine/scheduler_core.hpp>
#include <dag/exec/task_queue.hpp>

#include <dag/model/operations.hpp>
#include <dag/store/store.hpp>

#include "web_ui.hpp"

namespace dag {
namespace {

using json = nlohmann::json;

// Text from tasks (logs, messages) may not be UTF-8: replace what is not, rather than fail.
http_response json_response(int status, const json& body) {
  return {status, "application/json", json_dump(body)};
}

std::string lower_case(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The host and port of an Origin header: `https://h:8080` → `h:8080`, comparable with Host.
std::string authority_of(const std::string& origin) {
  const auto scheme = origin.find("://");
  return scheme == std::string::npos ? origin : origin.substr(scheme + 3);
}

// The host part of a Host header: `127.0.0.1:8080` → `127.0.0.1`, `[::1]:8080` → `::1`.
std::string host_of(const std::string& header) {
  if (header.starts_with('[')) return header.substr(1, header.find(']') - 1);
  return header.substr(0, header.find(':'));
}

// Airflow's API errors are RFC 7807 problem documents.
http_response problem(int status, const std::string& title, const std::string& detail) {
  return json_response(status, {{"title", title}, {"status", status}, {"detail", detail}, {"type", "about:blank"}});
}

json optional_time(const std::optional<timestamp>& t) {
  const std::string text = format_iso(t);
  return text.empty() ? json(nullptr) : json(text);
}

json dag_json(const definition& d, bool paused) {
  json schedule = nullptr;
  if (!d.schedule().empty()) {
    try {
      const auto span = parse_duration(d.schedule());
      schedule = {{"__type", "TimeDelta"}, {"days", span.count() / 86400}, {"seconds", span.count() % 86400}, {"microseconds", 0}};
    } catch (const error&) {
      schedule = {{"__type", "CronExpression"}, {"value", d.schedule()}};
    }
  }
  json tags = json::array();
  for (const auto& t : d.tags()) tags.push_back({{"name", t}});
  return {{"dag_id", d.id()},
          {"description", d.description().empty() ? json(nullptr) : json(d.description())},
          {"is_paused", paused},
          {"is_active", true},
          {"fileloc", d.where().file},
          {"schedule_interval", schedule},
          {"timezone", d.timezone()},
          {"catchup", d.catchup()},
          {"max_active_runs", d.max_active_runs()},
          {"max_active_tasks", d.max_active_tasks()},
          {"tags", tags}};
}

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
          {"state", std::string(to_string(r.state))},
          {"run_type", std::string(to_string(r.type))},
          {"external_trigger", r.type == run_type::manual},
          {"conf", conf.is_object() ? conf : json::object()}};
}

json task_instance_json(const task_instance_record& ti, const run_record& run) {
  const auto d = seconds_between(ti.start_date, ti.end_date);
  return {{"task_id", ti.task_id},
          {"dag_id", ti.dag_id},
          {"dag_run_id", ti.run_id},
          {"execution_date", format_iso(run.logical_date)},
          {"state", ti.state == task_state::none ? json(nullptr) : json(std::string(to_string(ti.state)))},
          {"try_number", ti.try_number},
          {"start_date", optional_time(ti.start_date)},
          {"end_date", optional_time(ti.end_date)},
          {"duration", d ? json(*d) : json(nullptr)},
          {"hostname", ti.hostname},
          {"pid", ti.pid == 0 ? json(nullptr) : json(ti.pid)},
          {"note", ti.message.empty() ? json(nullptr) : json(ti.message)}};
}

// An optional ISO time field of a request body; a usage error names the field.
std::optional<time_point> time_field(const json& body, const std::string& name) {
  if (!body.contains(name) || body[name].is_null()) return std::nullopt;
  if (!body[name].is_string()) throw usage_error(name + ": expected an ISO-8601 date or time");
  try {
    return parse_time(body[name].get<std::string>());
  } catch (const error& e) {
    throw usage_error(name + ": " + e.message());
  }
}

// Airflow's `limit` (default 100, at most 100) and `offset` query parameters.
std::pair<std::size_t, std::size_t> page_of(const http_request& request) {
  auto number = [&](const std::string& name, long fallback, long low, long high) {
    const std::string text = request.query(name);
    if (text.empty()) return fallback;
    const auto parsed = detail::whole_number(text, 999999999);
    if (!parsed) throw usage_error(name + ": expected a whole number, got '" + text + "'");
    const long v = *parsed;
    if (v < low || v > high)
      throw usage_error(name + ": must be between " + std::to_string(low) + " and " + std::to_string(high) + ", got " + text);
    return v;
  };
  return {static_cast<std::size_t>(number("limit", 100, 1, 100)), static_cast<std::size_t>(number("offset", 0, 0, 999999999))};
}

// One page of `all` under `key`, with the total before paging (Airflow's collection shape).
json paged(const http_request& request, const std::string& key, const json& all) {
  const auto [limit, offset] = page_of(request);
  json page = json::array();
  for (std::size_t i = offset; i < all.size() && i < offset + limit; ++i) page.push_back(all[i]);
  return {{key, std::move(page)}, {"total_entries", all.size()}};
}

bool bool_field(const json& body, const std::string& name, bool otherwise) {
  if (!body.contains(name)) return otherwise;
  if (!body[name].is_boolean()) throw usage_error(name + ": expected true or false");
  return body[name].get<bool>();
}

// A string field of a request body; a usage error names the field.
std::string string_field(const json& body, const std::string& name) {
  if (!body.contains(name) || !body[name].is_string()) throw usage_error(name + ": expected a string");
  return body[name].get<std::string>();
}

// Destructive requests refuse fields this server does not know rather than ignore them.
void refuse_unknown_fields(const json& body, const std::set<std::string>& known) {
  for (const auto& [key, value] : body.items()) {
    if (known.contains(key)) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw usage_error(key + ": not supported (known: " + list + ")");
  }
}

// A list of task ids of `d` under `name`; a usage error names the field and any unknown task.
std::vector<std::string> task_ids_field(const json& body, const std::string& name, const definition& d) {
  if (!body.contains(name) || !body[name].is_array()) throw usage_error(name + ": expected a list of task ids");
  std::vector<std::string> ids;
  for (const auto& t : body[name]) {
    if (!t.is_string()) throw usage_error(name + ": expected a task id");
    if (!d.find(t.get<std::string>())) throw usage_error(name + ": DAG '" + d.id() + "' has no task '" + t.get<std::string>() + "'");
    ids.push_back(t.get<std::string>());
  }
  return ids;
}

// Airflow's `new_state` of a task instance: success, failed or skipped.
task_state new_state_field(const json& body) {
  const std::string text = string_field(body, "new_state");
  const auto state = parse_task_state(text);
  if (!state || (*state != task_state::success && *state != task_state::failed && *state != task_state::skipped))
    throw usage_error("new_state: expected success, failed or skipped, got '" + text + "'");
  return *state;
}

// Airflow's TaskInstanceReference list: the instances an operation touched, with their run's date.
json references(const std::vector<task_instance_ref>& refs, store& s) {
  json out = json::array();
  std::map<std::string, std::string> dates;  // run id → logical date, read once per run
  for (const auto& r : refs) {
    auto it = dates.find(r.run_id);
    if (it == dates.end()) {
      const auto run = s.find_run(r.dag_id, r.run_id);
      it = dates.emplace(r.run_id, run ? format_iso(run->logical_date) : "").first;
    }
    out.push_back({{"dag_id", r.dag_id}, {"dag_run_id", r.run_id}, {"task_id", r.task_id},
                   {"execution_date", it->second}});
  }
  return out;
}

}  // namespace

http_face::http_face(http_face_options options, metrics_registry& metrics, const clock& now)
    : options_(std::move(options)), metrics_(metrics), now_(now), sign_ins_(std::make_unique<detail::ui_sign_ins>()) {
  metrics_.counter("http_requests_total", "HTTP requests served, by method and status code", {"method", "status_code"});
  metrics_.histogram("http_request_duration_seconds", "Time to answer an HTTP request");
  metrics_.gauge("dagrun_import_errors", "DAG files that failed to load");
  metrics_.gauge("dagrun_executor_queued_tasks", "Tries waiting in the task queue for a worker (queue executor)");
}

http_face::~http_face() = default;

store& http_face::db() {
  if (!db_) db_ = open_store(options_.db_url);
  return *db_;
}

http_response http_face::handle(const http_request& request) {
  const auto began = std::chrono::steady_clock::now();
  http_response out;
  try {
    out = route(request);
  } catch (const std::exception& e) {
    db_.reset();  // the connection may be what failed: open a fresh one next time
    out = problem(500, "Internal Server Error", e.what());
  }
  // The method is the client's text: only known ones become label values (bounded series).
  static const std::set<std::string> methods{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  metrics_.add("http_requests_total", {methods.contains(request.method) ? request.method : "other", std::to_string(out.status)});
  metrics_.observe("http_request_duration_seconds",
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  return out;
}

void http_face::set_dags(std::vector<definition> dags) {
  auto next = std::make_shared<const std::vector<definition>>(std::move(dags));
  std::lock_guard lock(dags_mutex_);
  dags_ = std::move(next);
}

void http_face::follow_dags(std::function<std::shared_ptr<const std::vector<definition>>()> source) {
  std::lock_guard lock(dags_mutex_);
  dags_source_ = std::move(source);
}

std::shared_ptr<const std::vector<definition>> http_face::dags() const {
  std::lock_guard lock(dags_mutex_);
  return dags_source_ ? dags_source_() : dags_;
}

bool http_face::express(const http_request& request) {
  return request.path() == "/health" && (request.method == "GET" || request.method == "HEAD");
}

http_server_options http_face::server_options(http_server_options base) {
  base.gate = [this](const http_request& r) { return gate(r); };
  base.express = &http_face::express;
  return base;
}

std::optional<http_response> http_face::gate(const http_request& request) {
  const std::string path = request.path();
  // Without a token the server is on loopback only; a page elsewhere in the user's browser could
  // still reach it under a rebound DNS name, so the Host must be a loopback name too.
  if (!options_.token) {
    const auto host = request.headers.find("host");
    if (host != request.headers.end() && !is_loopback_address(host_of(host->second)))
      return problem(403, "Forbidden", "this dagrun answers only requests addressed to localhost (set DAGRUN_API_TOKEN to serve others)");
  }
  // A cross-site form in the user's browser must not change anything (no CSRF).
  if (request.method != "GET" && request.method != "HEAD") {
    const auto site = request.headers.find("sec-fetch-site");
    const auto origin = request.headers.find("origin");
    const auto host = request.headers.find("host");
    const bool foreign_origin = origin != request.headers.end() && host != request.headers.end() &&
                                authority_of(origin->second) != host->second;
    if ((site != request.headers.end() && site->second == "cross-site") || foreign_origin)
      return problem(403, "Forbidden", "requests from other sites may not change anything");
  }
  if (path == "/api/v1" || path.starts_with("/api/v1/")) {
    // With a token, the API answers only its holders (logs and XComs are data too), as Airflow's
    // API answers only authenticated users. The scheme's name is case-insensitive (RFC 9110).
    if (options_.token) {
      const auto it = request.headers.find("authorization");
      const std::string given = it == request.headers.end() ? "" : it->second;
      const std::size_t space = given.find(' ');
      const bool bearer = space != std::string::npos && lower_case(given.substr(0, space)) == "bearer";
      const std::string token = bearer ? given.substr(given.find_first_not_of(' ', space) == std::string::npos
                                                          ? given.size()
                                                          : given.find_first_not_of(' ', space))
                                       : "";
      if (!bearer || !same_secret(token, *options_.token))
        return problem(401, "Unauthorized", "send Authorization: Bearer <DAGRUN_API_TOKEN>");
    }
    return std::nullopt;
  }
  return detail::web_ui_gate(request, options_.token, *sign_ins_);
}

http_response http_face::route(const http_request& request) {
  const std::string path = request.path();
  if (auto refused = gate(request)) return *refused;
  if (path == "/health" || path == "/metrics") {
    if (request.method != "GET" && request.method != "HEAD") return problem(405, "Method Not Allowed", path + " only answers GET");
    return path == "/health" ? health() : metrics_text();
  }
  const auto parts = path_segments(path);  // run ids arrive percent-encoded (`:` and `+`)
  if (parts.size() >= 2 && parts[0] == "api" && parts[1] == "v1") {
    if (request.method != "GET" && !request.body.empty()) {
      // Browsers cannot send JSON cross-site without asking first: together with the token this
      // keeps other sites' forms out.
      const auto type = request.headers.find("content-type");
      if (type == request.headers.end() || !type->second.starts_with("application/json"))
        return problem(415, "Unsupported Media Type", "send the request body as application/json");
    }
    try {
      return api(request, std::vector<std::string>(parts.begin() + 2, parts.end()));
    } catch (const usage_error& e) {
      return problem(400, "Bad Request", e.message());
    } catch (const conflict_error& e) {
      return problem(409, "Conflict", e.message());
    }
  }
  const auto snapshot = dags();
  if (auto page = detail::web_ui(request, {db(), *snapshot, options_.token, *sign_ins_, now_})) return *page;
  return problem(404, "Not Found", "no such endpoint: " + path);
}

http_response http_face::api(const http_request& request, const std::vector<std::string>& p) {
  const std::string& method = request.method;
  auto not_found = [&](const std::string& what) { return problem(404, "Not Found", what); };
  auto wrong_method = [&] { return problem(405, "Method Not Allowed", method + " is not allowed on " + request.path()); };
  auto body = [&] {
    if (request.body.empty()) return json::object();
    // Bounded before parsing: the parser recurses, and a body nested 100,000 deep would end the daemon.
    if (json_nesting_depth(request.body, max_conf_depth + 2) > max_conf_depth + 2)
      throw usage_error("the request body is nested more than " + std::to_string(max_conf_depth + 2) + " levels deep");
    json parsed = json::parse(request.body, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) throw usage_error("the request body must be a JSON object");
    return parsed;
  };
  if (p.empty() || p[0] != "dags") return not_found("no such endpoint: " + request.path());
  const auto all = dags();
  if (p.size() == 1) {
    if (method != "GET") return wrong_method();
    const auto paused = db().paused_dags();
    json list = json::array();
    for (const auto& d : *all) list.push_back(dag_json(d, paused.contains(d.id())));
    return json_response(200, paged(request, "dags", list));
  }
  const std::string& dag_id = p[1];
  const definition* d = nullptr;
  for (const auto& x : *all)
    if (x.id() == dag_id) d = &x;
  if (!d) return not_found("DAG '" + dag_id + "' is not loaded");

  if (p.size() == 2) {
    if (method == "PATCH") {
      const json b = body();
      if (!b.contains("is_paused") || !b["is_paused"].is_boolean()) throw usage_error("is_paused: expected true or false");
      db().set_paused(dag_id, b["is_paused"].get<bool>());
      return json_response(200, dag_json(*d, b["is_paused"].get<bool>()));
    }
    if (method != "GET") return wrong_method();
    return json_response(200, dag_json(*d, db().paused_dags().contains(dag_id)));
  }

  if (p[2] == "clearTaskInstances" && p.size() == 3) {
    if (method != "POST") return wrong_method();
    const json b = body();
    // Clearing is destructive: a field this server does not know is refused, not ignored.
    refuse_unknown_fields(b, {"dry_run", "only_failed", "task_ids", "start_date", "end_date", "dag_run_id",
                              "include_upstream", "include_downstream", "reset_dag_runs", "include_subdags",
                              "include_parentdag"});
    // Airflow's clients send these at values that mean what dagrun does anyway; others are refused.
    if (!bool_field(b, "reset_dag_runs", true)) throw usage_error("reset_dag_runs: false is not supported (a cleared run is always queued again)");
    bool_field(b, "include_subdags", false);    // dagrun has no subDAGs:
    bool_field(b, "include_parentdag", false);  // either value means the same
    clear_selection which;
    which.dag_id = dag_id;
    which.logical_from = time_field(b, "start_date");
    which.logical_to = time_field(b, "end_date");
    which.failed_only = bool_field(b, "only_failed", true);  // Airflow's defaults: failed ones,
    which.dry_run = bool_field(b, "dry_run", true);          // and only say what would be cleared
    which.upstream = bool_field(b, "include_upstream", false);
    which.downstream = bool_field(b, "include_downstream", false);
    if (b.contains("dag_run_id")) {
      which.run_id = string_field(b, "dag_run_id");
      if (!db().find_run(dag_id, *which.run_id)) return not_found("DAG '" + dag_id + "' has no run '" + *which.run_id + "'");
    }
    if (b.contains("task_ids")) {
      std::set<std::string> ids;
      for (const auto& id : task_ids_field(b, "task_ids", *d)) ids.insert(id);
      which.task_matches = [ids](const std::string& task_id) { return ids.contains(task_id); };
    }
    return json_response(200, {{"task_instances", references(clear_task_instances(db(), which, d), db())}});
  }

  if (p[2] == "updateTaskInstancesState" && p.size() == 3) {
    if (method != "POST") return wrong_method();
    const json b = body();
    refuse_unknown_fields(b, {"dry_run", "task_id", "dag_run_id", "execution_date", "include_upstream",
                              "include_downstream", "new_state"});
    mark_selection which;
    which.dag_id = dag_id;
    which.task_ids = {string_field(b, "task_id")};
    if (b.contains("dag_run_id")) {
      which.run_id = string_field(b, "dag_run_id");
    } else if (const auto date = time_field(b, "execution_date")) {
      run_filter at;
      at.dag_id = dag_id;
      at.logical_from = at.logical_to = *date;
      const auto runs = db().runs(at);
      if (runs.empty()) return not_found("DAG '" + dag_id + "' has no run at " + format_iso(*date));
      which.run_id = runs.front().run_id;
    } else {
      throw usage_error("dag_run_id: name the run (or its execution_date)");
    }
    if (!db().find_run(dag_id, which.run_id)) return not_found("DAG '" + dag_id + "' has no run '" + which.run_id + "'");
    which.state = new_state_field(b);
    which.dry_run = bool_field(b, "dry_run", true);  // Airflow's default
    which.upstream = bool_field(b, "include_upstream", false);
    which.downstream = bool_field(b, "include_downstream", false);
    return json_response(200, {{"task_instances", references(mark_task_instances(db(), which, *d, now_.precise_now()), db())}});
  }

  if (p[2] != "dagRuns") return not_found("no such endpoint: " + request.path());
  if (p.size() == 3) {
    if (method == "POST") {
      const json b = body();
      refuse_unknown_fields(b, {"dag_run_id", "logical_date", "execution_date", "conf", "note"});
      const time_point date = time_field(b, "logical_date").value_or(time_field(b, "execution_date").value_or(now_.now()));
      const std::string run_id = make_run_id(run_type::manual, date);
      if (b.contains("dag_run_id") && b["dag_run_id"] != run_id)
        throw usage_error("dag_run_id: dagrun names manual runs by their logical date ('" + run_id + "'); leave it out");
      if (b.contains("conf") && !b["conf"].is_object()) throw usage_error("conf: expected a JSON object");
      const auto run = trigger_run(db(), *d, date, b.contains("conf") ? json_dump(b["conf"]) : "{}");
      if (!run) return problem(409, "Conflict", "a run " + run_id + " of " + dag_id + " already exists");
      return json_response(200, run_json(*db().find_run(dag_id, run->run_id)));
    }
    if (method != "GET") return wrong_method();
    run_filter filter;
    filter.dag_id = dag_id;
    json list = json::array();
    for (const auto& r : db().runs(filter)) list.push_back(run_json(r));
    return json_response(200, paged(request, "dag_runs", list));
  }
  const std::string& run_id = p[3];
  const auto run = db().find_run(dag_id, run_id);
  if (!run) return not_found("DAG '" + dag_id + "' has no run '" + run_id + "'");
  if (method == "PATCH" && p.size() == 6 && p[4] == "taskInstances") {
    // Airflow's "update the state of a task instance": mark success, failed or skipped.
    const json b = body();
    refuse_unknown_fields(b, {"dry_run", "new_state"});
    mark_selection which;
    which.dag_id = dag_id;
    which.run_id = run_id;
    if (!d->find(p[5])) return not_found("DAG '" + dag_id + "' has no task '" + p[5] + "'");
    which.task_ids = {p[5]};
    which.state = new_state_field(b);
    which.dry_run = bool_field(b, "dry_run", false);
    mark_task_instances(db(), which, *d, now_.precise_now());
    // The answer names the instance whether or not its state changed (it may already have had it).
    return json_response(200, references({{dag_id, run_id, p[5]}}, db()).front());
  }
  if (method != "GET") return wrong_method();
  if (p.size() == 4) return json_response(200, run_json(*run));
  if (p[4] != "taskInstances") return not_found("no such endpoint: " + request.path());
  const auto tis = db().task_instances(dag_id, run_id);
  if (p.size() == 5) {
    json list = json::array();
    for (const auto& ti : tis) list.push_back(task_instance_json(ti, *run));
    return json_response(200, paged(request, "task_instances", list));
  }
  const std::string& task_id = p[5];
  const auto ti = std::find_if(tis.begin(), tis.end(), [&](const auto& x) { return x.task_id == task_id; });
  if (ti == tis.end()) return not_found("run '" + run_id + "' has no task '" + task_id + "'");
  if (p.size() == 6) return json_response(200, task_instance_json(*ti, *run));
  if (p.size() == 8 && p[6] == "xcomEntries") {
    const auto value = db().xcom(dag_id, run_id, task_id, p[7]);
    if (!value) return not_found("task '" + task_id + "' pushed no XCom '" + p[7] + "' in run '" + run_id + "'");
    return json_response(200, {{"dag_id", dag_id}, {"dag_run_id", run_id}, {"task_id", task_id}, {"key", p[7]},
                               {"execution_date", format_iso(run->logical_date)}, {"value", *value}});
  }
  if (p.size() != 8 || p[6] != "logs") return not_found("no such endpoint: " + request.path());
  // Strictly digits: `1abc` is no try number (not try 1).
  const auto try_number = detail::whole_number(p[7], 1000000);
  if (!try_number) throw usage_error("try number: expected a whole number, got '" + p[7] + "'");
  const auto found = find_try(db(), dag_id, run_id, task_id, static_cast<int>(*try_number));
  const std::string log_path = found ? found->log_path : "";
  if (log_path.empty()) return not_found("task '" + task_id + "' has no try " + p[7] + " in run '" + run_id + "'");
  const auto accept = request.headers.find("accept");
  const bool text = accept != request.headers.end() && accept->second.find("text/plain") != std::string::npos;
  const std::string full = request.query("full_content");
  if (full != "" && full != "true" && full != "false") throw usage_error("full_content: expected true or false, got '" + full + "'");
  if (full == "true") {
    // Airflow's full_content: the whole log, streamed from the file as text whatever its size.
    if (!text) throw usage_error("full_content: the whole log comes as text; send Accept: text/plain");
    http_response whole{200, "text/plain; charset=utf-8", ""};
    if (std::ifstream(log_path).good()) whole.file = log_path;  // no file: the try logged nothing
    return whole;
  }
  const std::string content = log_excerpt(log_path);  // no file: the try logged nothing
  if (text) return {200, "text/plain; charset=utf-8", content};
  return json_response(200, {{"content", content}, {"continuation_token", nullptr}});
}

http_response http_face::health() {
  // The database: a fresh connection and a query under a short deadline, never the face's own
  // connection (it belongs to the main handler thread, and it rides out outages by retrying).
  const std::string db_status = database_answers(options_.db_url, health_database_timeout) ? "healthy" : "unhealthy";
  // The scheduler: the engine stamps its heartbeat on every pass (at least once a second).
  const double beat = metrics_.value("dagrun_scheduler_heartbeat");
  json scheduler{{"status", "unhealthy"}, {"latest_scheduler_heartbeat", nullptr}};
  if (beat > 0) {
    const auto at = time_point{std::chrono::seconds(static_cast<std::int64_t>(beat))};
    scheduler["latest_scheduler_heartbeat"] = format_iso(at);
    const auto age = std::chrono::duration<double>(now_.precise_now().time_since_epoch()).count() - beat;
    if (age <= static_cast<double>(options_.heartbeat_limit.count())) scheduler["status"] = "healthy";
  }
  const bool healthy = db_status == "healthy" && scheduler["status"] == "healthy";
  return json_response(healthy ? 200 : 503, {{"status", healthy ? "healthy" : "unhealthy"},
                                             {"metadatabase", {{"status", db_status}}},
                                             {"scheduler", scheduler}});
}

http_response http_face::metrics_text() {
  // Gauges read at scrape time rather than kept up to date by the loop. A database that cannot
  // answer leaves them at their last value: the scheduler's own metrics must still get out.
  try {
    metrics_.set("dagrun_import_errors", static_cast<double>(db().import_errors().size()));
  } catch (const std::exception&) {
    db_.reset();
  }
  if (!options_.queue_url.empty()) {
    try {
      if (!queue_) queue_ = open_task_queue(options_.queue_url);
      metrics_.set("dagrun_executor_queued_tasks", static_cast<double>(queue_->counts().first));
    } catch (const std::exception&) {
      queue_.reset();
    }
  }
  return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_.text()};
}

}  // namespace dag
