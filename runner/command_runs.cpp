// `dagrun runs list`, `tasks list|log|clear`: what happened, and re-running it.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <regex>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include <dag/core/json_text.hpp>

#include "session.hpp"

namespace po = boost::program_options;
using json = nlohmann::json;

namespace dagrun {
namespace {

json optional_json(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

std::string fixed(std::optional<double> seconds) {
  if (!seconds) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", *seconds);
  return buf;
}

int runs_list(invocation& inv) {
  auto db = open_db(inv);
  dag::run_filter filter;
  filter.dag_id = inv.args["dag"].as<std::string>();
  if (inv.args.count("state")) {
    const std::string s = inv.args["state"].as<std::string>();
    auto state = dag::parse_run_state(s);
    if (!state) throw dag::usage_error("--state: unknown run state '" + s + "'; one of queued, running, success, failed");
    filter.states.insert(*state);
  }
  const auto runs = db->runs(filter);
  if (inv.global.json) {
    json out = json::array();
    for (const auto& r : runs)
      out.push_back({{"run_id", r.run_id},
                     {"dag_id", r.dag_id},
                     {"run_type", std::string(dag::to_string(r.type))},
                     {"logical_date", dag::format_iso(r.logical_date)},
                     {"data_interval_start", dag::format_iso(r.interval.start)},
                     {"data_interval_end", dag::format_iso(r.interval.end)},
                     {"state", std::string(dag::to_string(r.state))},
                     {"start_date", optional_json(dag::format_iso(r.start_date))},
                     {"end_date", optional_json(dag::format_iso(r.end_date))}});
    inv.out << dag::json_dump(out, 2) << "\n";
    return exit_ok;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : runs)
    rows.push_back({r.run_id, dag::format_iso(r.logical_date), std::string(dag::to_string(r.state)), dag::format_iso(r.start_date),
                    dag::format_iso(r.end_date)});
  print_table(inv.out, {"run_id", "logical_date", "state", "start_date", "end_date"}, rows);
  return exit_ok;
}

int tasks_list(invocation& inv) {
  auto db = open_db(inv);
  const std::string dag_id = inv.args["dag"].as<std::string>(), run_id = inv.args["run_id"].as<std::string>();
  if (!db->find_run(dag_id, run_id)) throw dag::usage_error("no run '" + run_id + "' of DAG '" + dag_id + "'");
  const auto tis = db->task_instances(dag_id, run_id);
  if (inv.global.json) {
    json out = json::array();
    for (const auto& ti : tis) {
      auto d = dag::seconds_between(ti.start_date, ti.end_date);
      out.push_back({{"task_id", ti.task_id},
                     {"map_index", ti.map_index},
                     {"state", std::string(dag::to_string(ti.state))},
                     {"try_number", ti.try_number},
                     {"start_date", optional_json(dag::format_iso(ti.start_date))},
                     {"end_date", optional_json(dag::format_iso(ti.end_date))},
                     {"duration", d ? json(*d) : json(nullptr)},
                     {"exit_code", ti.exit_code ? json(*ti.exit_code) : json(nullptr)},
                     {"message", ti.message}});
    }
    inv.out << dag::json_dump(out, 2) << "\n";
    return exit_ok;
  }
  print_task_instances(inv.out, tis, {"state", "try", "start_date", "end_date", "duration", "message"},
                       [](const dag::task_instance_record& ti) -> std::vector<std::string> {
                         return {std::string(dag::to_string(ti.state)), std::to_string(ti.try_number), dag::format_iso(ti.start_date),
                                 dag::format_iso(ti.end_date), fixed(dag::seconds_between(ti.start_date, ti.end_date)), ti.message};
                       });
  return exit_ok;
}

// Map indexes as a reader takes them in: runs of consecutive ones as `first..last`.
std::string index_list(const std::vector<int>& sorted) {
  std::string out;
  for (std::size_t i = 0; i < sorted.size();) {
    std::size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    out += (out.empty() ? "" : ", ") + std::to_string(sorted[i]);
    if (j > i) out += (j == i + 1 ? ", " : "..") + std::to_string(sorted[j]);
    i = j + 1;
  }
  return out;
}

int tasks_log(invocation& inv) {
  auto db = open_db(inv);
  const std::string dag_id = inv.args["dag"].as<std::string>(), run_id = inv.args["run_id"].as<std::string>(),
                    task_id = inv.args["task"].as<std::string>();
  // Which instance: a mapped task's has to be named (its instances' logs are each their own).
  // A plain int with -1 for "not given" (g++ 12 at -O2 takes an optional<int> here for uninitialised).
  const int map_index = inv.args.count("map-index") ? inv.args["map-index"].as<int>() : -1;
  if (map_index < -1)
    throw dag::usage_error("--map-index " + std::to_string(map_index) + ": a map index is 0 or more (-1: a task that is not mapped)");
  std::vector<int> indexes;
  for (const auto& ti : db->task_instances(dag_id, run_id))
    if (ti.task_id == task_id && ti.map_index >= 0) indexes.push_back(ti.map_index);
  if (map_index < 0 && !indexes.empty())
    throw dag::usage_error("task '" + task_id + "' is mapped: give --map-index, one of " + index_list(indexes));
  if (map_index >= 0 && std::find(indexes.begin(), indexes.end(), map_index) == indexes.end())
    throw dag::usage_error("--map-index " + std::to_string(map_index) + ": task '" + task_id + "' " +
                           (indexes.empty() ? "is not mapped" + std::string(" in run '") + run_id + "'"
                                            : "has map indexes " + index_list(indexes)));
  const std::string instance = "task '" + task_id + "'" + (map_index >= 0 ? " [" + std::to_string(map_index) + "]" : "");
  const auto tries = tries_of(*db, dag_id, run_id, task_id, map_index);
  if (tries.empty()) {
    if (!db->find_run(dag_id, run_id)) throw dag::usage_error("DAG '" + dag_id + "' has no run '" + run_id + "'");
    throw dag::usage_error(instance + " of run '" + run_id + "' has no tries");
  }
  std::optional<dag::try_record> chosen = tries.back();
  if (inv.args.count("try")) {
    const int n = inv.args["try"].as<int>();
    chosen = dag::find_try(*db, dag_id, run_id, task_id, n, map_index);
    if (!chosen)
      throw dag::usage_error("--try " + std::to_string(n) + ": " + instance + " has tries 1.." + std::to_string(tries.back().try_number));
  }
  std::error_code ec;
  if (!std::filesystem::exists(chosen->log_path, ec)) {
    // Tries that wrote nothing (in-process ones, silent commands) have no log file.
    inv.err << "dagrun: try " << chosen->try_number << " of " << instance << " wrote no log\n";
    return exit_ok;
  }
  std::ifstream log(chosen->log_path, std::ios::binary);
  if (!log) throw dag::error("cannot read log " + chosen->log_path);
  inv.out << log.rdbuf();
  return exit_ok;
}

// The DAG named on the command line when an operation needs its graph; nullptr (after a usage
// message) when it is not loaded.
const dag::definition* dag_for(invocation& inv, dag::dag_folder& folder, const std::string& dag_id) {
  folder = load_dags(inv, true);
  return find_dag(inv, folder, dag_id);
}

// What a clear or mark touched: a line per task instance on a dry run (or with --json), then a count.
void report(invocation& inv, const std::vector<dag::task_instance_ref>& refs, const std::string& verb, bool dry_run) {
  if (inv.global.json) {
    json out = json::array();
    for (const auto& r : refs)
      out.push_back({{"dag_id", r.dag_id}, {"run_id", r.run_id}, {"task_id", r.task_id}, {"map_index", r.map_index}});
    inv.out << dag::json_dump(out, 2) << "\n";
    return;
  }
  if (dry_run)
    for (const auto& r : refs)
      inv.out << r.run_id << " " << r.task_id << (r.map_index >= 0 ? " [" + std::to_string(r.map_index) + "]" : "") << "\n";
  std::set<std::string> run_ids;
  for (const auto& r : refs) run_ids.insert(r.run_id);
  inv.out << (dry_run ? "would have " : "") << verb << " " << refs.size() << " task instance" << (refs.size() == 1 ? "" : "s")
          << " in " << run_ids.size() << " run" << (run_ids.size() == 1 ? "" : "s") << "\n";
}

int tasks_clear(invocation& inv) {
  auto db = open_db(inv);
  dag::clear_selection which;
  which.dag_id = inv.args["dag"].as<std::string>();
  std::tie(which.logical_from, which.logical_to) = flag_range(inv);
  if (inv.args.count("run-id")) which.run_id = inv.args["run-id"].as<std::string>();
  std::optional<std::regex> pattern;
  if (inv.args.count("task")) {
    try {
      pattern.emplace(inv.args["task"].as<std::string>());
    } catch (const std::regex_error& e) {
      throw dag::usage_error(std::string("--task: bad regular expression: ") + e.what());
    }
  }
  if (pattern) which.task_matches = [&](const std::string& task_id) { return std::regex_search(task_id, *pattern); };
  which.failed_only = inv.args.count("failed-only") > 0;
  which.upstream = inv.args.count("upstream") > 0;
  which.downstream = inv.args.count("downstream") > 0;
  which.past = inv.args.count("past") > 0;
  which.future = inv.args.count("future") > 0;
  if ((which.past || which.future) && !which.run_id) throw dag::usage_error("--past, --future: give --run-id, the run they count from");
  which.dry_run = inv.args.count("dry-run") > 0;
  // Relatives come from the DAG's graph, so only then must the DAG load.
  dag::dag_folder folder;
  const dag::definition* d = nullptr;
  if (which.upstream || which.downstream) {
    d = dag_for(inv, folder, which.dag_id);
    if (!d) return exit_usage;
  }
  if (which.run_id && !db->find_run(which.dag_id, *which.run_id))
    throw dag::usage_error("--run-id: DAG '" + which.dag_id + "' has no run '" + *which.run_id + "'");
  report(inv, dag::clear_task_instances(*db, which, d), "cleared", which.dry_run);
  return exit_ok;
}

int tasks_mark(invocation& inv, dag::task_state state) {
  dag::mark_selection which;
  which.dag_id = inv.args["dag"].as<std::string>();
  which.run_id = inv.args["run_id"].as<std::string>();
  which.task_ids = inv.args["task"].as<std::vector<std::string>>();
  which.state = state;
  which.upstream = inv.args.count("upstream") > 0;
  which.downstream = inv.args.count("downstream") > 0;
  which.dry_run = inv.args.count("dry-run") > 0;
  dag::dag_folder folder;
  const dag::definition* d = dag_for(inv, folder, which.dag_id);
  if (!d) return exit_usage;
  auto db = open_db(inv);
  report(inv, dag::mark_task_instances(*db, which, *d, inv.now.precise_now()),
         "marked " + std::string(dag::to_string(state)), which.dry_run);
  return exit_ok;
}

void mark_options(po::options_description& d, po::positional_options_description& p) {
  d.add_options()("dag", po::value<std::string>()->required()->value_name("DAG"), "the DAG")(
      "run_id", po::value<std::string>()->required()->value_name("RUN_ID"), "the run")(
      "task", po::value<std::vector<std::string>>()->required()->value_name("TASK"), "the task (one or more)")(
      "upstream", "also every task upstream of them")("downstream", "also every task downstream of them")(
      "dry-run", "print what would be marked, change nothing");
  p.add("dag", 1).add("run_id", 1).add("task", -1);
}

}  // namespace

void add_runs_commands(std::vector<command>& out) {
  out.push_back({{"runs", "list"},
                 "runs list DAG [--state S]",
                 "list a DAG's runs, newest first",
                 [](po::options_description& d, po::positional_options_description& p) {
                   d.add_options()("dag", po::value<std::string>()->required()->value_name("DAG"), "the DAG")(
                       "state", po::value<std::string>()->value_name("S"), "only runs in state S (queued, running, success, failed)");
                   p.add("dag", 1);
                 },
                 runs_list});
  out.push_back({{"tasks", "list"},
                 "tasks list DAG RUN_ID",
                 "list a run's task instances (a mapped task's by map index) with their state, try, times and duration",
                 [](po::options_description& d, po::positional_options_description& p) {
                   d.add_options()("dag", po::value<std::string>()->required()->value_name("DAG"), "the DAG")(
                       "run_id", po::value<std::string>()->required()->value_name("RUN_ID"), "the run");
                   p.add("dag", 1).add("run_id", 1);
                 },
                 tasks_list});
  out.push_back({{"tasks", "log"},
                 "tasks log DAG RUN_ID TASK [--map-index N] [--try N]",
                 "print the log of a task instance's latest try (or of try N)",
                 [](po::options_description& d, po::positional_options_description& p) {
                   d.add_options()("dag", po::value<std::string>()->required()->value_name("DAG"), "the DAG")(
                       "run_id", po::value<std::string>()->required()->value_name("RUN_ID"), "the run")(
                       "task", po::value<std::string>()->required()->value_name("TASK"), "the task")(
                       "map-index", po::value<int>()->value_name("N"),
                       "of a mapped task, the instance with map index N (needed for one; default -1: a task that is not mapped)")(
                       "try", po::value<int>()->value_name("N"), "which try (default: the latest)");
                   p.add("dag", 1).add("run_id", 1).add("task", 1);
                 },
                 tasks_log});
  out.push_back({{"tasks", "clear"},
                 "tasks clear DAG [--start D --end D] [--run-id R [--past] [--future]] [--task REGEX] [--upstream] [--downstream] [--failed-only] [--dry-run]",
                 "reset task instances to be run again (their runs go back to queued)",
                 [](po::options_description& d, po::positional_options_description& p) {
                   d.add_options()("dag", po::value<std::string>()->required()->value_name("DAG"), "the DAG")(
                       "start", po::value<std::string>()->value_name("D"), "runs with logical date at or after D")(
                       "end", po::value<std::string>()->value_name("D"), "runs with logical date at or before D")(
                       "run-id", po::value<std::string>()->value_name("R"), "only run R")(
                       "past", "with --run-id: also the runs before R (by logical date)")(
                       "future", "with --run-id: also the runs after R (by logical date)")(
                       "task", po::value<std::string>()->value_name("REGEX"), "only tasks whose id matches REGEX")(
                       "upstream", "also every task upstream of a matched one")(
                       "downstream", "also every task downstream of a matched one")(
                       "failed-only", "only failed and upstream_failed task instances")(
                       "dry-run", "print what would be cleared, change nothing");
                   p.add("dag", 1);
                 },
                 tasks_clear});
  out.push_back({{"tasks", "mark-success"},
                 "tasks mark-success DAG RUN_ID TASK... [--upstream] [--downstream] [--dry-run]",
                 "set task instances to success (failed tasks downstream of them run again)",
                 mark_options, [](invocation& inv) { return tasks_mark(inv, dag::task_state::success); }});
  out.push_back({{"tasks", "mark-failed"},
                 "tasks mark-failed DAG RUN_ID TASK... [--upstream] [--downstream] [--dry-run]",
                 "set task instances to failed (failed tasks downstream of them are cleared, as Airflow does)",
                 mark_options, [](invocation& inv) { return tasks_mark(inv, dag::task_state::failed); }});
}

}  // namespace dagrun
