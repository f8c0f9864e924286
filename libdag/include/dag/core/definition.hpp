#pragma once
/// @file A DAG definition with its fluent C++ API (`a >> b`, `a >> dag::tasks{b, c}`).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <dag/core/dataset.hpp>
#include <dag/core/error.hpp>
#include <dag/core/task.hpp>
#include <dag/core/time.hpp>

namespace dag {

class definition;
class group_handle;
class operator_catalog;

/// A task group (Airflow's TaskGroup): its tasks' ids start with its id and a dot
/// (`prefix_group_id`); groups nest (`outer.inner.task`).
struct task_group {
  std::string id;                         ///< full id: the enclosing group's id, '.', its own name
  std::string parent;                     ///< the enclosing group's id, empty at the top
  task_options default_args;              ///< defaults for its tasks, over the enclosing group's and the DAG's
  std::vector<std::string> dependencies;  ///< tasks or groups the whole group runs after (its roots wait for their leaves)
  source_location where;                  ///< where the group was defined
};

/// A handle on one task of a definition, for setting its options and wiring dependencies.
/// Stays valid while the definition lives (it holds an index, not a pointer into storage).
class task_handle {
public:
  /// A handle on task number `index` of `owner`.
  task_handle(definition& owner, std::size_t index) : owner_(&owner), index_(index) {}

  /// The task itself.
  task& get() const;
  /// The task's id.
  const std::string& id() const { return get().id; }

  /// Sets an operator field (`bash_command`, `sql`, …).
  task_handle& field(const std::string& name, std::string text) { get().fields[name] = {std::move(text), 0}; return *this; }
  /// Sets a list field (`parameters`, `expected_status`, …), as a YAML sequence would.
  task_handle& field_list(const std::string& name, std::vector<std::string> items) {
    field_value v;
    v.items = std::move(items);
    get().fields[name] = std::move(v);
    return *this;
  }
  /// Sets a mapping field (`headers`, `env`), as a YAML mapping would.
  task_handle& field_map(const std::string& name, std::map<std::string, std::string> entries) {
    field_value v;
    v.entries = std::move(entries);
    get().fields[name] = std::move(v);
    return *this;
  }
  /// Sets `outlets`: the datasets (URIs) a successful try of the task updates.
  task_handle& outlets(std::vector<std::string> uris) { get().outlets = std::move(uris); return *this; }
  /// Sets `trigger_rule`.
  task_handle& trigger(trigger_rule r) { get().options.trigger = r; return *this; }
  /// Sets `retries`.
  task_handle& retries(int n) { get().options.retries = n; return *this; }
  /// Sets `retry_delay`.
  task_handle& retry_delay(duration d) { get().options.retry_delay = d; return *this; }
  /// Sets `retry_exponential_backoff`.
  task_handle& retry_exponential_backoff(bool on = true) { get().options.retry_exponential_backoff = on; return *this; }
  /// Sets `max_retry_delay`.
  task_handle& max_retry_delay(duration d) { get().options.max_retry_delay = d; return *this; }
  /// Sets `execution_timeout`.
  task_handle& execution_timeout(duration d) { get().options.execution_timeout = d; return *this; }
  /// Sets `queue`.
  task_handle& queue(std::string name) { get().options.queue = std::move(name); return *this; }
  /// Sets `priority_weight`.
  task_handle& priority_weight(int w) { get().options.priority_weight = w; return *this; }
  /// Sets `weight_rule`.
  task_handle& weight(weight_rule r) { get().options.weights = r; return *this; }
  /// Sets `max_active_tis_per_dag`: at most `n` tries of this task at once over all runs.
  task_handle& max_active_tis_per_dag(int n) { get().options.max_active_tis_per_dag = n; return *this; }
  /// Sets `max_active_tis_per_dagrun`: at most `n` instances of this (mapped) task at once in one run.
  task_handle& max_active_tis_per_dagrun(int n) { get().options.max_active_tis_per_dagrun = n; return *this; }
  /// Sets `depends_on_past`: the task runs only once its instance in the previous run is success
  /// or skipped; with `wait_for_downstream`, also that instance's direct downstream tasks.
  task_handle& depends_on_past(bool on = true, bool wait_for_downstream = false) {
    get().options.depends_on_past = on;
    get().options.wait_for_downstream = wait_for_downstream;
    return *this;
  }
  /// Sets `pool` and `pool_slots`: each try takes `slots` of the named pool's slots while it is
  /// queued or running, over all DAGs (`dagrun pools set`; every task is in `default_pool` unless set).
  task_handle& pool(std::string name, int slots = 1) {
    get().options.pool = std::move(name);
    get().options.pool_slots = slots;
    return *this;
  }
  /// Makes the task a branch: its XCom names the task ids (or group ids) to follow.
  task_handle& branch() { get().flow.rule = flow_rule::branch; return *this; }
  /// Makes the task a branch on a condition: a true XCom follows `if_true`, a false one `if_false`.
  task_handle& branch(std::vector<std::string> if_true, std::vector<std::string> if_false) {
    get().flow.rule = flow_rule::branch;
    get().flow.follow_if_true = std::move(if_true);
    get().flow.follow_if_false = std::move(if_false);
    return *this;
  }
  /// Makes the task short-circuit: a falsy XCom skips everything downstream, or only the direct
  /// downstream tasks when `ignore_downstream_trigger_rules` is false.
  task_handle& short_circuit(bool ignore_downstream_trigger_rules = true) {
    get().flow.rule = flow_rule::short_circuit;
    get().flow.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules;
    return *this;
  }
  /// Maps the task over `values` of `field` (Airflow's expand): one instance per value; several
  /// calls expand to the cross product. The field's value given before (`bash("id", command)`) goes.
  task_handle& expand(std::string field, std::vector<std::string> values) {
    get().fields.erase(field);
    get().mapping.expand.emplace_back(std::move(field), map_source{std::move(values), "", "return_value"});
    return *this;
  }
  /// Maps the task over `field` values from `task_id`'s XCom under `key` (a JSON list).
  task_handle& expand_xcom(std::string field, std::string task_id, std::string key = "return_value") {
    get().fields.erase(field);
    get().mapping.expand.emplace_back(std::move(field), map_source{{}, std::move(task_id), std::move(key)});
    return *this;
  }
  /// Maps the task over field mappings, one instance each (Airflow's expand_kwargs).
  task_handle& expand_kwargs(std::vector<std::map<std::string, std::string>> instances) {
    for (const auto& fields : instances)
      for (const auto& [name, value] : fields) get().fields.erase(name);
    get().mapping.has_kwargs = true;
    get().mapping.kwargs = std::move(instances);
    return *this;
  }
  /// Bounds the number of mapped instances (1024 by default): more fail the task.
  task_handle& max_map_length(int n) { get().mapping.max_map_length = n; return *this; }
  /// Sets `on_failure`: the notifiers told when the task fails for good.
  task_handle& on_failure(std::vector<notifier_spec> n) { get().options.on_failure = std::move(n); return *this; }
  /// Sets `on_retry`: the notifiers told when a failed try will be retried.
  task_handle& on_retry(std::vector<notifier_spec> n) { get().options.on_retry = std::move(n); return *this; }
  /// Sets `sla`: the task should succeed within `d` after its run's data interval ends.
  task_handle& sla(duration d) { get().options.sla = d; return *this; }
  /// Sets `on_sla_miss`: the notifiers told once when the task misses its `sla`.
  task_handle& on_sla_miss(std::vector<notifier_spec> n) { get().options.on_sla_miss = std::move(n); return *this; }
  /// Sets `on_success`: the notifiers told when the task succeeds.
  task_handle& on_success(std::vector<notifier_spec> n) { get().options.on_success = std::move(n); return *this; }
  /// Makes this task run after `upstream` (same as `upstream >> *this`).
  task_handle& after(const task_handle& upstream);

  /// The definition the task belongs to.
  definition& owner() const { return *owner_; }
  /// The task's position in its definition.
  std::size_t index() const { return index_; }

private:
  definition* owner_;
  std::size_t index_;
};

/// A group of tasks on one side of `>>`: `a >> dag::tasks{b, c} >> d`.
struct tasks {
  /// The tasks of the group.
  std::vector<task_handle> members;
  /// A group of the given tasks.
  tasks(std::initializer_list<task_handle> list) : members(list) {}
};

/// `a >> b`: b runs after a. Returns b, so chains read left to right.
inline task_handle operator>>(task_handle upstream, task_handle downstream) {
  downstream.after(upstream);
  return downstream;
}
/// `a >> tasks{b, c}`: each of b, c runs after a. Returns the group.
inline const tasks& operator>>(task_handle upstream, const tasks& downstream) {
  for (const auto& d : downstream.members) task_handle(d).after(upstream);
  return downstream;
}
/// `tasks{a, b} >> c`: c runs after each of a, b. Returns c.
inline task_handle operator>>(const tasks& upstream, task_handle downstream) {
  for (const auto& u : upstream.members) downstream.after(u);
  return downstream;
}

/// A handle on one task group of a definition: adds tasks and groups inside it, and wires it.
class group_handle {
public:
  /// A handle on group number `index` of `owner`.
  group_handle(definition& owner, std::size_t index) : owner_(&owner), index_(index) {}
  /// The group itself.
  task_group& get() const;
  /// The group's full id.
  const std::string& id() const { return get().id; }
  /// Adds a task `<group id>.<name>` running `operator_name`.
  task_handle add_task(const std::string& name, std::string operator_name);
  /// Adds a bash task `<group id>.<name>`.
  task_handle bash(const std::string& name, std::string command) {
    return add_task(name, "bash").field("bash_command", std::move(command));
  }
  /// Adds a group `<group id>.<name>` inside this one.
  group_handle group(const std::string& name);
  /// Sets the group's `default_args`.
  group_handle& default_args(task_options options) { get().default_args = std::move(options); return *this; }
  /// Makes the group's roots run after `upstream` (a task or group id): `upstream >> group`.
  group_handle& after(const std::string& upstream);

private:
  definition* owner_;
  std::size_t index_;
};

/// `group_a >> group_b`: b's roots run after a's leaves. Returns b.
inline group_handle operator>>(group_handle upstream, group_handle downstream) { return downstream.after(upstream.id()); }
/// `task >> group`: the group's roots run after the task. Returns the group.
inline group_handle operator>>(task_handle upstream, group_handle downstream) { return downstream.after(upstream.id()); }
/// `group >> task`: the task runs after the group's leaves. Returns the task.
inline task_handle operator>>(group_handle upstream, task_handle downstream);

namespace detail {
/// Hashes text keys and views alike, so that a lookup by a view needs no string made of it.
struct text_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};

/// What check() found of a definition: the stamp of the operator catalog it passed against, or 0.
/// A copy has the same content, so it keeps the mark; a moved-from definition is empty, so it
/// loses it. Atomic (relaxed) because a non-const access clears it: two threads reading one
/// non-const definition must not race on it.
class check_mark {
public:
  check_mark() = default;
  check_mark(const check_mark& o) : stamp_(o.stamp_.load(std::memory_order_relaxed)) {}
  check_mark(check_mark&& o) noexcept : stamp_(o.stamp_.exchange(0, std::memory_order_relaxed)) {}
  check_mark& operator=(const check_mark& o) {
    stamp_.store(o.stamp_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    return *this;
  }
  check_mark& operator=(check_mark&& o) noexcept {
    stamp_.store(o.stamp_.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
    return *this;
  }
  std::uint64_t stamp() const { return stamp_.load(std::memory_order_relaxed); }
  void set(std::uint64_t catalog_stamp) { stamp_.store(catalog_stamp, std::memory_order_relaxed); }
  // Written only when set, so reads through non-const accessors of an unchecked definition stay reads.
  void clear() {
    if (stamp_.load(std::memory_order_relaxed) != 0) stamp_.store(0, std::memory_order_relaxed);
  }

private:
  std::atomic<std::uint64_t> stamp_{0};
};
}  // namespace detail

/// A DAG: its settings and its tasks. Built by the YAML loader or with the fluent API;
/// `dag::check` (in dag/load/check.hpp) validates it and applies `default_args`.
class definition {
public:
  /// An empty DAG named `dag_id`.
  explicit definition(std::string dag_id) : id_(std::move(dag_id)) {}

  // --- fluent setters -------------------------------------------------------------------
  /// Sets `description`.
  definition& description(std::string text) { description_ = std::move(text); return changed(); }
  /// Sets `schedule`: cron, preset (`@daily`), duration (`6h`); empty for manual runs only.
  definition& schedule(std::string text) { schedule_ = std::move(text); return changed(); }
  /// Schedules the DAG on datasets (`schedule: [uri, …]`): a run each time `condition` is met by
  /// the datasets updated since its last dataset-triggered run. Replaces a time schedule.
  definition& schedule_on(dataset_condition condition) {
    datasets_ = std::move(condition);
    return changed();
  }
  /// Schedules the DAG on every one of `uris` being updated (`schedule: [a, b]`).
  definition& schedule_on(const std::vector<std::string>& uris) { return schedule_on(dataset_condition::all_of(uris)); }
  /// Sets `timezone` (IANA name) in which cron fires and naive dates are read.
  definition& timezone(std::string name) { timezone_ = std::move(name); return changed(); }
  /// Sets `start_date`.
  definition& start_date(time_point t) { start_date_ = t; return changed(); }
  /// Sets `start_date` from ISO text read in the DAG's timezone (set `timezone` first).
  definition& start_date(std::string_view text) { start_date_ = parse_time(text, timezone_); return changed(); }
  /// Sets `end_date`.
  definition& end_date(time_point t) { end_date_ = t; return changed(); }
  /// Sets `end_date` from ISO text read in the DAG's timezone.
  definition& end_date(std::string_view text) { end_date_ = parse_time(text, timezone_); return changed(); }
  /// Sets `catchup`.
  definition& catchup(bool on) { catchup_ = on; return changed(); }
  /// Sets `max_active_runs`.
  definition& max_active_runs(int n) { max_active_runs_ = n; return changed(); }
  /// Sets `max_active_tasks`.
  definition& max_active_tasks(int n) { max_active_tasks_ = n; return changed(); }
  /// Sets `dagrun_timeout`: a run still unfinished this long after it started fails, its running
  /// tries are stopped and its other unfinished tasks skipped (Airflow's).
  definition& dagrun_timeout(duration d) { dagrun_timeout_ = d; return changed(); }
  /// Sets `tags`.
  definition& tags(std::vector<std::string> list) { tags_ = std::move(list); return changed(); }
  /// Sets one entry of `params`.
  definition& param(const std::string& name, std::string value) { params_[name] = std::move(value); return changed(); }
  /// Gives param `name` a schema (Airflow's `Param`; see dag/core/params.hpp). A typed param's
  /// value in `params` is JSON text (`5`, `["a"]`); a string param's is the plain string.
  definition& param_schema(const std::string& name, std::string schema_json) {
    param_schemas_[name] = std::move(schema_json);
    return changed();
  }
  /// Sets `conf_overrides_params` (Airflow's `dag_run_conf_overrides_params`): whether a run's
  /// conf overrides the params of the same name (default true).
  definition& conf_overrides_params(bool on) { conf_overrides_params_ = on; return changed(); }
  /// Sets `template_searchpath` (Airflow's): folders searched for template files after the DAG
  /// file's own folder; a relative folder is relative to the DAG file's folder.
  definition& template_searchpath(std::vector<std::string> folders) {
    template_searchpath_ = std::move(folders);
    return changed();
  }
  /// Sets `default_args`.
  definition& default_args(task_options options) { default_args_ = std::move(options); return changed(); }
  /// Sets `on_run_failure`: the notifiers told when a run fails.
  definition& on_run_failure(std::vector<notifier_spec> n) { on_run_failure_ = std::move(n); return changed(); }
  /// Sets `on_run_success`: the notifiers told when a run succeeds.
  definition& on_run_success(std::vector<notifier_spec> n) { on_run_success_ = std::move(n); return changed(); }
  /// Records where the DAG was defined, for error messages.
  definition& defined_at(source_location where) { where_ = std::move(where); return changed(); }
  /// Records the line of a DAG-level key (`schedule`, `start_date`, …), for error messages.
  definition& key_line(const std::string& key, int line) { key_lines_[key] = line; return changed(); }

  // --- tasks ------------------------------------------------------------------------------
  /// Adds a task running `operator_name` and returns a handle on it.
  task_handle add_task(std::string task_id, std::string operator_name) {
    task& t = tasks_.emplace_back();  // built in place: a task is large, and moving one costs
    t.id = std::move(task_id);
    t.operator_name = std::move(operator_name);
    return added_last();
  }
  /// Adds a fully built task (as the YAML loader does) and returns a handle on it.
  task_handle add_task(task t) {
    tasks_.push_back(std::move(t));
    return added_last();
  }
  /// Makes room for `n` tasks in all: a program or loader that knows how many it adds saves the
  /// task list's regrowth (half of the time to build a 100,000-task DAG). Changes nothing else.
  definition& reserve_tasks(std::size_t n) {
    tasks_.reserve(n);
    index_.reserve(n);
    return *this;
  }
  /// Adds a bash task.
  task_handle bash(std::string task_id, std::string command) {
    return add_task(std::move(task_id), "bash").field("bash_command", std::move(command));
  }
  /// Adds a `latest_only` task: outside the latest scheduled run it skips its direct downstream tasks.
  task_handle latest_only(std::string task_id) { return add_task(std::move(task_id), "latest_only"); }
  /// Adds a C++ callable task.
  template <class F>
  task_handle callable(std::string task_id, F&& body) {
    auto h = add_task(std::move(task_id), "callable");
    h.get().callable = std::forward<F>(body);
    return h;
  }

  // --- task groups ------------------------------------------------------------------------
  /// Adds a top-level task group and returns a handle on it.
  group_handle group(std::string group_id) {
    task_group g;
    g.id = std::move(group_id);
    return add_group(std::move(g));
  }
  /// Adds a fully built group (as the YAML loader does; `parent` must be added first).
  group_handle add_group(task_group g) {
    checked_.clear();
    groups_.push_back(std::move(g));
    return {*this, groups_.size() - 1};
  }
  /// The task groups, in definition order (an enclosing group before those inside it).
  const std::vector<task_group>& groups() const { return groups_; }
  /// The task groups, for the loader to complete.
  std::vector<task_group>& groups() {
    checked_.clear();
    return groups_;
  }
  /// The group with this id, or nullptr.
  const task_group* find_group(std::string_view group_id) const {
    for (const auto& g : groups_)
      if (g.id == group_id) return &g;
    return nullptr;
  }
  /// True when `id` names a task group.
  bool is_group(std::string_view id) const { return find_group(id) != nullptr; }
  /// The tasks in group `group_id` or in a group inside it.
  std::vector<std::size_t> group_members(std::string_view group_id) const;
  /// The group's tasks none of whose upstream tasks is in the group.
  std::vector<std::size_t> group_roots(std::string_view group_id) const;
  /// The group's tasks no task of the group runs after.
  std::vector<std::size_t> group_leaves(std::string_view group_id) const;

  // --- reading ------------------------------------------------------------------------------
  /// `dag_id`.
  const std::string& id() const { return id_; }
  /// `description`.
  const std::string& description() const { return description_; }
  /// `schedule` text; empty when the DAG runs only when triggered.
  const std::string& schedule() const { return schedule_; }
  /// The datasets the DAG is scheduled on, if it is (`schedule: [uri, …]`).
  const std::optional<dataset_condition>& dataset_schedule() const { return datasets_; }
  /// How the schedule reads in listings: the schedule text, "on dataset updates", or "" for none.
  std::string schedule_summary() const { return datasets_ ? std::string("on dataset updates") : schedule_; }
  /// `timezone`.
  const std::string& timezone() const { return timezone_; }
  /// `start_date`, if set.
  const std::optional<time_point>& start_date() const { return start_date_; }
  /// `end_date`, if set.
  const std::optional<time_point>& end_date() const { return end_date_; }
  /// `catchup`.
  bool catchup() const { return catchup_; }
  /// `max_active_runs`.
  int max_active_runs() const { return max_active_runs_; }
  /// `max_active_tasks`.
  int max_active_tasks() const { return max_active_tasks_; }
  /// `dagrun_timeout`, if set.
  const std::optional<duration>& dagrun_timeout() const { return dagrun_timeout_; }
  /// `tags`.
  const std::vector<std::string>& tags() const { return tags_; }
  /// `params`.
  const std::map<std::string, std::string>& params() const { return params_; }
  /// The schemas of typed params, by name (JSON objects).
  const std::map<std::string, std::string>& param_schemas() const { return param_schemas_; }
  /// `conf_overrides_params`.
  bool conf_overrides_params() const { return conf_overrides_params_; }
  /// `template_searchpath`.
  const std::vector<std::string>& template_searchpath() const { return template_searchpath_; }
  /// `default_args`.
  const task_options& default_args() const { return default_args_; }
  /// `on_run_failure`.
  const std::vector<notifier_spec>& on_run_failure() const { return on_run_failure_; }
  /// `on_run_success`.
  const std::vector<notifier_spec>& on_run_success() const { return on_run_success_; }
  /// Where the DAG was defined.
  const source_location& where() const { return where_; }
  /// The line of a DAG-level key, or the DAG's own line when unknown.
  int line_of(const std::string& key) const {
    auto it = key_lines_.find(key);
    return it == key_lines_.end() ? where_.line : it->second;
  }
  /// The tasks, in definition order.
  const std::vector<task>& all_tasks() const { return tasks_; }
  /// The tasks, for the loader and `check` to complete.
  std::vector<task>& all_tasks() {
    checked_.clear();
    return tasks_;
  }
  /// The task with this id, or nullptr.
  const task* find(std::string_view task_id) const {
    auto it = index_.find(task_id);
    return it == index_.end() ? nullptr : &tasks_[it->second];
  }
  /// The position of the task with this id, if any.
  std::optional<std::size_t> index_of(std::string_view task_id) const {
    auto it = index_.find(task_id);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  /// Fills each task's effective `settings` from its options over its groups' `default_args`
  /// (innermost first) over the DAG's.
  void apply_default_args() {
    checked_.clear();
    for (auto& t : tasks_) {
      task_options o = t.options;
      for (const task_group* g = find_group(t.group); g; g = g->parent.empty() ? nullptr : find_group(g->parent))
        o = o.merged_over(g->default_args);
      t.settings = task_settings::from(o.merged_over(default_args_));
    }
  }

  /// True when dag::check found no problem in it and nothing changed it since: every access that
  /// can change it (a setter, a task or group added, a task_handle, the non-const all_tasks() or
  /// groups()) makes it false again; a reference into it taken before the check is not watched. A
  /// checked definition is checked again in O(1): the engine and the CLI pass the same shared
  /// definition along (see shared_definition) without copying it to check it again.
  bool checked() const { return checked_.stamp() != 0; }
  /// Checked, and against the operators of the catalog whose stamp() this is (see check_mark).
  bool checked_with(std::uint64_t catalog_stamp) const { return checked_.stamp() == catalog_stamp; }

private:
  friend std::vector<definition_error> check(definition& d, const operator_catalog& operators);
  /// Every fluent setter ends here: the definition may differ from the one check() saw.
  definition& changed() {
    checked_.clear();
    return *this;
  }

  std::string id_;
  std::string description_;
  std::string schedule_;
  std::optional<dataset_condition> datasets_;
  std::string timezone_ = "UTC";
  std::optional<time_point> start_date_;
  std::optional<time_point> end_date_;
  bool catchup_ = true;          // Airflow's catchup_by_default
  int max_active_runs_ = 16;     // Airflow's max_active_runs_per_dag
  int max_active_tasks_ = 16;    // Airflow's max_active_tasks_per_dag
  std::optional<duration> dagrun_timeout_;
  std::vector<std::string> tags_;
  std::map<std::string, std::string> params_;
  std::map<std::string, std::string> param_schemas_;
  bool conf_overrides_params_ = true;
  std::vector<std::string> template_searchpath_;
  task_options default_args_;
  std::vector<notifier_spec> on_run_failure_;
  std::vector<notifier_spec> on_run_success_;
  source_location where_;
  std::map<std::string, int> key_lines_;
  /// Indexes the task just appended and returns its handle.
  /// Should indexing fail (out of memory), the task is taken back: every task stays indexed.
  task_handle added_last() {
    checked_.clear();
    try {
      index_.try_emplace(tasks_.back().id, tasks_.size() - 1);  // a duplicate keeps the first; check() reports it
    } catch (...) {
      tasks_.pop_back();
      throw;
    }
    return {*this, tasks_.size() - 1};
  }
  // The task list grows by moving its tasks: a throwing move would make vector copy them all.
  static_assert(std::is_nothrow_move_constructible_v<task>, "a task must move without throwing");

  std::vector<task> tasks_;
  std::unordered_map<std::string, std::size_t, detail::text_hash, std::equal_to<>> index_;
  std::vector<task_group> groups_;
  detail::check_mark checked_;
};

/// A definition shared read-only. A DAG (a 100,000-task one is large) is loaded and checked once,
/// then the DAGs folder, the engine, its scheduled form, the HTTP face and the CLI's commands hold
/// the same one instead of copies; a reload replaces the pointers of the DAGs that changed, and a
/// reader holding the old one keeps it intact.
using shared_definition = std::shared_ptr<const definition>;

inline task& task_handle::get() const { return owner_->all_tasks()[index_]; }

inline task_group& group_handle::get() const { return owner_->groups()[index_]; }

inline task_handle group_handle::add_task(const std::string& name, std::string operator_name) {
  auto h = owner_->add_task(id() + "." + name, std::move(operator_name));
  h.get().group = id();
  return h;
}

inline group_handle group_handle::group(const std::string& name) {
  task_group g;
  g.id = id() + "." + name;
  g.parent = id();
  return owner_->add_group(std::move(g));
}

inline group_handle& group_handle::after(const std::string& upstream) {
  auto& deps = get().dependencies;
  if (std::find(deps.begin(), deps.end(), upstream) == deps.end()) deps.push_back(upstream);
  return *this;
}

inline task_handle operator>>(group_handle upstream, task_handle downstream) {
  auto& deps = downstream.get().dependencies;
  if (std::find(deps.begin(), deps.end(), upstream.id()) == deps.end()) deps.push_back(upstream.id());
  return downstream;
}

inline std::vector<std::size_t> definition::group_members(std::string_view group_id) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < tasks_.size(); ++i) {
    const std::string& g = tasks_[i].group;
    if (g == group_id || (g.size() > group_id.size() && g.starts_with(group_id) && g[group_id.size()] == '.'))
      out.push_back(i);
  }
  return out;
}

namespace detail {
// True when `dependency` (a task id or a group id) names task `member` or a group holding it.
inline bool names_task(const definition& d, const std::string& dependency, std::size_t member) {
  const task& t = d.all_tasks()[member];
  if (dependency == t.id) return true;
  return t.group == dependency || (t.group.size() > dependency.size() && t.group.starts_with(dependency) &&
                                   t.group[dependency.size()] == '.');
}
}  // namespace detail

inline std::vector<std::size_t> definition::group_roots(std::string_view group_id) const {
  const auto members = group_members(group_id);
  std::vector<std::size_t> out;
  for (std::size_t m : members) {
    bool inner = false;
    for (const auto& dep : tasks_[m].dependencies)
      for (std::size_t other : members) inner = inner || (other != m && detail::names_task(*this, dep, other));
    if (!inner) out.push_back(m);
  }
  return out;
}

inline std::vector<std::size_t> definition::group_leaves(std::string_view group_id) const {
  const auto members = group_members(group_id);
  std::vector<std::size_t> out;
  for (std::size_t m : members) {
    bool depended_on = false;
    for (std::size_t other : members)
      for (const auto& dep : tasks_[other].dependencies)
        depended_on = depended_on || (other != m && detail::names_task(*this, dep, m));
    if (!depended_on) out.push_back(m);
  }
  return out;
}

inline task_handle& task_handle::after(const task_handle& upstream) {
  auto& deps = get().dependencies;
  const std::string& up = upstream.id();
  for (const auto& d : deps)
    if (d == up) return *this;
  deps.push_back(up);
  return *this;
}

}  // namespace dag
