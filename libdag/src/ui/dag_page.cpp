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
  std::string open;  // the task groups shown open (open_groups::text())
  std::string href(const std::string& to_tab, const std::string& to_run, const std::string& to_task,
                   std::optional<std::size_t> to_offset = std::nullopt, std::optional<std::string> to_open = std::nullopt) const {
    std::string out = dag_href(dag_id) + "?tab=" + to_tab;
    const std::size_t o = to_offset.value_or(offset);
    if (o) out += "&offset=" + std::to_string(o);
    if (limit != default_runs) out += "&limit=" + std::to_string(limit);
    if (!to_run.empty()) out += "&run=" + url_encoded(to_run);
    if (!to_task.empty()) out += "&task=" + url_encoded(to_task);
    if (const std::string& groups = to_open.value_or(open); !groups.empty()) out += "&open=" + url_encoded(groups);
    return out;
  }
};

// The link that opens or closes a group, keeping the rest of the view.
std::string toggle_link(const view& v, const group_view& groups, const std::string& group_id, bool open_now) {
  return "<a class=\"toggle\" href=\"" + esc(v.href(v.tab, v.run, v.task, std::nullopt, groups.toggled(group_id, !open_now))) +
         "\" aria-expanded=\"" + (open_now ? "true" : "false") + "\" title=\"" +
         esc(group_id + " · " + std::to_string(groups.size_of(group_id)) + " tasks · click to " + (open_now ? "collapse" : "expand")) + "\">" +
         (open_now ? "▾ " : "▸ ") + esc(groups.short_name(group_id)) + "</a>";
}

// The details panel beside the grid: the selected run, or one of its task instances.
std::string details_panel(const request& r, const definition& d, const group_view& groups, const std::vector<run_record>& runs,
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
    if (d.is_group(v.task)) {
      // A group in a run: its state by Airflow's rule and how many of its tasks are in each state.
      std::map<std::string, int> counts;
      for (const auto& ti : cells[k])
        if (const task* t = d.find(ti.task_id)) {
          const auto& of = groups.groups_of(*t);
          if (std::find(of.begin(), of.end(), v.task) != of.end()) ++counts[std::string(to_string(ti.state))];
        }
      const auto states = groups.states(cells[k]);
      const auto state = states.find(v.task);
      std::string summary;
      for (const auto& [s, n] : counts) summary += "<span class=\"count st-" + s + "\">" + std::to_string(n) + "</span> " + s + " ";
      const bool open_now = groups.open().is_open(v.task);
      return "<aside class=\"panel\" id=\"details\"><h2>Group " + esc(v.task) + "</h2><table class=\"kv\">" + kv_row("Run", esc(run.run_id)) +
             (state == states.end() ? std::string()
                                    : kv_row("State", "<span data-s=\"" + esc(live_key(run.run_id, v.task)) + "\" class=\"st st-" +
                                                          std::string(to_string(state->second)) + "\">" + std::string(to_string(state->second)) + "</span>")) +
             kv_row("Tasks", summary) + "</table><p><a class=\"button\" href=\"" +
             esc(v.href("grid", run.run_id, v.task, std::nullopt, groups.toggled(v.task, !open_now))) + "\">" +
             (open_now ? "Collapse" : "Expand") + " the group</a></p></aside>";
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
  // A mapped task's cell stands for all its instances: the state that matters most (Airflow's
  // order, as for a group), and their count.
  std::vector<std::map<std::string, const task_instance_record*>> by_task(runs.size());
  std::vector<std::map<std::string, int>> mapped(runs.size());
  for (std::size_t k = 0; k < runs.size(); ++k) {
    by_task[k] = most_relevant_instances(cells[k]);
    for (const auto& ti : cells[k])
      if (ti.map_index >= 0) ++mapped[k][ti.task_id];
  }
  // A group's row: its state in each run (Airflow's rule), a link that opens or closes it.
  const group_view groups(d, open_groups::parse(v.open));
  std::vector<std::map<std::string, task_state>> group_cells(runs.size());
  if (!groups.empty())
    for (std::size_t k = 0; k < runs.size(); ++k) group_cells[k] = groups.states(cells[k]);
  const auto rows = groups.rows();
  // A cell is about 240 bytes: reserving the whole table spares the copies of a growing page.
  out.reserve(out.size() + rows.size() * (runs.size() + 1) * 256 + 4096);
  for (const auto& row : rows) {
    const std::string depth = row.depth ? " d" + std::to_string(std::min<std::size_t>(row.depth, 6)) : "";
    if (!row.task) {
      out += "<tr class=\"group\" data-group=\"" + esc(row.id) + "\"><th class=\"task" + depth + "\">" + toggle_link(v, groups, row.id, row.open) + "</th>";
      for (std::size_t k = 0; k < runs.size(); ++k) {
        const auto it = group_cells[k].find(row.id);
        if (it == group_cells[k].end()) {
          out += "<td></td>";
          continue;
        }
        const std::string state(to_string(it->second));
        const bool selected = runs[k].run_id == v.run && row.id == v.task;
        out += "<td><a class=\"sq grp st-" + state + (selected ? " sel" : "") + "\" data-s=\"" + esc(live_key(runs[k].run_id, row.id)) +
               "\" href=\"" + esc(v.href("grid", runs[k].run_id, row.id)) + "\" title=\"" + esc(row.id) + " · " + state + "\"></a></td>";
      }
      out += "</tr>";
      continue;
    }
    const auto& t = d.all_tasks()[*row.task];
    out += "<tr><th class=\"task" + depth + "\"><a href=\"" + esc(dag_href(d.id())) + "?tab=duration\" title=\"" + esc(t.id) + "\">" +
           esc(groups.short_name(t.id)) + "</a></th>";
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
  out += "</tbody></table></div>" + details_panel(r, d, groups, runs, cells, v) + "</div>";
  if (runs.empty()) out += "<p class=\"dim\">No runs yet: trigger one.</p>";
  return out;
}

// The Graph tab's drawing: a box per task, or per collapsed group for all its tasks (the edges to
// and from them re-pointed to it, once each), coloured by the run shown; a group's box opens it.
std::string graph_tab(const definition& d, const std::vector<task_instance_record>& tis, const view& v) {
  std::vector<definition_error> problems;
  const task_graph g = task_graph::build(d, problems);
  const auto& tasks = d.all_tasks();
  if (g.size() != tasks.size()) return "<p class=\"err\">The graph cannot be drawn: the DAG's dependencies are not valid.</p>";
  const group_view groups(d, open_groups::parse(v.open));
  const auto by_task = most_relevant_instances(tis);  // a mapped task: its most relevant instance
  const auto group_state = groups.states(tis);
  std::vector<graph_node> nodes;
  std::map<std::string, std::size_t> index;
  std::vector<std::size_t> node_of(tasks.size());
  for (std::size_t i : g.topological_order()) {
    const task& t = tasks[i];
    const std::string shown = groups.shown_as(t);
    auto [it, added] = index.try_emplace(shown, nodes.size());
    node_of[i] = it->second;
    if (!added) continue;
    graph_node node;
    node.id = shown;
    if (shown == t.id) {
      node.label = t.id;
      if (const auto ti = by_task.find(t.id); ti != by_task.end()) {
        node.state = std::string(to_string(ti->second->state));
        node.href = ti_href(d.id(), ti->second->run_id, t.id);
        node.live = live_key(ti->second->run_id, t.id);
      }
      node.title = t.id + " (" + t.operator_name + ") · " + node.state;
    } else {
      const std::size_t size = groups.size_of(shown);
      node.group = true;
      node.label = "▸ " + shown + " (" + std::to_string(size) + ")";
      if (const auto s = group_state.find(shown); s != group_state.end()) node.state = std::string(to_string(s->second));
      if (!tis.empty()) node.live = live_key(tis.front().run_id, shown);
      node.href = v.href("graph", v.run, "", std::nullopt, groups.toggled(shown, true));
      node.title = "task group " + shown + " · " + std::to_string(size) + " tasks · " + node.state + " · click to expand";
    }
    nodes.push_back(std::move(node));
  }
  std::vector<std::vector<std::size_t>> upstream(nodes.size());
  for (std::size_t w = 0; w < tasks.size(); ++w)
    for (std::size_t u : g.upstream(w)) {
      const std::size_t from = node_of[u], to = node_of[w];
      if (from != to && std::find(upstream[to].begin(), upstream[to].end(), from) == upstream[to].end()) upstream[to].push_back(from);
    }
  std::string bar;
  if (!groups.empty()) {
    // Every group that has a box or whose tasks do (its enclosing groups open): open or close it.
    bar = "<p class=\"groups\" id=\"groups\">Task groups: ";
    for (const auto& grp : d.groups())
      if (groups.visible(grp.id)) bar += toggle_link(v, groups, grp.id, groups.open().is_open(grp.id)) + " ";
    bar += "· <a href=\"" + esc(v.href("graph", v.run, "", std::nullopt, "*")) + "\">expand all</a> · <a href=\"" +
           esc(v.href("graph", v.run, "", std::nullopt, "")) + "\">collapse all</a></p>";
  }
  return bar + "<div class=\"scroll graph-wrap\">" + graph_svg(nodes, upstream) + "</div>";
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
         kv_row("State", paused ? "paused" : "active") + kv_row("Schedule", d.dataset_schedule() ? esc(d.schedule_summary()) + " <code>" + esc(d.dataset_schedule()->text()) + "</code>"
                                                      : "<code>" + esc(d.schedule().empty() ? "none" : d.schedule()) + "</code>") +
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
  v.open = open_groups::parse(r.param("open")).text();
  static const std::vector<std::pair<std::string, std::string>> tabs{
      {"grid", "Grid"}, {"graph", "Graph"}, {"gantt", "Gantt"}, {"duration", "Task duration"}, {"landing", "Landing times"},
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
  if (v.tab == "grid" || v.tab == "duration" || v.tab == "landing") {
    std::reverse(runs.begin(), runs.end());  // oldest on the left, as Airflow's grid
    std::vector<std::vector<task_instance_record>> cells;
    cells.reserve(runs.size());
    for (const auto& run : runs) cells.push_back(r.ctx.db.task_instances(d.id(), run.run_id));
    if (v.tab == "grid")
      body += grid_tab(r, d, runs, cells, v, more);
    else if (v.tab == "landing")
      body += "<h2>Landing times</h2><p class=\"dim\">Each task's landing time over the runs shown on the grid: from the end of the "
              "run's data interval to the end of the task instance (hover a line for its task).</p><div class=\"scroll\">" +
              landing_chart_svg(d, runs, cells) + "</div>";
    else
      body += "<h2>Task duration</h2><p class=\"dim\">Each task's duration over the runs shown on the grid (hover a line for its task).</p>"
              "<div class=\"scroll\">" + duration_chart_svg(d, runs, cells) + "</div>";
  } else if (v.tab == "graph" || v.tab == "gantt") {
    std::string picker = "<form method=\"get\" class=\"inline\" action=\"" + esc(dag_href(d.id())) +
                         "\"><input type=\"hidden\" name=\"tab\" value=\"" + v.tab + "\">" +
                         (v.open.empty() ? std::string() : "<input type=\"hidden\" name=\"open\" value=\"" + esc(v.open) + "\">") + "<label>Run <select name=\"run\" class=\"autosubmit\">";
    for (const auto& run : runs)
      picker += "<option value=\"" + esc(run.run_id) + "\"" + (selected && selected->run_id == run.run_id ? " selected" : "") + ">" +
                esc(when(run.logical_date) + " · " + std::string(to_string(run.state))) + "</option>";
    picker += "</select></label> <button>Show</button></form>";
    std::vector<task_instance_record> tis;
    if (selected) tis = r.ctx.db.task_instances(d.id(), selected->run_id);
    if (selected) scope.run_id = selected->run_id;
    if (v.tab == "graph") {
      body += "<h2>Graph</h2>" + (runs.empty() ? std::string() : picker) + graph_tab(d, tis, v);
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
