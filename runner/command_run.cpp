// `dagrun run`, `trigger`, `test`, `backfill`: runs in the foreground, or queued for the daemon.
#include <iostream>
#include <ostream>
#include <set>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <dag/core/secret_mask.hpp>
#include <dag/core/suggest.hpp>
#include <dag/engine/try_context.hpp>
#include <dag/exec/local_executor.hpp>

#include "session.hpp"

namespace po = boost::program_options;

namespace dagrun {
namespace {

// The run's conf from --conf, checked against the DAG's typed params here rather than only in the
// library (trigger_run) so that a refusal names the flag.
std::string conf_of(const invocation& inv, const dag::definition& d) {
  if (!inv.args.count("conf")) return "{}";
  return dag::checked_conf(d, inv.args["conf"].as<std::string>(), "--conf");
}

dag::time_point date_or_now(const invocation& inv, const char* flag) {
  return inv.args.count(flag) ? parse_flag_time(inv, flag) : inv.now.now();
}

void print_task_states(const invocation& inv, dag::store& db, const dag::run_key& key) {
  print_task_instances(inv.out, db.task_instances(key.dag_id, key.run_id), {"state", "try", "message"},
                       [](const dag::task_instance_record& ti) -> std::vector<std::string> {
                         return {std::string(dag::to_string(ti.state)), std::to_string(ti.try_number), ti.message};
                       });
}

void run_options(po::options_description& d, po::positional_options_description& p) {
  d.add_options()("dag", po::value<std::string>()->required()->value_name("DAG"), "the DAG")(
      "date", po::value<std::string>()->value_name("TS"), "logical date (default now)")(
      "conf", po::value<std::string>()->value_name("JSON"), "run configuration, a JSON object");
  p.add("dag", 1);
}

int run_command(invocation& inv) {
  const std::string dag_id = inv.args["dag"].as<std::string>();
  const dag::time_point date = date_or_now(inv, "date");
  stop_on_signals signals;
  auto folder = load_dags(inv);
  const dag::definition* d = find_dag(inv, folder, dag_id);
  if (!d) return exit_usage;
  const std::string conf = conf_of(inv, *d);
  auto db = open_db(inv);
  const int parallelism = bounded_flag(inv, "parallelism", 1, max_threads);
  dag::engine eng(*db, inv.operators, inv.now, foreground_options(inv, parallelism), foreground_executor(parallelism));
  eng.set_dags(engine_dags(folder, dag_id));
  auto key = eng.create_run(dag_id, dag::run_type::manual, date, conf);
  if (!key) {
    inv.err << "dagrun: a run " << dag::make_run_id(dag::run_type::manual, date) << " of " << dag_id << " already exists\n";
    return exit_failed;
  }
  inv.out << "run " << key->run_id << " of " << dag_id << " started\n" << std::flush;
  auto states = eng.run_to_completion({*key}, signals.token());
  if (signals.token().stop_requested()) eng.shutdown(std::chrono::seconds(10));
  const dag::run_state final_state = eng.state_of(*key).value_or(states.front());
  print_task_states(inv, *db, *key);
  inv.out << "run " << key->run_id << ": " << dag::to_string(final_state) << "\n";
  return final_state == dag::run_state::success ? exit_ok : exit_failed;
}

int trigger_command(invocation& inv) {
  const std::string dag_id = inv.args["dag"].as<std::string>();
  const dag::time_point date = date_or_now(inv, "date");
  auto folder = load_dags(inv);
  const dag::definition* d = find_dag(inv, folder, dag_id);
  if (!d) return exit_usage;
  const std::string conf = conf_of(inv, *d);
  auto db = open_db(inv);
  auto run = dag::trigger_run(*db, *d, date, conf);
  if (!run) {
    inv.err << "dagrun: a run " << dag::make_run_id(dag::run_type::manual, date) << " of " << dag_id << " already exists\n";
    return exit_failed;
  }
  inv.out << "queued " << run->run_id << "\n";
  return exit_ok;
}

int test_command(invocation& inv) {
  const std::string dag_id = inv.args["dag"].as<std::string>(), task_id = inv.args["task"].as<std::string>();
  const dag::time_point date = date_or_now(inv, "date");
  auto folder = load_dags(inv);
  const dag::definition* d = find_dag(inv, folder, dag_id);
  if (!d) return exit_usage;
  const dag::task* t = d->find(task_id);
  if (!t) {
    std::vector<std::string> ids;
    for (const auto& x : d->all_tasks()) ids.push_back(x.id);
    throw dag::usage_error("DAG '" + dag_id + "' has no task '" + task_id + "'" + dag::did_you_mean(task_id, ids));
  }
  const dag::scheduled_dag sd(engine_dags(folder, dag_id).front());  // shares the folder's definition
  auto db = open_db(inv);
  // Nothing is written: the try runs here with its log on standard output, its context built as
  // the engine builds it (same environment, rendering and secrets).
  const dag::run_record run = dag::make_run_record(sd, dag::run_type::manual, date);
  dag::try_spec which;
  which.log_path = "/dev/stdout";
  dag::task_request request;
  request.definition = t;
  request.op = inv.operators.find(t->operator_name);
  dag::try_sources sources = dag::store_sources(*db, dag_id, run.run_id);
  sources.xcom = {};  // the try runs outside any run: there is no XCom to pull
  request.context = dag::make_try_context(*d, *t, request.op, run, which, sources);
  const auto& fields = request.context.fields;
  if (auto it = fields.find(std::string(dag::render_error_field)); it != fields.end()) throw dag::error(it->second);
  if (!request.op || !request.op->run) throw dag::error("operator '" + t->operator_name + "' cannot run in this build yet");
  request.context.log = [&](std::string_view line) { inv.out << line << "\n" << std::flush; };
  inv.out << std::flush;
  std::cout << std::flush;
  const dag::operator_result r = dag::run_try(request, [&] { return inv.now.precise_now(); }).result;
  const char* outcome = r.outcome == dag::try_outcome::success ? "success"
                        : r.outcome == dag::try_outcome::skipped ? "skipped"
                                                                  : "failed";
  inv.out << "[dagrun] task " << task_id << ": " << outcome << (r.message.empty() ? "" : " (" + r.message + ")") << "\n";
  if (r.xcom) inv.out << "[dagrun] xcom: " << dag::mask_secrets(*r.xcom, request.context.secrets) << "\n";
  return r.outcome == dag::try_outcome::failed ? exit_failed : exit_ok;
}

// Backfill progress: a bar on a terminal, a line per finished run otherwise.
class progress_report {
public:
  progress_report(std::ostream& out, std::size_t total, bool quiet)
      : out_(out), total_(total), tty_(::isatty(STDOUT_FILENO) == 1), quiet_(quiet) {}
  void update(std::size_t done, std::size_t failed) {
    if (quiet_ || done == last_) return;
    last_ = done;
    if (tty_) {
      const std::size_t width = 30, filled = total_ ? done * width / total_ : width;
      out_ << "\r[" << std::string(filled, '#') << std::string(width - filled, '-') << "] " << done << "/" << total_
           << " runs" << (failed ? ", " + std::to_string(failed) + " failed" : "") << std::flush;
      if (done == total_) out_ << "\n";
    } else {
      out_ << "backfill: " << done << "/" << total_ << " runs done" << (failed ? ", " + std::to_string(failed) + " failed" : "")
           << "\n" << std::flush;
    }
  }

private:
  std::ostream& out_;
  std::size_t total_;
  bool tty_;
  bool quiet_;
  std::size_t last_ = static_cast<std::size_t>(-1);
};

// The most logical dates one backfill (not a dry run) takes on.
constexpr std::size_t max_backfill_runs = 100000;

int backfill_command(invocation& inv) {
  const std::string dag_id = inv.args["dag"].as<std::string>();
  const auto [from, to] = flag_range(inv);
  const dag::time_point start = *from, end = *to;  // both required
  const bool rerun_failed = inv.args.count("rerun-failed") > 0, dry_run = inv.args.count("dry-run") > 0;
  stop_on_signals signals;
  auto folder = load_dags(inv);
  const dag::definition* d = find_dag(inv, folder, dag_id);
  if (!d) return exit_usage;
  const dag::scheduled_dag sd(engine_dags(folder, dag_id).front());  // shares the folder's definition
  auto db = open_db(inv);
  // What exists already, by logical date (scheduled and backfill runs: one per date).
  dag::run_filter filter;
  filter.dag_id = dag_id;
  filter.logical_from = start;
  filter.logical_to = end;
  std::map<dag::time_point, dag::run_record> existing;
  for (auto& r : db->runs(filter))
    if (r.type != dag::run_type::manual) existing.emplace(r.logical_date, r);

  const auto interrupted = [&] {
    inv.err << "dagrun: backfill interrupted; run it again to continue\n";
    return exit_failed;
  };
  const auto none_in_range = [&] {
    inv.out << "no scheduled logical dates of " << dag_id << " in [" << dag::format_iso(start) << ", " << dag::format_iso(end) << "]\n";
    return exit_ok;
  };
  if (dry_run) {
    // Printed as they are computed: a range of any length streams, and a signal stops it.
    std::size_t listed = 0;
    sd.times.each_run_between(start, end, [&](const dag::run_info& info) {
      if (signals.token().stop_requested()) return false;
      auto it = existing.find(info.logical_date);
      const std::string what = it == existing.end() ? "would run"
                               : (rerun_failed && it->second.state == dag::run_state::failed) ? "would re-run failed tasks"
                                                                                               : "exists (" + std::string(dag::to_string(it->second.state)) + "), skipped";
      inv.out << dag::format_iso(info.logical_date) << "  " << what << "\n";
      ++listed;
      return true;
    });
    if (signals.token().stop_requested()) return interrupted();
    return listed == 0 ? none_in_range() : exit_ok;
  }
  // A real backfill keeps its runs: bounded, so that a typo in a year is refused rather than
  // filling the database (and memory) with millions of runs.
  std::vector<dag::run_info> dates;
  sd.times.each_run_between(start, end, [&](const dag::run_info& info) {
    if (signals.token().stop_requested()) return false;
    dates.push_back(info);
    return dates.size() <= max_backfill_runs;  // one more says the range is too long
  });
  if (signals.token().stop_requested()) return interrupted();
  if (dates.size() > max_backfill_runs)
    throw dag::usage_error("--start/--end: the range holds more than " + std::to_string(max_backfill_runs) +
                           " logical dates of " + dag_id + "; backfill it in parts (--dry-run lists them)");
  if (dates.empty()) return none_in_range();

  const int parallelism = bounded_flag(inv, "parallelism", 1, max_threads);
  // The runs not finished yet; each leaves once, when the engine says it ended (O(1) a run, rather
  // than asking after every run on every pass).
  std::set<dag::run_key> pending;
  std::size_t finished = 0, failed = 0;
  dag::engine_options options = foreground_options(inv, parallelism);
  options.run_ended = [&](const dag::run_key& k, std::optional<dag::run_state> state) {
    if (!pending.erase(k)) return;
    ++finished;
    if (state != dag::run_state::success) ++failed;
  };
  dag::engine eng(*db, inv.operators, inv.now, options, foreground_executor(parallelism));
  eng.set_dags(engine_dags(folder, dag_id));
  // An interrupted backfill's tries died with it: record them as lost so its runs can finish.
  eng.recover_lost_tries();
  std::vector<dag::run_key> keys;
  std::vector<dag::time_point> missing;  // dates with no run: created together, in one transaction
  std::size_t skipped = 0;
  for (const auto& info : dates) {
    auto it = existing.find(info.logical_date);
    if (it == existing.end()) {
      missing.push_back(info.logical_date);
      continue;
    }
    const dag::run_record& r = it->second;
    if (!dag::is_finished(r.state)) {
      // An interrupted backfill left this run queued or running: carry on with it.
      eng.track_run({dag_id, r.run_id});
      keys.push_back({dag_id, r.run_id});
      continue;
    }
    if (rerun_failed && r.state == dag::run_state::failed) {
      // Its failed tasks go back to none (their retries start over) and the run is queued again.
      dag::clear_selection which;
      which.dag_id = dag_id;
      which.run_id = r.run_id;
      which.failed_only = true;
      dag::clear_task_instances(*db, which);
      eng.track_run({dag_id, r.run_id});
      keys.push_back({dag_id, r.run_id});
      continue;
    }
    ++skipped;
  }
  // A date another process took meanwhile (the daemon, another backfill) counts as done already.
  for (auto& key : eng.create_runs(dag_id, dag::run_type::backfill, missing)) {
    if (key) keys.push_back(std::move(*key));
    else ++skipped;
  }
  inv.out << "backfill " << dag_id << ": " << dates.size() << " logical dates, " << keys.size() << " to run, " << skipped
          << " already done\n" << std::flush;
  progress_report progress(inv.out, keys.size(), inv.global.quiet);
  pending.insert(keys.begin(), keys.end());
  auto done = [&] {
    progress.update(finished, failed);
    return pending.empty() && eng.running() == 0;
  };
  if (!keys.empty()) eng.run_until(done, signals.token());
  if (signals.token().stop_requested()) {
    eng.shutdown(std::chrono::seconds(10));
    return interrupted();
  }
  inv.out << "backfill " << dag_id << ": " << keys.size() - failed << " succeeded, " << failed << " failed, " << skipped
          << " skipped\n";
  return failed == 0 ? exit_ok : exit_failed;
}

}  // namespace

void add_run_commands(std::vector<command>& out) {
  out.push_back({{"run"},
                 "run DAG [--date TS] [--conf JSON] [--parallelism N]",
                 "one run now, in the foreground, to its end; exit 0 if it succeeds, 1 if it fails",
                 [](po::options_description& d, po::positional_options_description& p) {
                   run_options(d, p);
                   d.add_options()("parallelism", po::value<int>()->default_value(16)->value_name("N"), "tries at once");
                 },
                 run_command});
  out.push_back({{"backfill"},
                 "backfill DAG --start D --end D [--rerun-failed] [--dry-run] [--parallelism N]",
                 "run every scheduled logical date in [start, end] (both included) that has no run yet, with progress",
                 [](po::options_description& d, po::positional_options_description& p) {
                   d.add_options()("dag", po::value<std::string>()->required()->value_name("DAG"), "the DAG")(
                       "start", po::value<std::string>()->required()->value_name("D"), "first logical date")(
                       "end", po::value<std::string>()->required()->value_name("D"), "last logical date (included)")(
                       "rerun-failed", "re-run the failed tasks of failed runs in the range")(
                       "dry-run", "print what would run, run nothing")(
                       "parallelism", po::value<int>()->default_value(16)->value_name("N"), "tries at once");
                   p.add("dag", 1);
                 },
                 backfill_command});
  out.push_back({{"trigger"}, "trigger DAG [--date TS] [--conf JSON]", "queue a manual run for the daemon (`dagrun schedule`)",
                 run_options, trigger_command});
  out.push_back({{"test"},
                 "test DAG TASK [DATE]",
                 "run one task in the foreground, no state written, log to stdout; exit 1 if it fails",
                 [](po::options_description& d, po::positional_options_description& p) {
                   d.add_options()("dag", po::value<std::string>()->required()->value_name("DAG"), "the DAG")(
                       "task", po::value<std::string>()->required()->value_name("TASK"), "the task")(
                       "date", po::value<std::string>()->value_name("DATE"), "logical date (default now)");
                   p.add("dag", 1).add("task", 1).add("date", 1);
                 },
                 test_command});
}

}  // namespace dagrun
