#pragma once
// The daemon's HTTP face: /health, /metrics and /api/v1 over the same store and metrics as the
// scheduler (docs/http.md).

#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/exec/task_queue.hpp>
#include <optional>
#include <string>

#include <dag/core/time.hpp>
#include <dag/http/server.hpp>
#include <dag/metrics/registry.hpp>
#include <dag/store/store.hpp>

namespace dagrun {

/// What the face reads and how it is configured.
struct http_face_options {
  std::string db_url;                       ///< the metadata database (the face opens its own connection)
  std::string queue_url;                    ///< the task queue's database, empty for the local executor
  std::optional<std::string> token;         ///< bearer token that mutations need; none: mutations are open (loopback only)
  std::chrono::seconds heartbeat_limit{30}; ///< a scheduler heartbeat older than this is unhealthy
};

/// Answers HTTP requests for the daemon. Not thread-safe: the server calls it one request at a time.
class http_face {
public:
  /// A face reading `metrics` (which the engine writes) and the store at `options.db_url`, with
  /// time from `now`.
  http_face(http_face_options options, dag::metrics_registry& metrics, const dag::clock& now);
  ~http_face();

  /// One request, with its HTTP metrics recorded.
  dag::http_response handle(const dag::http_request& request);

  /// Replaces the DAGs the API shows (checked definitions); the daemon calls it on every load.
  /// Safe to call while requests are served.
  void set_dags(std::vector<dag::definition> dags);

private:
  dag::http_response route(const dag::http_request& request);
  dag::http_response health();
  dag::http_response metrics_text();
  dag::http_response api(const dag::http_request& request, const std::vector<std::string>& path);
  dag::store& db();
  std::shared_ptr<const std::vector<dag::definition>> dags() const;

  http_face_options options_;
  dag::metrics_registry& metrics_;
  const dag::clock& now_;
  std::unique_ptr<dag::store> db_;
  std::unique_ptr<dag::task_queue> queue_;  // for the queued-tries gauge (queue executor only)
  std::set<std::string> sessions_;          // web UI sign-ins (cookies), when a token is configured
  mutable std::mutex dags_mutex_;
  std::shared_ptr<const std::vector<dag::definition>> dags_ = std::make_shared<const std::vector<dag::definition>>();
};

}  // namespace dagrun
