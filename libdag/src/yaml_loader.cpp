// YAML DAG files → definitions. Every problem is collected as `file:line: message` so a user
// sees all of a file's mistakes at once; the file's DAG is kept out if there is any.
#include <dag/load/yaml_loader.hpp>

#include <array>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include <dag/core/suggest.hpp>
#include <dag/load/check.hpp>

namespace dag {
namespace {

constexpr std::array dag_keys{"dag_id",   "description",      "schedule",         "timezone",
                              "start_date", "end_date",       "catchup",          "max_active_runs",
                              "max_active_tasks", "tags",     "params",           "default_args",
                              "on_run_failure", "on_run_success", "tasks"};

// Keys that set task_options, valid on a task and in default_args.
constexpr std::array option_keys{"trigger_rule",     "retries",        "retry_delay",
                                 "retry_exponential_backoff", "max_retry_delay", "execution_timeout",
                                 "queue",            "priority_weight", "owner",
                                 "email",            "email_on_failure", "email_on_retry",
                                 "on_failure",       "on_retry",       "on_success",
                                 "depends_on_past"};

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
  yaml_reader(std::string_view text, std::string file) : text_(text), file_(std::move(file)) {}

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
      else if (key == "tags") set(string_list(value, key), [&](auto v) { d.tags(v); });
      else if (key == "params") read_params(d, value);
      else if (key == "default_args") read_default_args(d, value);
      else if (key == "on_run_failure") set(notifiers(value, key), [&](auto v) { d.on_run_failure(v); });
      else if (key == "on_run_success") set(notifiers(value, key), [&](auto v) { d.on_run_success(v); });
      else if (key == "tasks") continue;  // after the DAG's own keys, below
      else unknown_key(it->first, key, join_keys(dag_keys), "DAG");
    }
    if (auto tasks = root["tasks"]) read_tasks(d, tasks);
    else fail(root, "missing required key 'tasks'");
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
    fail(key_node, "unknown " + where + " key '" + key + "'" + did_you_mean(key, allowed));
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
    if (auto text = scalar(n, "schedule")) d.schedule(*text);
  }

  void read_params(definition& d, const YAML::Node& n) {
    if (auto params = string_map(n, "params"))
      for (auto& [name, value] : *params) d.param(name, value);
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
    } else if (key == "depends_on_past") {
      if (auto b = boolean(v, field); b && *b) fail(v, owner + "depends_on_past: true is not supported yet (only false)");
    } else {
      return false;
    }
    return true;
  }

  void read_tasks(definition& d, const YAML::Node& n) {
    if (!n.IsSequence()) {
      fail(n, "tasks: expected a list of tasks, got " + kind_name(n));
      return;
    }
    if (n.size() == 0) fail(n, "tasks: a DAG needs at least one task");
    for (const auto& item : n) read_task(d, item);
  }

  void read_task(definition& d, const YAML::Node& n) {
    if (!n.IsMap()) {
      fail(n, "each task must be a mapping with task_id and operator, got " + kind_name(n));
      return;
    }
    check_duplicate_keys(n);
    task t;
    t.where = {file_, line(n)};
    if (auto id = n["task_id"]) set(scalar(id, "task_id"), [&](const std::string& s) { t.id = s; });
    else fail(n, "task: missing required key 'task_id'");
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
      if (read_option(t.options, key, v, "task '" + t.id + "': ")) continue;
      // Everything else is an operator field; check() validates it against the operator's spec.
      field_value f;
      f.line = line(v);
      if (v.IsSequence()) {
        set(string_list(v, key), [&](const std::vector<std::string>& items) { f.items = items; });
      } else if (v.IsMap()) {
        set(string_map(v, key), [&](const std::map<std::string, std::string>& m) { f.entries = m; });
      } else if (v.IsNull()) {
        fail(it->first, "task '" + t.id + "': field '" + key + "' has no value");
        continue;
      } else {
        f.text = v.Scalar();
      }
      f.line = f.line > 0 ? f.line : line(it->first);
      t.fields.emplace(key, std::move(f));
    }
    d.add_task(std::move(t));
  }

  std::string_view text_;
  std::string file_;
  std::vector<definition_error> problems_;
};

}  // namespace

yaml_load_result load_yaml_text(std::string_view text, const std::string& file, const operator_catalog& operators) {
  yaml_load_result result;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
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
  yaml_reader reader(text, file);
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
    result.problems.emplace_back(where, "cannot read file");
    return result;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return load_yaml_text(buffer.str(), file.string(), operators);
}

}  // namespace dag
