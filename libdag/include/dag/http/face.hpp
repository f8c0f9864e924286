#pragma once
/// @file The HTTP face of a scheduler: /health, Prometheus /metrics, the REST API in Airflow's
/// shape (/api/v1) and the web UI, over the same store and metrics as the engine (docs/http.md).
/// `dagrun schedule` serves it; so can any program that embeds the engine (dag/http/serve.hpp).

#include <chrono>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/time.hpp>
#include <dag/http/server.hpp>
#include <dag/metrics/registry.hpp>

namespace dag {

class store;
class task_queue;
namespace detail {
class ui_sign_ins;
}

/// What the face reads and how it is configured.
struct http_face_options {
  std::string db_url;                        ///< the metadata database (the face opens its own connection)
  std::string queue_url;                     ///< the task queue's database, empty for in-process executors
  std::optional<std::string> token;          ///< bearer token the API and UI need; none: loopback only
  std::chrono::seconds heartbeat_limit{30};  ///< a scheduler heartbeat older than this is unhealthy
  /// Users the API also accepts with HTTP basic auth (name → password), as Airflow's basic_auth
  /// backend; `dagrun schedule` reads them from DAGRUN_API_USERS (`name:password,…`).
  std::map<std::string, std::string> users;
  std::size_t max_page_size = 100;           ///< the most entries an API listing returns at once
};

/// Answers HTTP requests for a scheduler. handle() is called one request at a time (http_server
/// serialises handler calls), so the face owns one store connection of its own and never touches
/// the engine's; the exceptions are `/health`, which may be answered on a thread of its own at the
/// same time (it uses no shared connection), and gate(), which is thread-safe.
class http_face {
public:
  /// A face reading `metrics` (which the engine writes; must outlive the face) and the store at
  /// `options.db_url`, with time from `now`.
  http_face(http_face_options options, metrics_registry& metrics, const clock& now);
  ~http_face();
  http_face(const http_face&) = delete;
  http_face& operator=(const http_face&) = delete;

  /// One request, with its HTTP metrics recorded.
  http_response handle(const http_request& request);

  /// The refusals that need no database and no body, checked on the server's I/O thread before
  /// the body is read (authentication before any expensive work): a Host that is not loopback
  /// without a token, cross-site changes, the API without its bearer token, UI pages without a
  /// session, sign-ins too frequent. nullopt: go on. handle() checks the same. Thread-safe.
  std::optional<http_response> gate(const http_request& request);
  /// Whether a request is answered on the server's express thread: `GET /health`, so that a load
  /// balancer hears from the serving program while a slow request holds the main handler thread.
  static bool express(const http_request& request);
  /// `base` with gate() and express() of this face: what to give the http_server serving it.
  http_server_options server_options(http_server_options base = {});

  /// How long /health waits for the database before it calls it unhealthy.
  static constexpr std::chrono::milliseconds health_database_timeout{800};

  /// Replaces the DAGs the API and UI show (checked definitions, shared: not copied). Safe to call
  /// while requests are served; a request being answered keeps the DAGs it started with.
  void set_dags(std::vector<shared_definition> dags);
  /// As above, for definitions handed over (moved in, or copied).
  void set_dags(std::vector<definition> dags);
  /// As the shared set_dags, from a braced list; `set_dags({})` (no DAG) means this one.
  void set_dags(std::initializer_list<shared_definition> dags) { set_dags(std::vector<shared_definition>(dags)); }
  /// Shows the DAGs `source` gives (asked once per request; it must be thread-safe, as
  /// engine::definitions is) instead of those of set_dags.
  void follow_dags(std::function<std::shared_ptr<const std::vector<shared_definition>>()> source);

private:
  http_response route(const http_request& request);
  http_response health();
  http_response metrics_text();
  /// Who the API request comes from (basic-auth user, `token`, `anonymous` when no credentials
  /// are configured); nullopt when credentials are needed and these are not right.
  std::optional<std::string> caller(const http_request& request) const;
  store& db();
  std::shared_ptr<const std::vector<shared_definition>> dags() const;

  http_face_options options_;
  metrics_registry& metrics_;
  const clock& now_;
  std::unique_ptr<store> db_;
  std::unique_ptr<task_queue> queue_;  // for the queued-tries gauge (queue executor only)
  std::unique_ptr<detail::ui_sign_ins> sign_ins_;  // web UI sessions and failed sign-ins
  mutable std::mutex dags_mutex_;
  std::shared_ptr<const std::vector<shared_definition>> dags_ = std::make_shared<const std::vector<shared_definition>>();
  std::function<std::shared_ptr<const std::vector<shared_definition>>()> dags_source_;
};

}  // namespace dag
