#pragma once
/// @file A task: one node of a DAG, with its operator, fields, dependencies and run settings.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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
  std::optional<std::string> pool;                     ///< `pool`
  std::optional<bool> depends_on_past;                 ///< `depends_on_past`
  std::optional<bool> wait_for_downstream;             ///< `wait_for_downstream`
  std::optional<int> max_active_tis_per_dagrun;        ///< `max_active_tis_per_dagrun`
  std::optional<int> pool_slots;                       ///< `pool_slots`
  std::optional<std::string> owner;                    ///< `owner` (informational)
  std::optional<std::vector<std::string>> email;       ///< `email` (alert recipients)
  std::optional<bool> email_on_failure;                ///< `email_on_failure`
  std::optional<bool> email_on_retry;                  ///< `email_on_retry`
  std::optional<std::vector<notifier_spec>> on_failure;  ///< `on_failure`: told when the task fails for good
  std::optional<std::vector<notifier_spec>> on_retry;    ///< `on_retry`: told when a failed try will be retried
  std::optional<std::vector<notifier_spec>> on_success;  ///< `on_success`: told when the task succeeds
  std::optional<duration> sla;                         ///< `sla`: the task should succeed this long after its run's data interval ends
  std::optional<std::vector<notifier_spec>> on_sla_miss; ///< `on_sla_miss`: told once when the task misses its `sla`

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
    take(out.pool, fallback.pool);
    take(out.depends_on_past, fallback.depends_on_past);
    take(out.wait_for_downstream, fallback.wait_for_downstream);
    take(out.max_active_tis_per_dagrun, fallback.max_active_tis_per_dagrun);
    take(out.pool_slots, fallback.pool_slots);
    take(out.owner, fallback.owner);
    take(out.email, fallback.email);
    take(out.email_on_failure, fallback.email_on_failure);
    take(out.email_on_retry, fallback.email_on_retry);
    take(out.on_failure, fallback.on_failure);
    take(out.on_retry, fallback.on_retry);
    take(out.on_success, fallback.on_success);
    take(out.sla, fallback.sla);
    take(out.on_sla_miss, fallback.on_sla_miss);
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
  std::string pool = "default_pool";                 ///< the pool whose slots its tries take (Airflow's default pool)
  int pool_slots = 1;                                ///< how many of the pool's slots a try takes
  /// Runs only once its instance in the previous run (by logical date) is success or skipped.
  bool depends_on_past = false;
  /// Also waits for the direct downstream tasks of its previous instance (implies depends_on_past).
  bool wait_for_downstream = false;
  /// At most this many instances of a mapped task queued or running at once in one run (a task
  /// that is not mapped has one instance per run, so it is always met).
  std::optional<int> max_active_tis_per_dagrun;
  std::string owner = "dagrun";                      ///< informational
  std::vector<std::string> email;                    ///< alert recipients
  bool email_on_failure = true;                      ///< mail `email` when a task fails (Airflow's default)
  bool email_on_retry = true;                        ///< mail `email` when a try is retried (Airflow's default)
  std::vector<notifier_spec> on_failure;             ///< notifiers told when the task fails for good
  std::vector<notifier_spec> on_retry;               ///< notifiers told when a failed try will be retried
  std::vector<notifier_spec> on_success;             ///< notifiers told when the task succeeds
  std::optional<duration> sla;                       ///< succeed within this after the data interval end, or it is a miss
  std::vector<notifier_spec> on_sla_miss;            ///< notifiers told once when the task misses its `sla`

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
    if (o.pool) s.pool = *o.pool;
    if (o.pool_slots) s.pool_slots = *o.pool_slots;
    if (o.wait_for_downstream) s.wait_for_downstream = *o.wait_for_downstream;
    s.depends_on_past = o.depends_on_past.value_or(false) || s.wait_for_downstream;  // Airflow: the one implies the other
    s.max_active_tis_per_dagrun = o.max_active_tis_per_dagrun;
    if (o.owner) s.owner = *o.owner;
    if (o.email) s.email = *o.email;
    if (o.email_on_failure) s.email_on_failure = *o.email_on_failure;
    if (o.email_on_retry) s.email_on_retry = *o.email_on_retry;
    if (o.on_failure) s.on_failure = *o.on_failure;
    if (o.on_retry) s.on_retry = *o.on_retry;
    if (o.on_success) s.on_success = *o.on_success;
    s.sla = o.sla;
    if (o.on_sla_miss) s.on_sla_miss = *o.on_sla_miss;
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
  /// The template file `text` was read from (a templated field naming a `.sh`, `.sql`, …
  /// file, as in Airflow); `line` is then 1. Empty: the text is the DAG file's own.
  std::string template_file = {};
  /// The value is data, not a template: a mapped instance's value from an upstream XCom, which
  /// Airflow does not render (a task's output must not run as template code).
  bool literal = false;
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

/// Where the values a mapped task expands over come from: a literal list, or the XCom of an
/// upstream task (a JSON list) when `xcom_task` is set.
struct map_source {
  std::vector<std::string> items;          ///< the literal values (`expand: {field: [a, b]}`)
  std::string xcom_task;                   ///< the task whose XCom is the list ("" for a literal list)
  std::string xcom_key = "return_value";   ///< its key
};

/// Dynamic task mapping (Airflow's `expand` and `expand_kwargs`): one task instance per value (per
/// combination of values), each with its fields set to its values; the task's other fields are
/// the `partial` ones every instance shares.
struct task_mapping {
  /// `expand:` field → values. Several fields expand to their cross product, the first field
  /// varying slowest (Airflow's order).
  std::vector<std::pair<std::string, map_source>> expand;
  /// `expand_kwargs:` literal field mappings, one instance each (zipped, not crossed).
  std::vector<std::map<std::string, std::string>> kwargs;
  /// `expand_kwargs:` from an upstream XCom holding a JSON list of objects (xcom_task set).
  map_source kwargs_from;
  bool has_kwargs = false;                 ///< `expand_kwargs` was given
  int max_map_length = 1024;               ///< more instances than this fail the task (Airflow's [core] max_map_length)

  /// True when the task is mapped.
  bool mapped() const { return !expand.empty() || has_kwargs; }
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
  task_mapping mapping;                            ///< dynamic task mapping (`expand`), if any
  std::vector<std::string> outlets;                ///< `outlets`: datasets (URIs) a successful try updates
  std::string group;                               ///< the innermost task group's id (`outer.inner`), empty for none
  source_location where;                           ///< where the task was defined
  /// The C++ body of a `callable` task; empty for other operators.
  std::function<operator_result(task_context&)> callable;
};

}  // namespace dag
