// YAML DAG files → definitions. Every problem is collected as `file:line: message` so a user
// sees all of a file's mistakes at once; the file's DAG is kept out if there is any.
#include <dag/load/yaml_loader.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include <dag/core/params.hpp>

#include <dag/core/suggest.hpp>
#include <dag/load/check.hpp>

namespace dag {
namespace {

constexpr std::array dag_keys{"dag_id",   "description",      "schedule",         "timezone",
                              "start_date", "end_date",       "catchup",          "max_active_runs",
                              "max_active_tasks", "tags",     "params",           "default_args",
                              "on_run_failure", "on_run_success", "conf_overrides_params", "template_searchpath",
                              "tasks", "groups", "dagrun_timeout"};

constexpr std::array group_keys{"group_id", "dependencies", "default_args", "tasks", "groups", "tooltip",
                                "prefix_group_id"};

// Airflow keys dagrun does not support, with what to do instead: a migration then stops with a
// reason, not with "unknown key".
struct unsupported_key {
  const char* key;
  const char* advice;
};
constexpr std::array unsupported_keys{
    unsupported_key{"sla_miss_callback", "is not supported in YAML; use on_sla_miss (notifiers: email, webhook, command)"},
    unsupported_key{"on_failure_callback", "is not supported in YAML; use on_failure (notifiers: email, webhook, command)"},
    unsupported_key{"on_success_callback", "is not supported in YAML; use on_success (notifiers: email, webhook, command)"},
    unsupported_key{"on_retry_callback", "is not supported in YAML; use on_retry (notifiers: email, webhook, command)"},
    unsupported_key{"on_execute_callback", "is not supported in YAML; use a C++ DAG"},
    unsupported_key{"inlets", "(lineage) is not supported; a task's outlets update datasets, and a DAG's schedule lists those it waits for"},
    unsupported_key{"task_concurrency", "is not supported; limit concurrency with max_active_tasks"},
    unsupported_key{"concurrency", "is Airflow's old name of max_active_tasks: use 'max_active_tasks'"},
    unsupported_key{"do_xcom_push", "is not supported: tasks always push their return value"},
    unsupported_key{"executor_config", "is not supported; route tasks with queue"},
    unsupported_key{"run_as_user", "is not supported; tasks run as the user running dagrun"},
    unsupported_key{"doc_md", "is not supported; use description"},
    unsupported_key{"user_defined_macros", "is not supported; use params or variables"},
    unsupported_key{"user_defined_filters", "is not supported"},
    unsupported_key{"render_template_as_native_obj", "is not supported; templates render text"},
    unsupported_key{"is_paused_upon_creation", "is not supported; pause with 'dagrun dags pause'"},
    unsupported_key{"access_control", "is not supported"},
};

// Keys of a typed param (Airflow's `Param`).
constexpr std::array param_keys{"default", "type", "enum", "minimum", "maximum", "minLength", "maxLength",
                                "pattern", "format", "description", "title"};

// Keys that set task_options, valid on a task and in default_args.
constexpr std::array option_keys{"trigger_rule",     "retries",        "retry_delay",
                                 "retry_exponential_backoff", "max_retry_delay", "execution_timeout",
                                 "queue",            "priority_weight", "owner",
                                 "email",            "email_on_failure", "email_on_retry",
                                 "depends_on_past",  "weight_rule",    "max_active_tis_per_dag",
                                 "pool",             "pool_slots",     "wait_for_downstream",
                                 "max_active_tis_per_dagrun",
                                 "on_failure",       "on_retry",       "on_success",
                                 "sla",              "on_sla_miss"};

template <class... Lists>
std::vector<std::string> join_keys(const Lists&... lists) {
  std::vector<std::string> out;
  (out.insert(out.end(), std::begin(lists), std::end(lists)), ...);
  return out;
}

template <class List>
bool contains(const List& list, std::string_view key) {
  for (const auto& k : list)
    if (key == k) return true;
  return false;
}

// Reads one file's YAML tree into a definition, recording problems with their lines.
class yaml_reader {
public:
  yaml_reader(std::string_view text, std::string file, const operator_catalog& operators)
      : text_(text), file_(std::move(file)), operators_(operators) {}

  std::vector<definition_error>& problems() { return problems_; }

  std::optional<definition> read(const YAML::Node& root) {
    if (!root.IsMap()) {
      fail(root, "a DAG file must be a mapping with dag_id and tasks");
      return std::nullopt;
    }
    check_duplicate_keys(root);
    std::optional<std::string> dag_id;
    if (auto id = root["dag_id"]) dag_id = scalar(id, "dag_id");
    else fail(root, "missing required key 'dag_id'");
    definition d(dag_id.value_or(""));
    d.defined_at({file_, line(root["dag_id"] ? root["dag_id"] : root)});

    // The timezone is read first: start_date and end_date are wall-clock times in it.
    if (auto tz = root["timezone"]) {
      if (auto name = scalar(tz, "timezone")) d.timezone(*name);
      d.key_line("timezone", line(tz));
    }
    for (auto it = root.begin(); it != root.end(); ++it) {
      const std::string key = it->first.as<std::string>("");
      const YAML::Node value = it->second;
      d.key_line(key, line(value.IsNull() ? it->first : value));
      if (key == "dag_id" || key == "timezone") continue;
      if (key == "description") set(scalar(value, key), [&](auto v) { d.description(v); });
      else if (key == "schedule") read_schedule(d, value);
      else if (key == "start_date") set(time_value(value, key, d.timezone()), [&](auto v) { d.start_date(v); });
      else if (key == "end_date") set(time_value(value, key, d.timezone()), [&](auto v) { d.end_date(v); });
      else if (key == "catchup") set(boolean(value, key), [&](auto v) { d.catchup(v); });
      else if (key == "max_active_runs") set(integer(value, key, 1), [&](auto v) { d.max_active_runs(v); });
      else if (key == "max_active_tasks") set(integer(value, key, 1), [&](auto v) { d.max_active_tasks(v); });
      else if (key == "dagrun_timeout") set(duration_value(value, key), [&](duration v) { d.dagrun_timeout(v); });
      else if (key == "tags") set(string_list(value, key), [&](auto v) { d.tags(v); });
      else if (key == "params") read_params(d, value);
      else if (key == "conf_overrides_params") set(boolean(value, key), [&](bool v) { d.conf_overrides_params(v); });
      else if (key == "template_searchpath") set(string_list(value, key), [&](auto v) { d.template_searchpath(v); });
      else if (key == "default_args") read_default_args(d, value);
      else if (key == "on_run_failure") set(notifiers(value, key), [&](auto v) { d.on_run_failure(v); });
      else if (key == "on_run_success") set(notifiers(value, key), [&](auto v) { d.on_run_success(v); });
      else if (key == "tasks" || key == "groups") continue;  // after the DAG's own keys, below
      else unknown_key(it->first, key, join_keys(dag_keys), "DAG");
    }
    if (auto tasks = root["tasks"]) read_tasks(d, tasks, "");
    else if (!root["groups"]) fail(root, "missing required key 'tasks'");
    if (auto groups = root["groups"]) read_groups(d, groups, "");
    resolve_group_names(d);
    return d;
  }

private:
  int line(const YAML::Node& n) const {
    const auto mark = n.Mark();
    if (mark.line < 0) return 0;
    int result = mark.line + 1;
    // A block scalar's mark is its `|` or `>` indicator; its text starts on the next line.
    if (mark.pos >= 0 && static_cast<std::size_t>(mark.pos) < text_.size() && n.IsScalar() &&
        (text_[static_cast<std::size_t>(mark.pos)] == '|' || text_[static_cast<std::size_t>(mark.pos)] == '>'))
      ++result;
    return result;
  }

  void fail(const YAML::Node& n, const std::string& message) { fail_at(line(n), message); }
  void fail_at(int at, const std::string& message) {
    error_context where;
    where.file = file_;
    where.line = at;
    problems_.emplace_back(where, message);
  }

  template <class T, class F>
  static void set(const std::optional<T>& value, F&& apply) {
    if (value) apply(*value);
  }

  void check_duplicate_keys(const YAML::Node& map) {
    std::map<std::string, int> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const std::string key = it->first.as<std::string>("");
      auto [pos, fresh] = seen.emplace(key, line(it->first));
      if (!fresh) fail(it->first, "duplicate key '" + key + "' (first on line " + std::to_string(pos->second) + ")");
    }
  }

  void unknown_key(const YAML::Node& key_node, const std::string& key, const std::vector<std::string>& allowed,
                   const std::string& where) {
    if (key == "schedule_interval") {
      fail(key_node, "unknown " + where + " key 'schedule_interval': Airflow's old name, use 'schedule'");
      return;
    }
    if (unsupported(key_node, key, where)) return;
    fail(key_node, "unknown " + where + " key '" + key + "'" + did_you_mean(key, allowed));
  }

  // True (and the reason reported) when `key` is an Airflow key dagrun does not support.
  bool unsupported(const YAML::Node& key_node, const std::string& key, const std::string& where) {
    for (const auto& u : unsupported_keys)
      if (key == u.key) {
        fail(key_node, where + " key '" + key + "' " + u.advice);
        return true;
      }
    return false;
  }

  std::optional<std::string> scalar(const YAML::Node& n, std::string_view key) {
    if (!n.IsScalar()) {
      fail(n, std::string(key) + ": expected a single value, got " + kind_name(n));
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<bool> boolean(const YAML::Node& n, std::string_view key) {
    auto text = scalar(n, key);
    if (!text) return std::nullopt;
    if (*text == "true" || *text == "True") return true;
    if (*text == "false" || *text == "False") return false;
    fail(n, std::string(key) + ": expected true or false, got '" + *text + "'");
    return std::nullopt;
  }

  std::optional<int> integer(const YAML::Node& n, std::string_view key, int minimum) {
    auto text = scalar(n, key);
    if (!text) return std::nullopt;
    int value = 0;
    std::istringstream in(*text);
    if (!(in >> value) || !in.eof()) {
      fail(n, std::string(key) + ": expected a whole number, got '" + *text + "'");
      return std::nullopt;
    }
    if (value < minimum) {
      fail(n, std::string(key) + ": must be at least " + std::to_string(minimum) + ", got " + *text);
      return std::nullopt;
    }
    return value;
  }

  std::optional<duration> duration_value(const YAML::Node& n, std::string_view key, bool zero_allowed = false) {
    auto text = scalar(n, key);
    if (!text) return std::nullopt;
    // `retry_delay: 0s` retries at once, as Airflow's timedelta(0) does; other durations are positive.
    if (zero_allowed && text->size() >= 2 && text->find_first_not_of('0') == text->size() - 1 &&
        std::string_view("wdhms").find(text->back()) != std::string_view::npos)
      return duration{0};
    try {
      return parse_duration(*text);
    } catch (const error& e) {
      fail(n, std::string(key) + ": " + e.message());
      return std::nullopt;
    }
  }

  std::optional<time_point> time_value(const YAML::Node& n, std::string_view key, const std::string& timezone) {
    auto text = scalar(n, key);
    if (!text) return std::nullopt;
    try {
      return parse_time(*text, is_known_timezone(timezone) ? timezone : "UTC");
    } catch (const error& e) {
      fail(n, std::string(key) + ": " + e.message());
      return std::nullopt;
    }
  }

  // A list of notifiers (or one): mappings with `type` and its settings, a list setting joined
  // with `,`. check() validates types and settings.
  std::optional<std::vector<notifier_spec>> notifiers(const YAML::Node& n, std::string_view key) {
    if (!n.IsSequence() && !n.IsMap()) {
      fail(n, std::string(key) + ": expected a list of notifiers (mappings with type: email, webhook or command), got " + kind_name(n));
      return std::nullopt;
    }
    std::vector<notifier_spec> out;
    bool ok = true;
    auto read_one = [&](const YAML::Node& item) {
      if (!item.IsMap()) {
        fail(item, std::string(key) + ": each notifier is a mapping with type: email, webhook or command, got " + kind_name(item));
        ok = false;
        return;
      }
      check_duplicate_keys(item);
      notifier_spec spec;
      spec.line = line(item);
      for (auto it = item.begin(); it != item.end(); ++it) {
        const std::string name = it->first.as<std::string>("");
        const std::string where = std::string(key) + "." + name;
        if (name == "type") {
          set(scalar(it->second, where), [&](const std::string& t) { spec.type = t; });
          continue;
        }
        auto values = string_list(it->second, where);
        if (!values) {
          ok = false;
          continue;
        }
        std::string joined;
        for (const auto& v : *values) joined += (joined.empty() ? "" : ",") + v;
        spec.settings[name] = joined;
      }
      out.push_back(std::move(spec));
    };
    if (n.IsMap()) read_one(n);
    else for (const auto& item : n) read_one(item);
    if (!ok) return std::nullopt;
    return out;
  }

  std::optional<std::vector<std::string>> string_list(const YAML::Node& n, std::string_view key) {
    if (n.IsScalar()) return std::vector<std::string>{n.Scalar()};
    if (!n.IsSequence()) {
      fail(n, std::string(key) + ": expected a list, got " + kind_name(n));
      return std::nullopt;
    }
    std::vector<std::string> out;
    for (const auto& item : n) {
      if (auto text = scalar(item, key)) out.push_back(*text);
    }
    return out;
  }

  std::optional<std::map<std::string, std::string>> string_map(const YAML::Node& n, std::string_view key) {
    if (!n.IsMap()) {
      fail(n, std::string(key) + ": expected a mapping, got " + kind_name(n));
      return std::nullopt;
    }
    check_duplicate_keys(n);
    std::map<std::string, std::string> out;
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string name = it->first.as<std::string>("");
      if (auto text = scalar(it->second, std::string(key) + "." + name)) out[name] = *text;
    }
    return out;
  }

  static std::string kind_name(const YAML::Node& n) {
    if (n.IsNull()) return "nothing";
    if (n.IsSequence()) return "a list";
    if (n.IsMap()) return "a mapping";
    return "'" + n.Scalar() + "'";
  }

  void read_schedule(definition& d, const YAML::Node& n) {
    if (n.IsNull()) return;  // `schedule:` or `schedule: null` — manual runs only
    if (n.IsScalar()) {
      d.schedule(n.Scalar());
      return;
    }
    // Datasets: `[uri, …]` (all of them), or a condition `{all: […]}` / `{any: […]}`, nested.
    if (auto on = dataset_condition_of(n, "schedule")) d.schedule_on(std::move(*on));
  }

  std::optional<dataset_condition> dataset_condition_of(const YAML::Node& n, const std::string& where) {
    if (n.IsScalar()) return dataset_condition::dataset(n.Scalar());  // check() validates the URI
    if (n.IsSequence()) {
      dataset_condition all;
      for (const auto& item : n) {
        auto c = dataset_condition_of(item, where);
        if (!c) return std::nullopt;
        all.of.push_back(std::move(*c));
      }
      if (all.of.empty()) fail(n, where + ": an empty list of datasets; give dataset URIs, or leave schedule out for manual runs");
      return all;
    }
    if (n.IsMap() && n.size() == 1) {
      const std::string key = n.begin()->first.as<std::string>("");
      const YAML::Node operands = n.begin()->second;
      if (key != "all" && key != "any") {
        fail(n.begin()->first, where + ": unknown dataset condition '" + key + "'" +
                                   did_you_mean(key, std::array{"all", "any"}) +
                                   "; use all: [uri, …] or any: [uri, …]");
        return std::nullopt;
      }
      if (!operands.IsSequence()) {
        fail(operands, where + "." + key + ": expected a list of dataset URIs or conditions, got " + kind_name(operands));
        return std::nullopt;
      }
      auto c = dataset_condition_of(operands, where + "." + key);
      if (c && key == "any") c->what = dataset_condition::kind::any;
      return c;
    }
    fail(n, where + ": expected a schedule (cron, preset, duration), a list of dataset URIs, or one of all: / any: with "
               "a list, got " + kind_name(n));
    return std::nullopt;
  }

  // A param is a plain value (a string param), or a mapping with Airflow's Param keys: its
  // default is checked against its schema here, so a bad default is a load-time error.
  void read_params(definition& d, const YAML::Node& n) {
    if (!n.IsMap()) {
      fail(n, "params: expected a mapping, got " + kind_name(n));
      return;
    }
    check_duplicate_keys(n);
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string name = it->first.as<std::string>("");
      const YAML::Node v = it->second;  // a copy: the iterator hands out a temporary
      if (!v.IsMap()) {
        if (auto text = scalar(v, "params." + name)) d.param(name, *text);
        continue;
      }
      nlohmann::json schema = nlohmann::json::object();
      std::optional<nlohmann::json> default_value;
      for (auto k = v.begin(); k != v.end(); ++k) {
        const std::string key = k->first.as<std::string>("");
        if (std::find(param_keys.begin(), param_keys.end(), key) == param_keys.end()) {
          unknown_key(k->first, key, join_keys(param_keys), "param '" + name + "'");
          continue;
        }
        if (key == "default") default_value = to_json(k->second);
        else schema[key] = to_json(k->second);  // description and title too: the trigger form shows them
      }
      if (!default_value) {
        fail(v, "params." + name + ": a typed param needs a 'default' (the value a run gets without conf)");
        continue;
      }
      const std::string problem = param_problem(schema.dump(), default_value->dump());
      if (!problem.empty()) {
        fail(v, "params." + name + ": default " + problem);
        continue;
      }
      const bool typed = param_is_typed(schema.dump());
      d.param(name, typed || !default_value->is_string() ? default_value->dump() : default_value->get<std::string>());
      if (!typed && !default_value->is_string()) schema["type"] = nlohmann::json::array({"string", "number", "boolean", "null", "array", "object"});
      d.param_schema(name, schema.dump());
    }
  }

  /// A YAML value as JSON, with YAML 1.2 core scalars when `typed`: quoted text is a string; plain
  /// `true`/`false`, `null`/`~`, integers and decimals are what they look like. Untyped, every
  /// scalar is its text.
  static nlohmann::json to_json(const YAML::Node& n, bool typed = true) {
    if (n.IsNull()) return nullptr;
    if (n.IsSequence()) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : n) out.push_back(to_json(item, typed));
      return out;
    }
    if (n.IsMap()) {
      nlohmann::json out = nlohmann::json::object();
      for (auto it = n.begin(); it != n.end(); ++it) out[it->first.as<std::string>("")] = to_json(it->second, typed);
      return out;
    }
    const std::string& s = n.Scalar();
    if (!typed) return s;
    if (n.Tag() == "!") return s;  // quoted
    if (s == "true") return true;
    if (s == "false") return false;
    if (s == "null" || s == "~") return nullptr;
    static const std::regex integer_text(R"(^[-+]?[0-9]+$)");
    static const std::regex decimal_text(R"(^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$|^[-+]?[0-9]+[eE][-+]?[0-9]+$)");
    if (std::regex_match(s, integer_text)) {
      try {
        return std::stoll(s);
      } catch (const std::out_of_range&) {
        return s;
      }
    }
    if (std::regex_match(s, decimal_text)) {
      try {
        return std::stod(s);
      } catch (const std::out_of_range&) {  // 1e400, 1e-400: kept as written
        return s;
      }
    }
    return s;
  }

  // A group's default_args: task options only.
  task_options read_options_map(const YAML::Node& n, const std::string& owner) {
    task_options options;
    if (!n.IsMap()) {
      fail(n, owner + ": expected a mapping, got " + kind_name(n));
      return options;
    }
    check_duplicate_keys(n);
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string key = it->first.as<std::string>("");
      if (!read_option(options, key, it->second, owner)) unknown_key(it->first, key, join_keys(option_keys), "default_args");
    }
    return options;
  }

  void read_default_args(definition& d, const YAML::Node& n) {
    if (!n.IsMap()) {
      fail(n, "default_args: expected a mapping, got " + kind_name(n));
      return;
    }
    check_duplicate_keys(n);
    task_options options;
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string key = it->first.as<std::string>("");
      if (read_option(options, key, it->second, "default_args.")) continue;
      // Airflow DAGs often carry start_date/end_date in default_args; the DAG's own key wins.
      if (key == "start_date" || key == "end_date") {
        auto t = time_value(it->second, "default_args." + key, d.timezone());
        if (t && key == "start_date" && !d.start_date()) d.start_date(*t).key_line(key, line(it->second));
        if (t && key == "end_date" && !d.end_date()) d.end_date(*t).key_line(key, line(it->second));
        continue;
      }
      unknown_key(it->first, key, join_keys(option_keys, std::array{"start_date", "end_date"}), "default_args");
    }
    d.default_args(options);
  }

  // Reads one task option key into `o`; false when `key` is not an option key.
  bool read_option(task_options& o, const std::string& key, const YAML::Node& v, const std::string& owner) {
    const std::string field = owner + key;
    if (key == "trigger_rule") {
      if (auto text = scalar(v, field)) {
        if (auto rule = parse_trigger_rule(*text)) o.trigger = *rule;
        else fail(v, owner + "trigger_rule: unknown rule '" + *text + "'" + did_you_mean(*text, trigger_rule_names));
      }
    } else if (key == "retries") {
      set(integer(v, field, 0), [&](int n) { o.retries = n; });
    } else if (key == "retry_delay") {
      set(duration_value(v, field, true), [&](duration x) { o.retry_delay = x; });
    } else if (key == "retry_exponential_backoff") {
      set(boolean(v, field), [&](bool b) { o.retry_exponential_backoff = b; });
    } else if (key == "max_retry_delay") {
      set(duration_value(v, field), [&](duration x) { o.max_retry_delay = x; });
    } else if (key == "execution_timeout") {
      set(duration_value(v, field), [&](duration x) { o.execution_timeout = x; });
    } else if (key == "queue") {
      set(scalar(v, field), [&](const std::string& q) { o.queue = q; });
    } else if (key == "priority_weight") {
      set(integer(v, field, std::numeric_limits<int>::min()), [&](int n) { o.priority_weight = n; });
    } else if (key == "weight_rule") {
      if (auto text = scalar(v, field)) {
        if (auto rule = parse_weight_rule(*text)) o.weights = *rule;
        else fail(v, owner + "weight_rule: unknown rule '" + *text + "'" + did_you_mean(*text, std::array{"downstream", "upstream", "absolute"}) + "; use downstream, upstream or absolute");
      }
    } else if (key == "max_active_tis_per_dag") {
      set(integer(v, field, 1), [&](int n) { o.max_active_tis_per_dag = n; });
    } else if (key == "pool") {
      set(scalar(v, field), [&](const std::string& name) { o.pool = name; });
    } else if (key == "pool_slots") {
      set(integer(v, field, 1), [&](int n) { o.pool_slots = n; });
    } else if (key == "owner") {
      set(scalar(v, field), [&](const std::string& s) { o.owner = s; });
    } else if (key == "email") {
      set(string_list(v, field), [&](const std::vector<std::string>& s) { o.email = s; });
    } else if (key == "email_on_failure") {
      set(boolean(v, field), [&](bool b) { o.email_on_failure = b; });
    } else if (key == "email_on_retry") {
      set(boolean(v, field), [&](bool b) { o.email_on_retry = b; });
    } else if (key == "on_failure") {
      set(notifiers(v, field), [&](auto n) { o.on_failure = n; });
    } else if (key == "on_retry") {
      set(notifiers(v, field), [&](auto n) { o.on_retry = n; });
    } else if (key == "on_success") {
      set(notifiers(v, field), [&](auto n) { o.on_success = n; });
    } else if (key == "sla") {
      set(duration_value(v, field), [&](duration x) { o.sla = x; });
    } else if (key == "on_sla_miss") {
      set(notifiers(v, field), [&](auto n) { o.on_sla_miss = n; });
    } else if (key == "depends_on_past") {
      set(boolean(v, field), [&](bool b) { o.depends_on_past = b; });
    } else if (key == "wait_for_downstream") {
      set(boolean(v, field), [&](bool b) { o.wait_for_downstream = b; });
    } else if (key == "max_active_tis_per_dagrun") {
      set(integer(v, field, 1), [&](int n) { o.max_active_tis_per_dagrun = n; });
    } else {
      return false;
    }
    return true;
  }

  void read_tasks(definition& d, const YAML::Node& n, const std::string& group) {
    if (!n.IsSequence()) {
      fail(n, "tasks: expected a list of tasks, got " + kind_name(n));
      return;
    }
    if (n.size() == 0 && group.empty()) fail(n, "tasks: a DAG needs at least one task");
    if (group.empty()) d.reserve_tasks(n.size());  // a group's tasks come after: reserved once, not per group
    for (const auto& item : n) read_task(d, item, group);
  }

  // `groups:` — Airflow's TaskGroups: each has a group_id and its own tasks and groups, whose ids
  // get the group's id and a dot in front (`extract.load`).
  void read_groups(definition& d, const YAML::Node& n, const std::string& parent) {
    if (!n.IsSequence()) {
      fail(n, "groups: expected a list of groups, got " + kind_name(n));
      return;
    }
    for (const auto& item : n) {
      if (!item.IsMap()) {
        fail(item, "each group must be a mapping with group_id and tasks, got " + kind_name(item));
        continue;
      }
      check_duplicate_keys(item);
      task_group g;
      g.parent = parent;
      g.where = {file_, line(item)};
      std::string name;
      if (auto id = item["group_id"]) set(scalar(id, "group_id"), [&](const std::string& s) { name = s; });
      else fail(item, "group: missing required key 'group_id'");
      if (name.find('.') != std::string::npos) fail(item["group_id"], "group_id '" + name + "': a group's own id has no '.' (nested groups get their prefix from the enclosing group)");
      g.id = parent.empty() ? name : parent + "." + name;
      for (auto it = item.begin(); it != item.end(); ++it) {
        const std::string key = it->first.as<std::string>("");
        const YAML::Node v = it->second;
        if (key == "group_id" || key == "tasks" || key == "groups" || key == "tooltip") continue;
        if (key == "dependencies") set(string_list(v, key), [&](const std::vector<std::string>& deps) { g.dependencies = deps; });
        else if (key == "default_args") g.default_args = read_options_map(v, "group '" + g.id + "': default_args.");
        else if (key == "prefix_group_id") {
          if (auto b = boolean(v, key); b && !*b) fail(v, "group '" + g.id + "': prefix_group_id: false is not supported (task ids always carry their group's id)");
        } else unknown_key(it->first, key, join_keys(group_keys), "group");
      }
      d.add_group(g);
      if (auto tasks = item["tasks"]) read_tasks(d, tasks, g.id);
      if (auto groups = item["groups"]) read_groups(d, groups, g.id);
    }
  }

  // Inside a group, names are looked up from the group outwards: `dependencies: [load]` in group
  // `etl` means `etl.load` when there is one, else a top-level `load`.
  static std::string resolve(const definition& d, const std::string& scope, const std::string& name) {
    for (const task_group* g = d.find_group(scope); g; g = g->parent.empty() ? nullptr : d.find_group(g->parent)) {
      const std::string full = g->id + "." + name;
      if (d.find(full) || d.is_group(full)) return full;
    }
    return name;
  }

  static void resolve_group_names(definition& d) {
    if (d.groups().empty()) return;
    for (auto& t : d.all_tasks()) {
      for (auto& dep : t.dependencies) dep = resolve(d, t.group, dep);
      for (auto* list : {&t.flow.follow_if_true, &t.flow.follow_if_false})
        if (*list)
          for (auto& id : **list) id = resolve(d, t.group, id);
    }
    for (auto& g : d.groups())
      for (auto& dep : g.dependencies) dep = resolve(d, g.parent, dep);
  }

  // Reads one task's flow key into `f`; false when `key` is not one.
  bool read_flow(task_flow& f, const std::string& key, const YAML::Node& v, const std::string& owner) {
    const std::string field = owner + key;
    if (key == "branch") {
      set(boolean(v, field), [&](bool b) { if (b) f.rule = flow_rule::branch; });
    } else if (key == "short_circuit") {
      set(boolean(v, field), [&](bool b) { if (b) f.rule = flow_rule::short_circuit; });
    } else if (key == "ignore_downstream_trigger_rules") {
      set(boolean(v, field), [&](bool b) { f.ignore_downstream_trigger_rules = b; });
    } else if (key == "follow_task_ids_if_true") {
      set(string_list(v, field), [&](const std::vector<std::string>& ids) { f.follow_if_true = ids; });
    } else if (key == "follow_task_ids_if_false") {
      set(string_list(v, field), [&](const std::vector<std::string>& ids) { f.follow_if_false = ids; });
    } else {
      return false;
    }
    return true;
  }

  void read_task(definition& d, const YAML::Node& n, const std::string& group) {
    if (!n.IsMap()) {
      fail(n, "each task must be a mapping with task_id and operator, got " + kind_name(n));
      return;
    }
    check_duplicate_keys(n);
    task t;
    t.where = {file_, line(n)};
    if (auto id = n["task_id"]) set(scalar(id, "task_id"), [&](const std::string& s) { t.id = group.empty() ? s : group + "." + s; });
    else fail(n, "task: missing required key 'task_id'");
    t.group = group;
    if (auto op = n["operator"]) set(scalar(op, "operator"), [&](const std::string& s) { t.operator_name = s; });
    else fail(n, "task '" + t.id + "': missing required key 'operator'");

    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string key = it->first.as<std::string>("");
      const YAML::Node v = it->second;
      if (key == "task_id" || key == "operator") continue;
      if (key == "dependencies") {
        set(string_list(v, key), [&](const std::vector<std::string>& deps) { t.dependencies = deps; });
        continue;
      }
      if (key == "outlets") {
        set(string_list(v, "task '" + t.id + "': outlets"), [&](const std::vector<std::string>& uris) { t.outlets = uris; });
        continue;
      }
      if (read_option(t.options, key, v, "task '" + t.id + "': ")) continue;
      if (read_flow(t.flow, key, v, "task '" + t.id + "': ")) continue;
      if (read_mapping(t, key, v)) continue;
      if (unsupported(it->first, key, "task '" + t.id + "':")) continue;
      read_field(t, it->first, key, v);
    }
    d.add_task(std::move(t));
  }

  // An operator field; check() validates it against the operator's spec.
  void read_field(task& t, const YAML::Node& key_node, const std::string& key, const YAML::Node& v) {
    field_value f;
    f.line = line(v);
    if (!may_be_field(t, key)) {
      // Kept without its value: check() names it as an unknown field with suggestions.
    } else if (v.IsSequence()) {
      set(string_list(v, key), [&](const std::vector<std::string>& items) { f.items = items; });
    } else if (v.IsMap()) {
      set(string_map(v, key), [&](const std::map<std::string, std::string>& m) { f.entries = m; });
    } else if (v.IsNull()) {
      fail(key_node, "task '" + t.id + "': field '" + key + "' has no value");
      return;
    } else {
      f.text = v.Scalar();
    }
    f.line = f.line > 0 ? f.line : line(key_node);
    t.fields.emplace(key, std::move(f));
  }

  // One value to map over, as an XCom's element would be: a scalar is its text, a mapping or a
  // list its JSON (so that a mapping field such as bash's env takes a YAML mapping's entries).
  std::optional<std::string> mapped_value(const YAML::Node& item, std::string_view key) {
    // Its scalars as text, as written (`1.10` stays "1.10", `00123` "00123"): what a field's text
    // or an env entry written in place would be.
    if (item.IsMap() || item.IsSequence()) return to_json(item, false).dump();
    return scalar(item, key);
  }

  // Where mapped values come from: a list, or `{xcom: TASK, key: KEY}` (an upstream XCom, which
  // makes TASK an upstream task as Airflow's XComArg does).
  std::optional<map_source> read_map_source(task& t, const YAML::Node& v, const std::string& field, bool list_allowed) {
    map_source out;
    if (v.IsMap() && v["xcom"]) {
      check_duplicate_keys(v);
      for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string k = it->first.as<std::string>("");
        if (k == "xcom") set(scalar(it->second, field + ".xcom"), [&](const std::string& s) { out.xcom_task = s; });
        else if (k == "key") set(scalar(it->second, field + ".key"), [&](const std::string& s) { out.xcom_key = s; });
        else fail(it->first, field + ": unknown key '" + k + "'; an XCom source has 'xcom' (the task) and 'key'");
      }
      if (!out.xcom_task.empty() &&
          std::find(t.dependencies.begin(), t.dependencies.end(), out.xcom_task) == t.dependencies.end())
        t.dependencies.push_back(out.xcom_task);
      return out;
    }
    if (list_allowed && v.IsSequence()) {
      for (const auto& item : v)
        if (auto text = mapped_value(item, field)) out.items.push_back(std::move(*text));
      return out;
    }
    fail(v, field + ": expected " + std::string(list_allowed ? "a list or " : "") + "{xcom: TASK_ID, key: KEY}, got " + kind_name(v));
    return std::nullopt;
  }

  // Dynamic task mapping keys (`expand`, `expand_kwargs`, `partial`, `max_map_length`); false
  // when `key` is not one.
  bool read_mapping(task& t, const std::string& key, const YAML::Node& v) {
    const std::string owner = "task '" + t.id + "': ";
    if (key == "expand") {
      if (!v.IsMap()) {
        fail(v, owner + "expand: expected a mapping of fields to lists, got " + kind_name(v));
        return true;
      }
      check_duplicate_keys(v);
      for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string field = it->first.as<std::string>("");
        if (auto from = read_map_source(t, it->second, owner + "expand." + field, true))
          t.mapping.expand.emplace_back(field, std::move(*from));
      }
    } else if (key == "expand_kwargs") {
      t.mapping.has_kwargs = true;
      if (v.IsSequence()) {
        for (const auto& item : v) {
          const std::string where = owner + "expand_kwargs[]";
          if (!item.IsMap()) {
            fail(item, where + ": expected a mapping, got " + kind_name(item));
            continue;
          }
          check_duplicate_keys(item);
          std::map<std::string, std::string> fields;
          for (auto it = item.begin(); it != item.end(); ++it) {
            const std::string name = it->first.as<std::string>("");
            if (auto text = mapped_value(it->second, where + "." + name)) fields[name] = std::move(*text);
          }
          t.mapping.kwargs.push_back(std::move(fields));
        }
      } else if (auto from = read_map_source(t, v, owner + "expand_kwargs", false)) {
        t.mapping.kwargs_from = std::move(*from);
      }
    } else if (key == "partial") {
      // Airflow's partial(): the fields every instance shares (the task's other fields are too).
      if (!v.IsMap()) {
        fail(v, owner + "partial: expected a mapping of fields, got " + kind_name(v));
        return true;
      }
      check_duplicate_keys(v);
      for (auto it = v.begin(); it != v.end(); ++it) read_field(t, it->first, it->first.as<std::string>(""), it->second);
    } else if (key == "max_map_length") {
      set(integer(v, owner + key, 1), [&](int n) { t.mapping.max_map_length = n; });
    } else {
      return false;
    }
    return true;
  }

  // True when `key` is a field of the task's operator, or the operator is unknown (check()
  // reports that): the value of any other key is not read, so a list or mapping given to an
  // unknown key is reported as an unknown field, not as a malformed value.
  bool may_be_field(const task& t, const std::string& key) const {
    const operator_spec* spec = operators_.find(t.operator_name);
    if (!spec) return true;
    return std::any_of(spec->fields.begin(), spec->fields.end(), [&](const field_spec& f) { return f.name == key; });
  }

  std::string_view text_;
  std::string file_;
  const operator_catalog& operators_;
  std::vector<definition_error> problems_;
};

class document_marks final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { start_ = mark; content_.reset(); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { seen(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override { seen(mark); }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override { seen(mark); }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override { seen(mark); }
  void OnMapEnd() override {}
  const YAML::Mark& start() const { return start_; }
  // Where the document's first value starts; none for a document of nothing (a trailing `---`).
  const std::optional<YAML::Mark>& content() const { return content_; }

 private:
  void seen(const YAML::Mark& mark) {
    if (!content_) content_ = mark;
  }
  YAML::Mark start_;
  std::optional<YAML::Mark> content_;
};

// A file's documents, seen through the parser's events (no nodes built): a problem if a second
// one holds anything, or if the parser is stuck on a token it cannot make a node of (a document
// that starts where the one before started; yaml-cpp would hand out empty documents there for ever).
std::optional<definition_error> documents_problem(std::string_view text, const std::string& file) {
  const auto problem = [&](int line, std::string message) {
    error_context where;
    where.file = file;
    where.line = line;
    return std::optional<definition_error>(std::in_place, where, std::move(message));
  };
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  document_marks marks;
  int documents = 0;
  int previous_start = -1;
  while (parser.HandleNextDocument(marks)) {
    const YAML::Mark& at = marks.start();
    if (at.pos == previous_start) {
      // Named only when it is plain ASCII: the mark does not count a byte-order mark.
      const auto pos = static_cast<std::size_t>(at.pos);
      const char c = at.pos >= 0 && pos < text.size() ? text[pos] : '\0';
      const std::string token = c > ' ' && c < 127 ? std::string("'") + c + "'" : "token";
      return problem(at.line + 1, "YAML syntax error: unexpected " + token + " where a value or a new document should start");
    }
    previous_start = at.pos;
    // A later document that holds nothing is a trailing `---` or `...`.
    if (++documents > 1 && marks.content())
      return problem(marks.content()->line + 1,
                     "a DAG file holds one YAML document, and a second one starts here: put each DAG in a file of its own");
  }
  return std::nullopt;
}

// False when the first document is all there is: a block mapping at the left margin ends only
// where the stream ends or a line starts with a document marker (`---`, `...`); anything else in
// its place is a syntax error the first scan already reported.
bool may_hold_more_documents(const YAML::Node& first, std::string_view text) {
  if (!first.IsMap() || first.Style() != YAML::EmitterStyle::Block || first.Mark().column != 0) return true;
  const auto starts_a_line = [&](std::string_view marker) {
    return text.starts_with(marker) || text.find("\n" + std::string(marker)) != std::string_view::npos;
  };
  return starts_a_line("---") || starts_a_line("...");
}

}  // namespace

yaml_load_result load_yaml_text(std::string_view text, const std::string& file, const operator_catalog& operators) {
  yaml_load_result result;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
    // Every document, not only the first: a second DAG would otherwise vanish unseen. Counted by
    // events, not with YAML::LoadAll: yaml-cpp 0.7 loops there for good (and grows without bound)
    // on a token no node can start with, such as a stray ',' at a line's start. The second scan
    // is skipped where the first document must be the whole stream (it made `validate` 40 % slower).
    if (std::optional<definition_error> p = may_hold_more_documents(root, text) ? documents_problem(text, file) : std::nullopt) {
      result.problems.push_back(std::move(*p));
      return result;
    }
  } catch (const YAML::Exception& e) {
    error_context where;
    where.file = file;
    where.line = e.mark.line >= 0 ? e.mark.line + 1 : 0;
    std::string message = "YAML syntax error: " + e.msg;
    if (e.msg.find("alias") != std::string::npos || e.msg.find("anchor") != std::string::npos)
      message += " (quote values that start with '*', such as cron expressions: \"*/5 * * * *\")";
    else if (e.msg.find("unknown token") != std::string::npos)
      message += " (quote values that start with '@' or '`', such as presets: \"@daily\")";
    result.problems.emplace_back(where, message);
    return result;
  }
  yaml_reader reader(text, file, operators);
  std::optional<definition> d = reader.read(root);
  result.problems = std::move(reader.problems());
  if (!d) return result;
  for (const auto& t : d->all_tasks()) {
    const operator_spec* spec = operators.find(t.operator_name);
    if (spec && !spec->yaml) {
      error_context where;
      where.file = file;
      where.line = t.where.line;
      result.problems.emplace_back(where, "task '" + t.id + "': operator '" + spec->name +
                                              "' is only available to C++ DAGs; YAML operators: " +
                                              [&] { std::string s; for (const auto& n : operators.yaml_names()) s += (s.empty() ? "" : ", ") + n; return s; }());
    }
  }
  // Field and graph problems are only worth reporting once the file's shape was readable.
  if (result.problems.empty()) {
    auto more = check(*d, operators);
    result.problems.insert(result.problems.end(), more.begin(), more.end());
  }
  if (result.problems.empty()) result.dag = std::move(d);
  return result;
}

yaml_load_result load_yaml_file(const std::filesystem::path& file, const operator_catalog& operators) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    yaml_load_result result;
    error_context where;
    where.file = file.string();
    result.problems.emplace_back(where, std::string("cannot read file: ") + std::strerror(errno));
    return result;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return load_yaml_text(buffer.str(), file.string(), operators);
}

}  // namespace dag
