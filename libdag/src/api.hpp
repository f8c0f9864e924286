#pragma once
/// @file The REST API (/api/v1, Airflow 2's stable API), private to libdag: one route table —
/// method, path template, Airflow's operationId, the query parameters each route accepts, its
/// body and answer — from which requests are dispatched and the OpenAPI document dagrun serves
/// is generated, so the two cannot drift. Handlers live by area in api_*.cpp; they change runs and
/// task instances only through the domain operations (dag/model/operations.hpp), as the CLI does,
/// and write one event log entry per change with who made it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <dag/core/definition.hpp>
#include <dag/core/json_text.hpp>
#include <dag/core/error.hpp>
#include <dag/core/time.hpp>
#include <dag/http/server.hpp>
#include <dag/model/operations.hpp>
#include <dag/store/store.hpp>

namespace dag::detail {

using json = nlohmann::json;

/// Something the request names does not exist: 404.
class not_found_error : public error {
public:
  using error::error;
};

/// One API request as a handler sees it.
class api_call {
public:
  /// A request with its decoded path parameters (by name), read against `db` and the loaded `dags`.
  api_call(const http_request& request, std::map<std::string, std::string> path, store& db,
           const std::vector<shared_definition>& dags, const clock& now, std::string actor, std::size_t max_page_size);

  const http_request& request;  ///< the request
  store& db;                    ///< the face's store connection
  const clock& now;             ///< the face's clock
  std::function<json()> health; ///< the face's health answer (HealthInfo, with its overall `status`)

  /// A path parameter (`dag_id`, …).
  const std::string& path(const std::string& name) const { return path_.at(name); }
  /// True when the route has path parameter `name`.
  bool has_path(const std::string& name) const { return path_.contains(name); }
  /// A query parameter's decoded value, if given (the first when given several times).
  std::optional<std::string> query(const std::string& name) const;
  /// Every value of a query parameter given several times (`state=a&state=b`) or comma-separated.
  std::vector<std::string> query_list(const std::string& name) const;
  /// A boolean query parameter (`true`/`false`); a usage error names it.
  std::optional<bool> query_flag(const std::string& name) const;
  /// An ISO-8601 time query parameter; a usage error names it.
  std::optional<timestamp> query_time(const std::string& name) const;
  /// A number query parameter; a usage error names it.
  std::optional<double> query_number(const std::string& name) const;
  /// Airflow's `limit`, clamped to the maximum page size (default: that size).
  std::size_t limit() const;
  /// Airflow's `offset` (default 0).
  std::size_t offset() const;
  /// The most a listing returns at once.
  std::size_t max_page_size() const { return max_page_size_; }

  /// The request body: a JSON object (empty when there is none); a usage error otherwise.
  const json& body();

  /// The loaded DAGs.
  const std::vector<shared_definition>& dags() const { return dags_; }
  /// The loaded DAG `dag_id`; not_found_error otherwise. What changes runs and task instances
  /// (trigger, mark, clear) and what describes a DAG need it.
  const definition& dag(const std::string& dag_id) const;
  /// `dag_id`, if a DAG of that id is loaded or the store holds a run of it; not_found_error
  /// otherwise. Reads and deletes of history need no definition (as Airflow's, which read its
  /// tables): a DAG whose file is broken or gone keeps its runs, logs and XComs readable.
  const std::string& known_dag(const std::string& dag_id);
  /// Run `run_id` of DAG `dag_id`, loaded or not; not_found_error when the store has no such run.
  run_record run(const std::string& dag_id, const std::string& run_id);

  /// Who makes the request (the basic-auth user, `token`, or `anonymous`).
  const std::string& actor() const { return actor_; }
  /// Writes an event log entry for a change this request made.
  void record(const std::string& event, const std::string& dag_id = "", const std::string& run_id = "",
              const std::string& task_id = "", const json& extra = nullptr);
  /// Writes an event log entry for a change this request made to one task instance `ti` (as it
  /// was before: its map index and try are the entry's).
  void record(const std::string& event, const task_instance_record& ti, const json& extra = nullptr);

private:
  std::map<std::string, std::string> path_;
  std::multimap<std::string, std::string> query_;
  const std::vector<shared_definition>& dags_;
  std::string actor_;
  std::size_t max_page_size_;
  std::optional<json> body_;
};

/// One operation of the API.
struct api_route {
  std::string method;                 ///< GET, POST, PATCH, DELETE
  std::string path;                   ///< template below /api/v1, e.g. `/dags/{dag_id}/dagRuns`
  std::string operation_id;           ///< Airflow's operationId
  std::string tag;                    ///< Airflow's tag (DAG, DAGRun, …)
  std::vector<std::string> query;     ///< the query parameters it accepts; any other is refused (400)
  std::string body;                   ///< the request body's schema (a component name), "" for none
  int status = 200;                   ///< the status of a success
  std::string answer;                 ///< the answer's schema (a component name), "" for none
  std::function<http_response(api_call&)> handle;  ///< what it does
  /// Answers without credentials (Airflow's `security: []`): what clients and probes call first.
  bool open = false;
};

/// The query parameters of a listing: limit, offset, order_by.
inline const std::vector<std::string> paging{"limit", "offset", "order_by"};

/// The routes of each area (api_dags.cpp, api_runs.cpp, api_task_instances.cpp, api_resources.cpp).
std::vector<api_route> dag_routes();
std::vector<api_route> run_routes();
std::vector<api_route> task_instance_routes();
std::vector<api_route> resource_routes();
std::vector<api_route> dataset_routes();

/// Every route, in the order they are matched.
const std::vector<api_route>& api_routes();

/// What the API needs from the face.
struct api_context {
  store& db;                           ///< the face's store connection
  const std::vector<shared_definition>& dags; ///< the loaded DAGs
  const clock& now;                    ///< time
  std::string actor;                   ///< who asks
  std::size_t max_page_size = 100;     ///< the most a listing returns at once
  std::function<json()> health;        ///< the face's health answer
};

/// Answers a request for /api/v1`rest` (`rest` starting with `/`): the route it matches, or 404
/// (no path) / 405 (no method); errors as problem documents.
http_response api_answer(const http_request& request, const std::string& rest, const api_context& context);

/// Whether `method` on /api/v1`rest` answers without credentials: an open route (GET or HEAD),
/// or the API's own description (`/openapi.json`, the documentation page `/ui/`), as Airflow
/// serves its specification and Swagger UI to anyone.
bool api_is_open(const std::string& method, const std::string& rest);

/// The OpenAPI 3 document of the routes (`/api/v1/openapi.json`).
const json& openapi_document();
/// The API's documentation page (`/api/v1/ui/`): openapi_document() as HTML (ui/api_docs.cpp).
http_response api_docs_page();

// --- answers -------------------------------------------------------------------------------------

/// A JSON answer (text that is not UTF-8 replaced rather than refused).
http_response json_response(int status, const json& body);
/// Airflow's error answer: an RFC 7807 problem document (application/problem+json).
http_response problem(int status, const std::string& title, const std::string& detail, const std::string& instance = "");
/// An optional time as Airflow writes it (ISO-8601 with offset), or null.
json optional_time(const std::optional<timestamp>& t);
/// `text`, or null when empty.
json text_or_null(const std::string& text);
/// Entries `offset` to `offset + limit` of `all` (already filtered and ordered) under `key`, with
/// `total_entries` (how many there are in all).
json page_of(const std::string& key, const json& all, std::size_t limit, std::size_t offset);
/// `entry` with only the fields the query's `fields` names (Airflow's sparse fieldsets), or whole
/// when it names none; a usage error for a field `entry` (`what`, e.g. "a DAG") does not have.
json only_fields(const api_call& call, json entry, const std::string& what);
/// The page the query's `limit` and `offset` ask for.
json page_of(const api_call& call, const std::string& key, const json& all);
/// `all` ordered by `field` (`-field` for descending); a usage error for a field not in `allowed`.
/// Keeps the order when no field is given.
void order_by(const std::optional<std::string>& field, json& all, const std::vector<std::string>& allowed);
/// `all` ordered by the query's `order_by`.
void order_by(const api_call& call, json& all, const std::vector<std::string>& allowed);

// --- filters -------------------------------------------------------------------------------------

/// Airflow's date filters of run and task instance listings: logical date (`execution_date_…`),
/// start, end and last change (`updated_at_…`), each `_gte` and `_lte`.
struct date_ranges {
  std::optional<timestamp> logical_from, logical_to, start_from, start_to, end_from, end_to, updated_from, updated_to;
  /// From the query of a GET listing.
  static date_ranges of_query(const api_call& call);
  /// From the body of a batch listing (POST …/list).
  static date_ranges of_body(const json& body);
  /// Sets the same bounds of a store filter (run_filter, task_instance_filter).
  template <class Filter>
  void bound(Filter& f) const {
    // Logical dates are whole seconds: a bound with a fraction means the next whole second up
    // (from) or the one it is in (to).
    const auto seconds = [](const std::optional<timestamp>& t, bool from) {
      if (!t) return std::optional<time_point>();
      return std::optional<time_point>(from ? std::chrono::ceil<std::chrono::seconds>(*t) : std::chrono::floor<std::chrono::seconds>(*t));
    };
    f.logical_from = seconds(logical_from, true);
    f.logical_to = seconds(logical_to, false);
    f.start_from = start_from;
    f.start_to = start_to;
    f.end_from = end_from;
    f.end_to = end_to;
    f.updated_from = updated_from;
    f.updated_to = updated_to;
  }
};

/// The page a listing asks for: its order (a field, `-field` descending; none: the listing's own)
/// and which entries.
struct page_request {
  std::optional<std::string> order;
  std::size_t limit = 0;
  std::size_t offset = 0;
  /// A GET listing's `order_by`, `limit` and `offset`.
  static page_request of_query(const api_call& call);
  /// A batch listing's (POST …/list) `order_by`, `page_limit` and `page_offset`, the limit clamped
  /// to the maximum page size as `limit` is.
  static page_request of_body(const api_call& call, const json& body);
};

/// A listing's order in the store (which orders and pages in SQL) for an Airflow `order_by`
/// (`-field` descending; none: the listing's own order). `fields` maps each field Airflow allows
/// for the listing to the store's sort field; any other is a usage error (400) naming them.
listing_order listing_order_of(const std::optional<std::string>& order_by, const std::map<std::string, std::string>& fields);

// --- bodies --------------------------------------------------------------------------------------

/// Refuses fields of `body` not in `known` (400 naming them).
void refuse_unknown_fields(const json& body, const std::vector<std::string>& known);
/// A boolean field, or `otherwise` when absent; a usage error when not a boolean.
bool bool_field(const json& body, const std::string& name, bool otherwise);
/// A string field; a usage error when missing or not a string.
std::string string_field(const json& body, const std::string& name);
/// An optional ISO time field; a usage error names it.
std::optional<time_point> time_field(const json& body, const std::string& name);
/// An optional list of strings (empty when absent or null); a usage error names it.
/// The most values a list filter takes (`dag_ids`, `state=a,b`, …; Airflow sets none); more is a
/// 400. The stores pad each list to a power of two, so that its lengths are few statements in
/// their caches.
inline constexpr std::size_t max_list_items = 1000;
std::vector<std::string> string_list_field(const json& body, const std::string& name);

// --- records as Airflow shows them ---------------------------------------------------------------

json dag_json(const definition& d, bool paused);
json run_json(const run_record& r);
/// A task instance as Airflow's TaskInstance, `logical_date` its run's.
json task_instance_json(const task_instance_record& ti, time_point logical_date, const definition* d);
json task_json(const definition& d, const task& t);
/// Airflow's TaskInstanceReference list: the instances an operation touched.
json references(const std::vector<task_instance_ref>& refs, store& s);

/// Whether `text` holds a match of `pattern` as Airflow's `ilike('%' + pattern + '%')` finds one
/// (dag_id_pattern, uri_pattern): `%` any run of characters, `_` any one, `\\` escapes, ASCII
/// letters of either case alike.
bool contains_like(std::string_view text, std::string_view pattern);
/// A map index given as text (-1 for a task that is not mapped); a bad one is a 400 naming `name`.
int map_index_of(const std::string& text, const std::string& name);
/// A count given as text (a try number: 0 or more); a bad one is a 400 naming `name`.
int whole_number_of(const std::string& text, const std::string& name);

}  // namespace dag::detail
