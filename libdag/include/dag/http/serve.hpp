#pragma once
/// @file Serving a scheduler's HTTP face (dag/http/face.hpp) on an HTTP server until destroyed:
/// what `dagrun schedule` runs, and what an embedding program starts with one call on its engine.

#include <chrono>
#include <memory>
#include <map>
#include <optional>
#include <string>

#include <dag/core/time.hpp>
#include <dag/http/face.hpp>
#include <dag/http/server.hpp>
#include <dag/metrics/registry.hpp>

namespace dag {

class engine;

/// Where and how to serve.
struct serve_options {
  std::string listen = "127.0.0.1:8080";     ///< `HOST:PORT`; port 0 picks a free one (see port())
  std::optional<std::string> token;          ///< bearer token for the API and UI; needed beyond loopback
  std::chrono::seconds heartbeat_limit{30};  ///< /health: a scheduler heartbeat older than this is unhealthy
  std::string listen_name = "listen";        ///< how errors name the address (the daemon says `--listen`)
  http_server_options server;                ///< timeouts and limits of the server
  /// The store the face reads, through a connection of its own; empty: the engine's
  /// `options().store_url` (give it when the engine was handed a store).
  std::string store_url;
  std::string queue_url;                     ///< the task queue's database, for /metrics' queued-tries gauge
  /// Users the API also accepts with HTTP basic auth (name → password); with users, the API
  /// needs credentials (a token or a user) as it does with a token.
  std::map<std::string, std::string> users;
  std::size_t max_page_size = 100;           ///< the most entries an API listing returns at once
};

/// An HTTP face on a server: /health, /metrics, /api/v1 and the UI, answered until destroyed.
class http_service {
public:
  /// Serves a face over the store at `face_options.db_url`, reading `metrics` (which the engine
  /// writes) and time from `now`; both must outlive the service. Throws dag::usage_error naming
  /// the address when it is malformed, or beyond loopback without a token (the API changes
  /// things), and dag::error when it cannot listen.
  http_service(const serve_options& options, http_face_options face_options, metrics_registry& metrics,
               const clock& now);
  /// Serves the face of `e`: its store (through a connection of the face's own), its metrics, its
  /// clock and the DAGs it schedules, which the face follows as the engine's set_dags replaces
  /// them. `e` must outlive the service. Errors as above.
  http_service(engine& e, const serve_options& options = {});
  /// Stops serving: closes connections and joins the server's threads.
  ~http_service();
  http_service(const http_service&) = delete;
  http_service& operator=(const http_service&) = delete;

  /// The port it listens on (the chosen one when 0 was asked for).
  unsigned short port() const;
  /// The face, e.g. to replace the DAGs it shows.
  http_face& face() { return *face_; }

private:
  std::unique_ptr<http_face> face_;
  std::unique_ptr<http_server> server_;
};

/// The API's basic-auth users from `name:password,name:password` (DAGRUN_API_USERS); throws
/// dag::usage_error naming `what` and the entry's position (never a password) when malformed.
std::map<std::string, std::string> parse_api_users(const std::string& text, const std::string& what);

/// A maximum page size (a whole number from 1 to 10000); dag::usage_error naming `what` otherwise.
std::size_t parse_page_size(const std::string& text, const std::string& what);

}  // namespace dag
