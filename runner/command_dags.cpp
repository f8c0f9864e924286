// `dagrun dags list|show|next`: inspect the DAGs of the DAGs folder.
#include <dag/runner/cli.hpp>

#include <algorithm>
#include <ostream>

#include <nlohmann/json.hpp>

#include <dag/core/json_text.hpp>

#include <dag/engine/engine.hpp>
#include <dag/graph/task_graph.hpp>
#include <dag/schedule/timetable.hpp>
#include <dag/store/store.hpp>

#include <set>

namespace po = boost::program_options;
using json = nlohmann::json;

namespace dagrun {
namespace {

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

std::string joined(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : separator) + i;
  return s;
}

std::string optional_time(const std::optional<dag::time_point>& t) { return t ? dag::format_iso(*t) : ""; }

json optional_time_json(const std::optional<dag::time_point>& t) { return t ? json(dag::format_iso(*t)) : json(nullptr); }

// The datasets a DAG is scheduled on, as Airflow 2.9 writes the condition; null for none.
json dataset_condition_json(const dag::definition& d) {
  return d.dataset_schedule() ? json(d.dataset_schedule()->text()) : json(nullptr);
}

int dags_list(invocation& inv) {
  dag::dag_folder folder = load_dags(inv);
  const auto db = dag::open_store(inv.global.db);
  const std::set<std::string> paused = db->paused_dags();
  // A DAG whose file is gone while it has unfinished runs is an import error, as the daemon shows it.
  for (const auto& e : dag::import_errors_of({}, dag::waiting_dags(*db, folder.dags), inv.global.dags_folder))
    inv.err << "import error: " << e.message << "\n";
  if (inv.global.json) {
    json out = json::array();
    for (const auto& d : folder.dags)
      out.push_back({{"dag_id", d->id()},
                     {"description", d->description()},
                     {"schedule", d->schedule_summary().empty() ? json(nullptr) : json(d->schedule_summary())},
                     {"dataset_condition", dataset_condition_json(*d)},
                     {"timezone", d->timezone()},
                     {"start_date", optional_time_json(d->start_date())},
                     {"catchup", d->catchup()},
                     {"is_paused", paused.contains(d->id())},
                     {"tags", d->tags()},
                     {"task_count", d->all_tasks().size()},
                     {"fileloc", d->where().file}});
    inv.out << dag::json_dump(out, 2) << "\n";
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : folder.dags)
      rows.push_back({d->id(), or_dash(d->schedule_summary()), d->timezone(), std::to_string(d->all_tasks().size()),
                      paused.contains(d->id()) ? "yes" : "no", or_dash(joined(d->tags(), ",")), d->where().file});
    print_table(inv.out, {"dag_id", "schedule", "timezone", "tasks", "paused", "tags", "file"}, rows);
  }
  return exit_ok;
}

json task_json(const dag::definition& d, const dag::task_graph& g, std::size_t i) {
  const dag::task& t = d.all_tasks()[i];
  std::vector<std::string> downstream;
  for (std::size_t j : g.downstream(i)) downstream.push_back(d.all_tasks()[j].id);
  json fields = json::object();
  for (const auto& [name, value] : t.fields) {
    if (!value.items.empty()) fields[name] = value.items;
    else if (!value.entries.empty()) fields[name] = value.entries;
    else fields[name] = value.text;
  }
  const auto& s = t.settings;
  return {{"task_id", t.id},
          {"operator", t.operator_name},
          {"dependencies", t.dependencies},
          {"downstream", downstream},
          {"outlets", t.outlets},
          {"trigger_rule", std::string(dag::to_string(s.trigger))},
          {"retries", s.retry.retries},
          {"retry_delay", dag::format_duration(s.retry.retry_delay)},
          {"retry_exponential_backoff", s.retry.exponential_backoff},
          {"max_retry_delay", s.retry.max_retry_delay.count() > 0 ? json(dag::format_duration(s.retry.max_retry_delay)) : json(nullptr)},
          {"execution_timeout", s.execution_timeout ? json(dag::format_duration(*s.execution_timeout)) : json(nullptr)},
          {"queue", s.queue},
          {"priority_weight", s.priority_weight},
          {"fields", fields}};
}

int dags_show(invocation& inv) {
  dag::dag_folder folder = load_dags(inv);
  const dag::definition* d = find_dag(inv, folder, inv.args["dag"].as<std::string>());
  if (!d) return exit_usage;
  std::vector<dag::definition_error> problems;
  const dag::task_graph g = dag::task_graph::build(*d, problems);
  if (inv.global.json) {
    json tasks = json::array();
    for (std::size_t i : g.topological_order()) tasks.push_back(task_json(*d, g, i));
    json out = {{"dag_id", d->id()},
                {"description", d->description()},
                {"schedule", d->schedule_summary().empty() ? json(nullptr) : json(d->schedule_summary())},
                {"dataset_condition", dataset_condition_json(*d)},
                {"timezone", d->timezone()},
                {"start_date", optional_time_json(d->start_date())},
                {"end_date", optional_time_json(d->end_date())},
                {"catchup", d->catchup()},
                {"max_active_runs", d->max_active_runs()},
                {"max_active_tasks", d->max_active_tasks()},
                {"tags", d->tags()},
                {"params", d->params()},
                {"fileloc", d->where().file},
                {"tasks", tasks}};
    inv.out << dag::json_dump(out, 2) << "\n";
    return exit_ok;
  }
  auto& o = inv.out;
  o << "dag_id:           " << d->id() << "\n";
  if (!d->description().empty()) o << "description:      " << d->description() << "\n";
  o << "schedule:         "
    << (d->dataset_schedule() ? "on dataset updates: " + d->dataset_schedule()->text()
                              : d->schedule().empty() ? "none (manual runs only)" : d->schedule())
    << "\n"
    << "timezone:         " << d->timezone() << "\n"
    << "start_date:       " << or_dash(optional_time(d->start_date())) << "\n"
    << "end_date:         " << or_dash(optional_time(d->end_date())) << "\n"
    << "catchup:          " << (d->catchup() ? "true" : "false") << "\n"
    << "max_active_runs:  " << d->max_active_runs() << "\n"
    << "max_active_tasks: " << d->max_active_tasks() << "\n"
    << "tags:             " << or_dash(joined(d->tags())) << "\n";
  if (!d->params().empty()) {
    o << "params:\n";
    for (const auto& [k, v] : d->params()) o << "  " << k << ": " << v << "\n";
  }
  o << "file:             " << d->where().file << "\n\ntasks (in dependency order):\n";
  std::vector<std::vector<std::string>> rows;
  for (std::size_t i : g.topological_order()) {
    const dag::task& t = d->all_tasks()[i];
    rows.push_back({t.id, t.operator_name, or_dash(joined(t.dependencies)), std::string(dag::to_string(t.settings.trigger)),
                    std::to_string(t.settings.retry.retries), dag::format_duration(t.settings.retry.retry_delay),
                    t.settings.execution_timeout ? dag::format_duration(*t.settings.execution_timeout) : "-"});
  }
  print_table(o, {"task_id", "operator", "upstream", "trigger_rule", "retries", "retry_delay", "timeout"}, rows);
  return exit_ok;
}

int dags_next(invocation& inv) {
  const int n = inv.args["num"].as<int>();
  constexpr int most = 10000;  // each is computed and printed
  if (n < 1 || n > most) throw dag::usage_error("-n: must be between 1 and " + std::to_string(most) + ", got " + std::to_string(n));
  const dag::time_point after =
      inv.args.count("after") ? dag::parse_time(inv.args["after"].as<std::string>()) : inv.now.now();
  dag::dag_folder folder = load_dags(inv);
  const dag::definition* d = find_dag(inv, folder, inv.args["dag"].as<std::string>());
  if (!d) return exit_usage;
  const dag::timetable tt(*d);
  const auto runs = tt.runs_after(after, static_cast<std::size_t>(n));
  if (inv.global.json) {
    json out = json::array();
    for (const auto& r : runs)
      out.push_back({{"logical_date", dag::format_iso(r.logical_date)},
                     {"data_interval_start", dag::format_iso(r.interval.start)},
                     {"data_interval_end", dag::format_iso(r.interval.end)},
                     {"run_after", dag::format_iso(r.run_after)}});
    inv.out << dag::json_dump(out, 2) << "\n";
    return exit_ok;
  }
  // A repeating schedule without end_date stops only where dagrun's dates do (year 9999).
  const bool repeats = tt.spec().kind == dag::schedule_kind::cron || tt.spec().kind == dag::schedule_kind::period;
  const bool hit_end_of_time = repeats && d->start_date() && !d->end_date() && runs.size() < static_cast<std::size_t>(n);
  const std::string end_of_time = "no later runs: dates end at " + dag::format_iso(dag::latest_time());
  if (runs.empty()) {
    inv.out << "no runs after " << dag::format_iso(after)
            << (d->dataset_schedule() ? " (the DAG runs on dataset updates: " + d->dataset_schedule()->text() + ")"
                : d->schedule().empty() ? " (the DAG has no schedule: manual runs only)"
                : hit_end_of_time       ? " (" + end_of_time + ")"
                                        : "")
            << "\n";
    return exit_ok;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : runs)
    rows.push_back({dag::format_iso(r.logical_date), dag::format_iso(r.interval.start), dag::format_iso(r.interval.end),
                    dag::format_iso(r.run_after)});
  print_table(inv.out, {"logical_date", "data_interval_start", "data_interval_end", "run_after"}, rows);
  if (hit_end_of_time) inv.out << end_of_time << "\n";
  return exit_ok;
}

void dag_positional(po::options_description& d, po::positional_options_description& p) {
  d.add_options()("dag", po::value<std::string>()->required()->value_name("DAG"), "the DAG's dag_id");
  p.add("dag", 1);
}

}  // namespace

void add_dags_commands(std::vector<command>& out) {
  out.push_back({{"dags", "list"}, "dags list", "list the DAGs of the DAGs folder (import errors go to stderr)",
                 [](po::options_description&, po::positional_options_description&) {}, dags_list});
  out.push_back({{"dags", "show"}, "dags show DAG", "show a DAG's settings and its tasks with their dependencies",
                 dag_positional, dags_show});
  out.push_back({{"dags", "next"},
                 "dags next DAG [-n N] [--after TS]",
                 "print the next N runs the scheduler would create whose run-after time is later than TS "
                 "(default now), ignoring catchup and runs already made",
                 [](po::options_description& d, po::positional_options_description& p) {
                   dag_positional(d, p);
                   d.add_options()("num,n", po::value<int>()->default_value(5)->value_name("N"), "how many runs")(
                       "after", po::value<std::string>()->value_name("TS"), "list runs whose run-after is later than TS (default now)");
                 },
                 dags_next});
}

}  // namespace dagrun
