#pragma once
/// @file Internal to libdag's HTTP face: the web UI's entry point. The pages are rendered on the
/// server (src/ui/, one file per page), with one embedded script and stylesheet under /static/
/// for live updates (docs/http.md, "Web UI").

#include <optional>
#include <set>
#include <string>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/time.hpp>
#include <dag/http/server.hpp>
#include <dag/store/store.hpp>

namespace dag::detail {

/// What a UI request may read and change.
struct web_ui_context {
  store& db;                               ///< the metadata database (the HTTP face's connection)
  const std::vector<definition>& dags;    ///< the loaded DAGs
  const std::optional<std::string>& token;     ///< when set, pages need a sign-in with it (a session cookie)
  std::set<std::string>& sessions;             ///< the session ids signed in so far
  const clock& now;                       ///< for triggered runs' logical dates
};

/// Answers a UI request (`/`, `/dags/…`, `/login`, `/logout`, `/ui/live.json`, `/static/…`), or a
/// page saying "not found" for any other path a browser asks for; nullopt for other clients'
/// requests outside the UI (they get the API's JSON 404).
std::optional<http_response> web_ui(const http_request& request, const web_ui_context& ui);

/// `text` with `& < > " '` escaped for HTML.
std::string html_escaped(const std::string& text);

}  // namespace dag::detail
