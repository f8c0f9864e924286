/// @file The REST API's other resources (api.hpp): variables, connections, pools, import errors, the
/// event log, health, version, config, plugins and providers.

#include "api.hpp"

#include <chrono>
#include <filesystem>
#include <set>

namespace dag::detail {
namespace {

// --- variables -----------------------------------------------------------------------------------

json variable_json(const std::string& key, const std::string& value) {
  return {{"key", key}, {"value", value}, {"description", nullptr}};
}

// Variables, pools and connections are listed in memory: each is a small set that people write
// by hand (tens of rows, not the thousands runs and task instances reach), and a pool's
// occupancy, which it can be ordered by, is counted as it is read.
http_response list_variables(api_call& call) {
  json all = json::array();
  for (const auto& [key, value] : call.db.variables()) all.push_back(variable_json(key, value));
  order_by(call, all, {"key", "value"});
  return json_response(200, page_of(call, "variables", all));
}

// A Variable body: `key` and `value` strings (`description` accepted when null: dagrun keeps none).
std::pair<std::string, std::string> variable_body(api_call& call) {
  const json& b = call.body();
  refuse_unknown_fields(b, {"key", "value", "description"});
  if (b.contains("description") && !b["description"].is_null() && b["description"] != "")
    throw usage_error("description: dagrun keeps no descriptions of variables; leave it out");
  return {string_field(b, "key"), string_field(b, "value")};
}

http_response post_variable(api_call& call) {
  const auto [key, value] = variable_body(call);
  if (key.empty()) throw usage_error("key: must not be empty");
  call.db.set_variable(key, value);
  call.record("variable.create", "", "", "", {{"key", key}});
  return json_response(200, variable_json(key, value));
}

http_response get_variable(api_call& call) {
  const auto& key = call.path("variable_key");
  const auto value = call.db.variable(key);
  if (!value) throw not_found_error("no variable '" + key + "'");
  return json_response(200, variable_json(key, *value));
}

http_response patch_variable(api_call& call) {
  const auto& key = call.path("variable_key");
  for (const auto& mask : call.query_list("update_mask"))
    if (mask != "value") throw usage_error("update_mask: only value can be updated, not '" + mask + "'");
  const auto [named, value] = variable_body(call);
  if (named != key) throw usage_error("key: the body names '" + named + "', the path '" + key + "'");
  if (!call.db.variable(key)) throw not_found_error("no variable '" + key + "'");
  call.db.set_variable(key, value);
  call.record("variable.edit", "", "", "", {{"key", key}});
  return json_response(200, variable_json(key, value));
}

http_response delete_variable(api_call& call) {
  const auto& key = call.path("variable_key");
  if (!call.db.delete_variable(key)) throw not_found_error("no variable '" + key + "'");
  call.record("variable.delete", "", "", "", {{"key", key}});
  return {204, "application/json", ""};
}

// --- pools ---------------------------------------------------------------------------------------

json pool_object(const pool_record& p) { return json::parse(pool_json(p)); }

// In memory, as variables are (see list_variables).
http_response list_pools(api_call& call) {
  json all = json::array();
  for (const auto& p : call.db.pools()) all.push_back(pool_object(p));
  order_by(call, all, {"name", "slots", "occupied_slots", "running_slots", "queued_slots", "open_slots"});
  return json_response(200, page_of(call, "pools", all));
}

// A Pool body's fields over `p` (the stored pool when patching): those `fields` names, if given.
pool_record pool_body(api_call& call, pool_record p, const std::set<std::string>& fields) {
  const json& b = call.body();
  refuse_unknown_fields(b, {"name", "slots", "description", "include_deferred", "occupied_slots", "running_slots",
                            "queued_slots", "open_slots", "scheduled_slots", "deferred_slots"});
  if (fields.contains("name") && b.contains("name")) p.name = string_field(b, "name");
  if (fields.contains("slots") && b.contains("slots")) {
    if (!b["slots"].is_number_integer() || b["slots"].get<long long>() < 0 || b["slots"].get<long long>() > 1'000'000'000)
      throw usage_error("slots: expected a whole number of 0 or more");
    p.slots = b["slots"].get<int>();
  }
  if (fields.contains("description") && b.contains("description")) {
    if (!b["description"].is_null() && !b["description"].is_string()) throw usage_error("description: expected a string or null");
    p.description = b["description"].is_string() ? b["description"].get<std::string>() : std::string();
  }
  if (b.contains("include_deferred") && bool_field(b, "include_deferred", false))
    throw usage_error("include_deferred: dagrun has no deferred tasks; leave it out or false");
  return p;
}

http_response post_pool(api_call& call) {
  const json& b = call.body();
  if (!b.contains("name") || !b.contains("slots")) throw usage_error("a pool needs name and slots");
  const pool_record p = pool_body(call, {}, {"name", "slots", "description"});
  if (p.name.empty()) throw usage_error("name: must not be empty");
  if (call.db.find_pool(p.name)) throw conflict_error("pool '" + p.name + "' already exists");
  call.db.set_pool(p);
  call.record("pool.create", "", "", "", {{"name", p.name}, {"slots", p.slots}});
  return json_response(200, pool_object(*call.db.find_pool(p.name)));
}

pool_record stored_pool(api_call& call) {
  const auto& name = call.path("pool_name");
  auto p = call.db.find_pool(name);
  if (!p) throw not_found_error("no pool '" + name + "'");
  return *p;
}

http_response get_pool(api_call& call) { return json_response(200, pool_object(stored_pool(call))); }

http_response patch_pool(api_call& call) {
  const pool_record old = stored_pool(call);
  std::set<std::string> fields{"name", "slots", "description"};
  if (const auto masks = call.query_list("update_mask"); !masks.empty()) {
    fields.clear();
    for (const auto& m : masks) {
      if (m != "slots" && m != "description" && m != "name" && m != "include_deferred")
        throw usage_error("update_mask: '" + m + "' cannot be updated");
      fields.insert(m);
    }
  }
  const pool_record p = pool_body(call, old, fields);
  if (p.name != old.name) throw usage_error("name: a pool cannot be renamed ('" + old.name + "' to '" + p.name + "')");
  call.db.set_pool(p);
  call.record("pool.edit", "", "", "", {{"name", p.name}, {"slots", p.slots}});
  return json_response(200, pool_object(*call.db.find_pool(p.name)));
}

http_response delete_pool(api_call& call) {
  const auto& name = call.path("pool_name");
  if (!call.db.delete_pool(name)) throw not_found_error("no pool '" + name + "'");
  call.record("pool.delete", "", "", "", {{"name", name}});
  return {204, "application/json", ""};
}

// --- connections ---------------------------------------------------------------------------------

// A connection as listed: its password is never shown (Airflow's is write-only too).
json connection_json(const connection& c) {
  return {{"connection_id", c.conn_id}, {"conn_type", c.conn_type}, {"description", nullptr},
          {"host", text_or_null(c.host)}, {"login", text_or_null(c.login)}, {"schema", text_or_null(c.schema)},
          {"port", c.port ? json(*c.port) : json(nullptr)}, {"extra", nullptr}};
}

std::string optional_text(const json& b, const std::string& name, const std::string& otherwise) {
  if (!b.contains(name)) return otherwise;
  if (b[name].is_null()) return "";
  if (!b[name].is_string()) throw usage_error(name + ": expected a string");
  return b[name].get<std::string>();
}

// A Connection body over `c` (the stored one when patching).
connection connection_body(api_call& call, connection c) {
  const json& b = call.body();
  refuse_unknown_fields(b, {"connection_id", "conn_type", "description", "host", "login", "schema", "port", "password", "extra"});
  for (const char* unsupported : {"description", "extra"})
    if (b.contains(unsupported) && !b[unsupported].is_null() && b[unsupported] != "")
      throw usage_error(std::string(unsupported) + ": dagrun's connections have no " + unsupported + "; leave it out");
  c.conn_id = optional_text(b, "connection_id", c.conn_id);
  c.conn_type = optional_text(b, "conn_type", c.conn_type);
  c.host = optional_text(b, "host", c.host);
  c.login = optional_text(b, "login", c.login);
  c.schema = optional_text(b, "schema", c.schema);
  c.password = optional_text(b, "password", c.password);
  if (b.contains("port")) {
    if (b["port"].is_null()) c.port.reset();
    else if (b["port"].is_number_integer() && b["port"].get<long>() > 0 && b["port"].get<long>() < 65536) c.port = b["port"].get<int>();
    else throw usage_error("port: expected a port number (1-65535)");
  }
  return c;
}

// In memory, as variables are (see list_variables).
http_response list_connections(api_call& call) {
  json all = json::array();
  for (const auto& c : call.db.connections()) all.push_back(connection_json(c));
  for (auto& c : all) c.erase("extra");  // a collection item has no extra
  order_by(call, all, {"connection_id", "conn_type", "host", "port", "login", "schema"});
  return json_response(200, page_of(call, "connections", all));
}

http_response post_connection(api_call& call) {
  const connection c = connection_body(call, {});
  if (c.conn_id.empty()) throw usage_error("connection_id: expected a string");
  if (c.conn_type.empty()) throw usage_error("conn_type: expected a string");
  if (call.db.find_connection(c.conn_id)) throw conflict_error("connection '" + c.conn_id + "' already exists");
  call.db.set_connection(c);
  call.record("connection.create", "", "", "", {{"connection_id", c.conn_id}});
  return json_response(200, connection_json(c));
}

connection stored_connection(api_call& call) {
  const auto& id = call.path("connection_id");
  auto c = call.db.find_connection(id);
  if (!c) throw not_found_error("no connection '" + id + "'");
  return std::move(*c);
}

http_response get_connection(api_call& call) { return json_response(200, connection_json(stored_connection(call))); }

http_response patch_connection(api_call& call) {
  const connection old = stored_connection(call);
  const auto masks = call.query_list("update_mask");
  connection c = connection_body(call, old);
  if (c.conn_id != old.conn_id) throw usage_error("connection_id: the body names '" + c.conn_id + "', the path '" + old.conn_id + "'");
  if (!masks.empty()) {  // only the fields named change
    const std::set<std::string> named(masks.begin(), masks.end());
    connection kept = old;
    for (const auto& m : named) {
      if (m == "conn_type") kept.conn_type = c.conn_type;
      else if (m == "host") kept.host = c.host;
      else if (m == "login") kept.login = c.login;
      else if (m == "schema") kept.schema = c.schema;
      else if (m == "password") kept.password = c.password;
      else if (m == "port") kept.port = c.port;
      else throw usage_error("update_mask: '" + m + "' cannot be updated");
    }
    c = kept;
  }
  call.db.set_connection(c);
  call.record("connection.edit", "", "", "", {{"connection_id", c.conn_id}});
  return json_response(200, connection_json(c));
}

http_response delete_connection(api_call& call) {
  const auto& id = call.path("connection_id");
  if (!call.db.delete_connection(id)) throw not_found_error("no connection '" + id + "'");
  call.record("connection.delete", "", "", "", {{"connection_id", id}});
  return {204, "application/json", ""};
}

http_response test_connection(api_call& call) {
  connection_body(call, {});  // checked as Airflow would, then answered honestly
  return json_response(200, {{"status", false}, {"message", "dagrun does not test connections; a task using it will tell"}});
}

// --- import errors and the event log -------------------------------------------------------------

// The store keeps no time for an import error: the failing file's last change is when it began.
json import_error_json(const import_error_record& e, std::size_t id, const clock& now) {
  std::error_code failed;
  const auto changed = std::filesystem::last_write_time(e.file, failed);
  const timestamp when = failed ? now.precise_now()
                                : std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::file_clock::to_sys(changed));
  return {{"import_error_id", id}, {"timestamp", format_iso(std::optional<timestamp>(when))}, {"filename", e.file}, {"stack_trace", e.message}};
}

// Import errors are listed in memory: one per DAG file at most, and their ids are positions in
// the current list (see get_import_error).
http_response list_import_errors(api_call& call) {
  json all = json::array();
  const auto errors = call.db.import_errors();
  for (std::size_t i = 0; i < errors.size(); ++i) all.push_back(import_error_json(errors[i], i + 1, call.now));
  order_by(call, all, {"import_error_id", "filename"});
  return json_response(200, page_of(call, "import_errors", all));
}

http_response get_import_error(api_call& call) {
  const auto& text = call.path("import_error_id");
  const auto errors = call.db.import_errors();
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos)
    throw usage_error("import_error_id: expected a whole number, got '" + text + "'");
  const std::size_t id = std::stoul(text);
  // Ids are positions in the current list, which each reload of the DAG folder replaces.
  if (id == 0 || id > errors.size()) throw not_found_error("no import error " + text);
  return json_response(200, import_error_json(errors[id - 1], id, call.now));
}

json event_json(const event_record& e) {
  return {{"event_log_id", e.id},
          {"when", format_iso(std::optional<timestamp>(e.when))},
          {"dag_id", text_or_null(e.dag_id)},
          {"task_id", text_or_null(e.task_id)},
          {"run_id", text_or_null(e.run_id)},
          {"map_index", e.map_index ? json(*e.map_index) : json(nullptr)},
          {"try_number", e.try_number ? json(*e.try_number) : json(nullptr)},
          {"event", e.event},
          {"execution_date", nullptr},
          {"owner", text_or_null(e.owner)},
          {"extra", text_or_null(e.extra)}};
}

http_response list_events(api_call& call) {
  event_filter f;
  f.dag_id = call.query("dag_id");
  f.run_id = call.query("run_id");
  f.task_id = call.query("task_id");
  f.event = call.query("event");
  f.owner = call.query("owner");
  f.after = call.query_time("after");
  f.before = call.query_time("before");
  if (const auto index = call.query("map_index")) f.map_index = map_index_of(*index, "map_index");
  if (const auto number = call.query("try_number")) f.try_number = whole_number_of(*number, "try_number");
  for (auto& e : call.query_list("included_events")) f.events.insert(std::move(e));
  for (auto& e : call.query_list("excluded_events")) f.not_events.insert(std::move(e));
  f.order = listing_order_of(call.query("order_by"), {{"event_log_id", "id"}, {"when", "when"},   {"dag_id", "dag_id"},
                                                      {"task_id", "task_id"},    {"run_id", "run_id"}, {"event", "event"},
                                                      {"owner", "owner"}});
  const std::size_t total = call.db.count_events(f);
  f.limit = call.limit();
  f.offset = call.offset();
  json listed = json::array();
  for (const auto& e : call.db.events(f)) listed.push_back(event_json(e));
  return json_response(200, {{"event_logs", std::move(listed)}, {"total_entries", total}});
}

http_response get_event(api_call& call) {
  const auto& text = call.path("event_log_id");
  if (text.empty() || text.size() > 15 || text.find_first_not_of("0123456789") != std::string::npos)
    throw usage_error("event_log_id: expected a whole number, got '" + text + "'");
  const auto e = call.db.find_event(std::stoll(text));
  if (!e) throw not_found_error("no event log entry " + text);
  return json_response(200, event_json(*e));
}

// --- the server itself ---------------------------------------------------------------------------

http_response health(api_call& call) {
  json body = call.health();
  body.erase("status");  // Airflow's HealthInfo has no overall status, and always answers 200
  return json_response(200, body);
}

http_response version(api_call&) { return json_response(200, {{"version", DAGRUN_VERSION}, {"git_version", nullptr}}); }

json config_sections(const api_call& call) {
  return json::array({{{"name", "api"},
                       {"options",
                        {{{"key", "maximum_page_limit"}, {"value", std::to_string(call.max_page_size())}},
                         {{"key", "auth_backends"}, {"value", "bearer token (DAGRUN_API_TOKEN), basic (DAGRUN_API_USERS)"}}}}}});
}

http_response get_config(api_call& call) {
  json sections = config_sections(call);
  if (const auto wanted = call.query("section")) {
    json only = json::array();
    for (const auto& s : sections)
      if (s["name"] == *wanted) only.push_back(s);
    if (only.empty()) throw not_found_error("no config section '" + *wanted + "'");
    sections = only;
  }
  return json_response(200, {{"sections", sections}});
}

http_response get_config_value(api_call& call) {
  for (const auto& s : config_sections(call))
    if (s["name"] == call.path("section"))
      for (const auto& o : s["options"])
        if (o["key"] == call.path("option")) return json_response(200, {{"sections", {{{"name", s["name"]}, {"options", {o}}}}}});
  throw not_found_error("no config option '" + call.path("section") + "." + call.path("option") + "'");
}

http_response plugins(api_call& call) { return json_response(200, page_of(call, "plugins", json::array())); }

// dagrun's providers are its operators: those the loaded DAGs use.
http_response providers(api_call& call) {
  std::set<std::string> names;
  for (const auto& d : call.dags())
    for (const auto& t : d->all_tasks()) names.insert(t.operator_name);
  json all = json::array();
  for (const auto& n : names)
    all.push_back({{"package_name", "dagrun-operator-" + n}, {"description", "dagrun's " + n + " operator"}, {"version", DAGRUN_VERSION}});
  return json_response(200, {{"providers", all}, {"total_entries", all.size()}});
}

}  // namespace

std::vector<api_route> resource_routes() {
  const std::vector<std::string> listing{"limit", "offset", "order_by"};
  return {
      {"GET", "/variables", "get_variables", "Variable", listing, "", 200, "VariableCollection", list_variables},
      {"POST", "/variables", "post_variables", "Variable", {}, "Variable", 200, "Variable", post_variable},
      {"GET", "/variables/{variable_key}", "get_variable", "Variable", {}, "", 200, "Variable", get_variable},
      {"PATCH", "/variables/{variable_key}", "patch_variable", "Variable", {"update_mask"}, "Variable", 200, "Variable", patch_variable},
      {"DELETE", "/variables/{variable_key}", "delete_variable", "Variable", {}, "", 204, "", delete_variable},
      {"GET", "/connections", "get_connections", "Connection", listing, "", 200, "ConnectionCollection", list_connections},
      {"POST", "/connections", "post_connection", "Connection", {}, "Connection", 200, "Connection", post_connection},
      {"POST", "/connections/test", "test_connection", "Connection", {}, "Connection", 200, "ConnectionTest", test_connection},
      {"GET", "/connections/{connection_id}", "get_connection", "Connection", {}, "", 200, "Connection", get_connection},
      {"PATCH", "/connections/{connection_id}", "patch_connection", "Connection", {"update_mask"}, "Connection", 200, "Connection",
       patch_connection},
      {"DELETE", "/connections/{connection_id}", "delete_connection", "Connection", {}, "", 204, "", delete_connection},
      {"GET", "/pools", "get_pools", "Pool", listing, "", 200, "PoolCollection", list_pools},
      {"POST", "/pools", "post_pool", "Pool", {}, "Pool", 200, "Pool", post_pool},
      {"GET", "/pools/{pool_name}", "get_pool", "Pool", {}, "", 200, "Pool", get_pool},
      {"PATCH", "/pools/{pool_name}", "patch_pool", "Pool", {"update_mask"}, "Pool", 200, "Pool", patch_pool},
      {"DELETE", "/pools/{pool_name}", "delete_pool", "Pool", {}, "", 204, "", delete_pool},
      {"GET", "/importErrors", "get_import_errors", "ImportError", listing, "", 200, "ImportErrorCollection", list_import_errors},
      {"GET", "/importErrors/{import_error_id}", "get_import_error", "ImportError", {}, "", 200, "ImportError", get_import_error},
      {"GET", "/eventLogs", "get_event_logs", "EventLog",
       {"limit", "offset", "order_by", "dag_id", "task_id", "run_id", "map_index", "try_number", "event", "owner", "before",
        "after", "included_events", "excluded_events"},
       "", 200, "EventLogCollection", list_events},
      {"GET", "/eventLogs/{event_log_id}", "get_event_log", "EventLog", {}, "", 200, "EventLog", get_event},
      {"GET", "/health", "get_health", "Monitoring", {}, "", 200, "HealthInfo", health, /*open=*/true},
      {"GET", "/version", "get_version", "Monitoring", {}, "", 200, "VersionInfo", version, /*open=*/true},
      {"GET", "/config", "get_config", "Config", {"section"}, "", 200, "Config", get_config},
      {"GET", "/config/section/{section}/option/{option}", "get_value", "Config", {}, "", 200, "Config", get_config_value},
      {"GET", "/plugins", "get_plugins", "Plugin", {"limit", "offset"}, "", 200, "PluginCollection", plugins},
      {"GET", "/providers", "get_providers", "Provider", {}, "", 200, "ProviderCollection", providers},
  };
}

}  // namespace dag::detail
