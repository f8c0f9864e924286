// Live updates: pages name what they show (a live_scope); app.js polls /ui/live.json for it every
// few seconds while something is in progress, recolours the cells whose state changed, and
// reloads the page when a run finishes or a new one appears. Idle pages do not poll. A task
// group's state is there too, under its id, as its row and box show it.
#include "ui.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include <dag/model/operations.hpp>

namespace dag::detail::ui {

std::string live_url(const live_scope& scope) {
  std::string out = "/ui/live.json";
  std::string q;
  if (!scope.dag_id.empty()) q += "&dag=" + url_encoded(scope.dag_id);
  if (scope.offset) q += "&offset=" + std::to_string(scope.offset);
  if (scope.limit) q += "&limit=" + std::to_string(scope.limit);
  if (!scope.run_id.empty()) q += "&run=" + url_encoded(scope.run_id);
  if (!q.empty()) out += "?" + q.substr(1);
  return out;
}

std::vector<run_record> live_runs(const request& r, const live_scope& scope) {
  std::vector<run_record> out;
  if (scope.dag_id.empty()) {
    for (const auto& d : r.ctx.dags) {
      run_filter newest;
      newest.dag_id = d->id();
      newest.limit = 1;
      for (auto& run : r.ctx.db.runs(newest)) out.push_back(std::move(run));
    }
    return out;
  }
  if (scope.limit) {
    run_filter filter;
    filter.dag_id = scope.dag_id;
    filter.limit = scope.offset + scope.limit;
    auto runs = r.ctx.db.runs(filter);
    for (std::size_t i = scope.offset; i < runs.size(); ++i) out.push_back(std::move(runs[i]));
  }
  if (!scope.run_id.empty() && std::none_of(out.begin(), out.end(), [&](const run_record& x) { return x.run_id == scope.run_id; }))
    if (auto run = r.ctx.db.find_run(scope.dag_id, scope.run_id)) out.push_back(std::move(*run));
  return out;
}

std::string live_signature(const std::vector<run_record>& runs) {
  std::string sig;
  for (const auto& run : runs) sig += run.run_id + (is_finished(run.state) ? "=" + std::string(to_string(run.state)) : "") + ";";
  return sig;
}

bool any_active(const std::vector<run_record>& runs) {
  return std::any_of(runs.begin(), runs.end(), [](const run_record& x) { return !is_finished(x.state); });
}

void make_live(shell& frame, const live_scope& scope, const std::vector<run_record>& runs) {
  frame.live = live_url(scope);
  frame.sig = live_signature(runs);
  frame.busy = any_active(runs);
}

http_response live_json(const request& r) {
  live_scope scope;
  scope.dag_id = r.param("dag");
  scope.run_id = r.param("run");
  auto number = [&](const std::string& name, std::size_t most) {
    const std::string text = r.param(name);
    if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != std::string::npos) return std::size_t{0};
    return std::min(static_cast<std::size_t>(std::stoul(text)), most);
  };
  scope.offset = number("offset", 1000000);
  scope.limit = number("limit", 100);
  const definition* d = scope.dag_id.empty() ? nullptr : find_dag(r, scope.dag_id);
  if (!scope.dag_id.empty() && !d)
    return {404, "application/json", json_dump(nlohmann::json{{"detail", "no DAG '" + scope.dag_id + "' is loaded"}})};
  const auto runs = live_runs(r, scope);
  std::optional<group_view> groups;
  if (d) groups.emplace(*d, open_groups{});
  nlohmann::json states = nlohmann::json::object();
  for (const auto& run : runs) {
    // Every DAG's newest run (the list) needs no task states.
    if (scope.dag_id.empty()) {
      states[list_key(run.dag_id, run.run_id)] = std::string(to_string(run.state));
      continue;
    }
    states[live_key(run.run_id)] = std::string(to_string(run.state));
    const auto tis = r.ctx.db.task_instances(run.dag_id, run.run_id);
    // A mapped task by its instances' most relevant state, as its grid cell and graph box show it
    // (not by whichever instance comes last).
    for (const auto& [task_id, shown] : most_relevant_instances(tis))
      states[live_key(run.run_id, task_id)] = std::string(to_string(shown->state));
    // Task groups by their tasks' most relevant state, as the grid and the graph show them.
    for (const auto& [group, state] : groups->states(tis)) states[live_key(run.run_id, group)] = std::string(to_string(state));
  }
  const nlohmann::json out{{"busy", any_active(runs)}, {"sig", live_signature(runs)}, {"states", states}};
  http_response response{200, "application/json", json_dump(out)};
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

}  // namespace dag::detail::ui
