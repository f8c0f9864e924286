// The web UI: a handful of HTML pages rendered on the server from the store and the loaded DAGs.
// Forms post back and are answered with a redirect (303), so a reload never repeats an action.
#include "web_ui.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include <dag/engine/engine.hpp>
#include <dag/engine/scheduler_core.hpp>

#include <dag/model/operations.hpp>

namespace dag::detail {
namespace {

// Airflow's state colours, so the grid reads the same.
std::string colour_of(task_state s) {
  switch (s) {
    case task_state::success: return "#008000";
    case task_state::failed: return "#ff0000";
    case task_state::running: return "#32cd32";
    case task_state::queued: return "#808080";
    case task_state::scheduled: return "#d2b48c";
    case task_state::up_for_retry: return "#ffd700";
    case task_state::up_for_reschedule: return "#40e0d0";
    case task_state::upstream_failed: return "#ffa500";
    case task_state::skipped: return "#ff69b4";
    case task_state::removed: return "#d3d3d3";
    case task_state::none: return "#ffffff";
  }
  return "#ffffff";
}

// Path segments in links: run ids hold `:` and `+`.
std::string url_encoded(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// A field of an application/x-www-form-urlencoded body.
std::string form_field(const std::string& body, const std::string& name) {
  for (std::size_t start = 0; start <= body.size();) {
    const std::size_t end = std::min(body.find('&', start), body.size());
    const std::string pair = body.substr(start, end - start);
    const std::size_t eq = pair.find('=');
    if (url_decoded(pair.substr(0, eq), true) == name) return eq == std::string::npos ? "" : url_decoded(pair.substr(eq + 1), true);
    start = end + 1;
  }
  return {};
}

// The pages' one style sheet, served at /ui.css: the Content Security Policy allows no inline
// style, so each state's colour is a class (`st-failed`).
std::string style_sheet() {
  std::string css =
      "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
      "table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}"
      ".sq{display:inline-block;width:14px;height:14px;border:1px solid #999;margin:1px;vertical-align:middle}"
      ".err{background:#fee;border:1px solid #f99;padding:.5em}form{display:inline}"
      "pre{background:#f6f6f6;padding:1em;overflow:auto}\n";
  for (const auto s : {task_state::none, task_state::scheduled, task_state::queued, task_state::running, task_state::success,
                       task_state::failed, task_state::up_for_retry, task_state::up_for_reschedule,
                       task_state::upstream_failed, task_state::skipped, task_state::removed})
    css += ".st-" + std::string(to_string(s)) + "{background:" + colour_of(s) + "}\n";
  return css;  // run states share their names and colours with task states
}

std::string state_class(task_state s) { return "st-" + std::string(to_string(s)); }
std::string state_class(run_state s) { return "st-" + std::string(to_string(s)); }

// `refresh`: reload every 5 s (a page showing runs still in progress).
http_response page(int status, const std::string& title, const std::string& body, bool refresh = false) {
  std::string html = std::string("<!doctype html><html><head><meta charset=\"utf-8\">") +
                     (refresh ? "<meta http-equiv=\"refresh\" content=\"5\">" : "") + "<title>" + html_escaped(title) +
                     " · dagrun</title><link rel=\"stylesheet\" href=\"/ui.css\"></head><body><p><a href=\"/\">dagrun</a></p><h1>" +
                     html_escaped(title) + "</h1>" + body + "</body></html>";
  return {status, "text/html; charset=utf-8", std::move(html)};
}

http_response redirect(const std::string& to) {
  http_response r{303, "text/plain; charset=utf-8", "see " + to};
  r.headers.emplace_back("Location", to);
  return r;
}

std::string square(const std::string& state_class, const std::string& title, const std::string& link = "") {
  const std::string sq = "<span class=\"sq " + state_class + "\" title=\"" + html_escaped(title) + "\"></span>";
  return link.empty() ? sq : "<a href=\"" + link + "\">" + sq + "</a>";
}

// A form that posts to `action` (signed-in pages only, so no token field is needed).
std::string button(const std::string& action, const std::string& label, const web_ui_context&) {
  return "<form method=\"post\" action=\"" + action + "\"><button>" + html_escaped(label) + "</button></form> ";
}

// The value of a cookie in a Cookie header, or empty.
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


http_response sign_in_page(int status, const std::string& problem) {
  return page(status, "Sign in",
              (problem.empty() ? "" : "<p class=\"err\">" + html_escaped(problem) + "</p>") +
                  "<form method=\"post\" action=\"/login\"><input type=\"password\" name=\"token\" "
                  "placeholder=\"DAGRUN_API_TOKEN\" autofocus> <button>Sign in</button></form>");
}

std::string dag_link(const std::string& dag_id) { return "/dags/" + url_encoded(dag_id); }
std::string log_link(const std::string& dag_id, const std::string& run_id, const std::string& task_id, int try_number) {
  return dag_link(dag_id) + "/runs/" + url_encoded(run_id) + "/tasks/" + url_encoded(task_id) + "/logs/" +
         std::to_string(try_number);
}

http_response dag_list(const web_ui_context& ui) {
  const auto paused = ui.db.paused_dags();
  std::string body;
  const auto errors = ui.db.import_errors();
  if (!errors.empty()) {
    body += "<div class=\"err\"><b>" + std::to_string(errors.size()) + " DAG file(s) failed to load</b><ul>";
    for (const auto& e : errors) body += "<li><code>" + html_escaped(e.message) + "</code></li>";
    body += "</ul></div>";
  }
  body += "<table><tr><th>DAG</th><th>schedule</th><th>tags</th><th>recent runs</th><th></th></tr>";
  for (const auto& d : ui.dags) {
    run_filter latest;
    latest.dag_id = d.id();
    latest.limit = 10;
    std::string runs;
    for (const auto& r : ui.db.runs(latest))
      runs = square(state_class(r.state), r.run_id + ": " + std::string(to_string(r.state))) + runs;  // oldest first
    std::string tags;
    for (const auto& t : d.tags()) tags += html_escaped(t) + " ";
    const bool is_paused = paused.contains(d.id());
    body += "<tr><td><a href=\"" + dag_link(d.id()) + "\">" + html_escaped(d.id()) + "</a>" + (is_paused ? " (paused)" : "") +
            "</td><td><code>" + html_escaped(d.schedule().empty() ? "none" : d.schedule()) + "</code></td><td>" + tags +
            "</td><td>" + runs + "</td><td>" + button(dag_link(d.id()) + "/trigger", "Trigger", ui) +
            button(dag_link(d.id()) + (is_paused ? "/unpause" : "/pause"), is_paused ? "Unpause" : "Pause", ui) + "</td></tr>";
  }
  body += "</table>";
  return page(200, "DAGs", body);
}

// Boxes placed by depth (longest path from a root), edges as lines: readable for the DAG sizes
// people look at in a browser.
std::string graph_svg(const scheduled_dag& sd, const std::vector<task_instance_record>& latest) {
  const auto& tasks = sd.def.all_tasks();
  std::vector<int> depth(tasks.size(), 0);
  for (std::size_t i : sd.graph.topological_order())
    for (std::size_t u : sd.graph.upstream(i)) depth[i] = std::max(depth[i], depth[u] + 1);
  std::vector<int> row(tasks.size(), 0);
  std::map<int, int> rows_at_depth;
  for (std::size_t i : sd.graph.topological_order()) row[i] = rows_at_depth[depth[i]]++;
  int width = 0, height = 0;
  for (const auto& [d, n] : rows_at_depth) {
    width = std::max(width, d * 200 + 180);
    height = std::max(height, n * 40 + 10);
  }
  std::map<std::string, task_state> state;
  for (const auto& ti : latest) state[ti.task_id] = ti.state;
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
                    std::to_string(height) + "\" font-size=\"12\">";
  auto x = [&](std::size_t i) { return depth[i] * 200 + 10; };
  auto y = [&](std::size_t i) { return row[i] * 40 + 5; };
  for (std::size_t i = 0; i < tasks.size(); ++i)
    for (std::size_t u : sd.graph.upstream(i))
      svg += "<line x1=\"" + std::to_string(x(u) + 160) + "\" y1=\"" + std::to_string(y(u) + 14) + "\" x2=\"" +
             std::to_string(x(i)) + "\" y2=\"" + std::to_string(y(i) + 14) + "\" stroke=\"#999\"/>";
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const auto s = state.count(tasks[i].id) ? state[tasks[i].id] : task_state::none;
    svg += "<rect x=\"" + std::to_string(x(i)) + "\" y=\"" + std::to_string(y(i)) +
           "\" width=\"160\" height=\"28\" rx=\"4\" fill=\"#fff\" stroke=\"" + colour_of(s) + "\" stroke-width=\"3\"/>";
    svg += "<text x=\"" + std::to_string(x(i) + 8) + "\" y=\"" + std::to_string(y(i) + 18) + "\">" +
           html_escaped(tasks[i].id.substr(0, 22)) + "<title>" + html_escaped(tasks[i].id + " (" + tasks[i].operator_name + ")") +
           "</title></text>";
  }
  return svg + "</svg>";
}

http_response dag_page(const definition& d, const web_ui_context& ui) {
  const scheduled_dag sd(d);
  run_filter filter;
  filter.dag_id = d.id();
  filter.limit = 20;
  auto runs = ui.db.runs(filter);
  std::reverse(runs.begin(), runs.end());  // oldest on the left, as Airflow's grid
  const bool is_paused = ui.db.paused_dags().contains(d.id());
  std::string body = "<p>" + html_escaped(d.description()) + "</p><p>schedule <code>" +
                     html_escaped(d.schedule().empty() ? "none" : d.schedule()) + "</code> · " +
                     (is_paused ? "paused" : "active") + " · defined in <code>" + html_escaped(d.where().file) + "</code></p><p>" +
                     button(dag_link(d.id()) + "/trigger", "Trigger a run now", ui) +
                     button(dag_link(d.id()) + (is_paused ? "/unpause" : "/pause"), is_paused ? "Unpause" : "Pause", ui) + "</p>";
  // The grid: a row per task in topological order, a column per run.
  std::vector<std::map<std::string, task_instance_record>> cells;
  for (const auto& r : runs) {
    std::map<std::string, task_instance_record> by_task;
    for (auto& ti : ui.db.task_instances(d.id(), r.run_id)) by_task[ti.task_id] = std::move(ti);
    cells.push_back(std::move(by_task));
  }
  body += "<h2>Grid</h2><table><tr><th>task</th>";
  for (const auto& r : runs) {
    body += "<th>" + square(state_class(r.state), r.run_id + ": " + std::string(to_string(r.state)));
    if (r.state == run_state::failed) body += button(dag_link(d.id()) + "/runs/" + url_encoded(r.run_id) + "/clear", "clear failed", ui);
    body += "</th>";
  }
  body += "</tr>";
  for (std::size_t i : sd.graph.topological_order()) {
    const auto& t = d.all_tasks()[i];
    body += "<tr><td>" + html_escaped(t.id) + "</td>";
    for (const auto& by_task : cells) {
      auto it = by_task.find(t.id);
      if (it == by_task.end()) {
        body += "<td></td>";
        continue;
      }
      const auto& ti = it->second;
      const std::string title = ti.run_id + " · " + std::string(to_string(ti.state)) +
                                (ti.try_number > 0 ? " · try " + std::to_string(ti.try_number) : "") +
                                (ti.message.empty() ? "" : " · " + ti.message);
      body += "<td>" + square(state_class(ti.state), title, ti.try_number > 0 ? log_link(ti.dag_id, ti.run_id, ti.task_id, ti.try_number) : "") + "</td>";
    }
    body += "</tr>";
  }
  body += "</table><h2>Graph</h2>" + graph_svg(sd, cells.empty() ? std::vector<task_instance_record>{} : [&] {
    std::vector<task_instance_record> latest;
    for (const auto& [id, ti] : cells.back()) latest.push_back(ti);
    return latest;
  }());
  const bool in_progress = std::any_of(runs.begin(), runs.end(), [](const run_record& r) { return !is_finished(r.state); });
  return page(200, d.id(), body, in_progress);
}

// What a log page shows of a log: its start and its end, so that a page stays small whatever the
// log's size; the whole log is a download.
constexpr std::size_t page_log_head_bytes = 64 * 1024;
constexpr std::size_t page_log_tail_bytes = 512 * 1024;

// `whole`: the log file itself, streamed as text (`…/logs/{try}/whole`).
http_response log_page(const definition& d, const std::string& run_id, const std::string& task_id,
                       const std::string& try_text, bool whole, const web_ui_context& ui) {
  const auto parsed = whole_number(try_text, 1000000);
  if (!parsed) return page(400, "Bad request", "<p>try number: expected a whole number</p>");
  const int try_number = static_cast<int>(*parsed);
  const auto tries = tries_of(ui.db, d.id(), run_id, task_id);
  const auto found = std::find_if(tries.begin(), tries.end(), [&](const try_record& t) { return t.try_number == try_number; });
  if (found == tries.end() || found->log_path.empty()) return page(404, "Not found", "<p>no such try</p>");
  if (whole) {
    if (!std::filesystem::exists(found->log_path)) return {200, "text/plain; charset=utf-8", ""};  // it logged nothing
    http_response r{200, "text/plain; charset=utf-8", ""};
    r.file = found->log_path;
    return r;
  }
  const std::string content = log_excerpt(found->log_path, page_log_head_bytes, page_log_tail_bytes);
  std::string others;
  for (const auto& t : tries) {
    others += "<a href=\"" + log_link(d.id(), run_id, task_id, t.try_number) + "\">try " + std::to_string(t.try_number) + "</a> (" +
              html_escaped(std::string(to_string(t.state))) + ") ";
  }
  return page(200, d.id() + " · " + task_id + " · try " + std::to_string(try_number),
              "<p><a href=\"" + dag_link(d.id()) + "\">" + html_escaped(d.id()) + "</a> · run " + html_escaped(run_id) +
                  "</p><p>" + others + "</p><p><a href=\"" + log_link(d.id(), run_id, task_id, try_number) +
                  "/whole\">the whole log</a></p><pre>" + html_escaped(content) + "</pre>");
}

}  // namespace

std::string html_escaped(const std::string& text) {
  std::string out;
  out.reserve(text.size());
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
  std::random_device random;
  std::string id;
  static const char* hex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) id += hex[random() & 15];
  std::lock_guard lock(mutex_);
  sessions_.insert(id);
  return id;
}

bool ui_sign_ins::has_session(const std::string& id) const {
  std::lock_guard lock(mutex_);
  return sessions_.contains(id);
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
  const auto left = it->second.front() + sign_in_window - now;
  return std::chrono::ceil<std::chrono::seconds>(left);
}

void ui_sign_ins::failed_attempt(const std::string& client) {
  std::lock_guard lock(mutex_);
  auto& times = failures_[client];
  times.push_back(steady::now());
  while (times.size() > max_failed_sign_ins) times.pop_front();  // the last few are all that count
}

std::optional<long> whole_number(const std::string& text, long most) {
  // 18 digits always fit a long: the text is read only after that is known.
  if (text.empty() || text.size() > 18 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const long value = std::stol(text);
  return value <= most ? std::optional<long>(value) : std::nullopt;
}

std::optional<http_response> web_ui_gate(const http_request& request, const std::optional<std::string>& token,
                                         ui_sign_ins& sign_ins) {
  const auto p = path_segments(request.path());
  if (!token || (!p.empty() && p[0] != "dags" && p[0] != "login")) return std::nullopt;
  const bool post = request.method == "POST";
  if (p.size() == 1 && p[0] == "login") {
    if (!post) return std::nullopt;
    // Guessing the token: a few tries a minute per address, then 429 until the oldest expires.
    const auto wait = sign_ins.wait_before_attempt(request.client);
    if (wait.count() == 0) return std::nullopt;
    auto r = sign_in_page(429, "Too many failed sign-ins from your address; try again in " + std::to_string(wait.count()) + " s.");
    r.headers.emplace_back("Retry-After", std::to_string(wait.count()));
    return r;
  }
  // With a token, the UI is for those who signed in with it: a session cookie that scripts cannot
  // read and other sites' requests do not carry (HttpOnly, SameSite=Strict).
  if (sign_ins.has_session(cookie(request, "dagrun_session"))) return std::nullopt;
  return post ? page(401, "Not signed in", "<p><a href=\"/login\">Sign in</a> first.</p>") : redirect("/login");
}

std::optional<http_response> web_ui(const http_request& request, const web_ui_context& ui) {
  const auto p = path_segments(request.path());
  if (p.size() == 1 && p[0] == "ui.css") {
    static const std::string css = style_sheet();
    return request.method == "GET" || request.method == "HEAD" ? http_response{200, "text/css; charset=utf-8", css}
                                                                : page(405, "Method not allowed", "");
  }
  if (!p.empty() && p[0] != "dags" && p[0] != "login") return std::nullopt;
  const bool post = request.method == "POST";
  if (!post && request.method != "GET") return page(405, "Method not allowed", "");
  if (auto refused = web_ui_gate(request, ui.token, ui.sign_ins)) return refused;
  if (p.size() == 1 && p[0] == "login") {
    if (!ui.token) return redirect("/");
    if (!post) return sign_in_page(200, "");
    if (!same_secret(form_field(request.body, "token"), *ui.token)) {
      ui.sign_ins.failed_attempt(request.client);
      return sign_in_page(401, "That is not this dagrun's token.");
    }
    auto r = redirect("/");
    r.headers.emplace_back("Set-Cookie", "dagrun_session=" + ui.sign_ins.open_session() + "; Path=/; HttpOnly; SameSite=Strict");
    return r;
  }
  if (p.empty()) return post ? page(405, "Method not allowed", "") : dag_list(ui);
  if (p.size() < 2) return std::nullopt;
  const definition* d = nullptr;
  for (const auto& x : ui.dags)
    if (x.id() == p[1]) d = &x;
  if (!d) return page(404, "Not found", "<p>no DAG <code>" + html_escaped(p[1]) + "</code> is loaded</p>");

  if (post) {
    const std::string back = dag_link(d->id());
    if (p.size() == 3 && (p[2] == "pause" || p[2] == "unpause")) {
      ui.db.set_paused(d->id(), p[2] == "pause");
      return redirect(back);
    }
    if (p.size() == 3 && p[2] == "trigger") {
      const auto date = ui.now.now();
      if (!trigger_run(ui.db, *d, date))
        return page(409, "Conflict", "<p>a run " + html_escaped(make_run_id(run_type::manual, date)) + " already exists</p>");
      return redirect(back);
    }
    if (p.size() == 5 && p[2] == "runs" && p[4] == "clear") {
      clear_selection which;
      which.dag_id = d->id();
      which.run_id = p[3];
      which.failed_only = true;
      clear_task_instances(ui.db, which, d);
      return redirect(back);
    }
    return page(404, "Not found", "");
  }
  if (p.size() == 2) return dag_page(*d, ui);
  if (p.size() == 8 && p[2] == "runs" && p[4] == "tasks" && p[6] == "logs") return log_page(*d, p[3], p[5], p[7], false, ui);
  if (p.size() == 9 && p[2] == "runs" && p[4] == "tasks" && p[6] == "logs" && p[8] == "whole")
    return log_page(*d, p[3], p[5], p[7], true, ui);
  return page(404, "Not found", "");
}

}  // namespace dag::detail
