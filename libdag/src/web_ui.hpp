#pragma once
/// @file Internal to libdag's HTTP face: the web UI's entry point. The pages are rendered on the
/// server (src/ui/, one file per page), with one embedded script and stylesheet under /static/
/// for live updates (docs/http.md, "Web UI").

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/time.hpp>
#include <dag/http/server.hpp>
#include <dag/store/store.hpp>

namespace dag::detail {

/// Failed sign-ins a client address may make in `sign_in_window` before it must wait (429).
inline constexpr std::size_t max_failed_sign_ins = 5;
inline constexpr std::chrono::seconds sign_in_window{60};

/// The UI's sessions (cookies) and each client address's recent failed sign-ins. Thread-safe: the
/// server's gate reads it on the I/O thread while the handler signs clients in.
class ui_sign_ins {
public:
  /// A new session, signed in; returns its id (128 random bits as hex).
  std::string open_session();
  /// Whether `id` is a signed-in session.
  bool has_session(const std::string& id) const;
  /// Signs session `id` out (nothing when it is not signed in).
  void close_session(const std::string& id);
  /// How long `client` must wait before it may try to sign in again; zero: it may now.
  std::chrono::seconds wait_before_attempt(const std::string& client);
  /// Counts a failed sign-in of `client`.
  void failed_attempt(const std::string& client);

private:
  using steady = std::chrono::steady_clock;
  void forget_old_failures(steady::time_point now);  // holds mutex_
  mutable std::mutex mutex_;
  std::set<std::string> sessions_;
  std::map<std::string, std::deque<steady::time_point>> failures_;  // per address, the last few
};

/// What a UI request may read and change.
struct web_ui_context {
  store& db;                               ///< the metadata database (the HTTP face's connection)
  const std::vector<shared_definition>& dags;    ///< the loaded DAGs
  const std::optional<std::string>& token;     ///< when set, pages need a sign-in with it (a session cookie)
  ui_sign_ins& sign_ins;                  ///< the sessions signed in so far and failed attempts
  const clock& now;                       ///< for triggered runs' logical dates
};

/// The UI's refusals that need no database: a client signing in too often (429) and pages asked
/// for without a session when a token is set (a redirect to /login, or 401 for a form). nullopt:
/// go on (also for paths that are not the UI's). Thread-safe; the HTTP face's gate calls it.
std::optional<http_response> web_ui_gate(const http_request& request, const std::optional<std::string>& token,
                                         ui_sign_ins& sign_ins);

/// Answers a UI request (`/`, `/dags/…`, `/login`, `/logout`, `/ui/live.json`, `/static/…`), or a
/// page saying "not found" for any other path a browser asks for; nullopt for other clients'
/// requests outside the UI (they get the API's JSON 404).
std::optional<http_response> web_ui(const http_request& request, const web_ui_context& ui);

/// `text` as a whole number in [0, most]: digits only (`1abc`, `+1`, ` 1` and `` are not), else
/// nullopt. For numbers in paths and query strings.
std::optional<long> whole_number(const std::string& text, long most);

/// `text` with `& < > " '` escaped for HTML.
std::string html_escaped(const std::string& text);

}  // namespace dag::detail
