#pragma once
/// @file A task: one node of a DAG, with its operator, fields, dependencies and run settings.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dag/core/alert.hpp>
#include <dag/core/operator.hpp>
#include <dag/core/retry_policy.hpp>
#include <dag/core/time.hpp>
#include <dag/core/trigger_rule.hpp>

namespace dag {

/// How a task's effective priority is computed from the `priority_weight`s (Airflow's weight_rule).
enum class weight_rule {
  downstream,  ///< its own weight plus every downstream task's (Airflow's default)
  upstream,    ///< its own weight plus every upstream task's
  absolute,    ///< its own weight only
};

/// Parses a weight rule name; nullopt when unknown.
inline std::optional<weight_rule> parse_weight_rule(std::string_view name) {
  if (name == "downstream") return weight_rule::downstream;
  if (name == "upstream") return weight_rule::upstream;
  if (name == "absolute") return weight_rule::absolute;
  return std::nullopt;
}

/// Settings a task may set itself or inherit from its DAG's `default_args`; empty means "not set".
struct task_options {
  std::optional<trigger_rule> trigger;                 ///< `trigger_rule`
  std::optional<int> retries;                          ///< `retries`
  std::optional<duration> retry_delay;                 ///< `retry_delay`
  std::optional<bool> retry_exponential_backoff;       ///< `retry_exponential_backoff`
  std::optional<duration> max_retry_delay;             ///< `max_retry_delay`
  std::optional<duration> execution_timeout;           ///< `execution_timeout`
  std::optional<std::string> queue;                    ///< `queue` (queue executor routing)
  std::optional<int> priority_weight;                  ///< `priority_weight`
  std::optional<weight_rule> weights;                  ///< `weight_rule`
  std::optional<int> max_active_tis_per_dag;           ///< `max_active_tis_per_dag`
  std::optional<std::string> owner;                    ///< `owner` (informational)
  std::optional<std::vector<std::string>> email;       ///< `email` (alert recipients)
  std::optional<bool> email_on_failure;                ///< `email_on_failure`
  std::optional<bool> email_on_retry;                  ///< `email_on_retry`
  std::optional<std::vector<notifier_spec>> on_failure;  ///< `on_failure`: told when the task fails for good
  std::optional<std::vector<notifier_spec>> on_retry;    ///< `on_retry`: told when a failed try will be retried
  std::optional<std::vector<notifier_spec>> on_success;  ///< `on_success`: told when the task succeeds

  /// Every field set here, else the one in `fallback`.
  task_options merged_over(const task_options& fallback) const {
    task_options out = *this;
    auto take = [](auto& mine, const auto& theirs) { if (!mine) mine = theirs; };
    take(out.trigger, fallback.trigger);
    take(out.retries, fallback.retries);
    take(out.retry_delay, fallback.retry_delay);
    take(out.retry_exponential_backoff, fallback.retry_exponential_backoff);
    take(out.max_retry_delay, fallback.max_retry_delay);
    take(out.execution_timeout, fallback.execution_timeout);
    take(out.queue, fallback.queue);
    take(out.priority_weight, fallback.priority_weight);
    take(out.weights, fallback.weights);
    take(out.max_active_tis_per_dag, fallback.max_active_tis_per_dag);
    take(out.owner, fallback.owner);
    take(out.email, fallback.email);
    take(out.email_on_failure, fallback.email_on_failure);
    take(out.email_on_retry, fallback.email_on_retry);
    take(out.on_failure, fallback.on_failure);
    take(out.on_retry, fallback.on_retry);
    take(out.on_success, fallback.on_success);
    return out;
  }
};

/// A task's settings once `default_args` and built-in defaults are applied.
struct task_settings {
  trigger_rule trigger = trigger_rule::all_success;  ///< when the task may run
  retry_policy retry;                                ///< retries and their delays
  std::optional<duration> execution_timeout;         ///< kill the try after this long
  std::string queue = "default";                     ///< queue the task is routed to
  int priority_weight = 1;                           ///< higher runs first among ready tasks
  weight_rule weights = weight_rule::downstream;     ///< how priority_weight adds up along the graph
  std::optional<int> max_active_tis_per_dag;         ///< at most this many tries of the task at once, over all runs
  std::string owner = "dagrun";                      ///< informational
  std::vector<std::string> email;                    ///< alert recipients
  bool email_on_failure = true;                      ///< mail `email` when a task fails (Airflow's default)
  bool email_on_retry = true;                        ///< mail `email` when a try is retried (Airflow's default)
  std::vector<notifier_spec> on_failure;             ///< notifiers told when the task fails for good
  std::vector<notifier_spec> on_retry;               ///< notifiers told when a failed try will be retried
  std::vector<notifier_spec> on_success;             ///< notifiers told when the task succeeds

  /// Applies built-in defaults (Airflow's) to whatever `o` leaves unset.
  static task_settings from(const task_options& o) {
    task_settings s;
    if (o.trigger) s.trigger = *o.trigger;
    if (o.retries) s.retry.retries = *o.retries;
    if (o.retry_delay) s.retry.retry_delay = *o.retry_delay;
    if (o.retry_exponential_backoff) s.retry.exponential_backoff = *o.retry_exponential_backoff;
    if (o.max_retry_delay) s.retry.max_retry_delay = *o.max_retry_delay;
    s.execution_timeout = o.execution_timeout;
    if (o.queue) s.queue = *o.queue;
    if (o.priority_weight) s.priority_weight = *o.priority_weight;
    if (o.weights) s.weights = *o.weights;
    s.max_active_tis_per_dag = o.max_active_tis_per_dag;
    if (o.owner) s.owner = *o.owner;
    if (o.email) s.email = *o.email;
    if (o.email_on_failure) s.email_on_failure = *o.email_on_failure;
    if (o.email_on_retry) s.email_on_retry = *o.email_on_retry;
    if (o.on_failure) s.on_failure = *o.on_failure;
    if (o.on_retry) s.on_retry = *o.on_retry;
    if (o.on_success) s.on_success = *o.on_success;
    return s;
  }
};

/// Where something was defined, for error messages (`file:line`).
struct source_location {
  std::string file;  ///< file path as given, empty for C++ DAGs built in memory
  int line = 0;      ///< 1-based line, 0 when unknown
};

/// One operator field's value with the line it came from: text (possibly templated) for
/// scalar kinds, `items` for string_list fields, `entries` for string_map fields.
struct field_value {
  std::string text;                              ///< the raw scalar value
  int line = 0;                                  ///< 1-based line in the DAG file, 0 when unknown
  std::vector<std::string> items = {};           ///< values of a string_list field
  std::map<std::string, std::string> entries = {};  ///< values of a string_map field
};

/// A task's flow rule and its options.
struct task_flow {
  flow_rule rule = flow_rule::none;  ///< `branch: true`, `short_circuit: true`, or the operator's own (`latest_only`)
  /// short_circuit: true skips every downstream task whatever its trigger rule (Airflow's
  /// default); false skips only the direct downstream tasks and lets trigger rules carry it on.
  bool ignore_downstream_trigger_rules = true;
  /// branch: when set, the XCom is read as true or false and the branch follows one of these
  /// lists (Airflow's BranchSQLOperator and BranchDayOfWeekOperator) instead of naming ids itself.
  std::optional<std::vector<std::string>> follow_if_true;
  std::optional<std::vector<std::string>> follow_if_false;  ///< see follow_if_true
};

/// One task of a DAG: an operator with its fields, upstream dependencies and options.
struct task {
  std::string id;                                  ///< `task_id`, unique in its DAG
  std::string operator_name;                       ///< `operator`: bash, sqlite, postgres, http, …
  std::map<std::string, field_value> fields;       ///< operator fields (`bash_command`, `sql`, …)
  std::vector<std::string> dependencies;           ///< ids of direct upstream tasks
  task_options options;                            ///< settings given on the task itself
  task_settings settings;                          ///< effective settings (options over default_args); filled by `definition::apply_default_args`, which `dag::check` calls
  task_flow flow;                                  ///< what a successful try decides for downstream tasks
  std::vector<std::string> outlets;                ///< `outlets`: datasets (URIs) a successful try updates
  std::string group;                               ///< the innermost task group's id (`outer.inner`), empty for none
  source_location where;                           ///< where the task was defined
  /// The C++ body of a `callable` task; empty for other operators.
  std::function<operator_result(task_context&)> callable;
};

}  // namespace dag
