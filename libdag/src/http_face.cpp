// The library's HTTP face, served by any program on its engine (the daemon or an embedding one):
// health, metrics, the REST API in Airflow's shape and the web UI.
#include <dag/http/face.hpp>

#include <cctype>
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

#include "api.hpp"
#include "web_ui.hpp"

namespace dag {
namespace {

using json = nlohmann::json;

using detail::json_response;
using detail::problem;

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

// Standard base64 (RFC 4648) as HTTP basic auth sends it; nullopt when it is not.
std::optional<std::string> base64_decoded(const std::string& text) {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') break;
    const auto at = alphabet.find(c);
    if (at == std::string_view::npos) return std::nullopt;
    bits = (bits << 6) | static_cast<unsigned>(at);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xFF);
    }
  }
  return out;
}

constexpr std::string_view api_prefix = "/api/v1";

// With a token or users, the API answers only its holders (logs and XComs are data too), as
// Airflow's API answers only authenticated users; the open routes (health, version, the API's
// description) answer anyone, as Airflow's `security: []` ones do.
http_response unauthorized(const std::string& path) {
  return problem(401, "Unauthorized", "send Authorization: Bearer <DAGRUN_API_TOKEN> or Basic (DAGRUN_API_USERS)", path);
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

void http_face::set_dags(std::vector<shared_definition> dags) {
  auto next = std::make_shared<const std::vector<shared_definition>>(std::move(dags));
  std::lock_guard lock(dags_mutex_);
  dags_ = std::move(next);
}

void http_face::set_dags(std::vector<definition> dags) {
  std::vector<shared_definition> shared;
  shared.reserve(dags.size());
  for (auto& d : dags) shared.push_back(std::make_shared<const definition>(std::move(d)));
  set_dags(std::move(shared));
}

void http_face::follow_dags(std::function<std::shared_ptr<const std::vector<shared_definition>>()> source) {
  std::lock_guard lock(dags_mutex_);
  dags_source_ = std::move(source);
}

std::shared_ptr<const std::vector<shared_definition>> http_face::dags() const {
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
    if (!caller(request) && !detail::api_is_open(request.method, path.substr(api_prefix.size()))) return unauthorized(path);
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
    const std::string rest = path.substr(api_prefix.size());
    const auto who = caller(request);
    if (!who && !detail::api_is_open(request.method, rest)) return unauthorized(path);
    const auto snapshot = dags();
    detail::api_context context{db(), *snapshot, now_, who.value_or("anonymous"), options_.max_page_size,
                                [this] { return json::parse(health().body); }};
    return detail::api_answer(request, rest, context);
  }
  const auto snapshot = dags();
  if (auto page = detail::web_ui(request, {db(), *snapshot, options_.token, *sign_ins_, now_})) return *page;
  return problem(404, "Not Found", "no such endpoint: " + path);
}

std::optional<std::string> http_face::caller(const http_request& request) const {
  if (!options_.token && options_.users.empty()) return "anonymous";
  const auto it = request.headers.find("authorization");
  if (it == request.headers.end()) return std::nullopt;
  // The scheme's name is case-insensitive (RFC 9110): `bearer x` is `Bearer x`.
  const std::string& given = it->second;
  const std::size_t space = given.find(' ');
  if (space == std::string::npos) return std::nullopt;
  const std::string scheme = lower_case(given.substr(0, space));
  const std::size_t start = given.find_first_not_of(' ', space);
  const std::string credentials = start == std::string::npos ? "" : given.substr(start);
  if (options_.token && scheme == "bearer" && same_secret(credentials, *options_.token)) return "token";
  // Airflow's basic_auth backend: `Authorization: Basic base64(user:password)`.
  if (scheme == "basic" && !options_.users.empty()) {
    const auto pair = base64_decoded(credentials);
    if (!pair) return std::nullopt;
    const auto colon = pair->find(':');
    if (colon == std::string::npos) return std::nullopt;
    const std::string user = pair->substr(0, colon);
    const auto known = options_.users.find(user);
    // Compared whether or not the user exists, so timing does not tell which users do.
    const bool right = same_secret(pair->substr(colon + 1), known == options_.users.end() ? std::string(1, '\0') : known->second);
    if (known != options_.users.end() && right) return user;
  }
  return std::nullopt;
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
  // A scheduler paused by a resource fault beats but starts nothing: unhealthy, saying why.
  json paused = json::array();
  for (const char* reason : {"disk_full", "store_unwritable"})
    if (metrics_.value("dagrun_scheduler_paused", {reason}) > 0) paused.push_back(reason);
  if (!paused.empty()) {
    scheduler["status"] = "unhealthy";
    scheduler["paused"] = paused;
  }
  // Ends the store could not take that would not survive a restart (the spool is full).
  if (metrics_.value("dagrun_executor_unkept_ends") > 0) {
    scheduler["status"] = "unhealthy";
    scheduler["unkept_ends"] = true;
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
