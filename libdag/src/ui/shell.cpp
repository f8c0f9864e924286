// The web UI's frame: the page shell, links, state markup, forms, sign-in and the routing of UI
// paths to the pages (one file per page beside this one).
#include "ui.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <random>

#include <dag/core/connection.hpp>
#include <dag/graph/task_graph.hpp>
#include <dag/model/operations.hpp>

namespace dag::detail {
namespace ui {
namespace {

// A field of an application/x-www-form-urlencoded text (a body, or a query string), if it is there.
std::optional<std::string> encoded_field(const std::string& text, const std::string& name) {
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t end = std::min(text.find('&', start), text.size());
    const std::string pair = text.substr(start, end - start);
    const std::size_t eq = pair.find('=');
    if (url_decoded(pair.substr(0, eq), true) == name) return eq == std::string::npos ? "" : url_decoded(pair.substr(eq + 1), true);
    start = end + 1;
  }
  return std::nullopt;
}

bool is_set(const std::string& value) { return !value.empty() && value != "0" && value != "false"; }

}  // namespace

// 128 random bits as hex: a secret nobody can guess (session ids, the CSRF token).
std::string random_token() {
  std::random_device random;
  std::string id;
  static const char* hex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) id += hex[random() & 15];
  return id;
}

const std::string& csrf_token() {
  static const std::string token = random_token();
  return token;
}

std::string request::param(const std::string& name) const {
  const auto q = http.target.find('?');
  return q == std::string::npos ? std::string() : encoded_field(http.target.substr(q + 1), name).value_or("");
}
std::string request::field(const std::string& name) const { return encoded_field(http.body, name).value_or(""); }
bool request::has_field(const std::string& name) const { return encoded_field(http.body, name).has_value(); }
bool request::flag(const std::string& name) const { return is_set(field(name)); }
bool request::param_flag(const std::string& name) const { return is_set(param(name)); }

std::string url_encoded(const std::string& text) { return percent_encoded(text); }

http_response page(int status, const shell& frame, const std::string& body) {
  std::string html;
  html.reserve(body.size() + 2048);
  html += "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
          "<meta name=\"color-scheme\" content=\"light dark\"><title>";
  html += esc(frame.title) + " · dagrun</title>"
          "<link rel=\"stylesheet\" href=\"/static/app.css\"><link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">"
          "<script src=\"/static/app.js\" defer></script></head><body";
  if (!frame.live.empty())
    html += " data-live=\"" + esc(frame.live) + "\" data-busy=\"" + (frame.busy ? "1" : "0") + "\" data-sig=\"" + esc(frame.sig) + "\"";
  html += "><header class=\"top\"><a class=\"brand\" href=\"/\"><img src=\"/static/favicon.svg\" alt=\"\" width=\"20\" height=\"20\">dagrun</a>"
          "<nav><a href=\"/\">DAGs</a><a href=\"/api/v1/ui/\">API</a>";
  if (!frame.live.empty())
    html += "<label class=\"auto\" title=\"Update this page while something runs\"><input type=\"checkbox\" id=\"auto-refresh\" checked> live</label>";
  if (frame.signed_in) html += post_button("/logout", "Sign out", {}, "link");
  html += "</nav></header><main>";
  if (!frame.crumbs.empty()) {
    html += "<p class=\"crumbs\">";
    for (const auto& [href, label] : frame.crumbs) html += "<a href=\"" + esc(href) + "\">" + esc(label) + "</a> / ";
    html += "</p>";
  }
  html += "<h1>" + esc(frame.title) + "</h1>";
  html += body;
  html += "</main></body></html>";
  return {status, "text/html; charset=utf-8", std::move(html)};
}

shell frame_of(const request& r, std::string title) {
  shell s;
  s.title = std::move(title);
  s.signed_in = r.ctx.token.has_value();
  return s;
}

http_response not_found_page(const request& r, const std::string& what, const std::string& back, const std::string& back_label) {
  return page(404, frame_of(r, "Not found"),
              "<p class=\"err\">" + esc(what) + "</p><p><a class=\"button\" href=\"" + esc(back) + "\">← " + esc(back_label) + "</a></p>");
}

http_response problem_page(const request& r, int status, const std::string& title, const std::string& message,
                           const std::string& back) {
  return page(status, frame_of(r, title),
              "<p class=\"err\">" + esc(message) + "</p><p><a class=\"button\" href=\"" + esc(back) + "\">← Back</a></p>");
}

http_response redirect(const std::string& to) {
  http_response out{303, "text/plain; charset=utf-8", "see " + to};
  out.headers.emplace_back("Location", to);
  return out;
}

std::string dag_href(const std::string& dag_id) { return "/dags/" + url_encoded(dag_id); }
std::string run_href(const std::string& dag_id, const std::string& run_id) {
  return dag_href(dag_id) + "/runs/" + url_encoded(run_id);
}
namespace {
std::string map_index_query(int map_index) { return map_index < 0 ? "" : "?map_index=" + std::to_string(map_index); }
}  // namespace

std::string ti_href(const std::string& dag_id, const std::string& run_id, const std::string& task_id, int map_index) {
  return run_href(dag_id, run_id) + "/tasks/" + url_encoded(task_id) + map_index_query(map_index);
}
std::string log_href(const std::string& dag_id, const std::string& run_id, const std::string& task_id, int try_number,
                     int map_index, std::string_view view) {
  return ti_href(dag_id, run_id, task_id) + "/logs/" + std::to_string(try_number) + (view.empty() ? "" : "/") +
         std::string(view) + map_index_query(map_index);
}

std::string change_href(const std::string& dag_id, const std::string& run_id, const std::string& task_id,
                        const std::string& action, int map_index) {
  return ti_href(dag_id, run_id, task_id) + "/" + action + map_index_query(map_index);
}

std::string state_badge(std::string_view state) {
  const std::string s(state);
  return "<span class=\"st st-" + s + "\">" + (s == "none" ? std::string("no status") : s) + "</span>";
}

std::string live_key(const std::string& run_id, const std::string& task_id) {
  return task_id.empty() ? run_id : run_id + "|" + task_id;
}

std::string post_button(const std::string& action, const std::string& label,
                        const std::vector<std::pair<std::string, std::string>>& fields, const std::string& css_class) {
  std::string out = "<form method=\"post\" action=\"" + esc(action) + "\">" + csrf_field();
  for (const auto& [name, value] : fields)
    out += "<input type=\"hidden\" name=\"" + esc(name) + "\" value=\"" + esc(value) + "\">";
  out += "<button" + (css_class.empty() ? std::string() : " class=\"" + css_class + "\"") + ">" + esc(label) + "</button></form>";
  return out;
}

std::string csrf_field() { return "<input type=\"hidden\" name=\"csrf\" value=\"" + csrf_token() + "\">"; }

std::string when(const std::optional<timestamp>& t) {
  if (!t) return "—";
  const std::string iso = format_iso(std::chrono::floor<std::chrono::seconds>(*t));  // 2024-01-01T00:00:00+00:00
  return iso.substr(0, 10) + " " + iso.substr(11, 8);
}

std::string when(time_point t) {
  const std::string iso = format_iso(t);
  return iso.substr(0, 10) + " " + iso.substr(11, 5);
}

std::string span_text(std::optional<double> seconds) {
  if (!seconds) return "—";
  const double s = std::max(0.0, *seconds);
  char text[64];
  if (s < 60) {
    std::snprintf(text, sizeof text, "%.1fs", s);
  } else {
    const auto whole = static_cast<long long>(std::llround(s));
    if (whole < 3600)
      std::snprintf(text, sizeof text, "%lldm %llds", whole / 60, whole % 60);
    else if (whole < 86400)
      std::snprintf(text, sizeof text, "%lldh %lldm", whole / 3600, whole % 3600 / 60);
    else
      std::snprintf(text, sizeof text, "%lldd %lldh", whole / 86400, whole % 86400 / 3600);
  }
  return text;
}

std::optional<double> seconds_of(const std::optional<timestamp>& start, const std::optional<timestamp>& end, timestamp now) {
  if (!start) return std::nullopt;
  return seconds_between(start, end ? end : std::optional<timestamp>(now));
}

std::string kv_row(const std::string& name, const std::string& value_html) {
  return "<tr><th>" + esc(name) + "</th><td>" + value_html + "</td></tr>";
}

std::string svg_number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", v);
  return text;
}

std::vector<std::size_t> task_rows(const definition& d) {
  std::vector<definition_error> problems;
  const task_graph g = task_graph::build(d, problems);
  if (g.size() == d.all_tasks().size()) return g.topological_order();
  std::vector<std::size_t> plain(d.all_tasks().size());
  for (std::size_t i = 0; i < plain.size(); ++i) plain[i] = i;
  return plain;
}

const definition* find_dag(const request& r, const std::string& dag_id) {
  for (const auto& d : r.ctx.dags)
    if (d->id() == dag_id) return d.get();
  return nullptr;
}

namespace {

// The value of a cookie in the Cookie header, or empty.
std::string cookie(const http_request& request, const std::string& name) {
  const auto it = request.headers.find("cookie");
  if (it == request.headers.end()) return {};
  const std::string& all = it->second;
  for (std::size_t start = 0; start < all.size();) {
    const std::size_t end = std::min(all.find(';', start), all.size());
    std::string pair = all.substr(start, end - start);
    pair.erase(0, pair.find_first_not_of(' '));
    const std::size_t eq = pair.find('=');
    if (eq != std::string::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    start = end + 1;
  }
  return {};
}

// Where to go after signing in: a path on this site only (never `//other.site` or a URL).
std::string safe_next(const std::string& next) {
  if (next.empty() || next[0] != '/' || (next.size() > 1 && (next[1] == '/' || next[1] == '\\'))) return "/";
  if (next.find_first_of("\r\n") != std::string::npos) return "/";
  return next;
}

http_response sign_in_page(int status, const std::string& problem, const std::string& next) {
  shell s;
  s.title = "Sign in";
  return page(status, s,
              (problem.empty() ? "" : "<p class=\"err\">" + esc(problem) + "</p>") +
                  "<form method=\"post\" action=\"/login\" class=\"stack\"><input type=\"hidden\" name=\"next\" value=\"" +
                  esc(safe_next(next)) +
                  "\"><label>Token <input type=\"password\" name=\"token\" placeholder=\"DAGRUN_API_TOKEN\" autofocus "
                  "autocomplete=\"current-password\"></label><button class=\"primary\">Sign in</button></form>");
}

const std::string session_cookie = "dagrun_session";

// Whether the request wants a page (a browser) rather than JSON.
bool wants_html(const http_request& request) {
  const auto it = request.headers.find("accept");
  return it != request.headers.end() && it->second.find("text/html") != std::string::npos;
}

// The path of a run's or task instance's sub-page: `…/runs/R[/tasks/T]/ACTION`.
bool is_change_action(const std::string& s) { return s == "clear" || s == "mark_success" || s == "mark_failed"; }

std::optional<http_response> dag_pages(const request& r, const std::vector<std::string>& p) {
  const bool post = r.http.method == "POST";
  const definition* d = find_dag(r, p[1]);
  if (!d) return not_found_page(r, "No DAG '" + p[1] + "' is loaded.");
  const std::string back = dag_href(d->id());
  if (p.size() == 2) return post ? page(405, frame_of(r, "Method not allowed"), "") : dag_page(r, *d);
  if (p.size() == 3 && (p[2] == "pause" || p[2] == "unpause")) {
    if (!post) return redirect(back);
    set_paused(r.ctx.db, d->id(), p[2] == "pause");
    const std::string next = r.field("next");
    return redirect(next == "/" ? "/" : back);
  }
  if (p.size() == 3 && p[2] == "trigger") return post ? trigger(r, *d) : trigger_form(r, *d, 200, "");
  if (p.size() == 3 && p[2] == "delete") return delete_page(r, *d);
  if (p.size() < 4 || p[2] != "runs") return not_found_page(r, "No such page of DAG '" + d->id() + "'.", back, d->id());
  const auto run = r.ctx.db.find_run(d->id(), p[3]);
  if (!run) return not_found_page(r, "DAG '" + d->id() + "' has no run '" + p[3] + "'.", back, d->id());
  if (p.size() == 5 && is_change_action(p[4])) return change_page(r, *d, *run, "", p[4]);
  // Everything under a run but clear and mark is read-only.
  const bool change = p.size() == 7 && p[4] == "tasks" && is_change_action(p[6]);
  if (post && !change) return page(405, frame_of(r, "Method not allowed"), "<p>This page only answers GET.</p>");
  if (p.size() == 4) return run_page(r, *d, *run);
  if (p.size() < 6 || p[4] != "tasks" || !d->find(p[5]))
    return not_found_page(r, "Run '" + run->run_id + "' has no such task or page.", run_href(d->id(), run->run_id), "the run");
  const auto tis = r.ctx.db.task_instances(d->id(), run->run_id);
  // A mapped task's instance by `?map_index=K`; without it, its first instance.
  std::optional<int> map_index;
  if (const std::string k = r.param("map_index"); !k.empty()) {
    const auto number = whole_number(k, 1000000);
    if (!number)
      return problem_page(r, 400, "Bad request", "The map index must be a whole number, not '" + k + "'.", run_href(d->id(), run->run_id));
    map_index = static_cast<int>(*number);
  }
  const auto ti = std::find_if(tis.begin(), tis.end(), [&](const task_instance_record& t) {
    return t.task_id == p[5] && (!map_index || t.map_index == *map_index);
  });
  if (ti == tis.end()) return not_found_page(r, "Run '" + run->run_id + "' has no task '" + p[5] + "'.", run_href(d->id(), run->run_id), "the run");
  // Without a map index, a mapped task's pages are the task's as a whole: they change every instance.
  const bool whole = !map_index && ti->map_index >= 0;
  if (p.size() == 6) return task_page(r, *d, *run, *ti, whole);
  if (p.size() == 7 && is_change_action(p[6]))
    return change_page(r, *d, *run, ti->task_id, p[6], whole ? std::nullopt : std::optional<int>(ti->map_index));
  if ((p.size() == 8 || p.size() == 9) && p[6] == "logs") {
    const auto try_number = whole_number(p[7], 1000000);
    if (!try_number)
      return problem_page(r, 400, "Bad request", "The try number must be a whole number, not '" + p[7] + "'.",
                          ti_href(d->id(), run->run_id, ti->task_id));
    return log_page(r, *d, *run, ti->task_id, static_cast<int>(*try_number), p.size() == 9 ? p[8] : r.param("view"),
                    ti->map_index);
  }
  return not_found_page(r, "No such page of task '" + ti->task_id + "'.", ti_href(d->id(), run->run_id, ti->task_id), ti->task_id);
}

}  // namespace
}  // namespace ui

std::optional<http_response> web_ui(const http_request& request, const web_ui_context& ctx) {
  using namespace ui;
  const std::string path = request.path();
  if (request.method == "GET" || request.method == "HEAD")
    if (auto file = static_resource(path)) return file;
  const auto p = path_segments(path);
  const bool ui_path = p.empty() || p[0] == "dags" || p[0] == "login" || p[0] == "logout" || p[0] == "ui";
  if (!ui_path && !wants_html(request)) return std::nullopt;  // the JSON 404 for API clients
  const ui::request r{request, ctx};
  const bool post = request.method == "POST";
  if (!post && request.method != "GET" && request.method != "HEAD") return page(405, frame_of(r, "Method not allowed"), "");
  if (auto refused = web_ui_gate(request, ctx.token, ctx.sign_ins)) return refused;
  if (p.size() == 1 && p[0] == "login") {
    if (!ctx.token) return redirect("/");
    if (!post) return sign_in_page(200, "", r.param("next"));
    if (!same_secret(r.field("token"), *ctx.token)) {
      ctx.sign_ins.failed_attempt(request.client);
      return sign_in_page(401, "That is not this dagrun's token.", r.field("next"));
    }
    auto out = redirect(safe_next(r.field("next")));
    out.headers.emplace_back("Set-Cookie", session_cookie + "=" + ctx.sign_ins.open_session() + "; Path=/; HttpOnly; SameSite=Strict");
    return out;
  }
  // Every form but the sign-in one (which carries the API token) carries the CSRF token.
  if (post && !same_secret(r.field("csrf"), csrf_token()))
    return problem_page(r, 403, "Form expired",
                        "This form is from an earlier start of dagrun or from another site. Reload the page and try again.", "/");
  if (p.size() == 1 && p[0] == "logout") {
    if (!post) return redirect("/");
    ctx.sign_ins.close_session(cookie(request, session_cookie));
    auto out = redirect(ctx.token ? "/login" : "/");
    out.headers.emplace_back("Set-Cookie", session_cookie + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    return out;
  }
  if (p.empty()) return post ? page(405, frame_of(r, "Method not allowed"), "") : dag_list_page(r);
  if (p.size() == 2 && p[0] == "ui" && p[1] == "live.json") return live_json(r);
  if (p[0] == "dags" && p.size() >= 2) return dag_pages(r, p);
  return not_found_page(r, "There is no page at " + path + ".");
}

std::string html_escaped(const std::string& text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}


std::string ui_sign_ins::open_session() {
  std::string id = ui::random_token();
  std::lock_guard lock(mutex_);
  sessions_.insert(id);
  return id;
}

bool ui_sign_ins::has_session(const std::string& id) const {
  std::lock_guard lock(mutex_);
  return sessions_.contains(id);
}

void ui_sign_ins::close_session(const std::string& id) {
  std::lock_guard lock(mutex_);
  sessions_.erase(id);
}

void ui_sign_ins::forget_old_failures(steady::time_point now) {
  for (auto it = failures_.begin(); it != failures_.end();) {
    auto& times = it->second;
    while (!times.empty() && now - times.front() >= sign_in_window) times.pop_front();
    it = times.empty() ? failures_.erase(it) : std::next(it);
  }
}

std::chrono::seconds ui_sign_ins::wait_before_attempt(const std::string& client) {
  std::lock_guard lock(mutex_);
  const auto now = steady::now();
  forget_old_failures(now);
  const auto it = failures_.find(client);
  if (it == failures_.end() || it->second.size() < max_failed_sign_ins) return std::chrono::seconds(0);
  // The oldest failure that counts leaves the window then (rounded up to a whole second).
  return std::chrono::ceil<std::chrono::seconds>(it->second.front() + sign_in_window - now);
}

void ui_sign_ins::failed_attempt(const std::string& client) {
  std::lock_guard lock(mutex_);
  auto& times = failures_[client];
  times.push_back(steady::now());
  while (times.size() > max_failed_sign_ins) times.pop_front();  // the last few are all that count
}

std::optional<long> whole_number(const std::string& text, long most) {
  // 18 digits always fit a long: the text is read only after that is known.
  if (text.empty() || text.size() > 18 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const long value = std::stol(text);
  return value <= most ? std::optional<long>(value) : std::nullopt;
}

std::optional<http_response> web_ui_gate(const http_request& request, const std::optional<std::string>& token,
                                         ui_sign_ins& sign_ins) {
  using namespace ui;
  if (!token) return std::nullopt;
  const auto p = path_segments(request.path());
  const bool ui_path = p.empty() || p[0] == "dags" || p[0] == "login" || p[0] == "logout" || p[0] == "ui";
  if (!ui_path) return std::nullopt;  // static files, the API (its own credentials), /health, /metrics
  const bool post = request.method == "POST";
  if (p.size() == 1 && p[0] == "login") {
    if (!post) return std::nullopt;
    // Guessing the token: a few tries a minute per address, then 429 until the oldest expires.
    const auto wait = sign_ins.wait_before_attempt(request.client);
    if (wait.count() == 0) return std::nullopt;
    auto out = sign_in_page(429, "Too many failed sign-ins from your address; try again in " + std::to_string(wait.count()) + " s.", "/");
    out.headers.emplace_back("Retry-After", std::to_string(wait.count()));
    return out;
  }
  // With a token, the UI is for those who signed in with it: a session cookie that scripts cannot
  // read and other sites' requests do not carry (HttpOnly, SameSite=Strict).
  if (sign_ins.has_session(cookie(request, session_cookie))) return std::nullopt;
  if (post || (!p.empty() && p[0] == "ui")) {
    shell s;
    s.title = "Not signed in";
    return page(401, s, "<p><a class=\"button\" href=\"/login\">Sign in</a> first.</p>");
  }
  return redirect(request.target == "/" ? "/login" : "/login?next=" + url_encoded(request.target));
}

}  // namespace dag::detail
