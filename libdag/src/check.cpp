// Validation of a whole definition, shared by the YAML loader and C++ DAGs.
#include <dag/load/check.hpp>

#include <algorithm>
#include <filesystem>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <utility>
#include <sstream>

#include <dag/core/json_text.hpp>
#include <dag/core/suggest.hpp>
#include <dag/graph/task_graph.hpp>
#include <dag/schedule/timetable.hpp>
#include <dag/template/template.hpp>

namespace dag {
namespace {

// Task keys that are not operator fields, offered as suggestions next to the operator's fields.
const std::vector<std::string> task_keys{
    "task_id",     "operator",        "dependencies",      "trigger_rule",    "retries",
    "retry_delay", "retry_exponential_backoff", "max_retry_delay", "execution_timeout", "queue",
    "priority_weight", "owner",       "email",             "email_on_failure", "email_on_retry",
    "depends_on_past", "weight_rule", "max_active_tis_per_dag", "pool", "pool_slots", "wait_for_downstream", "max_active_tis_per_dagrun", "branch",      "short_circuit",     "ignore_downstream_trigger_rules",
    "follow_task_ids_if_true",        "follow_task_ids_if_false", "expand", "expand_kwargs", "partial", "max_map_length"};

/// The largest template file a field may name: far above any script or query, small enough that a
/// wrong path (a log, a dump) fails clearly instead of loading it into every try.
constexpr std::uintmax_t max_template_file_bytes = 1024 * 1024;

class checker {
public:
  checker(definition& d, const operator_catalog& operators) : d_(d), operators_(operators) {}

  std::vector<definition_error> run() {
    check_dag_settings();
    for (auto& t : d_.all_tasks()) {
      normalize_lists(t);
      check_task(t);
      check_flow(t);
      check_mapping(t);
    }
    expand_groups();
    resolve_template_files();
    task_graph graph = task_graph::build(d_, problems_);
    if (graph.size() == d_.all_tasks().size()) check_templates(graph);
    d_.apply_default_args();
    return std::move(problems_);
  }

private:
  error_context at_key(const std::string& key) const {
    error_context c;
    c.file = d_.where().file;
    c.line = d_.line_of(key);
    c.dag_id = d_.id();
    return c;
  }
  error_context at_field(const task& t, int line) const {
    error_context c;
    c.file = t.where.file.empty() ? d_.where().file : t.where.file;
    c.line = line > 0 ? line : t.where.line;
    c.dag_id = d_.id();
    c.task_id = t.id;
    return c;
  }
  void fail(error_context where, const std::string& message) { problems_.emplace_back(std::move(where), message); }

  void check_dag_settings() {
    if (!is_valid_id(d_.id()))
      fail(at_key("dag_id"), "invalid dag_id '" + d_.id() + "': use letters, digits, '_', '-' and '.'");
    const bool zone_ok = is_known_timezone(d_.timezone());
    if (!zone_ok) fail(at_key("timezone"), "timezone: unknown IANA timezone '" + d_.timezone() + "'");
    std::optional<schedule_spec> spec;
    try {
      spec = schedule_spec::parse(d_.schedule());
    } catch (const error& e) {
      // A URI is no time schedule: say how to schedule on it instead.
      if (d_.schedule().find("://") != std::string::npos)
        fail(at_key("schedule"), "schedule: to run on updates of a dataset, give a list: schedule: [" + d_.schedule() + "]");
      else
        fail(at_key("schedule"), "schedule: " + e.message());
    }
    if (spec && spec->kind != schedule_kind::none && !d_.start_date())
      fail(at_key("schedule"), "start_date is required when a schedule is set");
    if (const auto& on = d_.dataset_schedule()) {
      if (!d_.schedule().empty())
        fail(at_key("schedule"), "schedule: a DAG runs on a time schedule or on datasets, not both");
      if (on->uris().empty()) fail(at_key("schedule"), "schedule: a dataset condition names no dataset");
      for (const auto& uri : on->uris())
        if (auto why = dataset_uri_problem(uri); !why.empty()) fail(at_key("schedule"), "schedule: " + why);
    }
    if (d_.start_date() && d_.end_date() && *d_.end_date() < *d_.start_date())
      fail(at_key("end_date"), "end_date " + format_iso(*d_.end_date()) + " is before start_date " +
                                   format_iso(*d_.start_date()));
    if (d_.max_active_runs() < 1) fail(at_key("max_active_runs"), "max_active_runs: must be at least 1");
    if (d_.max_active_tasks() < 1) fail(at_key("max_active_tasks"), "max_active_tasks: must be at least 1");
    if (d_.dagrun_timeout() && d_.dagrun_timeout()->count() <= 0)
      fail(at_key("dagrun_timeout"), "dagrun_timeout: must be longer than 0s");
    if (d_.all_tasks().empty()) fail(at_key("tasks"), "a DAG needs at least one task");
    check_options(d_.default_args(), at_key("default_args"), "default_args.");
    check_notifiers(d_.on_run_failure(), at_key("on_run_failure"), "on_run_failure");
    check_notifiers(d_.on_run_success(), at_key("on_run_success"), "on_run_success");
  }

  // Each notifier's problem, at its own line when the loader recorded one.
  void check_notifiers(const std::vector<notifier_spec>& list, error_context where, const std::string& prefix) {
    for (const auto& n : list)
      if (auto why = notifier_problem(n)) {
        error_context at = where;
        if (n.line > 0) at.line = n.line;
        fail(at, prefix + ": " + *why);
      }
  }

  void check_options(const task_options& o, const error_context& where, const std::string& prefix) {
    if (o.retries && *o.retries < 0) fail(where, prefix + "retries: must be at least 0");
    if (o.max_active_tis_per_dag && *o.max_active_tis_per_dag < 1) fail(where, prefix + "max_active_tis_per_dag: must be at least 1");
    if (o.pool_slots && *o.pool_slots < 1) fail(where, prefix + "pool_slots: must be at least 1");
    if (o.max_active_tis_per_dagrun && *o.max_active_tis_per_dagrun < 1)
      fail(where, prefix + "max_active_tis_per_dagrun: must be at least 1");
    if (o.pool && o.pool->empty()) fail(where, prefix + "pool: must not be empty");
    // Names looked up again in the store, whose PostgreSQL backend would change other bytes
    // (pg_text) and then no longer match them: refused here instead.
    if (o.pool && !is_utf8_text(*o.pool)) fail(where, prefix + "pool: must be UTF-8 text without NUL bytes");
    if (o.queue && !is_utf8_text(*o.queue)) fail(where, prefix + "queue: must be UTF-8 text without NUL bytes");
    auto positive = [&](const std::optional<duration>& v, const char* name) {
      if (v && v->count() <= 0) fail(where, prefix + name + ": must be longer than 0s");
    };
    positive(o.execution_timeout, "execution_timeout");
    positive(o.max_retry_delay, "max_retry_delay");
    if (o.retry_delay && o.retry_delay->count() < 0) fail(where, prefix + "retry_delay: must not be negative");
    if (o.on_failure) check_notifiers(*o.on_failure, where, prefix + "on_failure");
    if (o.on_retry) check_notifiers(*o.on_retry, where, prefix + "on_retry");
    if (o.on_success) check_notifiers(*o.on_success, where, prefix + "on_success");
    if (o.on_sla_miss) check_notifiers(*o.on_sla_miss, where, prefix + "on_sla_miss");
  }

  // A list field given one value (`parameters: x`) is a list of that one value.
  void normalize_lists(task& t) const {
    const operator_spec* spec = operators_.find(t.operator_name);
    if (!spec) return;
    for (auto& [name, value] : t.fields) {
      const field_spec* f = find_field(*spec, name);
      if (f && f->kind == field_kind::string_list && value.items.empty() && !value.text.empty())
        value.items.push_back(std::exchange(value.text, {}));
    }
  }

  void check_task(const task& t) {
    if (!is_valid_id(t.id)) fail(at_field(t, 0), "invalid task_id '" + t.id + "': use letters, digits, '_', '-' and '.'");
    check_options(t.options, at_field(t, 0), "task '" + t.id + "': ");
    for (const auto& uri : t.outlets)
      if (auto why = dataset_uri_problem(uri); !why.empty()) fail(at_field(t, 0), "task '" + t.id + "': outlets: " + why);
    const operator_spec* spec = operators_.find(t.operator_name);
    if (!spec) {
      fail(at_field(t, 0), "task '" + t.id + "': unknown operator '" + t.operator_name + "'" +
                               did_you_mean(t.operator_name, operators_.yaml_names()) + "; known: " +
                               join(operators_.yaml_names()));
      return;
    }
    if (spec->name == "callable" && !t.callable)
      fail(at_field(t, 0), "task '" + t.id + "': a callable task needs a C++ body");
    for (const auto& f : spec->fields)
      if (f.required && !t.fields.contains(f.name) && !maps_field(t, f.name))
        fail(at_field(t, 0), "task '" + t.id + "': operator '" + spec->name + "' requires field '" + f.name + "'");
    for (const auto& [name, value] : t.fields) {
      const field_spec* f = find_field(*spec, name);
      if (!f) {
        std::vector<std::string> candidates = task_keys;
        for (const auto& known : spec->fields) candidates.push_back(known.name);
        fail(at_field(t, value.line), "task '" + t.id + "': unknown field '" + name + "' for operator '" +
                                          spec->name + "'" + did_you_mean(name, candidates));
        continue;
      }
      check_field_value(t, *f, value);
      if (spec->check_value && f->kind != field_kind::templated) {
        std::vector<std::string> texts = value.items;
        if (!value.text.empty()) texts.push_back(value.text);
        for (const auto& text : texts)
          if (auto why = spec->check_value(name, text)) fail(at_field(t, value.line), "task '" + t.id + "': " + name + ": " + *why);
      }
    }
  }

  // True when mapping gives the task `field` (expanded, or possibly from expand_kwargs' XCom).
  static bool maps_field(const task& t, const std::string& field) {
    const task_mapping& m = t.mapping;
    if (m.has_kwargs && !m.kwargs_from.xcom_task.empty()) return true;
    if (std::any_of(m.expand.begin(), m.expand.end(), [&](const auto& e) { return e.first == field; })) return true;
    return !m.kwargs.empty() && std::all_of(m.kwargs.begin(), m.kwargs.end(), [&](const auto& k) { return k.contains(field); });
  }

  // A mapped task expands fields of its operator that it does not also set for every instance;
  // an XCom it expands over makes that task one of its upstream tasks (Airflow's XComArg).
  void check_mapping(task& t) {
    task_mapping& m = t.mapping;
    if (!m.mapped()) return;
    const std::string who = "task '" + t.id + "': ";
    if (!m.expand.empty() && m.has_kwargs) fail(at_field(t, 0), who + "use expand or expand_kwargs, not both");
    if (m.max_map_length < 1) fail(at_field(t, 0), who + "max_map_length must be at least 1");
    const operator_spec* spec = operators_.find(t.operator_name);
    auto check_name = [&](const std::string& field, const char* how) {
      if (!spec) return;
      if (!find_field(*spec, field)) {
        std::vector<std::string> names;
        for (const auto& known : spec->fields) names.push_back(known.name);
        fail(at_field(t, 0), who + how + ": '" + field + "' is not a field of operator '" + spec->name + "'" + did_you_mean(field, names));
      } else if (t.fields.contains(field)) {
        fail(at_field(t, t.fields.at(field).line), who + how + ": field '" + field + "' is also given for every instance; give it in one place");
      }
    };
    std::set<std::string> seen;
    for (const auto& [field, from] : m.expand) {
      if (!seen.insert(field).second) fail(at_field(t, 0), who + "expand: field '" + field + "' given twice");
      check_name(field, "expand");
    }
    for (const auto& kwargs : m.kwargs)
      for (const auto& [field, value] : kwargs) check_name(field, "expand_kwargs");
    auto depend_on = [&](const map_source& from) {
      if (from.xcom_task.empty()) return;
      if (from.xcom_task == t.id) fail(at_field(t, 0), who + "cannot expand over its own XCom");
      else if (std::find(t.dependencies.begin(), t.dependencies.end(), from.xcom_task) == t.dependencies.end())
        t.dependencies.push_back(from.xcom_task);
    };
    for (const auto& [field, from] : m.expand) depend_on(from);
    depend_on(m.kwargs_from);
  }

  // Task groups become plain dependencies before the graph is built: a group's own dependencies
  // go to its roots, and a dependency on a group means its leaves. Running twice changes nothing
  // more (the engine checks definitions the loader already checked).
  void expand_groups() {
    if (d_.groups().empty()) return;
    std::set<std::string> seen;
    for (const auto& g : d_.groups()) {
      error_context where = at_key("tasks");
      if (g.where.line > 0) where.line = g.where.line;
      if (!is_valid_id(g.id)) fail(where, "invalid group_id '" + g.id + "': use letters, digits, '_', '-' and '.'");
      if (!seen.insert(g.id).second) fail(where, "duplicate group_id '" + g.id + "'");
      if (d_.find(g.id)) fail(where, "group_id '" + g.id + "' is also a task_id");
      if (!g.parent.empty() && !seen.contains(g.parent)) fail(where, "group '" + g.id + "': unknown enclosing group '" + g.parent + "'");
    }
    for (const auto& t : d_.all_tasks())
      if (!t.group.empty() && !seen.contains(t.group))
        fail(at_field(t, 0), "task '" + t.id + "': unknown group '" + t.group + "'");
    auto add = [](std::vector<std::string>& deps, const std::string& id) {
      if (std::find(deps.begin(), deps.end(), id) == deps.end()) deps.push_back(id);
    };
    std::vector<std::pair<std::size_t, std::string>> to_roots;
    for (const auto& g : d_.groups())
      for (std::size_t root : d_.group_roots(g.id))
        for (const auto& dep : g.dependencies) to_roots.emplace_back(root, dep);
    for (auto& [root, dep] : to_roots) add(d_.all_tasks()[root].dependencies, dep);
    std::map<std::string, std::vector<std::string>> leaves;
    for (const auto& g : d_.groups())
      for (std::size_t leaf : d_.group_leaves(g.id)) leaves[g.id].push_back(d_.all_tasks()[leaf].id);
    for (auto& t : d_.all_tasks()) {
      std::vector<std::string> deps;
      for (const auto& dep : t.dependencies) {
        auto it = leaves.find(dep);
        if (it == leaves.end() && !d_.is_group(dep)) add(deps, dep);
        else if (it != leaves.end())
          for (const auto& leaf : it->second)
            if (leaf != t.id) add(deps, leaf);
      }
      t.dependencies = std::move(deps);
    }
  }

  // An operator that decides its downstream itself (latest_only, branch_day_of_week) gives its
  // tasks its flow rule; a task cannot have two.
  void check_flow(task& t) {
    const operator_spec* spec = operators_.find(t.operator_name);
    const std::string who = "task '" + t.id + "': ";
    if (spec && spec->flow != flow_rule::none) {
      if (t.flow.rule != flow_rule::none && t.flow.rule != spec->flow)
        fail(at_field(t, 0), who + "operator '" + spec->name + "' decides its downstream tasks itself; remove branch/short_circuit");
      t.flow.rule = spec->flow;
    }
    const bool conditional = t.flow.follow_if_true || t.flow.follow_if_false;
    if (spec && spec->flow == flow_rule::branch && !conditional)
      fail(at_field(t, 0), who + "operator '" + spec->name + "' needs follow_task_ids_if_true and follow_task_ids_if_false");
    if (conditional && t.flow.rule != flow_rule::branch)
      fail(at_field(t, 0), who + "follow_task_ids_if_true/_if_false need branch: true");
    if (conditional && (!t.flow.follow_if_true || !t.flow.follow_if_false))
      fail(at_field(t, 0), who + "set both follow_task_ids_if_true and follow_task_ids_if_false");
    for (const auto* list : {&t.flow.follow_if_true, &t.flow.follow_if_false}) {
      if (!*list) continue;
      for (const auto& id : **list)
        if (!d_.find(id) && !d_.is_group(id)) {
          // The candidates are listed only for an error: per task they made checking a DAG of
          // n tasks cost n² string copies (20,000 tasks: tens of seconds).
          std::vector<std::string> ids;
          for (const auto& other : d_.all_tasks()) ids.push_back(other.id);
          fail(at_field(t, 0), who + "follows unknown task '" + id + "'" + did_you_mean(id, ids));
        }
    }
  }

  static const field_spec* find_field(const operator_spec& spec, const std::string& name) {
    for (const auto& f : spec.fields)
      if (f.name == name) return &f;
    return nullptr;
  }

  static std::string join(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
  }

  void check_field_value(const task& t, const field_spec& f, const field_value& v) {
    const std::string where = "task '" + t.id + "': " + f.name + ": ";
    const bool is_list = !v.items.empty(), is_map = !v.entries.empty();
    switch (f.kind) {
      case field_kind::string_list:
        if (is_map) fail(at_field(t, v.line), where + "expected a list, got a mapping");
        return;
      case field_kind::string_map:
        if (!is_map && !v.text.empty()) fail(at_field(t, v.line), where + "expected a mapping, got '" + v.text + "'");
        if (is_list) fail(at_field(t, v.line), where + "expected a mapping, got a list");
        return;
      default:
        break;
    }
    if (is_list || is_map) {
      fail(at_field(t, v.line), where + "expected a single value, got " + (is_list ? "a list" : "a mapping"));
      return;
    }
    switch (f.kind) {
      case field_kind::boolean:
        if (v.text != "true" && v.text != "false" && v.text != "True" && v.text != "False") fail(at_field(t, v.line), where + "expected true or false, got '" + v.text + "'");
        break;
      case field_kind::integer: {
        std::istringstream in(v.text);
        long long n = 0;
        if (!(in >> n) || !in.eof()) fail(at_field(t, v.line), where + "expected a whole number, got '" + v.text + "'");
        break;
      }
      case field_kind::time_span:
        try {
          parse_duration(v.text);
        } catch (const error& e) {
          fail(at_field(t, v.line), where + e.message());
        }
        break;
      default:
        if (!f.choices.empty() && std::find(f.choices.begin(), f.choices.end(), v.text) == f.choices.end())
          fail(at_field(t, v.line), where + "'" + v.text + "' is not one of " + join(f.choices) + did_you_mean(v.text, f.choices));
        break;
    }
  }

  // Templates are checked once the graph is known: an XCom may only come from an upstream task.
  void check_templates(const task_graph& graph) {
    template_scope scope;
    for (const auto& [name, value] : d_.params()) scope.params.insert(name);
    for (const auto& t : d_.all_tasks()) scope.task_ids.insert(t.id);
    const auto& tasks = d_.all_tasks();
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      const task& t = tasks[i];
      const operator_spec* spec = operators_.find(t.operator_name);
      if (!spec) continue;
      scope.task_id = t.id;
      // The transitive upstream set costs O(tasks) per task: build it only where an XCom is pulled.
      bool pulls = false;
      for (const auto& [name, value] : t.fields) {
        pulls = pulls || value.text.find("xcom_pull") != std::string::npos;
        for (const auto& item : value.items) pulls = pulls || item.find("xcom_pull") != std::string::npos;
        for (const auto& [key, item] : value.entries) pulls = pulls || item.find("xcom_pull") != std::string::npos;
      }
      scope.upstream_task_ids.reset();
      if (pulls) {
        std::set<std::string> upstream;
        for (std::size_t u : graph.all_upstream(i)) upstream.insert(tasks[u].id);
        scope.upstream_task_ids = std::move(upstream);
      }
      for (const auto& [name, value] : t.fields) {
        const field_spec* f = find_field(*spec, name);
        if (!f) continue;
        if (f->kind == field_kind::templated)
          check_template_text(t, name, value.text, value.line, scope, value.template_file);
        if (f->kind == field_kind::string_list)
          for (const auto& item : value.items) check_template_text(t, name, item, value.line, scope);
        if (f->kind == field_kind::string_map)
          for (const auto& [key, item] : value.entries) check_template_text(t, name + "." + key, item, value.line, scope);
      }
    }
  }

  /// Checks one template; a problem points at `file` (a template file) when given, else at the
  /// DAG file, on the template's line.
  void check_template_text(const task& t, const std::string& field, const std::string& text, int line,
                           const template_scope& scope, const std::string& file = {}) {
    try {
      check(template_text::parse(text), scope);
    } catch (const template_error& e) {
      const int at = line > 0 ? line + e.line() : 0;
      error_context where = at_field(t, at);
      if (!file.empty()) where.file = file;
      fail(where, "task '" + t.id + "': " + field + ": " + e.message() + " (column " +
                      std::to_string(e.column()) + ")");
    }
  }

  /// Airflow's resolve_template_files: a templated field whose value ends in one of its
  /// operator's template extensions (`.sh`, `.sql`) names a file. It is looked up in the DAG
  /// file's folder, then in template_searchpath, and its text replaces the value, to be checked
  /// and rendered like inline text. Done once: a resolved field remembers its file.
  void resolve_template_files() {
    for (auto& t : d_.all_tasks()) {
      const operator_spec* spec = operators_.find(t.operator_name);
      if (!spec) continue;
      for (auto& [name, value] : t.fields) {
        const field_spec* f = find_field(*spec, name);
        if (!f || f->kind != field_kind::templated || !value.template_file.empty()) continue;
        const std::string& text = value.text;  // clang 14 cannot capture a structured binding in a lambda
        const bool names_file = std::any_of(f->template_ext.begin(), f->template_ext.end(),
                                            [&](const std::string& ext) { return text.ends_with(ext); });
        if (names_file) read_template_file(t, name, value);
      }
    }
  }

  /// The folders searched for template files, in order (Airflow: the DAG's folder, then
  /// template_searchpath); relative ones are relative to the DAG file's folder.
  std::vector<std::filesystem::path> template_folders() const {
    std::vector<std::filesystem::path> out;
    const std::filesystem::path dag_folder =
        d_.where().file.empty() ? std::filesystem::path{} : std::filesystem::path(d_.where().file).parent_path();
    if (!d_.where().file.empty()) out.push_back(dag_folder.empty() ? "." : dag_folder);
    for (const auto& folder : d_.template_searchpath()) {
      std::filesystem::path p(folder);
      out.push_back(p.is_relative() && !dag_folder.empty() ? dag_folder / p : p);
    }
    return out;
  }

  void read_template_file(task& t, const std::string& field, field_value& value) {
    const std::string where = "task '" + t.id + "': " + field + ": template file '" + value.text + "'";
    // As Jinja's FileSystemLoader: the name is relative to each folder, and may not climb out.
    std::filesystem::path name;
    for (const auto& part : std::filesystem::path(value.text).relative_path()) {
      if (part == "..") {
        fail(at_field(t, value.line), where + ": '..' is not allowed in a template file's name");
        return;
      }
      name /= part;
    }
    const auto folders = template_folders();
    std::string searched;
    for (const auto& folder : folders) {
      const std::filesystem::path path = folder / name;
      searched += (searched.empty() ? "" : ", ") + folder.string();
      std::error_code ec;
      if (!std::filesystem::is_regular_file(path, ec)) continue;
      const auto size = std::filesystem::file_size(path, ec);
      if (ec || size > max_template_file_bytes) {
        fail(at_field(t, value.line), where + ": " + (ec ? "cannot be read" : std::to_string(size) + " bytes is more than the " + std::to_string(max_template_file_bytes) + " a template file may have"));
        return;
      }
      std::ifstream in(path, std::ios::binary);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!in && !in.eof()) {
        fail(at_field(t, value.line), where + ": cannot be read");
        return;
      }
      value.text = std::move(text);
      value.template_file = path.lexically_normal().string();
      value.line = 1;
      return;
    }
    fail(at_field(t, value.line),
         where + " not found" + (folders.empty() ? " (no folder to search: set template_searchpath)" : " in " + searched) +
             "; a value ending in " + std::filesystem::path(value.text).extension().string() +
             " names a template file, as in Airflow (end it with a space to use it as text)");
  }

  definition& d_;
  const operator_catalog& operators_;
  std::vector<definition_error> problems_;
};

}  // namespace

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > 250) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::vector<definition_error> check(definition& d, const operator_catalog& operators) {
  // Unchanged since a check that passed: checking again would change nothing (default_args are
  // applied, template files read) and find nothing.
  if (d.checked_with(operators.stamp())) return {};
  auto problems = checker(d, operators).run();
  d.checked_.set(problems.empty() ? operators.stamp() : 0);
  return problems;
}

}  // namespace dag
