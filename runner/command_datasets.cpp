// `dagrun datasets list|events`: the datasets (data-aware scheduling) and their events.
#include <ostream>

#include <nlohmann/json.hpp>

#include <dag/core/json_text.hpp>
#include <dag/model/operations.hpp>

#include "session.hpp"

namespace po = boost::program_options;
using json = nlohmann::json;

namespace dagrun {
namespace {

std::string listed(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out.empty() ? "-" : out;
}

// The store's datasets with their uses in the DAGs folder (a dataset the folder declares that no
// scheduler registered yet is listed too).
int datasets_list(invocation& inv) {
  const dag::dag_folder folder = load_dags(inv, true);
  auto uses = dag::dataset_uses_of(folder.dags);
  std::map<std::string, dag::dataset_record> known;
  for (auto& d : open_db(inv)->datasets()) known.emplace(d.uri, std::move(d));
  for (const auto& [uri, u] : uses) known.try_emplace(uri, dag::dataset_record{0, uri, "{}", {}, {}});
  if (inv.global.json) {
    json out = json::array();
    for (const auto& [uri, d] : known) {
      const auto& u = uses[uri];
      json producers = json::array();
      for (const auto& [dag_id, task_id] : u.producing_tasks) producers.push_back({{"dag_id", dag_id}, {"task_id", task_id}});
      const bool stored = d.created_at != dag::timestamp{};
      out.push_back({{"uri", uri},
                     {"extra", json::parse(d.extra, nullptr, false).is_object() ? json::parse(d.extra) : json::object()},
                     {"created_at", stored ? json(dag::format_iso(d.created_at)) : json(nullptr)},
                     {"updated_at", stored ? json(dag::format_iso(d.updated_at)) : json(nullptr)},
                     {"consuming_dags", u.consuming_dags},
                     {"producing_tasks", producers}});
    }
    inv.out << dag::json_dump(out, 2) << "\n";
    return exit_ok;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [uri, d] : known) {
    const auto& u = uses[uri];
    std::vector<std::string> producers;
    for (const auto& [dag_id, task_id] : u.producing_tasks) producers.push_back(dag_id + "." + task_id);
    const bool stored = d.created_at != dag::timestamp{};
    rows.push_back({uri, listed(producers), listed(u.consuming_dags), stored ? dag::format_iso(d.updated_at) : "-"});
  }
  print_table(inv.out, {"uri", "producing_tasks", "consuming_dags", "updated_at"}, rows);
  return exit_ok;
}

json event_json(const dag::dataset_event_record& e) {
  const auto extra = json::parse(e.extra, nullptr, false);
  const auto or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  return {{"id", e.id},
          {"uri", e.uri},
          {"extra", extra.is_object() ? extra : json::object()},
          {"source_dag_id", or_null(e.source_dag_id)},
          {"source_run_id", or_null(e.source_run_id)},
          {"source_task_id", or_null(e.source_task_id)},
          {"timestamp", dag::format_iso(e.when)}};
}

int datasets_events(invocation& inv) {
  auto db = open_db(inv);
  std::vector<dag::dataset_event_record> events;
  if (inv.args.count("triggered")) {
    if (!inv.args.count("dag")) throw dag::usage_error("--triggered RUN needs --dag DAG");
    events = db->triggering_dataset_events(inv.args["dag"].as<std::string>(), inv.args["triggered"].as<std::string>());
  } else {
    dag::dataset_event_filter f;
    const auto take = [&](const char* name, std::optional<std::string>& into) {
      if (inv.args.count(name)) into = inv.args[name].as<std::string>();
    };
    take("uri", f.uri);
    take("dag", f.source_dag_id);
    take("run", f.source_run_id);
    take("task", f.source_task_id);
    const int limit = inv.args["limit"].as<int>();
    if (limit < 1) throw dag::usage_error("--limit: must be at least 1, got " + std::to_string(limit));
    f.limit = static_cast<std::size_t>(limit);
    events = db->dataset_events(f);
  }
  if (inv.global.json) {
    json out = json::array();
    for (const auto& e : events) out.push_back(event_json(e));
    inv.out << dag::json_dump(out, 2) << "\n";
    return exit_ok;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : events) {
    const std::string source =
        e.source_task_id.empty() ? "external" : e.source_dag_id + "." + e.source_task_id + " (" + e.source_run_id + ")";
    rows.push_back({std::to_string(e.id), dag::format_iso(e.when), e.uri, source, e.extra});
  }
  print_table(inv.out, {"id", "timestamp", "uri", "source", "extra"}, rows);
  return exit_ok;
}

}  // namespace

void add_datasets_commands(std::vector<command>& out) {
  out.push_back({{"datasets", "list"}, "datasets list",
                 "list the datasets: those the store knows and those the DAGs folder's outlets and schedules name",
                 [](po::options_description&, po::positional_options_description&) {}, datasets_list});
  out.push_back({{"datasets", "events"},
                 "datasets events [--uri URI] [--dag DAG] [--run RUN] [--task TASK] [--triggered RUN --dag DAG] [--limit N]",
                 "list dataset events, newest first: of a dataset, of a producing DAG, run or task; or those that "
                 "triggered run RUN of DAG",
                 [](po::options_description& d, po::positional_options_description&) {
                   d.add_options()("uri", po::value<std::string>()->value_name("URI"), "only events of this dataset")(
                       "dag", po::value<std::string>()->value_name("DAG"), "only events of this DAG's tasks (with --triggered: the triggered run's DAG)")(
                       "run", po::value<std::string>()->value_name("RUN"), "only events of this run's tasks")(
                       "task", po::value<std::string>()->value_name("TASK"), "only events of this task")(
                       "triggered", po::value<std::string>()->value_name("RUN"), "the events that triggered run RUN of --dag")(
                       "limit", po::value<int>()->default_value(100)->value_name("N"), "at most N events");
                 },
                 datasets_events});
}

}  // namespace dagrun
