#pragma once
/// @file A DAG definition with its fluent C++ API (`a >> b`, `a >> dag::tasks{b, c}`).

#include <cstddef>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <dag/core/error.hpp>
#include <dag/core/task.hpp>
#include <dag/core/time.hpp>

namespace dag {

class definition;

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

/// A DAG: its settings and its tasks. Built by the YAML loader or with the fluent API;
/// `dag::check` (in dag/load/check.hpp) validates it and applies `default_args`.
class definition {
public:
  /// An empty DAG named `dag_id`.
  explicit definition(std::string dag_id) : id_(std::move(dag_id)) {}

  // --- fluent setters -------------------------------------------------------------------
  /// Sets `description`.
  definition& description(std::string text) { description_ = std::move(text); return *this; }
  /// Sets `schedule`: cron, preset (`@daily`), duration (`6h`); empty for manual runs only.
  definition& schedule(std::string text) { schedule_ = std::move(text); return *this; }
  /// Sets `timezone` (IANA name) in which cron fires and naive dates are read.
  definition& timezone(std::string name) { timezone_ = std::move(name); return *this; }
  /// Sets `start_date`.
  definition& start_date(time_point t) { start_date_ = t; return *this; }
  /// Sets `start_date` from ISO text read in the DAG's timezone (set `timezone` first).
  definition& start_date(std::string_view text) { start_date_ = parse_time(text, timezone_); return *this; }
  /// Sets `end_date`.
  definition& end_date(time_point t) { end_date_ = t; return *this; }
  /// Sets `end_date` from ISO text read in the DAG's timezone.
  definition& end_date(std::string_view text) { end_date_ = parse_time(text, timezone_); return *this; }
  /// Sets `catchup`.
  definition& catchup(bool on) { catchup_ = on; return *this; }
  /// Sets `max_active_runs`.
  definition& max_active_runs(int n) { max_active_runs_ = n; return *this; }
  /// Sets `max_active_tasks`.
  definition& max_active_tasks(int n) { max_active_tasks_ = n; return *this; }
  /// Sets `tags`.
  definition& tags(std::vector<std::string> list) { tags_ = std::move(list); return *this; }
  /// Sets one entry of `params`.
  definition& param(const std::string& name, std::string value) { params_[name] = std::move(value); return *this; }
  /// Gives param `name` a schema (Airflow's `Param`; see dag/core/params.hpp). A typed param's
  /// value in `params` is JSON text (`5`, `["a"]`); a string param's is the plain string.
  definition& param_schema(const std::string& name, std::string schema_json) {
    param_schemas_[name] = std::move(schema_json);
    return *this;
  }
  /// Sets `conf_overrides_params` (Airflow's `dag_run_conf_overrides_params`): whether a run's
  /// conf overrides the params of the same name (default true).
  definition& conf_overrides_params(bool on) { conf_overrides_params_ = on; return *this; }
  /// Sets `default_args`.
  definition& default_args(task_options options) { default_args_ = std::move(options); return *this; }
  /// Records where the DAG was defined, for error messages.
  definition& defined_at(source_location where) { where_ = std::move(where); return *this; }
  /// Records the line of a DAG-level key (`schedule`, `start_date`, …), for error messages.
  definition& key_line(const std::string& key, int line) { key_lines_[key] = line; return *this; }

  // --- tasks ------------------------------------------------------------------------------
  /// Adds a task running `operator_name` and returns a handle on it.
  task_handle add_task(std::string task_id, std::string operator_name) {
    task t;
    t.id = std::move(task_id);
    t.operator_name = std::move(operator_name);
    return add_task(std::move(t));
  }
  /// Adds a fully built task (as the YAML loader does) and returns a handle on it.
  task_handle add_task(task t) {
    index_.try_emplace(t.id, tasks_.size());  // a duplicate keeps the first; check() reports it
    tasks_.push_back(std::move(t));
    return {*this, tasks_.size() - 1};
  }
  /// Adds a bash task.
  task_handle bash(std::string task_id, std::string command) {
    return add_task(std::move(task_id), "bash").field("bash_command", std::move(command));
  }
  /// Adds a C++ callable task.
  template <class F>
  task_handle callable(std::string task_id, F&& body) {
    auto h = add_task(std::move(task_id), "callable");
    h.get().callable = std::forward<F>(body);
    return h;
  }

  // --- reading ------------------------------------------------------------------------------
  /// `dag_id`.
  const std::string& id() const { return id_; }
  /// `description`.
  const std::string& description() const { return description_; }
  /// `schedule` text; empty when the DAG runs only when triggered.
  const std::string& schedule() const { return schedule_; }
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
  /// `tags`.
  const std::vector<std::string>& tags() const { return tags_; }
  /// `params`.
  const std::map<std::string, std::string>& params() const { return params_; }
  /// The schemas of typed params, by name (JSON objects).
  const std::map<std::string, std::string>& param_schemas() const { return param_schemas_; }
  /// `conf_overrides_params`.
  bool conf_overrides_params() const { return conf_overrides_params_; }
  /// `default_args`.
  const task_options& default_args() const { return default_args_; }
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
  std::vector<task>& all_tasks() { return tasks_; }
  /// The task with this id, or nullptr.
  const task* find(std::string_view task_id) const {
    auto it = index_.find(std::string(task_id));
    return it == index_.end() ? nullptr : &tasks_[it->second];
  }
  /// The position of the task with this id, if any.
  std::optional<std::size_t> index_of(std::string_view task_id) const {
    auto it = index_.find(std::string(task_id));
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  /// Fills each task's effective `settings` from its options over `default_args`.
  void apply_default_args() {
    for (auto& t : tasks_) t.settings = task_settings::from(t.options.merged_over(default_args_));
  }

private:
  std::string id_;
  std::string description_;
  std::string schedule_;
  std::string timezone_ = "UTC";
  std::optional<time_point> start_date_;
  std::optional<time_point> end_date_;
  bool catchup_ = true;          // Airflow's catchup_by_default
  int max_active_runs_ = 16;     // Airflow's max_active_runs_per_dag
  int max_active_tasks_ = 16;    // Airflow's max_active_tasks_per_dag
  std::vector<std::string> tags_;
  std::map<std::string, std::string> params_;
  std::map<std::string, std::string> param_schemas_;
  bool conf_overrides_params_ = true;
  task_options default_args_;
  source_location where_;
  std::map<std::string, int> key_lines_;
  std::vector<task> tasks_;
  std::unordered_map<std::string, std::size_t> index_;
};

inline task& task_handle::get() const { return owner_->all_tasks()[index_]; }

inline task_handle& task_handle::after(const task_handle& upstream) {
  auto& deps = get().dependencies;
  const std::string& up = upstream.id();
  for (const auto& d : deps)
    if (d == up) return *this;
  deps.push_back(up);
  return *this;
}

}  // namespace dag
