/// @file The REST API's route table (api.hpp): dispatch, query and body reading, paging, errors,
/// and the OpenAPI document generated from the same table.

#include "api.hpp"

#include <algorithm>
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
      {"fields", {string_list(), "only these fields of each DAG"}},
      {"execution_date_gte", {date_time(), "logical date at or after"}},
      {"execution_date_lte", {date_time(), "logical date at or before"}},
      {"start_date_gte", {date_time(), "started at or after"}},
      {"start_date_lte", {date_time(), "started at or before"}},
      {"end_date_gte", {date_time(), "ended at or after"}},
      {"end_date_lte", {date_time(), "ended at or before"}},
      {"duration_gte", {{{"type", "number"}}, "lasted at least (seconds)"}},
      {"duration_lte", {{{"type", "number"}}, "lasted at most (seconds)"}},
      {"state", {string_list(), "only these states"}},
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
  };
  return known;
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
// `literals` counts the template's fixed segments (the most specific match wins).
std::optional<std::map<std::string, std::string>> match(const api_route& route, const std::vector<std::string>& parts,
                                                        int& literals) {
  const auto segments = template_segments(route.path);
  if (segments.size() != parts.size()) return std::nullopt;
  std::map<std::string, std::string> out;
  literals = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (is_parameter(segments[i])) {
      out[segments[i].substr(1, segments[i].size() - 2)] = parts[i];
    } else if (segments[i] == parts[i]) {
      ++literals;
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
                   const std::vector<definition>& dags, const clock& time, std::string actor, std::size_t max_page_size)
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
  const auto text = query(name);
  if (!text) return std::nullopt;
  try {
    return timestamp(parse_time(*text));
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
    if (d.id() == dag_id) return d;
  throw not_found_error("DAG '" + dag_id + "' is not loaded");
}

run_record api_call::run(const std::string& dag_id, const std::string& run_id) {
  dag(dag_id);
  auto run = db.find_run(dag_id, run_id);
  if (!run) throw not_found_error("DAG '" + dag_id + "' has no run '" + run_id + "'");
  return std::move(*run);
}

void api_call::record(const std::string& event, const std::string& dag_id, const std::string& run_id,
                      const std::string& task_id, const json& extra) {
  change_set c;
  c.events.push_back({0, now.precise_now(), event, actor_, dag_id, run_id, task_id,
                      extra.is_null() ? "" : json_dump(extra)});
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
  for (const auto& v : b[name]) {
    if (!v.is_string()) throw usage_error(name + ": expected a list of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// --- filters -------------------------------------------------------------------------------------

bool within(const std::optional<timestamp>& t, const std::optional<timestamp>& from, const std::optional<timestamp>& to) {
  if (!from && !to) return true;
  if (!t) return false;
  return (!from || *t >= *from) && (!to || *t <= *to);
}

date_ranges date_ranges::of_query(const api_call& call) {
  return {call.query_time("execution_date_gte"), call.query_time("execution_date_lte"), call.query_time("start_date_gte"),
          call.query_time("start_date_lte"),     call.query_time("end_date_gte"),       call.query_time("end_date_lte")};
}

date_ranges date_ranges::of_body(const json& body) {
  const auto at = [&](const char* name) {
    const auto t = time_field(body, name);
    return t ? std::optional<timestamp>(*t) : std::nullopt;
  };
  return {at("execution_date_gte"), at("execution_date_lte"), at("start_date_gte"),
          at("start_date_lte"),     at("end_date_gte"),       at("end_date_lte")};
}

json batch_page(const api_call& call, const json& body, const std::string& key, json all,
                const std::vector<std::string>& allowed) {
  order_by(body.contains("order_by") ? std::optional<std::string>(string_field(body, "order_by")) : std::nullopt, all, allowed);
  const auto whole = [&](const char* field, std::size_t otherwise) {
    if (!body.contains(field)) return otherwise;
    if (!body[field].is_number_unsigned()) throw usage_error(std::string(field) + ": expected a whole number");
    return body[field].get<std::size_t>();
  };
  const std::size_t limit = whole("page_limit", call.max_page_size());
  return page_of(key, all, limit == 0 ? call.max_page_size() : std::min(limit, call.max_page_size()), whole("page_offset", 0));
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

http_response api_answer(const http_request& request, const std::string& rest, const api_context& context) {
  const std::string instance = request.path();
  try {
    if (rest == "/openapi.json") {
      if (request.method != "GET" && request.method != "HEAD")
        return problem(405, "Method Not Allowed", request.method + " is not allowed on " + instance, instance);
      return json_response(200, openapi_document());
    }
    const auto parts = path_segments(rest);
    const api_route* best = nullptr;
    std::map<std::string, std::string> best_path;
    int best_literals = -1;
    std::set<std::string> methods;  // of the routes whose path matches
    for (const auto& route : api_routes()) {
      int literals = 0;
      auto found = match(route, parts, literals);
      if (!found) continue;
      methods.insert(route.method);
      if (route.method != request.method && !(request.method == "HEAD" && route.method == "GET")) continue;
      if (literals > best_literals) {
        best = &route;
        best_path = std::move(*found);
        best_literals = literals;
      }
    }
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
      json operation{{"operationId", route.operation_id},
                     {"tags", {route.tag}},
                     {"parameters", std::move(parameters)},
                     {"responses",
                      {{std::to_string(route.status), std::move(answer)},
                       {"400", error_answer},
                       {"401", error_answer},
                       {"404", error_answer},
                       {"409", error_answer}}}};
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
