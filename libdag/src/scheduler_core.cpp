// The scheduler's pure decisions: trigger rules, retries, slots, run completion.
#include <dag/engine/scheduler_core.hpp>

#include <algorithm>
#include <limits>
#include <set>

#include <dag/core/error.hpp>

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

scheduled_dag::scheduled_dag(shared_definition d) : def(std::move(d)), graph(checked_graph(*def)), times(*def) {
  const auto& tasks = def->all_tasks();
  priority.resize(tasks.size());
  topo_position.resize(tasks.size());
  const auto& order = graph.topological_order();
  for (std::size_t p = 0; p < order.size(); ++p) topo_position[order[p]] = p;
  std::vector<int> weights(tasks.size());
  std::vector<bool> by_downstream(tasks.size()), by_upstream(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    weights[i] = tasks[i].settings.priority_weight;
    by_downstream[i] = tasks[i].settings.weights == weight_rule::downstream;
    by_upstream[i] = tasks[i].settings.weights == weight_rule::upstream;
  }
  const auto any = [](const std::vector<bool>& v) { return std::find(v.begin(), v.end(), true) != v.end(); };
  const auto below = any(by_downstream) ? graph.reach_weights(weights, true, by_downstream) : std::vector<long long>();
  const auto above = any(by_upstream) ? graph.reach_weights(weights, false, by_upstream) : std::vector<long long>();
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    long long p = weights[i];
    switch (tasks[i].settings.weights) {
      case weight_rule::downstream: p += below[i]; break;
      case weight_rule::upstream: p += above[i]; break;
      case weight_rule::absolute: break;
    }
    // As before, an int (the ready queue's key); a total past its range keeps the largest value.
    priority[i] = static_cast<int>(std::clamp<long long>(p, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
    limits_tasks = limits_tasks || tasks[i].settings.max_active_tis_per_dag.has_value();
    uses_past = uses_past || tasks[i].settings.depends_on_past;
  }
}

namespace {

using ready_entry = std::tuple<int, long long, long long>;

// Ready slots pop highest priority first, then earliest in topological order, then lowest slot
// (a mapped task's instances by map index).
ready_entry ready_key(const scheduled_dag& dag, std::size_t task, std::size_t slot) {
  return {dag.priority[task], -static_cast<long long>(dag.topo_position[task]), -static_cast<long long>(slot)};
}

std::size_t ready_slot(const ready_entry& key) { return static_cast<std::size_t>(-std::get<2>(key)); }

std::size_t task_of(const scheduled_dag& dag, const run_progress& p, std::size_t slot) {
  const std::size_t n = dag.def->all_tasks().size();
  return slot < n ? slot : p.slot_task[slot - n];
}

// The first pass over a run looks at every task; later passes only at the dirty ones.
void initialize(const scheduled_dag& dag, const std::vector<task_instance_record>& tis, run_progress& p) {
  const std::size_t n = dag.def->all_tasks().size();
  p = run_progress{};
  p.initialized = true;
  p.more_instances.resize(n);
  for (std::size_t s = n; s < tis.size(); ++s) {
    p.slot_task.push_back(task_of_slot(dag, tis, s));
    p.more_instances[p.slot_task.back()].push_back(s);
  }
  auto look_at = [&](std::size_t task, std::size_t s) {
    const task_state state = tis[s].state;
    if (!is_finished(state)) ++p.unfinished;
    if (state == task_state::none) p.dirty.push_back(task);
    else if (state == task_state::up_for_retry || state == task_state::up_for_reschedule) p.retrying.push_back(s);
    else if (state == task_state::scheduled) p.ready.push(ready_key(dag, task, s));
  };
  for (std::size_t i : dag.graph.topological_order()) {
    look_at(i, i);
    for (std::size_t s : p.more_instances[i]) look_at(i, s);
  }
}

// Adds the states of every instance of task `u` to `counts`.
void count_instances(const std::vector<task_instance_record>& tis, const run_progress& p, std::size_t u,
                     upstream_counts& counts) {
  counts.add(tis[u].state);
  for (std::size_t s : p.more_instances[u]) counts.add(tis[s].state);
}

bool all_finished(const std::vector<task_instance_record>& tis, const run_progress& p, std::size_t task) {
  if (!is_finished(tis[task].state)) return false;
  return std::all_of(p.more_instances[task].begin(), p.more_instances[task].end(),
                     [&](std::size_t s) { return is_finished(tis[s].state); });
}

}  // namespace

std::size_t task_of_slot(const scheduled_dag& dag, const std::vector<task_instance_record>& tis, std::size_t s) {
  const std::size_t n = dag.def->all_tasks().size();
  if (s < n) return s;
  const auto index = dag.def->index_of(tis[s].task_id);
  if (!index) throw error("task instance of unknown task '" + tis[s].task_id + "'");
  return *index;
}

std::vector<std::size_t> instance_slots(const scheduled_dag& dag, const std::vector<task_instance_record>& tis,
                                        std::size_t task) {
  std::vector<std::size_t> out{task};
  const std::string& id = dag.def->all_tasks()[task].id;
  for (std::size_t s = dag.def->all_tasks().size(); s < tis.size(); ++s)
    if (tis[s].task_id == id) out.push_back(s);
  return out;
}

void note_try_ended(const scheduled_dag& dag, run_progress& progress, std::size_t i, task_state state) {
  if (!progress.initialized) return;  // the next pass looks at everything anyway
  if (state == task_state::up_for_retry || state == task_state::up_for_reschedule) {
    progress.retrying.push_back(i);
    return;
  }
  if (is_finished(state)) {
    --progress.unfinished;
    for (std::size_t d : dag.graph.downstream(task_of(dag, progress, i))) progress.dirty.push_back(d);
  }
}

namespace {

// Airflow's PrevDagrunDep: every previous instance of task i (each map index of a mapped task,
// however many the previous run had) and with wait_for_downstream every instance of its direct
// downstream tasks ended success or skipped; a task the previous run lacks passes.
bool past_allows(const scheduled_dag& dag, const previous_run& past, std::size_t i) {
  const task_settings& s = dag.def->all_tasks()[i].settings;
  if (!s.depends_on_past || !past.tis) return true;
  const auto done = [&](std::size_t j) {
    const auto& tis = *past.tis;
    if (tis[j].task_id.empty()) return true;
    const auto slots = instance_slots(dag, tis, j);
    return std::all_of(slots.begin(), slots.end(), [&](std::size_t k) {
      return tis[k].state == task_state::success || tis[k].state == task_state::skipped;
    });
  };
  if (!done(i)) return false;
  if (s.wait_for_downstream)
    for (std::size_t d : dag.graph.downstream(i))
      if (!done(d)) return false;
  return true;
}

}  // namespace

run_step step_run(const scheduled_dag& dag, run_record& run, std::vector<task_instance_record>& tis,
                  run_progress& progress, timestamp now, slot_budget& budget, const previous_run& past,
                  const xcom_reader& xcoms) {
  run_step step;
  if (is_finished(run.state)) return step;
  if (!progress.initialized) initialize(dag, tis, progress);
  if (run.state == run_state::queued) {
    run.state = run_state::running;
    run.start_date = now;
    step.new_run_state = run_state::running;
  }
  const auto& tasks = dag.def->all_tasks();
  auto record_change = [&](std::size_t i, task_state before, int try_before, bool state_only = false) {
    step.changed.push_back({i, before, try_before, state_only, tis[i].start_date});
  };

  // dagrun_timeout: past it, the run fails and whatever has not finished is skipped (running
  // tries are to be stopped); before it, the deadline is a time to wake at.
  if (const auto& timeout = dag.def->dagrun_timeout(); timeout && run.start_date) {
    const timestamp deadline = *run.start_date + std::chrono::duration_cast<std::chrono::microseconds>(*timeout);
    if (now >= deadline) {
      for (std::size_t i = 0; i < tis.size(); ++i) {
        task_instance_record& ti = tis[i];
        if (is_finished(ti.state)) continue;
        record_change(i, ti.state, ti.try_number);
        if (ti.state == task_state::queued || ti.state == task_state::running) step.to_stop.push_back(i);
        ti.state = task_state::skipped;
        ti.end_date = now;
        ti.message = "the run exceeded its dagrun_timeout";
      }
      progress = run_progress{};
      run.state = run_state::failed;
      run.end_date = now;
      step.new_run_state = run_state::failed;
      return step;
    }
    step.wake_at = std::chrono::ceil<std::chrono::seconds>(deadline);
  }

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
    record_change(i, waiting, ti.try_number, true);
    progress.ready.push(ready_key(dag, task_of(dag, progress, i), i));
  }
  progress.retrying = std::move(still_waiting);

  // Why a mapped task has no instances: an empty list skips it, an error fails it.
  auto no_instances = [&](task_instance_record& ti, const map_expansion& expansion) {
    ti.state = expansion.error.empty() ? task_state::skipped : task_state::failed;
    ti.end_date = now;
    ti.message = expansion.error.empty() ? "mapped over an empty list: no instances" : expansion.error;
  };
  // New slots for instances `from` to `length` - 1 of mapped task i, all scheduled.
  auto add_instances = [&](std::size_t i, std::size_t from, std::size_t length) {
    if (length <= from) return;
    const task_instance_record first = tis[i];
    tis.reserve(tis.size() + length - from);
    for (std::size_t k = from; k < length; ++k) {
      task_instance_record more;
      more.dag_id = first.dag_id;
      more.run_id = first.run_id;
      more.task_id = first.task_id;
      more.map_index = static_cast<int>(k);
      more.state = task_state::scheduled;
      const std::size_t slot = tis.size();
      tis.push_back(std::move(more));
      progress.slot_task.push_back(i);
      progress.more_instances[i].push_back(slot);
      ++progress.unfinished;
      progress.ready.push(ready_key(dag, i, slot));
      record_change(slot, task_state::none, 0);
    }
  };
  // A mapped task that may run is expanded into its instances: slot i becomes map index 0 and
  // new slots hold the others, all scheduled.
  auto expand_into_slots = [&](std::size_t i) {
    const map_expansion expansion = expand_mapping(tasks[i], xcoms);
    task_instance_record& ti = tis[i];
    if (!expansion.error.empty() || expansion.length == 0) return no_instances(ti, expansion);
    step.expanded.push_back(i);
    ti.map_index = 0;
    ti.state = task_state::scheduled;
    progress.ready.push(ready_key(dag, i, i));
    add_instances(i, 1, expansion.length);
  };
  // A mapped task whose every instance was cleared expands again, as Airflow revises its map
  // indexes: the list it maps over may have changed (its upstream ran again). Instances past the
  // new length are `removed` (the first one skipped or failed as an expansion to nothing is),
  // missing ones are added scheduled, and `waiting` keeps those left to decide as usual.
  auto revise_slots = [&](std::size_t i, std::vector<std::size_t>& waiting_slots) {
    const map_expansion expansion = expand_mapping(tasks[i], xcoms);
    const std::size_t length = expansion.error.empty() ? expansion.length : 0;
    std::size_t had = 0;
    std::vector<std::size_t> kept;
    for (std::size_t s : waiting_slots) {
      task_instance_record& ti = tis[s];
      const auto k = static_cast<std::size_t>(ti.map_index);
      had = std::max(had, k + 1);
      if (k < length) {
        kept.push_back(s);
        continue;
      }
      if (length == 0 && s == i) {
        no_instances(ti, expansion);
      } else {
        ti.state = task_state::removed;
        ti.end_date = now;
        ti.message = "removed: the list it maps over has " + std::to_string(length) + " values now";
      }
      record_change(s, task_state::none, ti.try_number);
      --progress.unfinished;
    }
    waiting_slots = std::move(kept);
    add_instances(i, had, length);
  };

  // Dirty tasks in topological order, so a skip or failure cascades through the run in one pass.
  auto later = [&](std::size_t a, std::size_t b) { return dag.topo_position[a] > dag.topo_position[b]; };
  std::priority_queue<std::size_t, std::vector<std::size_t>, decltype(later)> work(later, std::move(progress.dirty));
  progress.dirty.clear();
  std::size_t last = static_cast<std::size_t>(-1);
  std::vector<std::size_t> waiting;  // the dirty task's instances still in `none`
  while (!work.empty()) {
    const std::size_t i = work.top();
    work.pop();
    if (i == last) continue;  // listed twice
    last = i;
    waiting.clear();
    if (tis[i].state == task_state::none) waiting.push_back(i);
    for (std::size_t s : progress.more_instances[i])
      if (tis[s].state == task_state::none) waiting.push_back(s);
    if (waiting.empty()) continue;
    upstream_counts counts;
    for (std::size_t u : dag.graph.upstream(i)) count_instances(tis, progress, u, counts);
    const trigger_decision decision = evaluate(tasks[i].settings.trigger, counts);
    if (decision == trigger_decision::wait) continue;
    if (decision == trigger_decision::run && !past_allows(dag, past, i)) continue;  // waits, in none, for the previous run
    if (decision == trigger_decision::run && tasks[i].mapping.mapped() && tis[i].map_index < 0) {
      expand_into_slots(i);
      record_change(i, task_state::none, tis[i].try_number);
      if (is_finished(tis[i].state)) {
        --progress.unfinished;
        for (std::size_t d : dag.graph.downstream(i)) work.push(d);
      }
      continue;
    }
    if (decision == trigger_decision::run && tasks[i].mapping.mapped() &&
        waiting.size() == 1 + progress.more_instances[i].size())
      revise_slots(i, waiting);
    for (std::size_t s : waiting) {
      task_instance_record& ti = tis[s];
      const task_state before = ti.state;
      switch (decision) {
        case trigger_decision::wait:
          break;
        case trigger_decision::run:
          ti.state = task_state::scheduled;
          progress.ready.push(ready_key(dag, i, s));
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
      // Scheduled: the state alone changed, unless the instances were revised (mapped tasks).
      record_change(s, before, ti.try_number, decision == trigger_decision::run && !tasks[i].mapping.mapped());
      if (is_finished(ti.state)) --progress.unfinished;
    }
    if (all_finished(tis, progress, i))
      for (std::size_t d : dag.graph.downstream(i)) work.push(d);
  }

  // Ready slots by priority (Airflow's order), while slots allow. A task at its
  // max_active_tis_per_dag (counting its mapped instances) waits, still ready, for the next pass.
  if (dag.limits_tasks && budget.task_running.size() < tasks.size()) budget.task_running.resize(tasks.size(), 0);
  std::vector<ready_entry> held;
  while (!progress.ready.empty() && budget.free_slots > 0 && budget.dag_running < dag.def->max_active_tasks()) {
    const auto key = progress.ready.top();
    const std::size_t i = ready_slot(key);
    progress.ready.pop();
    task_instance_record& ti = tis[i];
    if (ti.state != task_state::scheduled) continue;
    const std::size_t task_index = task_of(dag, progress, i);
    const task_settings& settings = tasks[task_index].settings;
    int* pool_open = nullptr;  // the task's pool's open slots, when pools count
    if (budget.pool_open) {
      const auto pool = budget.pool_open->find(settings.pool);
      if (pool == budget.pool_open->end() || pool->second < settings.pool_slots) {
        held.push_back(key);  // a pool short of slots (or missing) holds the task, still ready
        step.pool_short = true;
        // Every pool full: no ready task can start (each takes a slot at least), and the rest stay
        // where they are. Popping a backlog of thousands only to push it back made each pass cost
        // n log n while a queue executor's default pool was the limit.
        if (std::all_of(budget.pool_open->begin(), budget.pool_open->end(), [](const auto& p) { return p.second <= 0; }))
          break;
        continue;
      }
      pool_open = &pool->second;
    }
    if (const auto& limit = settings.max_active_tis_per_dagrun) {
      // Instances of this task in flight in this run (a mapped task's, Airflow's per-run bound).
      const auto in_flight = [&](std::size_t s) {
        return tis[s].state == task_state::queued || tis[s].state == task_state::running;
      };
      const auto& more = progress.more_instances[task_index];
      const auto busy = static_cast<int>(in_flight(task_index)) +
                        static_cast<int>(std::count_if(more.begin(), more.end(), in_flight));
      if (busy >= *limit) {
        held.push_back(key);
        continue;
      }
    }
    if (const auto& limit = settings.max_active_tis_per_dag) {
      if (budget.task_running[task_index] >= *limit) {
        held.push_back(key);
        continue;
      }
      ++budget.task_running[task_index];
    }
    if (pool_open) *pool_open -= settings.pool_slots;
    ti.pool = settings.pool;
    ti.pool_slots = settings.pool_slots;
    ti.queue = settings.queue;
    const auto it = std::find_if(step.changed.begin(), step.changed.end(), [&](const task_change& c) { return c.index == i; });
    if (it == step.changed.end()) record_change(i, ti.state, ti.try_number);
    else it->state_only = false;  // started too
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

  // Everything left waits on a previous run that has ended: nothing will move it but a clear.
  if (dag.uses_past && past.tis && past.finished && past.give_up_when_blocked && progress.unfinished > 0 &&
      progress.ready.empty() && progress.retrying.empty() && std::all_of(tis.begin(), tis.end(), [](const auto& ti) {
        return is_finished(ti.state) || ti.state == task_state::none;
      })) {
    for (std::size_t i = 0; i < tis.size(); ++i)
      if (tis[i].state == task_state::none && !past_allows(dag, past, task_of(dag, progress, i))) {
        record_change(i, tis[i].state, tis[i].try_number);
        tis[i].message = std::string(gave_up_on_past);
      }
    run.state = run_state::failed;
    run.end_date = now;
    step.new_run_state = run_state::failed;
    return step;
  }

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
  std::vector<bool> leaf(dag.def->all_tasks().size(), false);
  for (std::size_t l : dag.graph.leaves()) leaf[l] = true;
  for (std::size_t s = 0; s < tis.size(); ++s) {
    if (!leaf[task_of_slot(dag, tis, s)]) continue;
    const task_state state = tis[s].state;
    if (state != task_state::success && state != task_state::skipped && state != task_state::removed) return run_state::failed;
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
    return try_record_of(ti);  // from the first execution (first_start_date)
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
    if (auto index = dag.def->index_of(id)) named.push_back(*index);
    else if (dag.def->is_group(id)) named = dag.def->group_roots(id);
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
  const task_flow& flow = dag.def->all_tasks()[i].flow;
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
  const std::size_t task_index = task_of_slot(dag, tis, i);
  const task& t = dag.def->all_tasks()[task_index];
  flow_decision decision;
  if (result.outcome == try_outcome::success && t.flow.rule != flow_rule::none) {
    decision = decide_flow(dag, run, task_index, result.xcom, ended);
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
