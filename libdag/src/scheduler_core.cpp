// The scheduler's pure decisions: trigger rules, retries, slots, run completion.
#include <dag/engine/scheduler_core.hpp>

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

namespace dag {
namespace {

task_graph checked_graph(const definition& d) {
  std::vector<definition_error> problems;
  task_graph g = task_graph::build(d, problems);
  if (!problems.empty()) throw problems.front();
  return g;
}

}  // namespace

scheduled_dag::scheduled_dag(definition d) : def(std::move(d)), graph(checked_graph(def)), times(def) {
  const auto& tasks = def.all_tasks();
  priority.resize(tasks.size());
  topo_position.resize(tasks.size());
  const auto& order = graph.topological_order();
  for (std::size_t p = 0; p < order.size(); ++p) topo_position[order[p]] = p;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    int p = tasks[i].settings.priority_weight;
    switch (tasks[i].settings.weights) {
      case weight_rule::downstream:
        for (std::size_t j : graph.all_downstream(i)) p += tasks[j].settings.priority_weight;
        break;
      case weight_rule::upstream:
        for (std::size_t j : graph.all_upstream(i)) p += tasks[j].settings.priority_weight;
        break;
      case weight_rule::absolute:
        break;
    }
    priority[i] = p;
    limits_tasks = limits_tasks || tasks[i].settings.max_active_tis_per_dag.has_value();
  }
}

namespace {

// Ready tasks pop highest priority first, then earliest in topological order.
std::pair<int, long long> ready_key(const scheduled_dag& dag, std::size_t i) {
  return {dag.priority[i], -static_cast<long long>(dag.topo_position[i])};
}

std::size_t ready_index(const scheduled_dag& dag, const std::pair<int, long long>& key) {
  return dag.graph.topological_order()[static_cast<std::size_t>(-key.second)];
}

// The first pass over a run looks at every task; later passes only at the dirty ones.
void initialize(const scheduled_dag& dag, const std::vector<task_instance_record>& tis, run_progress& p) {
  p = run_progress{};
  p.initialized = true;
  for (std::size_t i : dag.graph.topological_order()) {
    const task_state s = tis[i].state;
    if (!is_finished(s)) ++p.unfinished;
    if (s == task_state::none) p.dirty.push_back(i);
    else if (s == task_state::up_for_retry || s == task_state::up_for_reschedule) p.retrying.push_back(i);
    else if (s == task_state::scheduled) p.ready.push(ready_key(dag, i));
  }
}

}  // namespace

void note_try_ended(const scheduled_dag& dag, run_progress& progress, std::size_t i, task_state state) {
  if (!progress.initialized) return;  // the next pass looks at everything anyway
  if (state == task_state::up_for_retry || state == task_state::up_for_reschedule) {
    progress.retrying.push_back(i);
    return;
  }
  if (is_finished(state)) {
    --progress.unfinished;
    for (std::size_t d : dag.graph.downstream(i)) progress.dirty.push_back(d);
  }
}

run_step step_run(const scheduled_dag& dag, run_record& run, std::vector<task_instance_record>& tis,
                  run_progress& progress, timestamp now, slot_budget& budget) {
  run_step step;
  if (is_finished(run.state)) return step;
  if (!progress.initialized) initialize(dag, tis, progress);
  if (run.state == run_state::queued) {
    run.state = run_state::running;
    run.start_date = now;
    step.new_run_state = run_state::running;
  }
  const auto& tasks = dag.def.all_tasks();
  auto record_change = [&](std::size_t i, task_state before, int try_before) {
    step.changed.push_back({i, before, try_before});
  };

  // Retries whose delay has passed, and rescheduled tries whose next execution is due, are ready again.
  std::vector<std::size_t> still_waiting;
  for (std::size_t i : progress.retrying) {
    task_instance_record& ti = tis[i];
    const task_state waiting = ti.state;
    if (waiting != task_state::up_for_retry && waiting != task_state::up_for_reschedule) continue;
    if (ti.retry_at && *ti.retry_at > now) {
      const auto at = std::chrono::ceil<std::chrono::seconds>(*ti.retry_at);
      step.wake_at = step.wake_at ? std::min(*step.wake_at, at) : at;
      still_waiting.push_back(i);
      continue;
    }
    ti.state = task_state::scheduled;
    record_change(i, waiting, ti.try_number);
    progress.ready.push(ready_key(dag, i));
  }
  progress.retrying = std::move(still_waiting);

  // Dirty tasks in topological order, so a skip or failure cascades through the run in one pass.
  auto later = [&](std::size_t a, std::size_t b) { return dag.topo_position[a] > dag.topo_position[b]; };
  std::priority_queue<std::size_t, std::vector<std::size_t>, decltype(later)> work(later, std::move(progress.dirty));
  progress.dirty.clear();
  std::size_t last = static_cast<std::size_t>(-1);
  while (!work.empty()) {
    const std::size_t i = work.top();
    work.pop();
    if (i == last) continue;  // listed twice
    last = i;
    task_instance_record& ti = tis[i];
    if (ti.state != task_state::none) continue;
    upstream_counts counts;
    for (std::size_t u : dag.graph.upstream(i)) counts.add(tis[u].state);
    const task_state before = ti.state;
    switch (evaluate(tasks[i].settings.trigger, counts)) {
      case trigger_decision::wait:
        continue;
      case trigger_decision::run:
        ti.state = task_state::scheduled;
        progress.ready.push(ready_key(dag, i));
        break;
      case trigger_decision::skip:
        ti.state = task_state::skipped;
        ti.end_date = now;
        break;
      case trigger_decision::upstream_failed:
        ti.state = task_state::upstream_failed;
        ti.end_date = now;
        break;
    }
    record_change(i, before, ti.try_number);
    if (is_finished(ti.state)) {
      --progress.unfinished;
      for (std::size_t d : dag.graph.downstream(i)) work.push(d);
    }
  }

  // Ready tasks by priority (Airflow's order), while slots allow. A task at its
  // max_active_tis_per_dag waits, still ready, for the next pass.
  if (dag.limits_tasks && budget.task_running.size() < tasks.size()) budget.task_running.resize(tasks.size(), 0);
  std::vector<std::pair<int, long long>> held;
  while (!progress.ready.empty() && budget.free_slots > 0 && budget.dag_running < dag.def.max_active_tasks()) {
    const auto key = progress.ready.top();
    const std::size_t i = ready_index(dag, key);
    progress.ready.pop();
    task_instance_record& ti = tis[i];
    if (ti.state != task_state::scheduled) continue;
    if (const auto& limit = tasks[i].settings.max_active_tis_per_dag) {
      if (budget.task_running[i] >= *limit) {
        held.push_back(key);
        continue;
      }
      ++budget.task_running[i];
    }
    const auto it = std::find_if(step.changed.begin(), step.changed.end(), [&](const task_change& c) { return c.index == i; });
    if (it == step.changed.end()) record_change(i, ti.state, ti.try_number);
    ti.state = task_state::queued;
    // A rescheduled try runs again under its own number (its log and record continue).
    if (!ti.first_start_date) ti.try_number += 1;
    ti.start_date.reset();
    ti.end_date.reset();
    ti.retry_at.reset();
    ti.exit_code.reset();
    ti.pid = 0;
    ti.message.clear();
    --budget.free_slots;
    ++budget.dag_running;
    step.to_start.push_back(i);
  }
  for (const auto& key : held) progress.ready.push(key);

  if (progress.unfinished == 0) {
    if (auto outcome = run_outcome(dag, tis)) {
      run.state = *outcome;
      run.end_date = now;
      step.new_run_state = *outcome;
    }
  }
  return step;
}

std::optional<run_state> run_outcome(const scheduled_dag& dag, const std::vector<task_instance_record>& tis) {
  for (const auto& ti : tis)
    if (!is_finished(ti.state)) return std::nullopt;
  for (std::size_t leaf : dag.graph.leaves()) {
    const task_state s = tis[leaf].state;
    if (s != task_state::success && s != task_state::skipped && s != task_state::removed) return run_state::failed;
  }
  return run_state::success;
}

namespace {

// A try that ends after being rescheduled started with its first execution: its record spans
// them all, and the instance is no longer between executions.
void end_rescheduled_span(task_instance_record& ti) {
  if (ti.first_start_date) ti.start_date = ti.first_start_date;
  ti.first_start_date.reset();
}

// A failed try retries while tries remain: try n of a task with `retries` r is retried when n <= r.
void fail_or_retry(const task& t, task_instance_record& ti, timestamp ended) {
  // Tries made before the last clear do not count (the cleared task has its retries back).
  const int counted = ti.try_number - ti.cleared_tries;
  if (counted <= t.settings.retry.retries) {
    const std::string key = ti.dag_id + "#" + ti.task_id + "#" + ti.run_id;
    ti.state = task_state::up_for_retry;
    ti.retry_at = ended + std::chrono::duration_cast<std::chrono::microseconds>(
                              retry_delay_for(t.settings.retry, ti.try_number + 1, key));
  } else {
    ti.state = task_state::failed;
  }
}
}  // namespace

try_record finish_try(const task& t, task_instance_record& ti, const operator_result& result, timestamp started,
                      timestamp ended) {
  ti.start_date = started;
  ti.end_date = ended;
  ti.exit_code = result.exit_code;
  ti.message = result.message;
  if (result.outcome == try_outcome::rescheduled) {
    // Airflow's up_for_reschedule: the slot is free until retry_at, the try number is kept, and
    // the try's record spans every execution from the first.
    if (!ti.first_start_date) ti.first_start_date = started;
    ti.state = task_state::up_for_reschedule;
    ti.retry_at = ended + std::chrono::duration_cast<std::chrono::microseconds>(result.reschedule_after);
    try_record r = try_record_of(ti);
    r.start_date = ti.first_start_date;
    return r;
  }
  end_rescheduled_span(ti);
  switch (result.outcome) {
    case try_outcome::success: ti.state = task_state::success; break;
    case try_outcome::skipped: ti.state = task_state::skipped; break;
    case try_outcome::failed: fail_or_retry(t, ti, ended); break;
    case try_outcome::rescheduled: break;  // handled above
  }
  return try_record_of(ti);
}

try_record lose_try(const task& t, task_instance_record& ti, const std::string& reason, timestamp now) {
  end_rescheduled_span(ti);
  if (!ti.start_date) ti.start_date = now;
  ti.end_date = now;
  ti.message = reason;
  ti.exit_code.reset();
  fail_or_retry(t, ti, now);
  return try_record_of(ti);
}

namespace {

std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

// The ids a branch's XCom names: one id (bare or a JSON string), a JSON list of ids, or nothing
// (empty, null: follow no task). nullopt when it is JSON of another shape.
std::optional<std::vector<std::string>> named_ids(const std::optional<std::string>& xcom) {
  const std::string text = xcom ? trimmed(*xcom) : std::string();
  if (text.empty() || text == "null" || text == "None") return std::vector<std::string>{};
  if (text.front() != '[' && text.front() != '"' && text.front() != '{') return std::vector<std::string>{text};
  const auto value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_string()) return std::vector<std::string>{value.get<std::string>()};
  if (!value.is_array()) return std::nullopt;
  std::vector<std::string> ids;
  for (const auto& item : value) {
    if (!item.is_string()) return std::nullopt;
    ids.push_back(item.get<std::string>());
  }
  return ids;
}

// Airflow's skip_all_except: the followed tasks (a group stands for its roots) and everything
// downstream of them stay; the branch's other direct downstream tasks are skipped.
flow_decision follow_only(const scheduled_dag& dag, std::size_t i, const std::vector<std::string>& ids) {
  flow_decision out;
  std::set<std::size_t> kept;
  std::string unknown;
  for (const auto& id : ids) {
    std::vector<std::size_t> named;
    if (auto index = dag.def.index_of(id)) named.push_back(*index);
    else if (dag.def.is_group(id)) named = dag.def.group_roots(id);
    else unknown += (unknown.empty() ? "'" : ", '") + id + "'";
    for (std::size_t n : named) {
      kept.insert(n);
      for (std::size_t d : dag.graph.all_downstream(n)) kept.insert(d);
    }
  }
  if (!unknown.empty()) {
    out.error = "branch: the XCom names no task of the DAG: " + unknown;
    return out;
  }
  for (std::size_t d : dag.graph.downstream(i))
    if (!kept.contains(d)) out.skip.push_back(d);
  return out;
}

// Airflow's LatestOnlyOperator: a run is the latest when now lies in the interval of the run
// after it; manual and dataset-triggered runs always are.
bool is_latest_run(const scheduled_dag& dag, const run_record& run, timestamp now) {
  if (run.type == run_type::manual || run.type == run_type::dataset_triggered) return true;
  const auto next = dag.times.next_run(run.interval);
  if (!next) return true;
  return next->interval.start < now && now <= next->interval.end;
}

}  // namespace

bool xcom_truthy(const std::optional<std::string>& xcom) {
  if (!xcom) return false;
  static const std::set<std::string, std::less<>> falsy{"",     "false", "False", "FALSE", "0",  "no", "off",
                                                        "null", "None",  "[]",    "{}",    "\"\""};
  return !falsy.contains(trimmed(*xcom));
}

flow_decision decide_flow(const scheduled_dag& dag, const run_record& run, std::size_t i,
                          const std::optional<std::string>& xcom, timestamp now) {
  const task_flow& flow = dag.def.all_tasks()[i].flow;
  flow_decision out;
  switch (flow.rule) {
    case flow_rule::none:
      break;
    case flow_rule::branch: {
      if (flow.follow_if_true) return follow_only(dag, i, xcom_truthy(xcom) ? *flow.follow_if_true : *flow.follow_if_false);
      auto ids = named_ids(xcom);
      if (!ids) {
        out.error = "branch: the XCom must name a task id, a JSON list of task ids, or nothing; got '" + trimmed(*xcom) + "'";
        return out;
      }
      return follow_only(dag, i, *ids);
    }
    case flow_rule::short_circuit:
      if (xcom_truthy(xcom)) break;
      out.skip = flow.ignore_downstream_trigger_rules ? dag.graph.all_downstream(i) : dag.graph.downstream(i);
      break;
    case flow_rule::latest_only:
      if (!is_latest_run(dag, run, now)) out.skip = dag.graph.downstream(i);
      break;
  }
  return out;
}

try_end end_try(const scheduled_dag& dag, const run_record& run, std::vector<task_instance_record>& tis,
                run_progress& progress, std::size_t i, operator_result result, timestamp started, timestamp ended) {
  const task& t = dag.def.all_tasks()[i];
  flow_decision decision;
  if (result.outcome == try_outcome::success && t.flow.rule != flow_rule::none) {
    decision = decide_flow(dag, run, i, result.xcom, ended);
    if (!decision.error.empty()) result = operator_result::failed(decision.error);
  }
  try_end out;
  out.record = finish_try(t, tis[i], result, started, ended);
  note_try_ended(dag, progress, i, tis[i].state);
  if (tis[i].state != task_state::success) return out;
  for (std::size_t d : decision.skip) {
    task_instance_record& ti = tis[d];
    // Only tasks not handed to an executor yet: a running try is not taken back.
    if (ti.state != task_state::none && ti.state != task_state::scheduled) continue;
    out.skipped.push_back({d, ti.state, ti.try_number});
    ti.state = task_state::skipped;
    ti.end_date = ended;
    ti.message = "skipped by " + t.id;
    note_try_ended(dag, progress, d, ti.state);
  }
  return out;
}

}  // namespace dag
