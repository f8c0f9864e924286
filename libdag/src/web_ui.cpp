// The web UI: a handful of HTML pages rendered on the server from the store and the loaded DAGs.
// Forms post back and are answered with a redirect (303), so a reload never repeats an action.
#include "web_ui.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include <dag/core/alert.hpp>
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
std::string colour_of(run_state s) {
  switch (s) {
    case run_state::success: return "#008000";
    case run_state::failed: return "#ff0000";
    case run_state::running: return "#32cd32";
    case run_state::queued: return "#808080";
  }
  return "#ffffff";
}

// Path segments in links: run ids hold `:` and `+`.
std::string url_encoded(const std::string& s) { return percent_encoded(s); }

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

// `refresh`: reload every 5 s (a page showing runs still in progress).
http_response page(int status, const std::string& title, const std::string& body, bool refresh = false) {
  std::string html = std::string("<!doctype html><html><head><meta charset=\"utf-8\">") +
                     (refresh ? "<meta http-equiv=\"refresh\" content=\"5\">" : "") + "<title>" + html_escaped(title) +
                     " · dagrun</title><style>"
                     "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
                     "table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}"
                     ".sq{display:inline-block;width:14px;height:14px;border:1px solid #999;margin:1px;vertical-align:middle}"
                     ".err{background:#fee;border:1px solid #f99;padding:.5em}form{display:inline}"
                     "pre{background:#f6f6f6;padding:1em;overflow:auto}"
                     "</style></head><body><p><a href=\"/\">dagrun</a></p><h1>" +
                     html_escaped(title) + "</h1>" + body + "</body></html>";
  return {status, "text/html; charset=utf-8", std::move(html)};
}

http_response redirect(const std::string& to) {
  http_response r{303, "text/plain; charset=utf-8", "see " + to};
  r.headers.emplace_back("Location", to);
  return r;
}

std::string square(const std::string& colour, const std::string& title, const std::string& link = "") {
  const std::string sq = "<span class=\"sq\" style=\"background:" + colour + "\" title=\"" + html_escaped(title) + "\"></span>";
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

// 128 random bits as hex: a session id nobody can guess.
std::string new_session_id() {
  std::random_device random;
  std::string id;
  static const char* hex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) id += hex[random() & 15];
  return id;
}

http_response sign_in_page(int status, const std::string& problem) {
  return page(status, "Sign in",
              (problem.empty() ? "" : "<p class=\"err\">" + html_escaped(problem) + "</p>") +
                  "<form method=\"post\" action=\"/login\"><input type=\"password\" name=\"token\" "
                  "placeholder=\"DAGRUN_API_TOKEN\" autofocus> <button>Sign in</button></form>");
}

std::string dag_link(const std::string& dag_id) { return "/dags/" + url_encoded(dag_id); }
std::string log_link(const std::string& dag_id, const std::string& run_id, const std::string& task_id, int try_number) {
  return try_log_path(dag_id, run_id, task_id, try_number);
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
      runs = square(colour_of(r.state), r.run_id + ": " + std::string(to_string(r.state))) + runs;  // oldest first
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
    body += "<th>" + square(colour_of(r.state), r.run_id + ": " + std::string(to_string(r.state)));
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
      body += "<td>" + square(colour_of(ti.state), title, ti.try_number > 0 ? log_link(ti.dag_id, ti.run_id, ti.task_id, ti.try_number) : "") + "</td>";
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

http_response log_page(const definition& d, const std::string& run_id, const std::string& task_id,
                            const std::string& try_text, const web_ui_context& ui) {
  int try_number = 0;
  try {
    try_number = std::stoi(try_text);
  } catch (const std::exception&) {
    return page(400, "Bad request", "<p>try number: expected a whole number</p>");
  }
  const auto tries = tries_of(ui.db, d.id(), run_id, task_id);
  const auto found = std::find_if(tries.begin(), tries.end(), [&](const try_record& t) { return t.try_number == try_number; });
  if (found == tries.end() || found->log_path.empty()) return page(404, "Not found", "<p>no such try</p>");
  // The end of the log, as the API gives it: a page must not hold a log of any size.
  const std::string content = log_tail(found->log_path);
  std::string others;
  for (const auto& t : tries) {
    others += "<a href=\"" + log_link(d.id(), run_id, task_id, t.try_number) + "\">try " + std::to_string(t.try_number) + "</a> (" +
              html_escaped(std::string(to_string(t.state))) + ") ";
  }
  return page(200, d.id() + " · " + task_id + " · try " + std::to_string(try_number),
              "<p><a href=\"" + dag_link(d.id()) + "\">" + html_escaped(d.id()) + "</a> · run " + html_escaped(run_id) +
                  "</p><p>" + others + "</p><pre>" + html_escaped(content) + "</pre>");
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

std::optional<http_response> web_ui(const http_request& request, const web_ui_context& ui) {
  const auto p = path_segments(request.path());
  if (!p.empty() && p[0] != "dags" && p[0] != "login") return std::nullopt;
  const bool post = request.method == "POST";
  if (!post && request.method != "GET") return page(405, "Method not allowed", "");
  // With a token, the UI is for those who signed in with it: a session cookie that scripts cannot
  // read and other sites' requests do not carry (HttpOnly, SameSite=Strict).
  if (p.size() == 1 && p[0] == "login") {
    if (!ui.token) return redirect("/");
    if (!post) return sign_in_page(200, "");
    if (!same_secret(form_field(request.body, "token"), *ui.token)) return sign_in_page(401, "That is not this dagrun's token.");
    const std::string id = new_session_id();
    ui.sessions.insert(id);
    auto r = redirect("/");
    r.headers.emplace_back("Set-Cookie", "dagrun_session=" + id + "; Path=/; HttpOnly; SameSite=Strict");
    return r;
  }
  if (ui.token && !ui.sessions.contains(cookie(request, "dagrun_session")))
    return post ? page(401, "Not signed in", "<p><a href=\"/login\">Sign in</a> first.</p>") : redirect("/login");
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
  if (p.size() == 8 && p[2] == "runs" && p[4] == "tasks" && p[6] == "logs") return log_page(*d, p[3], p[5], p[7], ui);
  return page(404, "Not found", "");
}

}  // namespace dag::detail
