/// @file The REST API's route table (api.hpp): dispatch, query and body reading, paging, errors,
/// and the OpenAPI document generated from the same table.

#include "api.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include <dag/core/json_text.hpp>

namespace dag::detail {
namespace {

// Query parameters, as the OpenAPI document declares them: their schema and what they do.
struct query_parameter {
  json schema;
  std::string description;
};

json date_time() { return {{"type", "string"}, {"format", "date-time"}}; }
json string_list() { return {{"type", "array"}, {"items", {{"type", "string"}}}}; }

const std::map<std::string, query_parameter>& query_parameters() {
  static const std::map<std::string, query_parameter> known{
      {"limit", {{{"type", "integer"}, {"default", 100}}, "the most entries to return (clamped to the maximum page size)"}},
      {"offset", {{{"type", "integer"}, {"minimum", 0}}, "entries to skip"}},
      {"order_by", {{{"type", "string"}}, "a field to order by; `-field` for descending"}},
      {"tags", {string_list(), "only DAGs with one of these tags"}},
      {"dag_id_pattern", {{{"type", "string"}}, "only DAGs whose id contains this text"}},
      {"only_active", {{{"type", "boolean"}, {"default", true}}, "only active DAGs (every loaded DAG is)"}},
      {"paused", {{{"type", "boolean"}}, "only paused (true) or unpaused (false) DAGs"}},
      {"fields", {string_list(), "only these fields of each entry"}},
      {"execution_date_gte", {date_time(), "logical date at or after"}},
      {"execution_date_lte", {date_time(), "logical date at or before"}},
      {"start_date_gte", {date_time(), "started at or after"}},
      {"start_date_lte", {date_time(), "started at or before"}},
      {"end_date_gte", {date_time(), "ended at or after"}},
      {"end_date_lte", {date_time(), "ended at or before"}},
      {"updated_at_gte", {date_time(), "last changed at or after (any write of the row: a state, a date, a note)"}},
      {"updated_at_lte", {date_time(), "last changed at or before"}},
      {"duration_gte", {{{"type", "number"}}, "lasted at least (seconds)"}},
      {"duration_lte", {{{"type", "number"}}, "lasted at most (seconds)"}},
      {"state", {string_list(), "only these states"}},
      {"pool", {string_list(), "only task instances whose latest try took one of these pools"}},
      {"queue", {string_list(), "only task instances whose latest try was sent to one of these queues"}},
      {"executor", {string_list(), "only task instances whose latest try one of these executors ran (LocalExecutor, QueueExecutor)"}},
      {"full_content", {{{"type", "boolean"}}, "the whole log rather than a part"}},
      {"map_index", {{{"type", "integer"}}, "a mapped task instance's index (-1: not mapped)"}},
      {"token", {{{"type", "string"}}, "the continuation token of an earlier part of the log"}},
      {"xcom_key", {{{"type", "string"}}, "only this key"}},
      {"deserialize", {{{"type", "boolean"}}, "XCom values are text: either value answers the same"}},
      {"stringify", {{{"type", "boolean"}}, "XCom values are text: either value answers the same"}},
      {"dag_id", {{{"type", "string"}}, "only this DAG"}},
      {"task_id", {{{"type", "string"}}, "only this task"}},
      {"run_id", {{{"type", "string"}}, "only this run"}},
      {"event", {{{"type", "string"}}, "only this event"}},
      {"owner", {{{"type", "string"}}, "only changes by this user"}},
      {"before", {date_time(), "made at or before"}},
      {"after", {date_time(), "made at or after"}},
      {"dag_ids", {string_list(), "only these DAGs"}},
      {"warning_type", {{{"type", "string"}}, "only warnings of this type"}},
      {"section", {{{"type", "string"}}, "only this section"}},
      {"included_events", {string_list(), "only these events"}},
      {"excluded_events", {string_list(), "not these events"}},
      {"update_mask", {string_list(), "the fields to update"}},
      {"uri_pattern", {{{"type", "string"}}, "only datasets whose URI contains this text"}},
      {"dataset_id", {{{"type", "integer"}}, "only events of this dataset"}},
      {"source_dag_id", {{{"type", "string"}}, "only events of this DAG's tasks"}},
      {"source_task_id", {{{"type", "string"}}, "only events of this task"}},
      {"source_run_id", {{{"type", "string"}}, "only events of this run's tasks"}},
      {"source_map_index", {{{"type", "integer"}}, "only events of this mapped instance (-1: of tasks that are not mapped)"}},
      {"try_number", {{{"type", "integer"}}, "only entries about a task instance on this try"}},
  };
  return known;
}

// Each operation's one-line summary in the OpenAPI document and on the documentation page, by
// operationId. An operation missing here gets its operationId in words ("get_dag_runs" → "Get dag
// runs"); Http.ApiDocumentationPageListsEveryOperationOfTheDocument keeps the table complete.
const std::map<std::string, std::string>& operation_summaries() {
  static const std::map<std::string, std::string> known{
      {"get_dags", "List the loaded DAGs"},
      {"patch_dags", "Pause or unpause every DAG a filter selects"},
      {"get_dag", "Get a DAG"},
      {"patch_dag", "Pause or unpause a DAG"},
      {"delete_dag", "Delete a DAG's history (runs, task instances, XComs)"},
      {"get_dag_details", "Get a DAG with its schedule, params and more"},
      {"get_tasks", "List a DAG's tasks"},
      {"get_task", "Get one task of a DAG"},
      {"get_dag_source", "Get the source file of a DAG"},
      {"get_dag_stats", "Count each DAG's runs by state"},
      {"get_dag_warnings", "List warnings about DAGs"},
      {"get_variables", "List variables"},
      {"post_variables", "Create a variable"},
      {"get_variable", "Get a variable"},
      {"patch_variable", "Change a variable"},
      {"delete_variable", "Delete a variable"},
      {"get_connections", "List connections"},
      {"post_connection", "Create a connection"},
      {"test_connection", "Check a connection without saving it"},
      {"get_connection", "Get a connection"},
      {"patch_connection", "Change a connection"},
      {"delete_connection", "Delete a connection"},
      {"get_pools", "List pools"},
      {"post_pool", "Create a pool"},
      {"get_pool", "Get a pool"},
      {"patch_pool", "Change a pool"},
      {"delete_pool", "Delete a pool"},
      {"get_import_errors", "List DAG files that failed to load"},
      {"get_import_error", "Get one DAG file's load error"},
      {"get_event_logs", "List the audit log: who triggered, cleared, paused what"},
      {"get_event_log", "Get one audit log entry"},
      {"get_health", "Health of the metadata database and the scheduler"},
      {"get_version", "The dagrun version"},
      {"get_config", "dagrun's settings"},
      {"get_value", "One setting of dagrun"},
      {"get_plugins", "List plugins (dagrun has none)"},
      {"get_providers", "List dagrun's operators as providers"},
      {"get_dag_runs", "List a DAG's runs (~ for every DAG's)"},
      {"post_dag_run", "Trigger a run"},
      {"get_dag_runs_batch", "List runs of many DAGs, filters in the body"},
      {"get_dag_run", "Get a run"},
      {"delete_dag_run", "Delete a run and its task instances"},
      {"update_dag_run_state", "Mark a run success, failed or queued"},
      {"clear_dag_run", "Clear a run's task instances so they run again"},
      {"set_dag_run_note", "Set a run's note"},
      {"get_task_instances", "List a run's task instances (~ across DAGs and runs)"},
      {"get_task_instances_batch", "List task instances of many runs, filters in the body"},
      {"get_task_instance", "Get a task instance"},
      {"patch_task_instance", "Mark a task instance success or failed"},
      {"post_set_task_instances_state", "Mark task instances (and their relatives) success or failed"},
      {"post_clear_task_instances", "Clear task instances so they run again (a dry run unless told otherwise)"},
      {"get_mapped_task_instances", "List the instances of a mapped task, one per map index"},
      {"get_mapped_task_instance", "Get one instance of a mapped task"},
      {"patch_mapped_task_instance", "Mark one instance of a mapped task success or failed"},
      {"get_mapped_task_instance_tries", "List the tries of one instance of a mapped task"},
      {"get_mapped_task_instance_try_details", "Get one try of one instance of a mapped task"},
      {"get_task_instance_tries", "List a task instance's tries"},
      {"get_task_instance_try_details", "Get one try of a task instance"},
      {"get_task_instance_dependencies", "Why a task instance is not running yet"},
      {"get_mapped_task_instance_dependencies", "Why one instance of a mapped task is not running yet"},
      {"get_extra_links", "List a task instance's extra links (none: no operator defines any)"},
      {"set_task_instance_note", "Set a task instance's note"},
      {"set_mapped_task_instance_note", "Set the note of one instance of a mapped task"},
      {"get_log", "Get the log of one try"},
      {"get_datasets", "List the datasets tasks update and DAGs are scheduled on"},
      {"get_dataset", "Get one dataset by its URI"},
      {"get_dataset_events", "List dataset events, newest first"},
      {"create_dataset_event", "Record an update of a dataset made outside dagrun"},
      {"get_upstream_dataset_events", "List the dataset events that triggered a run"},
      {"get_xcom_entries", "List a task instance's XCom entries"},
      {"get_xcom_entry", "Get one XCom entry"},
  };
  return known;
}

std::string summary_of(const api_route& route) {
  const auto it = operation_summaries().find(route.operation_id);
  if (it != operation_summaries().end()) return it->second;
  std::string words = route.operation_id;
  std::replace(words.begin(), words.end(), '_', ' ');
  if (!words.empty()) words[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(words[0])));
  return words;
}

// `/a/{b}/c` → {"a", "{b}", "c"}.
std::vector<std::string> template_segments(const std::string& path) {
  std::vector<std::string> out;
  for (std::size_t start = 1; start <= path.size();) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool is_parameter(const std::string& segment) { return segment.starts_with('{') && segment.ends_with('}'); }

// The path parameters of `parts` under `route`'s template, or nullopt when it does not match;
// `fixed` says, segment by segment, which of the template's are fixed: of two templates that
// match, the one fixed where they first differ wins (`…/xcomEntries/{xcom_key}` over
// `…/{map_index}/dependencies` for `…/xcomEntries/dependencies`), as Airflow's router ranks them.
std::optional<std::map<std::string, std::string>> match(const api_route& route, const std::vector<std::string>& parts,
                                                        std::vector<bool>& fixed) {
  const auto segments = template_segments(route.path);
  if (segments.size() != parts.size()) return std::nullopt;
  std::map<std::string, std::string> out;
  fixed.assign(parts.size(), false);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (is_parameter(segments[i])) {
      out[segments[i].substr(1, segments[i].size() - 2)] = parts[i];
    } else if (segments[i] == parts[i]) {
      fixed[i] = true;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::multimap<std::string, std::string> query_of(const std::string& target) {
  std::multimap<std::string, std::string> out;
  const auto q = target.find('?');
  if (q == std::string::npos) return out;
  const std::string rest = target.substr(q + 1);
  for (std::size_t start = 0; start < rest.size();) {
    const std::size_t end = std::min(rest.find('&', start), rest.size());
    const std::string pair = rest.substr(start, end - start);
    if (!pair.empty()) {
      const std::size_t eq = pair.find('=');
      out.emplace(url_decoded(pair.substr(0, eq), true), eq == std::string::npos ? "" : url_decoded(pair.substr(eq + 1), true));
    }
    start = end + 1;
  }
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

// --- the call ------------------------------------------------------------------------------------

api_call::api_call(const http_request& r, std::map<std::string, std::string> path, store& s,
                   const std::vector<shared_definition>& dags, const clock& time, std::string actor, std::size_t max_page_size)
    : request(r), db(s), now(time), path_(std::move(path)), query_(query_of(r.target)), dags_(dags),
      actor_(std::move(actor)), max_page_size_(max_page_size) {}

std::optional<std::string> api_call::query(const std::string& name) const {
  const auto it = query_.find(name);
  return it == query_.end() ? std::nullopt : std::optional<std::string>(it->second);
}

std::vector<std::string> api_call::query_list(const std::string& name) const {
  std::vector<std::string> out;
  const auto [from, to] = query_.equal_range(name);
  for (auto it = from; it != to; ++it)
    for (std::size_t start = 0; start <= it->second.size();) {
      const std::size_t end = std::min(it->second.find(',', start), it->second.size());
      if (end > start) out.push_back(it->second.substr(start, end - start));
      if (out.size() > max_list_items) throw usage_error(name + ": at most " + std::to_string(max_list_items) + " values");
      start = end + 1;
    }
  return out;
}

std::optional<bool> api_call::query_flag(const std::string& name) const {
  const auto text = query(name);
  if (!text) return std::nullopt;
  if (*text == "true" || *text == "True" || *text == "1") return true;
  if (*text == "false" || *text == "False" || *text == "0") return false;
  throw usage_error(name + ": expected true or false, got '" + *text + "'");
}

std::optional<timestamp> api_call::query_time(const std::string& name) const {
  auto text = query(name);
  if (!text) return std::nullopt;
  // A query's `+` reads as a space, so `…T00:00:00+00:00` written unencoded arrives as
  // `…T00:00:00 00:00`: as Airflow does (parameters.format_datetime), the space after the time
  // is taken for the offset's `+`.
  if (const auto space = text->rfind(' '); space != std::string::npos && space >= 16 &&
      text->find_first_not_of("0123456789:", space + 1) == std::string::npos)
    (*text)[space] = '+';
  try {
    return parse_precise_time(*text);
  } catch (const error& e) {
    throw usage_error(name + ": " + e.message());
  }
}

std::optional<double> api_call::query_number(const std::string& name) const {
  const auto text = query(name);
  if (!text) return std::nullopt;
  try {
    std::size_t used = 0;
    const double v = std::stod(*text, &used);
    if (used == text->size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw usage_error(name + ": expected a number, got '" + *text + "'");
}

namespace {
std::size_t whole_number(const std::optional<std::string>& text, const std::string& name, std::size_t otherwise) {
  if (!text) return otherwise;
  if (text->empty() || text->size() > 9 || text->find_first_not_of("0123456789") != std::string::npos)
    throw usage_error(name + ": expected a whole number, got '" + *text + "'");
  return static_cast<std::size_t>(std::stoul(*text));
}
}  // namespace

// A map index given as text (a path's `{map_index}`, a query's `map_index` or `source_map_index`).
int map_index_of(const std::string& text, const std::string& name) {
  const bool negative = text.starts_with('-');
  const std::string digits = negative ? text.substr(1) : text;
  if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos)
    throw usage_error(name + ": expected a whole number, got '" + text + "'");
  return negative ? -std::stoi(digits) : std::stoi(digits);
}

int whole_number_of(const std::string& text, const std::string& name) {
  if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != std::string::npos)
    throw usage_error(name + ": expected a whole number, got '" + text + "'");
  return std::stoi(text);
}

bool contains_like(std::string_view text, std::string_view pattern) {
  // Airflow's ilike('%' + pattern + '%'). Pattern items: '%' any run, '_' any one character (a
  // whole UTF-8 sequence), '\\' and the character after it that character, any other byte
  // itself (ASCII letters of either case alike). Greedy, going back to the last '%' (at first, the
  // one before the pattern) on a mismatch, one character on: at worst text × pattern steps, both
  // bounded by the request.
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  const auto continues = [&](std::size_t at) { return at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80; };
  std::size_t t = 0, p = 0, after_percent = 0, text_there = 0;
  while (true) {
    if (p == pattern.size()) return true;  // the '%' after the pattern takes the rest
    if (pattern[p] == '%') {
      after_percent = ++p;
      text_there = t;
      continue;
    }
    if (t == text.size()) return false;
    const bool escaped = pattern[p] == '\\' && p + 1 < pattern.size();
    const char want = pattern[p + (escaped ? 1 : 0)];
    if (!escaped && want == '_') {
      ++p;
      do ++t; while (continues(t));
      continue;
    }
    if (lower(want) == lower(text[t])) {
      p += escaped ? 2 : 1;
      ++t;
      continue;
    }
    p = after_percent;
    do ++text_there; while (continues(text_there));
    t = text_there;
  }
}

std::size_t api_call::limit() const {
  // As Airflow: a limit above the maximum page size is clamped to it, and 0 gives the maximum.
  const std::size_t asked = whole_number(query("limit"), "limit", max_page_size_);
  return asked == 0 ? max_page_size_ : std::min(asked, max_page_size_);
}

std::size_t api_call::offset() const { return whole_number(query("offset"), "offset", 0); }

const json& api_call::body() {
  if (body_) return *body_;
  if (request.body.empty()) return *(body_ = json::object());
  // Bounded before parsing: the parser recurses, and a body nested 100,000 deep would end the serving program.
  if (json_nesting_depth(request.body, max_conf_depth + 2) > max_conf_depth + 2)
    throw usage_error("the request body is nested more than " + std::to_string(max_conf_depth + 2) + " levels deep");
  json parsed = json::parse(request.body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) throw usage_error("the request body must be a JSON object");
  return *(body_ = std::move(parsed));
}

const definition& api_call::dag(const std::string& dag_id) const {
  for (const auto& d : dags_)
    if (d->id() == dag_id) return *d;
  throw not_found_error("DAG '" + dag_id + "' is not loaded");
}

const std::string& api_call::known_dag(const std::string& dag_id) {
  for (const auto& d : dags_)
    if (d->id() == dag_id) return dag_id;
  run_filter any;
  any.dag_ids = {dag_id};
  any.limit = 1;
  if (db.runs(any).empty()) throw not_found_error("DAG '" + dag_id + "' is not loaded and has no runs");
  return dag_id;
}

run_record api_call::run(const std::string& dag_id, const std::string& run_id) {
  auto run = db.find_run(dag_id, run_id);
  if (!run) {
    known_dag(dag_id);  // says which of the two is missing
    throw not_found_error("DAG '" + dag_id + "' has no run '" + run_id + "'");
  }
  return std::move(*run);
}

void api_call::record(const std::string& event, const std::string& dag_id, const std::string& run_id,
                      const std::string& task_id, const json& extra) {
  change_set c;
  c.events.push_back({0, now.precise_now(), event, actor_, dag_id, run_id, task_id,
                      extra.is_null() ? "" : json_dump(extra)});
  db.apply(c);
}

void api_call::record(const std::string& event, const task_instance_record& ti, const json& extra) {
  change_set c;
  c.events.push_back({0, now.precise_now(), event, actor_, ti.dag_id, ti.run_id, ti.task_id,
                      extra.is_null() ? "" : json_dump(extra), ti.map_index, ti.try_number});
  db.apply(c);
}

// --- answers -------------------------------------------------------------------------------------

http_response json_response(int status, const json& body) {
  return {status, "application/json", json_dump(body)};
}

http_response problem(int status, const std::string& title, const std::string& detail, const std::string& instance) {
  json body{{"type", "about:blank"}, {"title", title}, {"status", status}, {"detail", detail}};
  if (!instance.empty()) body["instance"] = instance;
  return {status, "application/problem+json", json_dump(body)};
}

json optional_time(const std::optional<timestamp>& t) {
  const std::string text = format_iso(t);
  return text.empty() ? json(nullptr) : json(text);
}

json text_or_null(const std::string& text) { return text.empty() ? json(nullptr) : json(text); }

json page_of(const api_call& call, const std::string& key, const json& all) {
  return page_of(key, all, call.limit(), call.offset());
}

json page_of(const std::string& key, const json& all, std::size_t limit, std::size_t offset) {
  json page = json::array();
  for (std::size_t i = offset; i < all.size() && i < offset + limit; ++i) page.push_back(all[i]);
  return {{key, std::move(page)}, {"total_entries", all.size()}};
}

void order_by(const api_call& call, json& all, const std::vector<std::string>& allowed) {
  order_by(call.query("order_by"), all, allowed);
}

void order_by(const std::optional<std::string>& text, json& all, const std::vector<std::string>& allowed) {
  if (!text || text->empty()) return;
  const bool descending = text->starts_with('-');
  const std::string field = descending ? text->substr(1) : *text;
  if (std::find(allowed.begin(), allowed.end(), field) == allowed.end())
    throw usage_error("order_by: cannot order by '" + field + "' (known: " + joined(allowed) + ")");
  // null sorts before any value (nlohmann's order), so descending puts unset times last.
  std::stable_sort(all.begin(), all.end(), [&](const json& a, const json& b) {
    const json& x = a[field];
    const json& y = b[field];
    return descending ? y < x : x < y;
  });
}

void refuse_unknown_fields(const json& body, const std::vector<std::string>& known) {
  for (const auto& [key, value] : body.items())
    if (std::find(known.begin(), known.end(), key) == known.end())
      throw usage_error(key + ": not supported (known: " + joined(known) + ")");
}

bool bool_field(const json& body, const std::string& name, bool otherwise) {
  if (!body.contains(name)) return otherwise;
  if (!body[name].is_boolean()) throw usage_error(name + ": expected true or false");
  return body[name].get<bool>();
}

std::string string_field(const json& body, const std::string& name) {
  if (!body.contains(name) || !body[name].is_string()) throw usage_error(name + ": expected a string");
  return body[name].get<std::string>();
}

std::optional<time_point> time_field(const json& body, const std::string& name) {
  if (!body.contains(name) || body[name].is_null()) return std::nullopt;
  if (!body[name].is_string()) throw usage_error(name + ": expected an ISO-8601 date or time");
  try {
    return parse_time(body[name].get<std::string>());
  } catch (const error& e) {
    throw usage_error(name + ": " + e.message());
  }
}

std::vector<std::string> string_list_field(const json& b, const std::string& name) {
  std::vector<std::string> out;
  if (!b.contains(name) || b[name].is_null()) return out;
  if (!b[name].is_array()) throw usage_error(name + ": expected a list of strings");
  if (b[name].size() > max_list_items) throw usage_error(name + ": at most " + std::to_string(max_list_items) + " values");
  for (const auto& v : b[name]) {
    if (!v.is_string()) throw usage_error(name + ": expected a list of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// --- filters -------------------------------------------------------------------------------------

date_ranges date_ranges::of_query(const api_call& call) {
  return {call.query_time("execution_date_gte"), call.query_time("execution_date_lte"), call.query_time("start_date_gte"),
          call.query_time("start_date_lte"),     call.query_time("end_date_gte"),       call.query_time("end_date_lte"),
          call.query_time("updated_at_gte"),     call.query_time("updated_at_lte")};
}

date_ranges date_ranges::of_body(const json& body) {
  const auto at = [&](const char* name) {
    const auto t = time_field(body, name);
    return t ? std::optional<timestamp>(*t) : std::nullopt;
  };
  // Airflow's ListDagRunsForm and ListTaskInstanceForm have no updated_at bounds.
  return {at("execution_date_gte"), at("execution_date_lte"), at("start_date_gte"),
          at("start_date_lte"),     at("end_date_gte"),       at("end_date_lte"), std::nullopt, std::nullopt};
}

page_request page_request::of_query(const api_call& call) { return {call.query("order_by"), call.limit(), call.offset()}; }

page_request page_request::of_body(const api_call& call, const json& body) {
  const auto whole = [&](const char* field, std::size_t otherwise) {
    if (!body.contains(field)) return otherwise;
    if (!body[field].is_number_unsigned()) throw usage_error(std::string(field) + ": expected a whole number");
    return body[field].get<std::size_t>();
  };
  const std::size_t limit = whole("page_limit", call.max_page_size());
  return {body.contains("order_by") ? std::optional<std::string>(string_field(body, "order_by")) : std::nullopt,
          limit == 0 ? call.max_page_size() : std::min(limit, call.max_page_size()), whole("page_offset", 0)};
}

json only_fields(const api_call& call, json entry, const std::string& what) {
  const auto fields = call.query_list("fields");
  if (fields.empty()) return entry;
  json out = json::object();
  for (const auto& f : fields) {
    if (!entry.contains(f)) throw usage_error("fields: " + what + " has no field '" + f + "'");
    out[f] = entry[f];
  }
  return out;
}

listing_order listing_order_of(const std::optional<std::string>& text, const std::map<std::string, std::string>& fields) {
  if (!text || text->empty()) return {};
  const bool descending = text->starts_with('-');
  const std::string field = descending ? text->substr(1) : *text;
  const auto it = fields.find(field);
  if (it == fields.end()) {
    std::vector<std::string> known;
    for (const auto& [name, in_store] : fields) known.push_back(name);
    throw usage_error("order_by: cannot order by '" + field + "' (known: " + joined(known) + ")");
  }
  return {it->second, descending};
}

// --- dispatch ------------------------------------------------------------------------------------

const std::vector<api_route>& api_routes() {
  static const std::vector<api_route> all = [] {
    std::vector<api_route> out;
    for (auto area : {dag_routes, run_routes, task_instance_routes, resource_routes, dataset_routes})
      for (auto& r : area()) out.push_back(std::move(r));
    return out;
  }();
  return all;
}

namespace {

// The route `method` on `rest` dispatches to (the most specific of those whose path matches), with
// its path parameters; and the methods of every route whose path matches (for a 405).
struct dispatch {
  const api_route* route = nullptr;
  std::map<std::string, std::string> path;
  std::set<std::string> methods;
};

dispatch dispatch_of(const std::string& method, const std::string& rest) {
  const auto parts = path_segments(rest);
  dispatch out;
  std::vector<bool> best, fixed;
  for (const auto& route : api_routes()) {
    auto found = match(route, parts, fixed);
    if (!found) continue;
    out.methods.insert(route.method);
    if (route.method != method && !(method == "HEAD" && route.method == "GET")) continue;
    if (!out.route || fixed > best) {  // lexicographically: fixed where they first differ
      out.route = &route;
      out.path = std::move(*found);
      best = fixed;
    }
  }
  return out;
}

bool is_docs_page(const std::string& rest) { return rest == "/ui" || rest == "/ui/"; }

}  // namespace

bool api_is_open(const std::string& method, const std::string& rest) {
  if (method != "GET" && method != "HEAD") return false;
  if (rest == "/openapi.json" || is_docs_page(rest)) return true;
  const auto found = dispatch_of(method, rest);
  return found.route && found.route->open;
}

http_response api_answer(const http_request& request, const std::string& rest, const api_context& context) {
  const std::string instance = request.path();
  try {
    if (rest == "/openapi.json" || is_docs_page(rest)) {
      if (request.method != "GET" && request.method != "HEAD")
        return problem(405, "Method Not Allowed", request.method + " is not allowed on " + instance, instance);
      return rest == "/openapi.json" ? json_response(200, openapi_document()) : api_docs_page();
    }
    auto [best, best_path, methods] = dispatch_of(request.method, rest);
    if (!best) {
      if (methods.empty()) return problem(404, "Not Found", "no such endpoint: " + instance, instance);
      std::vector<std::string> allowed(methods.begin(), methods.end());
      return problem(405, "Method Not Allowed", request.method + " is not allowed on " + instance + " (allowed: " + joined(allowed) + ")",
                     instance);
    }
    // A parameter this route does not take is refused rather than ignored: a filter that did
    // nothing would silently give a wrong answer.
    for (const auto& [name, value] : query_of(request.target))
      if (std::find(best->query.begin(), best->query.end(), name) == best->query.end())
        throw usage_error("unknown query parameter '" + name + "'" +
                          (best->query.empty() ? std::string(" (this operation takes none)") : " (known: " + joined(best->query) + ")"));
    api_call call(request, std::move(best_path), context.db, context.dags, context.now, context.actor, context.max_page_size);
    call.health = context.health;
    return best->handle(call);
  } catch (const usage_error& e) {
    return problem(400, "Bad Request", e.message(), instance);
  } catch (const not_found_error& e) {
    return problem(404, "Not Found", e.message(), instance);
  } catch (const conflict_error& e) {
    return problem(409, "Conflict", e.message(), instance);
  }
}

// --- the OpenAPI document ------------------------------------------------------------------------

json api_schemas();  // api_schemas.cpp

const json& openapi_document() {
  static const json document = [] {
    json paths = json::object();
    const json error_answer = {{"description", "an error"},
                               {"content", {{"application/problem+json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
    for (const auto& route : api_routes()) {
      json parameters = json::array();
      for (const auto& segment : template_segments(route.path))
        if (is_parameter(segment))
          parameters.push_back({{"name", segment.substr(1, segment.size() - 2)}, {"in", "path"}, {"required", true},
                                {"schema", {{"type", "string"}}}});
      for (const auto& name : route.query) {
        const auto& known = query_parameters().at(name);  // a route names only declared parameters
        json p{{"name", name}, {"in", "query"}, {"required", false}, {"schema", known.schema}, {"description", known.description}};
        if (known.schema["type"] == "array") p["explode"] = true;
        parameters.push_back(std::move(p));
      }
      json answer{{"description", "success"}};
      if (!route.answer.empty())
        answer["content"] = {{"application/json", {{"schema", {{"$ref", "#/components/schemas/" + route.answer}}}}}};
      json responses{{std::to_string(route.status), std::move(answer)}, {"400", error_answer}, {"404", error_answer}, {"409", error_answer}};
      json operation{{"operationId", route.operation_id},
                     {"summary", summary_of(route)},
                     {"tags", {route.tag}},
                     {"parameters", std::move(parameters)}};
      if (route.open)
        operation["security"] = json::array();  // answers without credentials
      else
        responses["401"] = error_answer;
      operation["responses"] = std::move(responses);
      if (!route.body.empty())
        operation["requestBody"] = {{"required", true},
                                    {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/" + route.body}}}}}}}};
      std::string method = route.method;
      std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      paths[route.path][method] = std::move(operation);
    }
    return json{{"openapi", "3.0.3"},
                {"info",
                 {{"title", "dagrun REST API"},
                  {"version", "1.0.0"},
                  {"description", "Airflow 2's stable REST API as dagrun serves it (docs/http.md)."}}},
                {"servers", {{{"url", "/api/v1"}}}},
                {"paths", std::move(paths)},
                {"components",
                 {{"schemas", api_schemas()},
                  {"securitySchemes",
                   {{"Basic", {{"type", "http"}, {"scheme", "basic"}}}, {"Bearer", {{"type", "http"}, {"scheme", "bearer"}}}}}}},
                {"security", {{{"Basic", json::array()}}, {{"Bearer", json::array()}}}}};
  }();
  return document;
}

}  // namespace dag::detail
