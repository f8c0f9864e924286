/// @file Domain operations (dag/model/operations.hpp): trigger, clear, mark, pause, tries.

#include <dag/model/operations.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include <dag/core/error.hpp>
#include <dag/core/json_text.hpp>
#include <dag/core/params.hpp>
#include <dag/core/suggest.hpp>
#include <dag/engine/engine.hpp>
#include <dag/engine/scheduler_core.hpp>
#include <dag/graph/task_graph.hpp>

namespace dag {
namespace {

/// The graph of `dag`, whose relatives clear and mark select.
task_graph graph_of(const definition& dag) {
  std::vector<definition_error> problems;
  task_graph graph = task_graph::build(dag, problems);
  if (!problems.empty()) throw usage_error("DAG '" + dag.id() + "' is not valid: " + problems.front().what());
  return graph;
}

/// The task ids of `dag` (whose graph is `graph`) that `matches` selects, with everything upstream
/// and/or downstream of them; every task when `matches` is empty.
std::set<std::string> select_tasks(const definition& dag, const task_graph& graph,
                                   const std::function<bool(const std::string&)>& matches, bool upstream, bool downstream) {
  const auto& tasks = dag.all_tasks();
  std::set<std::string> out;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (matches && !matches(tasks[i].id)) continue;
    out.insert(tasks[i].id);
    if (upstream)
      for (std::size_t u : graph.all_upstream(i)) out.insert(tasks[u].id);
    if (downstream)
      for (std::size_t d : graph.all_downstream(i)) out.insert(tasks[d].id);
  }
  return out;
}

/// Puts `ti` back to `none` in `changes` (state, times of the ended try, retries), with its XComs.
void add_clear(change_set& changes, task_instance_record ti) {
  const task_state expected = ti.state;
  // The try number stays: the next try is counted after the ones already made (Airflow), and
  // the retries start over.
  ti.state = task_state::none;
  ti.end_date.reset();
  ti.retry_at.reset();
  ti.first_start_date.reset();
  ti.cleared_tries = ti.try_number;
  ti.message.clear();
  changes.xcom_deletes.push_back({ti.dag_id, ti.run_id, ti.task_id, "", "", ti.map_index});  // Airflow clears them too
  changes.task_instances.push_back({expected, ti.try_number, std::move(ti)});
}

bool is_failure(task_state s) { return s == task_state::failed || s == task_state::upstream_failed; }

/// How often an operation reads and writes again when a scheduler moved the same run on between
/// its read and its write: each attempt is short, so a few cover any realistic race.
constexpr int max_attempts = 5;

/// Runs `attempt` (which reads the store and returns a change set with what it reports) until its
/// change set is written whole; a dry run or an empty change set writes nothing. Throws dag::error
/// naming `what` when every attempt lost a race.
template <class Attempt>
std::vector<task_instance_ref> write_whole(store& s, const char* what, bool dry_run, Attempt attempt) {
  for (int i = 0; i < max_attempts; ++i) {
    auto [changes, report] = attempt();
    if (dry_run || changes.empty()) return report;
    changes.all_or_nothing = true;  // never half a clear or half a mark
    if (s.apply(changes).applied) return report;
  }
  throw conflict_error(std::string("the run kept changing while being ") + what + " (" + std::to_string(max_attempts) +
              " attempts); try again");
}

}  // namespace

std::string checked_conf(const std::string& conf, const std::string& what) {
  if (conf.size() > max_conf_bytes)
    throw usage_error(what + ": " + std::to_string(conf.size()) + " bytes is more than the " +
                      std::to_string(max_conf_bytes) + " a run's conf may have");
  if (json_nesting_depth(conf, max_conf_depth) > max_conf_depth)
    throw usage_error(what + ": nested more than " + std::to_string(max_conf_depth) + " levels deep");
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(conf);
  } catch (const nlohmann::json::exception& e) {  // a parse error, or a number out of range (1e400)
    // nlohmann's message after its "[json.exception.parse_error.101] " tag: where and why.
    const std::string why = e.what();
    const auto tag_end = why.find("] ");
    throw usage_error(what + ": not valid JSON: " + (tag_end == std::string::npos ? why : why.substr(tag_end + 2)));
  }
  if (!parsed.is_object()) throw usage_error(what + ": expected a JSON object");
  return json_dump(parsed);
}

std::string checked_conf(const definition& dag, const std::string& conf, const std::string& what) {
  std::string checked = checked_conf(conf, what);
  if (!dag.conf_overrides_params()) return checked;
  const auto parsed = nlohmann::json::parse(checked);
  for (const auto& [name, schema] : dag.param_schemas()) {
    if (!parsed.contains(name)) continue;
    const std::string problem = param_problem(schema, json_dump(parsed[name]));
    if (!problem.empty()) throw usage_error(what + ": param '" + name + "': " + problem);
  }
  return checked;
}

std::optional<run_record> trigger_run(store& s, const definition& dag, time_point logical_date, const std::string& conf,
                                      const std::string& note, const std::string& run_id) {
  const std::string checked = checked_conf(dag, conf);
  // Its scheduled form borrows `dag` (an alias that owns nothing): it lives only in this call.
  const scheduled_dag borrowed(shared_definition(shared_definition(), &dag));
  auto run = create_run_record(s, borrowed, run_type::manual, logical_date, checked, run_id);
  if (run && !note.empty()) {
    s.set_note(run->dag_id, run->run_id, "", note);
    run->note = note;
  }
  return run;
}

void set_paused(store& s, const std::string& dag_id, bool paused) { s.set_paused(dag_id, paused); }

std::vector<try_record> tries_of(store& s, const std::string& dag_id, const std::string& run_id,
                                 const std::string& task_id, int map_index) {
  return s.tries(dag_id, run_id, task_id, map_index);
}

std::optional<try_record> find_try(store& s, const std::string& dag_id, const std::string& run_id,
                                   const std::string& task_id, int try_number, int map_index) {
  for (auto& t : tries_of(s, dag_id, run_id, task_id, map_index))
    if (t.try_number == try_number) return std::move(t);
  return std::nullopt;
}

std::map<std::string, const task_instance_record*> most_relevant_instances(const std::vector<task_instance_record>& tis) {
  std::map<std::string, const task_instance_record*> out;
  for (const auto& ti : tis)
    if (auto& shown = out[ti.task_id]; !shown || most_relevant(shown->state, ti.state) != shown->state) shown = &ti;
  return out;
}

std::pair<std::string, std::size_t> log_since(const std::string& path, std::size_t from, std::size_t max_bytes) {
  if (from == 0) return log_start(path);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {"", from};
  const auto size = static_cast<std::size_t>(in.tellg());
  if (from >= size) return {"", from};
  const std::size_t count = std::min(size - from, max_bytes);
  std::string out(count, '\0');
  in.seekg(static_cast<std::streamoff>(from));
  in.read(out.data(), static_cast<std::streamsize>(count));
  return {out, from + count};
}

std::string log_excerpt(const std::string& path, std::size_t head_bytes, std::size_t tail_bytes) {
  return log_start(path, head_bytes, tail_bytes).first;
}

std::pair<std::string, std::size_t> log_start(const std::string& path, std::size_t head_bytes, std::size_t tail_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {"", 0};
  const auto size = static_cast<std::size_t>(in.tellg());
  const auto read = [&](std::size_t from, std::size_t count) {
    in.seekg(static_cast<std::streamoff>(from));
    std::string part(count, '\0');
    in.read(part.data(), static_cast<std::streamsize>(count));
    part.resize(static_cast<std::size_t>(in.gcount()));  // the file may have shrunk meanwhile
    return part;
  };
  if (size <= head_bytes + tail_bytes) {
    std::string whole = read(0, size);
    const std::size_t end = whole.size();
    return {std::move(whole), end};
  }
  std::string head = read(0, head_bytes);
  if (!head.ends_with('\n')) head += '\n';
  return {head + "[dagrun] " + std::to_string(size - head_bytes - tail_bytes) +
              " bytes of this log are left out here (the whole log: its download link)\n" + read(size - tail_bytes, tail_bytes),
          size};
}

std::vector<task_instance_ref> clear_task_instances(store& s, const clear_selection& which, const definition* dag) {
  if ((which.upstream || which.downstream) && dag == nullptr)
    throw usage_error("clearing upstream or downstream tasks needs DAG '" + which.dag_id + "' to be loaded");
  // With relatives the selection is a set of task ids from the DAG's graph; without, the matcher
  // also reaches instances of tasks the DAG no longer has.
  std::optional<std::set<std::string>> selected;
  if (which.upstream || which.downstream)
    selected = select_tasks(*dag, graph_of(*dag), which.task_matches, which.upstream, which.downstream);
  const std::set<std::string> excluded(which.exclude.begin(), which.exclude.end());

  run_filter filter;
  filter.dag_id = which.dag_id;
  filter.logical_from = which.logical_from;
  filter.logical_to = which.logical_to;
  // Past and future reach the runs before and after the named one, by logical date.
  std::optional<std::string> only_run = which.run_id;
  if (which.past || which.future) {
    if (!which.run_id) throw usage_error("clearing past or future runs counts from a run: name the run");
    const auto from = s.find_run(which.dag_id, *which.run_id);
    if (!from) throw usage_error("DAG '" + which.dag_id + "' has no run '" + *which.run_id + "'");
    if (!which.past) filter.logical_from = std::max(filter.logical_from.value_or(from->logical_date), from->logical_date);
    if (!which.future) filter.logical_to = std::min(filter.logical_to.value_or(from->logical_date), from->logical_date);
    only_run.reset();
  }
  return write_whole(s, "cleared", which.dry_run, [&] {
    change_set changes;
    std::vector<task_instance_ref> cleared;
    auto runs = s.runs(filter);
    std::reverse(runs.begin(), runs.end());  // oldest logical date first reads better than newest
    for (const auto& run : runs) {
      if (only_run && run.run_id != *only_run) continue;
      bool any = false;
      for (auto& ti : s.task_instances(which.dag_id, run.run_id)) {
        if (selected ? !selected->contains(ti.task_id) : (which.task_matches && !which.task_matches(ti.task_id))) continue;
        if (excluded.contains(ti.task_id)) continue;
        // An instance that never ran in a run that failed: the run gave up on it (depends_on_past,
        // its previous run having ended without it). Cleared with the failures, so that the run is
        // queued again and looks at it anew, as Airflow's clear queues the run of every instance it
        // selects; otherwise `backfill --rerun-failed` would leave such runs failed for good.
        const bool given_up = ti.state == task_state::none && run.state == run_state::failed && ti.message == gave_up_on_past;
        if (ti.state == task_state::none && !given_up) continue;
        if (which.failed_only && !is_failure(ti.state) && !given_up) continue;
        if (which.map_index && ti.map_index != *which.map_index) continue;
        if (const auto only = which.only_instances.find(ti.task_id);
            only != which.only_instances.end() && !only->second.contains(ti.map_index))
          continue;
        cleared.push_back({ti.dag_id, ti.run_id, ti.task_id, ti.map_index});
        add_clear(changes, std::move(ti));
        any = true;
      }
      if (any) changes.runs.push_back({run.dag_id, run.run_id, run.state, run_state::queued, std::nullopt, std::nullopt});
    }
    return std::pair{std::move(changes), std::move(cleared)};
  });
}

std::vector<task_instance_ref> mark_task_instances(store& s, const mark_selection& which, const definition& dag,
                                                   timestamp now) {
  if (which.state != task_state::success && which.state != task_state::failed && which.state != task_state::skipped)
    throw usage_error("a task instance can be marked success, failed or skipped, not " +
                      std::string(to_string(which.state)));
  if (which.task_ids.empty()) throw usage_error("name at least one task to mark");
  std::vector<std::string> ids;
  for (const auto& t : dag.all_tasks()) ids.push_back(t.id);
  for (const auto& id : which.task_ids)
    if (!dag.find(id)) throw usage_error("DAG '" + dag.id() + "' has no task '" + id + "'" + did_you_mean(id, ids));

  const std::set<std::string> named(which.task_ids.begin(), which.task_ids.end());
  const auto is_named = [&](const std::string& id) { return named.contains(id); };
  const task_graph graph = graph_of(dag);
  const std::set<std::string> marked = select_tasks(dag, graph, is_named, which.upstream, which.downstream);
  const std::set<std::string> below = select_tasks(dag, graph, is_named, false, true);

  return write_whole(s, "marked", which.dry_run, [&] {
    const auto current = s.find_run(which.dag_id, which.run_id);
    if (!current) throw usage_error("DAG '" + which.dag_id + "' has no run '" + which.run_id + "'");
    // By task id: the instances of a mapped task are all marked (or the one `map_index` names).
    std::multimap<std::string, task_instance_record> instances;
    for (auto& ti : s.task_instances(which.dag_id, which.run_id)) instances.emplace(ti.task_id, std::move(ti));
    change_set changes;
    std::vector<task_instance_ref> set;
    std::vector<task_instance_record> targets;
    for (const auto& id : marked) {
      auto [from, to] = instances.equal_range(id);
      if (from == to) {  // a task added after the run was created
        task_instance_record ti;
        ti.dag_id = which.dag_id;
        ti.run_id = which.run_id;
        ti.task_id = id;
        targets.push_back(std::move(ti));
      }
      for (auto it = from; it != to; ++it)
        if (!which.map_index || !named.contains(id) || it->second.map_index == *which.map_index) targets.push_back(it->second);
    }
    for (auto& ti : targets) {
      if (ti.state == which.state) continue;
      const task_state expected = ti.state;
      const int expected_try = ti.try_number;
      ti.state = which.state;
      if (!ti.start_date) ti.start_date = now;
      if (!ti.end_date) ti.end_date = now;  // as Airflow's set_state: an instance that ended keeps its end
      ti.retry_at.reset();
      ti.first_start_date.reset();
      ti.message = "marked " + std::string(to_string(which.state)) + " by hand";
      set.push_back({ti.dag_id, ti.run_id, ti.task_id, ti.map_index});
      changes.task_instances.push_back({expected, expected_try, std::move(ti)});
    }
    // As Airflow: what failed downstream of the marked tasks runs again.
    if (!changes.empty())
      for (const auto& [id, ti] : instances)
        if (below.contains(id) && !marked.contains(id) && is_failure(ti.state)) add_clear(changes, ti);
    if (!changes.empty())
      changes.runs.push_back({current->dag_id, current->run_id, current->state, run_state::queued, std::nullopt, std::nullopt});
    return std::pair{std::move(changes), std::move(set)};
  });
}

std::size_t delete_dag_history(store& s, const std::string& dag_id) {
  run_filter running;
  running.dag_id = dag_id;
  running.states = {run_state::running};
  running.limit = 1;
  for (const auto& run : s.runs(running))
    throw conflict_error("DAG '" + dag_id + "' has a running run ('" + run.run_id + "'); wait for it or mark it first");
  return s.delete_dag(dag_id);
}

std::vector<task_instance_ref> set_run_state(store& s, const definition& dag, const std::string& run_id, run_state state,
                                             timestamp now) {
  if (!s.find_run(dag.id(), run_id)) throw usage_error("DAG '" + dag.id() + "' has no run '" + run_id + "'");
  if (state == run_state::queued) {
    clear_selection all;
    all.dag_id = dag.id();
    all.run_id = run_id;
    return clear_task_instances(s, all, &dag);
  }
  if (state != run_state::success && state != run_state::failed)
    throw usage_error("a run can be set to success, failed or queued, not " + std::string(to_string(state)));
  std::map<std::string, task_state> states;
  for (const auto& ti : s.task_instances(dag.id(), run_id)) states[ti.task_id] = ti.state;
  mark_selection which;
  which.dag_id = dag.id();
  which.run_id = run_id;
  which.state = state == run_state::success ? task_state::success : task_state::failed;
  for (const auto& t : dag.all_tasks()) {
    const auto it = states.find(t.id);
    const task_state now_in = it == states.end() ? task_state::none : it->second;
    if (now_in != task_state::success && now_in != task_state::skipped) which.task_ids.push_back(t.id);
  }
  if (which.task_ids.empty()) return {};
  return mark_task_instances(s, which, dag, now);
}

std::map<std::string, dataset_uses> dataset_uses_of(const std::vector<shared_definition>& dags) {
  std::map<std::string, dataset_uses> out;
  for (const auto& d : dags) {
    if (const auto& on = d->dataset_schedule())
      for (const auto& uri : on->uris()) out[uri].consuming_dags.push_back(d->id());
    for (const auto& t : d->all_tasks())
      for (const auto& uri : t.outlets) out[uri].producing_tasks.emplace_back(d->id(), t.id);
  }
  return out;
}

std::optional<dataset_event_record> post_dataset_event(store& s, const std::string& uri, const std::string& extra) {
  dataset_event_record e;
  e.uri = uri;
  e.extra = checked_conf(extra.empty() ? "{}" : extra, "extra");
  return s.add_dataset_event(e);
}

}  // namespace dag
