// A DAG's page (`/dags/ID?tab=…`): Grid (runs × tasks with dates, duration bars, paging and a
// details panel), Graph, Gantt, Task durations, Calendar, Code and Details.
#include "ui.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include <dag/graph/task_graph.hpp>
#include <dag/model/operations.hpp>

namespace dag::detail::ui {
namespace {

constexpr std::size_t default_runs = 25;
constexpr std::size_t most_runs = 100;

std::size_t number_param(const request& r, const std::string& name, std::size_t fallback, std::size_t most) {
  const std::string text = r.param(name);
  if (text.empty() || text.size() > 7 || text.find_first_not_of("0123456789") != std::string::npos) return fallback;
  return std::min(static_cast<std::size_t>(std::stoul(text)), most);
}

// The DAG page's own address with its view parameters.
struct view {
  std::string dag_id, tab = "grid", run, task;
  std::size_t offset = 0, limit = default_runs;
  std::string href(const std::string& to_tab, const std::string& to_run, const std::string& to_task,
                   std::optional<std::size_t> to_offset = std::nullopt) const {
    std::string out = dag_href(dag_id) + "?tab=" + to_tab;
    const std::size_t o = to_offset.value_or(offset);
    if (o) out += "&offset=" + std::to_string(o);
    if (limit != default_runs) out += "&limit=" + std::to_string(limit);
    if (!to_run.empty()) out += "&run=" + url_encoded(to_run);
    if (!to_task.empty()) out += "&task=" + url_encoded(to_task);
    return out;
  }
};

// The details panel beside the grid: the selected run, or one of its task instances.
std::string details_panel(const request& r, const definition& d, const std::vector<run_record>& runs,
                          const std::vector<std::vector<task_instance_record>>& cells, const view& v) {
  const auto now = r.ctx.now.precise_now();
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const auto& run = runs[k];
    if (run.run_id != v.run) continue;
    if (v.task.empty()) {
      std::map<std::string, int> counts;
      for (const auto& ti : cells[k]) ++counts[std::string(to_string(ti.state))];
      std::string summary;
      for (const auto& [s, n] : counts) summary += "<span class=\"count st-" + s + "\">" + std::to_string(n) + "</span> " + s + " ";
      return "<aside class=\"panel\" id=\"details\"><h2>Run " + esc(run.run_id) + "</h2><table class=\"kv\">" +
             kv_row("State", "<span data-s=\"" + esc(live_key(run.run_id)) + "\" class=\"st st-" + std::string(to_string(run.state)) + "\">" +
                              std::string(to_string(run.state)) + "</span>") +
             kv_row("Type", esc(std::string(to_string(run.type)))) + kv_row("Logical date", esc(when(run.logical_date))) +
             kv_row("Started", esc(when(run.start_date))) + kv_row("Duration", esc(span_text(seconds_of(run.start_date, run.end_date, now)))) +
             kv_row("Tasks", summary) + "</table><p><a class=\"button\" href=\"" + esc(run_href(d.id(), run.run_id)) +
             "\">Open run</a></p></aside>";
    }
    for (const auto& ti : cells[k]) {
      if (ti.task_id != v.task) continue;
      std::string links = "<a class=\"button\" href=\"" + esc(ti_href(d.id(), run.run_id, ti.task_id)) + "\">Task instance</a>";
      if (ti.try_number > 0 && !ti.log_path.empty())
        links += " <a class=\"button\" href=\"" + esc(log_href(d.id(), run.run_id, ti.task_id, ti.try_number, ti.map_index)) + "\">Log</a>";
      return "<aside class=\"panel\" id=\"details\"><h2>" + esc(ti.task_id) + "</h2><table class=\"kv\">" + kv_row("Run", esc(run.run_id)) +
             kv_row("State", "<span data-s=\"" + esc(live_key(run.run_id, ti.task_id)) + "\" class=\"st st-" +
                              std::string(to_string(ti.state)) + "\">" + std::string(to_string(ti.state)) + "</span>") +
             kv_row("Try", std::to_string(ti.try_number)) + kv_row("Started", esc(when(ti.start_date))) +
             kv_row("Duration", esc(span_text(seconds_of(ti.start_date, ti.end_date, now)))) +
             (ti.message.empty() ? "" : kv_row("Message", "<code>" + esc(ti.message) + "</code>")) + "</table><p>" + links + "</p></aside>";
    }
  }
  return "<aside class=\"panel dim\" id=\"details\"><p>Select a run (a bar) or a task instance (a square) for its details.</p></aside>";
}

std::string grid_tab(const request& r, const definition& d, const std::vector<run_record>& runs,
                     const std::vector<std::vector<task_instance_record>>& cells, const view& v, bool more) {
  const auto now = r.ctx.now.precise_now();
  std::string out = "<h2>Grid</h2><div class=\"grid-wrap\"><div class=\"scroll\"><table class=\"grid\" id=\"grid\"><thead><tr><th class=\"pager\">";
  if (more) out += "<a href=\"" + esc(v.href("grid", "", "", v.offset + v.limit)) + "\" title=\"older runs\">← older</a> ";
  if (v.offset) out += "<a href=\"" + esc(v.href("grid", "", "", v.offset > v.limit ? v.offset - v.limit : 0)) + "\" title=\"newer runs\">newer →</a>";
  out += "</th>";
  double longest = 1;
  std::vector<std::optional<double>> durations;
  for (const auto& run : runs) {
    durations.push_back(seconds_of(run.start_date, run.end_date, now));
    if (durations.back()) longest = std::max(longest, *durations.back());
  }
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const auto& run = runs[k];
    const double h = durations[k] ? std::max(2.0, *durations[k] / longest * 60) : 2;
    const std::string state(to_string(run.state));
    out += "<th class=\"run" + std::string(run.run_id == v.run ? " sel" : "") + "\"><a href=\"" + esc(v.href("grid", run.run_id, "")) +
           "\" title=\"" + esc(run.run_id + " · " + state + " · " + span_text(durations[k])) +
           "\"><svg width=\"14\" height=\"62\" viewBox=\"0 0 14 62\"><rect class=\"bar st-" + state + "\" data-s=\"" +
           esc(live_key(run.run_id)) + "\" x=\"1\" y=\"" + svg_number(62 - h) + "\" width=\"12\" height=\"" + svg_number(h) + "\"/></svg><span class=\"date\">" +
           esc(when(run.logical_date).substr(5, 5)) + "</span></a></th>";
  }
  out += "</tr></thead><tbody>";
  // A mapped task's cell stands for all its instances: the state that matters most, and their count.
  std::vector<std::map<std::string, const task_instance_record*>> by_task(runs.size());
  std::vector<std::map<std::string, int>> mapped(runs.size());
  const auto weight = [](task_state s) {
    switch (s) {
      case task_state::failed: case task_state::upstream_failed: return 4;
      case task_state::running: case task_state::queued: return 3;
      case task_state::up_for_retry: case task_state::up_for_reschedule: case task_state::scheduled: return 2;
      case task_state::success: return 0;
      default: return 1;
    }
  };
  for (std::size_t k = 0; k < runs.size(); ++k)
    for (const auto& ti : cells[k]) {
      auto& shown = by_task[k][ti.task_id];
      if (!shown || weight(ti.state) > weight(shown->state)) shown = &ti;
      if (ti.map_index >= 0) ++mapped[k][ti.task_id];
    }
  for (std::size_t i : task_rows(d)) {
    const auto& t = d.all_tasks()[i];
    out += "<tr><th class=\"task\"><a href=\"" + esc(dag_href(d.id())) + "?tab=duration\">" + esc(t.id) + "</a></th>";
    for (std::size_t k = 0; k < runs.size(); ++k) {
      const auto it = by_task[k].find(t.id);
      if (it == by_task[k].end()) {
        out += "<td></td>";
        continue;
      }
      const std::string state(to_string(it->second->state));
      const bool selected = runs[k].run_id == v.run && t.id == v.task;
      const auto count = mapped[k].find(t.id);
      const std::string instances = count == mapped[k].end() ? "" : " [" + std::to_string(count->second) + "]";
      out += "<td><a class=\"sq st-" + state + (selected ? " sel" : "") + "\" data-s=\"" + esc(live_key(runs[k].run_id, t.id)) +
             "\" href=\"" + esc(v.href("grid", runs[k].run_id, t.id)) + "\" title=\"" + esc(t.id) + " · " + state + instances + "\">" +
             (instances.empty() ? "" : "<span class=\"mapped\">" + std::to_string(count->second) + "</span>") + "</a></td>";
    }
    out += "</tr>";
  }
  out += "</tbody></table></div>" + details_panel(r, d, runs, cells, v) + "</div>";
  if (runs.empty()) out += "<p class=\"dim\">No runs yet: trigger one.</p>";
  return out;
}

std::string code_tab(const definition& d) {
  const std::string& file = d.where().file;
  if (file.empty())
    return "<h2>Code</h2><p>This DAG is defined in C++ (built in memory); its tasks as dagrun sees them are on the Details tab.</p>";
  std::ifstream in(file, std::ios::binary);
  if (!in) return "<h2>Code</h2><p>Defined in <code>" + esc(file) + "</code>, which cannot be read now.</p>";
  std::string text(1024 * 1024, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  const bool yaml = file.ends_with(".yaml") || file.ends_with(".yml");
  if (!yaml)
    return "<h2>Code</h2><p>Defined in <code>" + esc(file) + "</code> (a compiled DAG library); its tasks as dagrun sees them are on the Details tab.</p>";
  return "<h2>Code</h2><p><code>" + esc(file) + "</code></p><pre class=\"code\"><code>" + esc(text) + "</code></pre>";
}

std::string details_tab(const definition& d, bool paused) {
  std::string tags, params, owners, tasks;
  for (const auto& t : d.tags()) tags += "<a class=\"tag\" href=\"/?tag=" + esc(url_encoded(t)) + "\">" + esc(t) + "</a> ";
  for (const auto& [k, v] : d.params()) params += "<code>" + esc(k) + "</code> = <code>" + esc(v) + "</code><br>";
  std::set<std::string> owner_set;
  for (const auto& t : d.all_tasks()) {
    owner_set.insert(t.settings.owner);
    std::string deps;
    for (const auto& dep : t.dependencies) deps += (deps.empty() ? "" : ", ") + dep;
    tasks += "<tr><td>" + esc(t.id) + "</td><td>" + esc(t.operator_name) + "</td><td>" + esc(deps) + "</td><td>" +
             esc(std::string(to_string(t.settings.trigger))) + "</td><td>" + std::to_string(t.settings.retry.retries) + "</td></tr>";
  }
  for (const auto& o : owner_set) owners += (owners.empty() ? "" : ", ") + o;
  return "<h2>Details</h2><table class=\"kv\">" + kv_row("DAG id", esc(d.id())) + kv_row("Description", esc(d.description())) +
         kv_row("State", paused ? "paused" : "active") + kv_row("Schedule", "<code>" + esc(d.schedule().empty() ? "none" : d.schedule()) + "</code>") +
         kv_row("Timezone", esc(d.timezone())) +
         kv_row("Start date", d.start_date() ? esc(when(*d.start_date())) : "—") + kv_row("End date", d.end_date() ? esc(when(*d.end_date())) : "—") +
         kv_row("Catchup", d.catchup() ? "yes" : "no") + kv_row("Max active runs", std::to_string(d.max_active_runs())) +
         kv_row("Max active tasks", std::to_string(d.max_active_tasks())) + kv_row("Tags", tags) + kv_row("Owners", esc(owners)) +
         kv_row("Params", params) + kv_row("File", "<code>" + esc(d.where().file.empty() ? "(C++, in memory)" : d.where().file) + "</code>") +
         "</table><h3>Tasks</h3><div class=\"scroll\"><table class=\"list\"><thead><tr><th>Task</th><th>Operator</th><th>Upstream</th>"
         "<th>Trigger rule</th><th>Retries</th></tr></thead><tbody>" +
         tasks + "</tbody></table></div>";
}

}  // namespace

http_response dag_page(const request& r, const definition& d) {
  view v;
  v.dag_id = d.id();
  v.tab = r.param("tab").empty() ? "grid" : r.param("tab");
  v.run = r.param("run");
  v.task = r.param("task");
  v.offset = number_param(r, "offset", 0, 1000000);
  v.limit = std::max<std::size_t>(1, number_param(r, "limit", default_runs, most_runs));
  static const std::vector<std::pair<std::string, std::string>> tabs{
      {"grid", "Grid"}, {"graph", "Graph"}, {"gantt", "Gantt"}, {"duration", "Task duration"},
      {"calendar", "Calendar"}, {"code", "Code"}, {"details", "Details"}};
  if (std::none_of(tabs.begin(), tabs.end(), [&](const auto& t) { return t.first == v.tab; }))
    return not_found_page(r, "DAG pages have no tab '" + v.tab + "'.", dag_href(d.id()), d.id());

  const bool paused = r.ctx.db.paused_dags().contains(d.id());
  // The runs the tab shows, newest first as stored; one more tells whether older ones exist.
  live_scope scope{d.id(), v.offset, v.limit, ""};
  run_filter filter;
  filter.dag_id = d.id();
  filter.limit = v.offset + v.limit + 1;
  auto newest_first = r.ctx.db.runs(filter);
  const bool more = newest_first.size() > v.offset + v.limit;
  std::vector<run_record> runs;
  for (std::size_t i = v.offset; i < newest_first.size() && runs.size() < v.limit; ++i) runs.push_back(newest_first[i]);
  // The run a graph or Gantt shows: the one asked for, else the newest.
  std::optional<run_record> selected;
  if (!v.run.empty()) selected = r.ctx.db.find_run(d.id(), v.run);
  if (!selected && !newest_first.empty() && v.offset == 0) selected = newest_first.front();
  if (!selected && !runs.empty()) selected = runs.front();

  std::string body = "<p class=\"lead\">" + esc(d.description()) + "</p><div class=\"bar-actions\">" +
                     (paused ? "<span class=\"paused\">paused</span> " : "<span class=\"active\">active</span> ") +
                     post_button(dag_href(d.id()) + (paused ? "/unpause" : "/pause"), paused ? "Unpause" : "Pause") +
                     "<a class=\"button primary\" href=\"" + esc(dag_href(d.id())) + "/trigger\">Trigger</a>" + legend() + "</div>";
  body += "<nav class=\"tabs\" id=\"tabs\">";
  for (const auto& [key, label] : tabs)
    body += "<a href=\"" + esc(v.href(key, v.run, v.task)) + "\"" + (key == v.tab ? " class=\"on\" aria-current=\"page\"" : "") +
            " data-tab=\"" + key + "\">" + label + "</a>";
  body += "</nav>";

  const auto now = r.ctx.now.precise_now();
  if (v.tab == "grid" || v.tab == "duration") {
    std::reverse(runs.begin(), runs.end());  // oldest on the left, as Airflow's grid
    std::vector<std::vector<task_instance_record>> cells;
    cells.reserve(runs.size());
    for (const auto& run : runs) cells.push_back(r.ctx.db.task_instances(d.id(), run.run_id));
    if (v.tab == "grid")
      body += grid_tab(r, d, runs, cells, v, more);
    else
      body += "<h2>Task duration</h2><p class=\"dim\">Each task's duration over the runs shown on the grid (hover a line for its task).</p>"
              "<div class=\"scroll\">" + duration_chart_svg(d, runs, cells) + "</div>";
  } else if (v.tab == "graph" || v.tab == "gantt") {
    std::string picker = "<form method=\"get\" class=\"inline\" action=\"" + esc(dag_href(d.id())) +
                         "\"><input type=\"hidden\" name=\"tab\" value=\"" + v.tab + "\"><label>Run <select name=\"run\" class=\"autosubmit\">";
    for (const auto& run : runs)
      picker += "<option value=\"" + esc(run.run_id) + "\"" + (selected && selected->run_id == run.run_id ? " selected" : "") + ">" +
                esc(when(run.logical_date) + " · " + std::string(to_string(run.state))) + "</option>";
    picker += "</select></label> <button>Show</button></form>";
    std::vector<task_instance_record> tis;
    if (selected) tis = r.ctx.db.task_instances(d.id(), selected->run_id);
    if (selected) scope.run_id = selected->run_id;
    if (v.tab == "graph") {
      std::vector<graph_node> nodes(d.all_tasks().size());
      for (const auto& ti : tis)
        if (const auto i = d.index_of(ti.task_id)) {
          nodes[*i].state = std::string(to_string(ti.state));
          nodes[*i].href = ti_href(d.id(), ti.run_id, ti.task_id);
          nodes[*i].live = live_key(ti.run_id, ti.task_id);
        }
      body += "<h2>Graph</h2>" + (runs.empty() ? std::string() : picker) + "<div class=\"scroll graph-wrap\">" + graph_svg(d, nodes) + "</div>";
    } else {
      body += "<h2>Gantt</h2>" + (runs.empty() ? std::string() : picker) +
              (selected ? "<div class=\"scroll\">" + gantt_svg(d, *selected, tis, now) + "</div>" : "<p class=\"dim\">No runs yet.</p>");
    }
  } else if (v.tab == "calendar") {
    run_filter year;
    year.dag_id = d.id();
    year.logical_from = r.ctx.now.now() - std::chrono::days(371);
    body += "<h2>Calendar</h2><p class=\"dim\">Each day coloured by its runs: failed if any failed, running if any is in progress.</p>"
            "<div class=\"scroll\">" + calendar_svg(r.ctx.db.runs(year), r.ctx.now.now()) + "</div>";
  } else if (v.tab == "code") {
    body += code_tab(d);
  } else {
    body += details_tab(d, paused);
  }
  auto frame = frame_of(r, d.id());
  frame.crumbs = {{"/", "DAGs"}};
  make_live(frame, scope, live_runs(r, scope));
  return page(200, frame, body);
}

}  // namespace dag::detail::ui
