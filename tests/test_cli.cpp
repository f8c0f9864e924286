// The dagrun command line, run in-process with an injected clock.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <unistd.h>
#include <sstream>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <dag/dag.hpp>
#include <dag/http/server.hpp>
#include <dag/store/store.hpp>

#include <dag/runner/cli.hpp>

namespace {

struct fixed_clock final : dag::clock {
  dag::time_point at;
  explicit fixed_clock(std::string_view iso) : at(dag::parse_time(iso)) {}
  dag::time_point now() const override { return at; }
};

struct result {
  int status;
  std::string out;
  std::string err;
};

const std::string dags_dir = std::string(DAG_SOURCE_DIR) + "/dags";

result run(std::vector<std::string> args, std::string_view now = "2024-06-15T12:00:00Z") {
  std::ostringstream out, err;
  fixed_clock clock(now);
  int status = dagrun::run_cli(args, out, err, clock);
  return {status, out.str(), err.str()};
}

// Runs the command as the user nobody when this is root, whom file modes do not stop: the
// effective user decides file access, and root takes its own back after.
result as_nobody(std::vector<std::string> args) {
  const bool root = ::geteuid() == 0;
  if (root) REQUIRE(::seteuid(65534) == 0);
  auto r = run(std::move(args));
  if (root) REQUIRE(::seteuid(0) == 0);
  return r;
}

}  // namespace

TEST_CASE("Cli.HelpListsEveryCommandAndGlobalOption") {
  auto r = run({"--help"});
  CHECK(r.status == 0);
  for (const char* text : {"validate [PATH]", "dags list", "dags show DAG", "dags next DAG [-n N] [--after TS]", "version",
                           "--dags", "--db", "--log-level", "--json", "Exit status"})
    CHECK_MESSAGE(r.out.find(text) != std::string::npos, text);
  auto command_help = run({"dags", "next", "--help"});
  CHECK(command_help.status == 0);
  CHECK(command_help.out.find("Usage: dagrun dags next DAG [-n N] [--after TS]") != std::string::npos);
  CHECK(command_help.out.find("--after") != std::string::npos);
}

TEST_CASE("Cli.BadUsageExitsTwoWithAClearMessage") {
  CHECK(run({}).status == 2);
  auto unknown = run({"dgas", "list"});
  CHECK(unknown.status == 2);
  CHECK(unknown.err.find("unknown command 'dgas' (did you mean 'dags'?)") != std::string::npos);
  auto sub = run({"dags", "lst"});
  CHECK(sub.status == 2);
  CHECK(sub.err.find("dags: expected one of list show next pause unpause, got 'lst' (did you mean 'list'?)") != std::string::npos);
  auto option = run({"dags", "list", "--jsn"});
  CHECK(option.status == 2);
  CHECK(option.err.find("jsn") != std::string::npos);
  auto level = run({"version", "--log-level", "verbose"});
  CHECK(level.status == 2);
  CHECK(level.err.find("--log-level: unknown level 'verbose'") != std::string::npos);
  auto missing = run({"dags", "show", "--dags", dags_dir});
  CHECK(missing.status == 2);
  CHECK(missing.err.find("dags show: missing DAG") != std::string::npos);  // as the usage line names it, not '--dag'
  auto missing_run = run({"tasks", "list", "etl", "--dags", dags_dir});
  CHECK(missing_run.status == 2);
  CHECK(missing_run.err.find("tasks list: missing RUN_ID") != std::string::npos);
  auto latin1_queue = run({"worker", "--db", "postgresql://127.0.0.1:1/none", "--queues", "default,caf\xe9"});
  CHECK(latin1_queue.status == 2);
  CHECK(latin1_queue.err.find("--queues: queue names must be UTF-8 text") != std::string::npos);
  auto latin1_logs = run({"dags", "list", "--logs", "/tmp/caf\xe9"});
  CHECK(latin1_logs.status == 2);
  CHECK(latin1_logs.err.find("--logs: the folder's path must be UTF-8 text") != std::string::npos);
}

TEST_CASE("Cli.VersionPrintsTheVersion") {
  auto r = run({"version"});
  CHECK(r.status == 0);
  CHECK(r.out.starts_with("dagrun "));
  CHECK(run({"--version"}).out == r.out);
}

TEST_CASE("Cli.ValidatePassesShippedDagsAndFailsBrokenOnes") {
  auto good = run({"validate", dags_dir});
  CHECK(good.status == 0);
  CHECK(good.out.find("2 DAGs valid, 0 errors") != std::string::npos);

  const std::string broken = std::string(DAG_SOURCE_DIR) + "/tests/data/broken.yaml";
  auto bad = run({"validate", broken});
  CHECK(bad.status == 2);
  CHECK(bad.out.find(broken + ":3: task 'a': unknown operator 'bsh' (did you mean 'bash'?)") != std::string::npos);

  auto json = run({"validate", broken, "--json"});
  CHECK(json.status == 2);
  auto parsed = nlohmann::json::parse(json.out);
  REQUIRE(parsed.size() == 1);
  CHECK(parsed[0]["line"] == 3);
  CHECK(parsed[0]["file"] == broken);
}

TEST_CASE("Cli.AnUnreadableDagsFolderOrFileIsAnErrorNamingItsPath") {
  const auto dir = std::filesystem::temp_directory_path() / ("dagrun-unreadable-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "folder");
  std::ofstream(dir / "folder" / "a.yaml") << "dag_id: a\ntasks:\n  - task_id: t\n    operator: bash\n    bash_command: 'true'\n";
  std::ofstream(dir / "file.yaml") << "dag_id: b\ntasks:\n  - task_id: t\n    operator: bash\n    bash_command: 'true'\n";
  std::filesystem::permissions(dir / "folder", std::filesystem::perms::none);
  std::filesystem::permissions(dir / "file.yaml", std::filesystem::perms::none);
  auto folder = as_nobody({"validate", (dir / "folder").string()});
  CHECK(folder.status == 2);
  CHECK(folder.out.find((dir / "folder").string() + ": cannot read the DAGs folder: Permission denied") != std::string::npos);
  CHECK(folder.out.find("0 DAGs valid, 1 error") != std::string::npos);
  auto file = as_nobody({"validate", (dir / "file.yaml").string()});
  CHECK(file.status == 2);
  CHECK(file.out.find((dir / "file.yaml").string() + ": cannot read file: Permission denied") != std::string::npos);
  std::filesystem::permissions(dir / "folder", std::filesystem::perms::owner_all);
  std::filesystem::remove_all(dir);
}

TEST_CASE("Cli.DagsListAsTableAndJson") {
  auto table = run({"dags", "list", "--dags", dags_dir});
  CHECK(table.status == 0);
  CHECK(table.out.starts_with("dag_id"));
  CHECK(table.out.find("batch_processing_pipeline") != std::string::npos);
  auto json = run({"--json", "--dags", dags_dir, "dags", "list"});
  CHECK(json.status == 0);
  auto parsed = nlohmann::json::parse(json.out);
  REQUIRE(parsed.is_array());
  REQUIRE(parsed.size() == 2);
  CHECK(parsed[0]["dag_id"] == "batch_processing_pipeline");
  CHECK(parsed[0]["schedule"] == "6h");
  CHECK(parsed[0]["tags"] == nlohmann::json({"batch", "processing"}));
  CHECK(parsed[1]["dag_id"] == "model_training_pipeline");
  CHECK(parsed[1]["start_date"] == "2024-01-01T00:00:00+00:00");
}

TEST_CASE("Cli.DagsFolderComesFromTheEnvironment") {
  ::setenv("DAGRUN_DAGS", dags_dir.c_str(), 1);
  auto r = run({"dags", "list", "--json"});
  ::unsetenv("DAGRUN_DAGS");
  CHECK(r.status == 0);
  CHECK(nlohmann::json::parse(r.out).size() == 2);
}

TEST_CASE("Cli.ImportErrorsGoToStderrAndGoodDagsStillList") {
  const auto dir = std::filesystem::temp_directory_path() / ("dagrun-cli-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "good.yaml") << "dag_id: good\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: x\n";
  std::ofstream(dir / "bad.yaml") << "dag_id: bad\ntasks:\n  - task_id: a\n    operator: bash\n    retries: lots\n    bash_command: x\n";
  auto r = run({"dags", "list", "--json", "--dags", dir.string()});
  std::filesystem::remove_all(dir);
  CHECK(r.status == 0);
  CHECK(nlohmann::json::parse(r.out).size() == 1);
  CHECK(r.err.find("bad.yaml:5: task 'a': retries: expected a whole number, got 'lots'") != std::string::npos);
}

TEST_CASE("Cli.DagsShowGivesTasksInDependencyOrder") {
  auto r = run({"dags", "show", "batch_processing_pipeline", "--json", "--dags", dags_dir});
  CHECK(r.status == 0);
  auto parsed = nlohmann::json::parse(r.out);
  CHECK(parsed["dag_id"] == "batch_processing_pipeline");
  CHECK(parsed["max_active_runs"] == 1);
  auto tasks = parsed["tasks"];
  REQUIRE(tasks.size() == 3);
  CHECK(tasks[0]["task_id"] == "process_pending_workflows");
  CHECK(tasks[0]["downstream"] == nlohmann::json({"cleanup_completed_workflows", "generate_reports"}));
  CHECK(tasks[0]["retries"] == 2);
  CHECK(tasks[0]["retry_delay"] == "5m");
  auto text = run({"dags", "show", "model_training_pipeline", "--dags", dags_dir});
  CHECK(text.status == 0);
  CHECK(text.out.find("schedule:         1d") != std::string::npos);
  CHECK(text.out.find("deploy_models") != std::string::npos);
  auto unknown = run({"dags", "show", "model_training", "--dags", dags_dir});
  CHECK(unknown.status == 2);
  CHECK(unknown.err.find("unknown DAG 'model_training'") != std::string::npos);
}

TEST_CASE("Cli.DagsNextPrintsAirflowIntervals") {
  auto r = run({"dags", "next", "model_training_pipeline", "-n", "3", "--after", "2024-03-01", "--json", "--dags", dags_dir});
  CHECK(r.status == 0);
  auto runs = nlohmann::json::parse(r.out);
  REQUIRE(runs.size() == 3);
  // run_after must be later than TS: the run of 2024-02-29 becomes due exactly at TS, so it is not listed.
  CHECK(runs[0]["logical_date"] == "2024-03-01T00:00:00+00:00");
  CHECK(runs[0]["data_interval_start"] == "2024-03-01T00:00:00+00:00");
  CHECK(runs[0]["data_interval_end"] == "2024-03-02T00:00:00+00:00");
  CHECK(runs[0]["run_after"] == "2024-03-02T00:00:00+00:00");
  CHECK(runs[2]["logical_date"] == "2024-03-03T00:00:00+00:00");

  auto batch = run({"dags", "next", "batch_processing_pipeline", "-n", "2", "--json", "--dags", dags_dir},
                   "2024-06-15T13:00:00Z");
  auto b = nlohmann::json::parse(batch.out);
  REQUIRE(b.size() == 2);
  CHECK(b[0]["logical_date"] == "2024-06-15T12:00:00+00:00");
  CHECK(b[0]["run_after"] == "2024-06-15T18:00:00+00:00");
  CHECK(b[1]["logical_date"] == "2024-06-15T18:00:00+00:00");

  auto table = run({"dags", "next", "model_training_pipeline", "--after", "2024-03-01", "--dags", dags_dir});
  CHECK(table.out.starts_with("logical_date"));
  CHECK(table.out.find("2024-03-05T00:00:00+00:00") != std::string::npos);  // default -n 5

  auto bad_time = run({"dags", "next", "model_training_pipeline", "--after", "yesterday", "--dags", dags_dir});
  CHECK(bad_time.status == 2);
  CHECK(bad_time.err.find("yesterday") != std::string::npos);
  auto bad_n = run({"dags", "next", "model_training_pipeline", "-n", "0", "--dags", dags_dir});
  CHECK(bad_n.status == 2);
  CHECK(bad_n.err.find("-n: must be between 1 and 10000, got 0") != std::string::npos);
}

TEST_CASE("Cli.DagsNextStopsBeforeYear10000AndAfterAcceptsWhatItLists") {
  auto last = run({"dags", "next", "model_training_pipeline", "-n", "5", "--after", "9999-12-28", "--json", "--dags", dags_dir});
  REQUIRE(last.status == 0);
  auto runs = nlohmann::json::parse(last.out);
  REQUIRE(runs.size() == 3);  // the 9999-12-31 interval would end in year 10000
  CHECK(runs[2]["run_after"] == "9999-12-31T00:00:00+00:00");
  // Every run_after listed is a time --after takes.
  for (const auto& r : runs) {
    auto again = run({"dags", "next", "model_training_pipeline", "--after", r["run_after"].get<std::string>(), "--dags", dags_dir});
    CHECK(again.status == 0);
  }
  auto table = run({"dags", "next", "model_training_pipeline", "--after", "9999-12-28", "--dags", dags_dir});
  CHECK(table.out.find("no later runs: dates end at 9999-12-31T23:59:59+00:00") != std::string::npos);
  auto none = run({"dags", "next", "model_training_pipeline", "--after", "9999-12-31", "--dags", dags_dir});
  CHECK(none.out == "no runs after 9999-12-31T00:00:00+00:00 (no later runs: dates end at 9999-12-31T23:59:59+00:00)\n");
}

namespace {
// A DAGs folder, database and logs folder for commands that keep state.
struct state_dir {
  std::filesystem::path dir;
  state_dir() {
    static int n = 0;
    dir = std::filesystem::temp_directory_path() / ("dagrun-cli-state-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "dags");
  }
  ~state_dir() { std::filesystem::remove_all(dir); }
  void write_dag(const std::string& name, const std::string& text) const { std::ofstream(dir / "dags" / name) << text; }
  std::vector<std::string> with(std::vector<std::string> args) const {
    for (const char* f : {"--dags", "--db", "--logs"}) args.push_back(f), args.push_back("");
    args[args.size() - 5] = (dir / "dags").string();
    args[args.size() - 3] = "sqlite:" + (dir / "dagrun.db").string();
    args[args.size() - 1] = (dir / "logs").string();
    return args;
  }
};
const char* daily_dag =
    "dag_id: daily\nschedule: \"@daily\"\nstart_date: 2024-01-01\ntasks:\n"
    "  - task_id: a\n    operator: bash\n    bash_command: echo {{ ds }}\n"
    "  - task_id: b\n    operator: bash\n    bash_command: '[ {{ ds }} != 2024-01-03 ]'\n    dependencies: [a]\n";
}  // namespace

TEST_CASE("Cli.QuietBackfillPrintsNoProgressLines" * doctest::timeout(120)) {
  state_dir s;
  s.write_dag("daily.yaml", daily_dag);
  auto loud = run(s.with({"backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-02"}));
  CHECK(loud.out.find("backfill: 2/2 runs done") != std::string::npos);
  auto quiet = run(s.with({"backfill", "daily", "--start", "2024-01-04", "--end", "2024-01-05", "-q"}));
  CHECK(quiet.status == 0);
  CHECK(quiet.out.find("runs done") == std::string::npos);
  CHECK(quiet.out.find("backfill daily: 2 logical dates, 2 to run") != std::string::npos);  // the result still shows
}

TEST_CASE("Cli.BackfillRunsEachDateOnceAndRerunsOnlyFailedOnes" * doctest::timeout(120)) {
  state_dir s;
  s.write_dag("daily.yaml", daily_dag);
  auto first = run(s.with({"backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-05"}));
  CHECK(first.status == 1);  // 2024-01-03's b fails
  CHECK(first.out.find("backfill daily: 5 logical dates, 5 to run, 0 already done") != std::string::npos);
  CHECK(first.out.find("backfill: 5/5 runs done, 1 failed") != std::string::npos);
  auto runs = nlohmann::json::parse(run(s.with({"runs", "list", "daily", "--json"})).out);
  REQUIRE(runs.size() == 5);
  CHECK(runs[0]["run_id"] == "backfill__2024-01-05T00:00:00+00:00");
  CHECK(runs[0]["data_interval_end"] == "2024-01-06T00:00:00+00:00");
  CHECK(runs[2]["state"] == "failed");

  auto again = run(s.with({"backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-05"}));
  CHECK(again.status == 0);
  CHECK(again.out.find("0 to run, 5 already done") != std::string::npos);
  CHECK(nlohmann::json::parse(run(s.with({"runs", "list", "daily", "--json"})).out).size() == 5);

  auto dry = run(s.with({"backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-06", "--dry-run"}));
  CHECK(dry.status == 0);
  CHECK(dry.out.find("2024-01-06T00:00:00+00:00  would run") != std::string::npos);
  CHECK(dry.out.find("2024-01-03T00:00:00+00:00  exists (failed), skipped") != std::string::npos);

  // Re-running failed tasks only: b of 2024-01-03 fails again; a is not re-run.
  auto rerun = run(s.with({"backfill", "daily", "--start", "2024-01-03", "--end", "2024-01-03", "--rerun-failed"}));
  CHECK(rerun.out.find("1 to run") != std::string::npos);
  auto tis = nlohmann::json::parse(
      run(s.with({"tasks", "list", "daily", "backfill__2024-01-03T00:00:00+00:00", "--json"})).out);
  REQUIRE(tis.size() == 2);
  CHECK(tis[0]["task_id"] == "a");
  CHECK(tis[0]["try_number"] == 1);
  CHECK(tis[1]["state"] == "failed");
  CHECK(tis[1]["try_number"] == 2);
  auto log = run(s.with({"tasks", "log", "daily", "backfill__2024-01-01T00:00:00+00:00", "a"}));
  CHECK(log.out == "2024-01-01\n");
  CHECK(run(s.with({"tasks", "log", "daily", "backfill__2024-01-01T00:00:00+00:00", "a", "--try", "1"})).out == "2024-01-01\n");
  auto bad_try = run(s.with({"tasks", "log", "daily", "backfill__2024-01-01T00:00:00+00:00", "a", "--try", "3"}));
  CHECK(bad_try.status == 2);
  auto no_run = run(s.with({"tasks", "log", "daily", "nope", "a"}));
  CHECK(no_run.status == 2);
  CHECK(no_run.err.find("DAG 'daily' has no run 'nope'") != std::string::npos);
  CHECK(bad_try.err.find("--try 3: task 'a' has tries 1..1") != std::string::npos);
}

TEST_CASE("Cli.TasksListShowsMapIndexesAndTasksLogTakesOne" * doctest::timeout(120)) {
  state_dir s;
  s.write_dag("fan.yaml",
              "dag_id: fan\nschedule: null\nstart_date: 2024-01-01\ntasks:\n"
              "  - task_id: each\n    operator: bash\n    expand:\n      bash_command: [echo first, echo second, echo third]\n"
              "  - task_id: after\n    operator: bash\n    bash_command: echo after\n    dependencies: [each]\n");
  const auto ran = run(s.with({"run", "fan", "--date", "2024-02-01"}));
  REQUIRE(ran.status == 0);
  CHECK(ran.out.find("task_id  map_index  state") != std::string::npos);  // the run's summary too
  const std::string run_id = "manual__2024-02-01T00:00:00+00:00";

  // The table has a map_index column (empty for a task that is not mapped), --json its number.
  const auto table = run(s.with({"tasks", "list", "fan", run_id})).out;
  CHECK(table.starts_with("task_id  map_index  state"));
  CHECK(table.find("\neach     1          success") != std::string::npos);
  CHECK(table.find("\nafter               success") != std::string::npos);
  const auto tis = nlohmann::json::parse(run(s.with({"tasks", "list", "fan", run_id, "--json"})).out);
  REQUIRE(tis.size() == 4);
  CHECK(tis[0]["task_id"] == "after");
  CHECK(tis[0]["map_index"] == -1);
  CHECK(tis[3]["task_id"] == "each");
  CHECK(tis[3]["map_index"] == 2);

  // --map-index picks the instance's log; without it a mapped task's indexes are named.
  CHECK(run(s.with({"tasks", "log", "fan", run_id, "each", "--map-index", "1"})).out == "second\n");
  CHECK(run(s.with({"tasks", "log", "fan", run_id, "each", "--map-index", "2", "--try", "1"})).out == "third\n");
  auto whole = run(s.with({"tasks", "log", "fan", run_id, "each"}));
  CHECK(whole.status == 2);
  CHECK(whole.out.empty());
  CHECK(whole.err.find("task 'each' is mapped: give --map-index, one of 0..2") != std::string::npos);
  auto beyond = run(s.with({"tasks", "log", "fan", run_id, "each", "--map-index", "3"}));
  CHECK(beyond.status == 2);
  CHECK(beyond.err.find("--map-index 3: task 'each' has map indexes 0..2") != std::string::npos);
  auto unmapped = run(s.with({"tasks", "log", "fan", run_id, "after", "--map-index", "0"}));
  CHECK(unmapped.status == 2);
  CHECK(unmapped.err.find("--map-index 0: task 'after' is not mapped") != std::string::npos);
  CHECK(run(s.with({"tasks", "log", "fan", run_id, "after"})).out == "after\n");
  CHECK(run(s.with({"tasks", "log", "fan", run_id, "after", "--map-index", "-1"})).out == "after\n");
  // --help names the option.
  CHECK(run({"tasks", "log", "--help"}).out.find("--map-index N") != std::string::npos);
  // A run without mapped instances lists no map_index column.
  s.write_dag("daily.yaml", daily_dag);
  REQUIRE(run(s.with({"run", "daily", "--date", "2024-02-01"})).status == 0);
  const auto plain = run(s.with({"tasks", "list", "daily", run_id})).out;
  CHECK(plain.starts_with("task_id  state "));
  CHECK(plain.find("map_index") == std::string::npos);
}

TEST_CASE("Cli.RerunningFailedRunsTakesUpTheDaysDependsOnPastGaveUpOn" * doctest::timeout(120)) {
  // a depends on its previous run: 2024-01-03 fails, so 04 and 05 give up on a (it stays in none,
  // their runs fail). Once 03 is fixed, --rerun-failed must run them too, not leave them failed.
  state_dir s;
  const auto fixed = s.dir / "fixed";
  s.write_dag("dop.yaml", "dag_id: dop\nschedule: \"@daily\"\nstart_date: 2024-01-01\ntasks:\n"
                          "  - task_id: a\n    operator: bash\n    depends_on_past: true\n"
                          "    bash_command: '[ {{ ds }} != 2024-01-03 ] || [ -f " + fixed.string() + " ]'\n");
  const std::vector<std::string> days{"backfill", "dop", "--start", "2024-01-01", "--end", "2024-01-05"};
  auto first = run(s.with(days));
  CHECK(first.status == 1);
  CHECK(first.out.find("backfill: 5/5 runs done, 3 failed") != std::string::npos);
  auto blocked = nlohmann::json::parse(run(s.with({"tasks", "list", "dop", "backfill__2024-01-04T00:00:00+00:00", "--json"})).out);
  REQUIRE(blocked.size() == 1);
  CHECK(blocked[0]["state"] == "none");
  { std::ofstream(fixed) << "yes"; }
  auto rerun = days;
  rerun.push_back("--rerun-failed");
  auto second = run(s.with(rerun));
  CAPTURE(second.out);
  CHECK(second.status == 0);
  CHECK(second.out.find("3 to run, 2 already done") != std::string::npos);
  for (const auto& r : nlohmann::json::parse(run(s.with({"runs", "list", "dop", "--json"})).out)) {
    CAPTURE(r["run_id"]);
    CHECK(r["state"] == "success");
  }
  auto ran = nlohmann::json::parse(run(s.with({"tasks", "list", "dop", "backfill__2024-01-05T00:00:00+00:00", "--json"})).out);
  REQUIRE(ran.size() == 1);
  CHECK(ran[0]["state"] == "success");
  CHECK(ran[0]["try_number"] == 1);
}

TEST_CASE("Cli.ABackfillRunThatGivesUpInItsFirstPassCountsAsFailed" * doctest::timeout(120)) {
  // A run is written with its first pass; a run whose task waits on a failed previous run gives up
  // there, before the backfill knows its runs: it must still be counted, as failed.
  state_dir s;
  s.write_dag("dop.yaml", "dag_id: dop\nschedule: \"@daily\"\nstart_date: 2024-01-01\ntasks:\n"
                          "  - task_id: a\n    operator: bash\n    depends_on_past: true\n"
                          "    bash_command: '[ {{ ds }} != 2024-01-01 ]'\n");
  CHECK(run(s.with({"backfill", "dop", "--start", "2024-01-01", "--end", "2024-01-01"})).status == 1);
  const auto next = run(s.with({"backfill", "dop", "--start", "2024-01-02", "--end", "2024-01-02"}));
  CAPTURE(next.out);
  CHECK(next.status == 1);
  CHECK(next.out.find("backfill dop: 0 succeeded, 1 failed") != std::string::npos);
  const auto runs = nlohmann::json::parse(run(s.with({"runs", "list", "dop", "--json"})).out);
  REQUIRE(runs.size() == 2);
  for (const auto& r : runs) CHECK(r["state"] == "failed");
}

TEST_CASE("Cli.ClearingATaskGivesItsRetriesBack" * doctest::timeout(120)) {
  state_dir s;
  s.write_dag("flaky.yaml",
              "dag_id: flaky\nschedule: \"@daily\"\nstart_date: 2024-01-01\ntasks:\n"
              "  - task_id: f\n    operator: bash\n    bash_command: exit 1\n    retries: 1\n    retry_delay: 0s\n");
  const std::vector<std::string> once{"backfill", "flaky", "--start", "2024-01-01", "--end", "2024-01-01"};
  auto tries_of_f = [&] {
    auto tis = nlohmann::json::parse(run(s.with({"tasks", "list", "flaky", "backfill__2024-01-01T00:00:00+00:00", "--json"})).out);
    REQUIRE(tis.size() == 1);
    CHECK(tis[0]["state"] == "failed");
    return tis[0]["try_number"].get<int>();
  };
  CHECK(run(s.with(once)).status == 1);
  CHECK(tries_of_f() == 2);  // a try and its retry
  auto rerun = once;
  rerun.push_back("--rerun-failed");
  CHECK(run(s.with(rerun)).status == 1);
  CHECK(tries_of_f() == 4);  // the retry came back with the re-run
  CHECK(run(s.with({"tasks", "clear", "flaky"})).out == "cleared 1 task instance in 1 run\n");
  CHECK(run(s.with(once)).status == 1);  // carries on with the cleared run
  CHECK(tries_of_f() == 6);
}

TEST_CASE("Cli.AReadOnlyDatabaseCanStillBeListed" * doctest::timeout(120)) {
  state_dir s;
  s.write_dag("daily.yaml", daily_dag);
  REQUIRE(run(s.with({"trigger", "daily", "--date", "2024-02-01"})).status == 0);
  // Read-only media, as far as SQLite can tell: the file and its folder cannot be written.
  namespace fs = std::filesystem;
  fs::permissions(s.dir / "dagrun.db", fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  fs::permissions(s.dir, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
  auto runs = as_nobody(s.with({"runs", "list", "daily"}));
  auto dags = as_nobody(s.with({"dags", "list"}));
  auto write = as_nobody(s.with({"trigger", "daily", "--date", "2024-02-02"}));
  fs::permissions(s.dir, fs::perms::owner_all);
  CHECK(runs.status == 0);
  CHECK(runs.out.find("manual__2024-02-01T00:00:00+00:00") != std::string::npos);
  CHECK(dags.status == 0);
  CHECK(dags.out.find("daily") != std::string::npos);
  CHECK(write.status == 1);
  CHECK(write.err.find("the database is read-only here") != std::string::npos);
}

TEST_CASE("Cli.RunTriggerClearPauseAndListings" * doctest::timeout(120)) {
  state_dir s;
  s.write_dag("daily.yaml", daily_dag);
  auto ok = run(s.with({"run", "daily", "--date", "2024-02-01"}));
  CHECK(ok.status == 0);
  CHECK(ok.out.find("run manual__2024-02-01T00:00:00+00:00: success") != std::string::npos);
  auto failed = run(s.with({"run", "daily", "--date", "2024-01-03"}));
  CHECK(failed.status == 1);
  auto dup = run(s.with({"run", "daily", "--date", "2024-01-03"}));
  CHECK(dup.status == 1);
  CHECK(dup.err.find("already exists") != std::string::npos);

  auto cleared = run(s.with({"tasks", "clear", "daily", "--failed-only"}));
  CHECK(cleared.out == "cleared 1 task instance in 1 run\n");
  auto queued = nlohmann::json::parse(run(s.with({"runs", "list", "daily", "--state", "queued", "--json"})).out);
  REQUIRE(queued.size() == 1);
  CHECK(queued[0]["run_id"] == "manual__2024-01-03T00:00:00+00:00");
  CHECK(queued[0]["end_date"].is_null());

  auto trig = run(s.with({"trigger", "daily", "--date", "2024-03-01", "--conf", "{\"k\": 1}"}));
  CHECK(trig.status == 0);
  CHECK(trig.out == "queued manual__2024-03-01T00:00:00+00:00\n");
  CHECK(run(s.with({"trigger", "daily", "--conf", "[1]"})).status == 2);

  CHECK(run(s.with({"dags", "pause", "daily"})).status == 0);
  CHECK(nlohmann::json::parse(run(s.with({"dags", "list", "--json"})).out)[0]["is_paused"] == true);
  CHECK(run(s.with({"dags", "pause", "nope"})).status == 2);
  CHECK(run(s.with({"dags", "unpause", "daily"})).status == 0);

  auto test = run(s.with({"test", "daily", "a", "2024-05-05"}));
  CHECK(test.status == 0);
  CHECK(test.out.find("[dagrun] task a: success") != std::string::npos);
  CHECK(test.out.find("[dagrun] xcom: 2024-05-05") != std::string::npos);
  CHECK(run(s.with({"test", "daily", "b", "2024-01-03"})).status == 1);
}

TEST_CASE("Cli.AProgramsDagsAreCheckedOnceAndJoinTheFoldersForEveryCommand" * doctest::timeout(120)) {
  // A program embedding the runner hands its C++ DAGs over: each command that loads DAGs gets the
  // same checked ones (default_args applied), with the problems of the others as import errors.
  state_dir s;
  s.write_dag("daily.yaml", daily_dag);
  const auto program = [] {
    std::vector<dag::definition> dags;
    dag::definition mine{"mine"};
    dag::task_options defaults;
    defaults.retries = 1;
    defaults.retry_delay = dag::duration{0};
    mine.default_args(defaults);
    mine.callable("first", [](dag::task_context&) {
      static int tries = 0;
      return ++tries == 1 ? dag::operator_result::failed("first try fails") : dag::operator_result::success();
    });
    dags.push_back(std::move(mine));
    dag::definition broken{"broken"};
    broken.add_task("a", "bsh");
    dags.push_back(std::move(broken));
    dag::definition twice{"daily"};
    twice.callable("a", [](dag::task_context&) { return dag::operator_result::success(); });
    dags.push_back(std::move(twice));
    return dags;
  };
  const auto with_program = [&](std::vector<std::string> args) {
    std::ostringstream out, err;
    fixed_clock clock("2024-06-15T12:00:00Z");
    const int status = dagrun::run_cli(s.with(std::move(args)), out, err, clock, program());
    return result{status, out.str(), err.str()};
  };
  auto listed = with_program({"dags", "list", "--json"});
  CHECK(listed.status == 0);
  const auto all = nlohmann::json::parse(listed.out);
  REQUIRE(all.size() == 2);
  CHECK(all[0]["dag_id"] == "daily");
  CHECK(all[0]["fileloc"] == (s.dir / "dags" / "daily.yaml").string());
  CHECK(all[1]["dag_id"] == "mine");
  CHECK(listed.err.find("unknown operator 'bsh'") != std::string::npos);
  CHECK(listed.err.find("dag_id 'daily' is defined both in C++ and in " + (s.dir / "dags" / "daily.yaml").string()) !=
        std::string::npos);

  // The retry comes from default_args: the check the program's DAG went through counts in the run.
  auto ran = with_program({"run", "mine", "--date", "2024-02-01"});
  CHECK(ran.status == 0);
  CHECK(ran.out.find("run manual__2024-02-01T00:00:00+00:00: success") != std::string::npos);
  std::istringstream lines(ran.out);
  std::string line, task, state;
  int try_number = 0;
  while (std::getline(lines, line))
    if (line.starts_with("first ")) std::istringstream(line) >> task >> state >> try_number;
  CHECK(state == "success");
  CHECK(try_number == 2);
}

TEST_CASE("Cli.RunAndTriggerCheckConfAgainstTypedParams" * doctest::timeout(120)) {
  state_dir s;
  s.write_dag("typed.yaml",
              "dag_id: typed\nstart_date: 2024-01-01\nparams:\n  n: {type: integer, default: 5, minimum: 1}\ntasks:\n"
              "  - task_id: t\n    operator: bash\n    bash_command: echo {{ params.n }}\n");
  for (const std::string command : {"run", "trigger"}) {
    CAPTURE(command);
    auto bad = run(s.with({command, "typed", "--date", "2024-02-01", "--conf", R"({"n": 0})"}));
    CHECK(bad.status == 2);
    CHECK(bad.err.find("--conf: param 'n': 0 is less than the minimum of 1") != std::string::npos);
    auto wrong_type = run(s.with({command, "typed", "--date", "2024-02-01", "--conf", R"({"n": "7"})"}));
    CHECK(wrong_type.status == 2);
    CHECK(wrong_type.err.find("--conf: param 'n': \"7\" is not of type integer") != std::string::npos);
  }
  CHECK(nlohmann::json::parse(run(s.with({"runs", "list", "typed", "--json"})).out).empty());  // nothing was created
  auto good = run(s.with({"run", "typed", "--date", "2024-02-01", "--conf", R"({"n": 7, "other": "x"})"}));
  CHECK(good.status == 0);
  CHECK(good.out.find("run manual__2024-02-01T00:00:00+00:00: success") != std::string::npos);
}

TEST_CASE("Cli.PoolsAreSetListedAndDeleted") {
  state_dir s;
  CHECK(run(s.with({"pools", "set", "warehouse", "3", "--description", "DW connections"})).out == "pool warehouse has 3 slots\n");
  CHECK(run(s.with({"pools", "set", "warehouse", "4"})).status == 0);  // the description stays
  const auto list = run(s.with({"pools", "list"}));
  CHECK(list.out.find("default_pool") != std::string::npos);
  CHECK(list.out.find("DW connections") != std::string::npos);
  const auto json = nlohmann::json::parse(run(s.with({"pools", "list", "--json"})).out);
  REQUIRE(json.size() == 2);
  CHECK(json[0]["name"] == "default_pool");
  CHECK(json[0]["slots"] == 128);
  CHECK(json[1] == nlohmann::json{{"name", "warehouse"}, {"slots", 4}, {"occupied_slots", 0}, {"running_slots", 0},
                                  {"queued_slots", 0}, {"open_slots", 4}, {"description", "DW connections"}});
  CHECK(run(s.with({"pools", "set", "bad", "-1"})).status == 2);
  const auto refused = run(s.with({"pools", "delete", "default_pool"}));
  CHECK(refused.status == 2);
  CHECK(refused.err.find("default_pool cannot be deleted") != std::string::npos);
  CHECK(run(s.with({"pools", "delete", "warehouse"})).status == 0);
  CHECK(run(s.with({"pools", "delete", "warehouse"})).status == 1);
}

TEST_CASE("Cli.VariablesAndConnectionsNeverShowSecrets") {
  state_dir s;
  CHECK(run(s.with({"variables", "set", "region", "eu-west-1"})).status == 0);
  CHECK(run(s.with({"variables", "get", "region"})).out == "eu-west-1\n");
  CHECK(run(s.with({"variables", "list"})).out == "region\n");
  CHECK(run(s.with({"variables", "get", "nope"})).status == 1);
  CHECK(run(s.with({"variables", "delete", "region"})).status == 0);
  CHECK(run(s.with({"variables", "delete", "region"})).status == 1);

  CHECK(run(s.with({"connections", "add", "warehouse", "--uri", "postgresql://etl:s3cr%40t@db.local:5432/dw"})).status == 0);
  auto list = run(s.with({"connections", "list"}));
  CHECK(list.out.find("postgresql://etl:***@db.local:5432/dw") != std::string::npos);
  CHECK(list.out.find("s3cr") == std::string::npos);
  auto json = run(s.with({"connections", "list", "--json"}));
  CHECK(json.out.find("s3cr") == std::string::npos);
  CHECK(nlohmann::json::parse(json.out)[0]["port"] == 5432);
  auto bad = run(s.with({"connections", "add", "x", "--uri", "postgresql://u:topsecret@h:notaport/db"}));
  CHECK(bad.status == 2);
  CHECK(bad.err.find("topsecret") == std::string::npos);
  CHECK(run(s.with({"connections", "add", "hook", "--uri", "https://hooks.example?api_token=tok-123456&ca_file=%2Fetc%2Fca.pem"})).status == 0);
  CHECK(run(s.with({"connections", "list"})).out.find("https://hooks.example/?api_token=***&ca_file=%2Fetc%2Fca.pem") != std::string::npos);
  CHECK(run(s.with({"connections", "delete", "warehouse"})).status == 0);
  CHECK(run(s.with({"db", "migrate"})).out == "schema version 12\n");  // the latest migration (store_core.cpp)
  CHECK(run(s.with({"db", "clean", "--older-than", "30"})).out == "deleted 0 runs\n");
}


TEST_CASE("Cli.SeedBatchPipelineRunsAgainstPostgres" * doctest::timeout(120)) {
  const char* url = std::getenv("DAGRUN_TEST_POSTGRES_URL");
  if (!url || !*url)
    FAIL("DAGRUN_TEST_POSTGRES_URL is not set: start a server with scripts/test-postgres.sh start DIR PORT");
  // A database of its own, loaded with the DDL and sample rows that dags/ ships.
  const std::string db_name = "dagrun_batch_" + std::to_string(::getpid());
  const dag::connection server = dag::parse_connection_uri("server", url);
  dag::connection warehouse = server;
  warehouse.schema = db_name;
  const auto uri_of = [](const dag::connection& c) {
    return "postgresql://" + c.login + "@" + c.host + ":" + std::to_string(c.port.value_or(5432)) + "/" + c.schema;
  };
  {
    pqxx::connection admin(url);
    pqxx::nontransaction tx(admin);
    tx.exec("DROP DATABASE IF EXISTS " + db_name);
    tx.exec("CREATE DATABASE " + db_name);
  }
  {
    pqxx::connection c(uri_of(warehouse));
    std::ifstream ddl(std::string(DAG_SOURCE_DIR) + "/dags/sql/workflows.sql");
    pqxx::work tx(c);
    tx.exec(std::string((std::istreambuf_iterator<char>(ddl)), {}));
    tx.commit();
  }
  state_dir s;
  ::setenv("DAGRUN_CONN_WAREHOUSE", uri_of(warehouse).c_str(), 1);
  // The shipped DAGs folder, not the sandbox's empty one.
  std::vector<std::string> args = s.with({"run", "batch_processing_pipeline", "--date", "2024-01-01T06:00:00Z"});
  args[args.size() - 5] = std::string(DAG_SOURCE_DIR) + "/dags";
  auto r = run(args);
  ::unsetenv("DAGRUN_CONN_WAREHOUSE");
  INFO(r.out << r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("run manual__2024-01-01T06:00:00+00:00: success") != std::string::npos);
  {
    pqxx::connection c(uri_of(warehouse));
    pqxx::work tx(c);
    CHECK(tx.exec1("SELECT count(*) FROM workflows")[0].as<int>() == 4);  // the two finished >30 days ago are gone
  }
  auto db = dag::open_store("sqlite:" + (s.dir / "dagrun.db").string());
  auto pending = db->xcom("batch_processing_pipeline", "manual__2024-01-01T06:00:00+00:00", "process_pending_workflows");
  REQUIRE(pending);
  CHECK(nlohmann::json::parse(*pending).size() == 2);  // pending for more than 5 minutes

  // Its C++ twin, built as a DAG library, does the same.
  ::setenv("DAGRUN_CONN_WAREHOUSE", uri_of(warehouse).c_str(), 1);
  args = s.with({"run", "batch_processing_pipeline_cpp", "--date", "2024-01-01T06:00:00Z"});
  args[args.size() - 5] = std::string(DAG_BINARY_DIR) + "/dags";
  auto cpp = run(args);
  ::unsetenv("DAGRUN_CONN_WAREHOUSE");
  INFO(cpp.out << cpp.err);
  CHECK(cpp.status == 0);
  auto cpp_pending = db->xcom("batch_processing_pipeline_cpp", "manual__2024-01-01T06:00:00+00:00", "process_pending_workflows");
  REQUIRE(cpp_pending);
  CHECK(nlohmann::json::parse(*cpp_pending).size() == 2);
  pqxx::connection admin(url);
  pqxx::nontransaction tx(admin);
  tx.exec("DROP DATABASE IF EXISTS " + db_name);
}

TEST_CASE("Cli.ShippedModelTrainingPipelineDeploysThroughTheRegistry" * doctest::timeout(120)) {
  // A loopback stand-in for the model registry that deploy_models posts to.
  std::mutex m;
  std::vector<dag::http_request> received;
  dag::http_server registry("127.0.0.1", 0, [&](const dag::http_request& r) {
    std::lock_guard lock(m);
    received.push_back(r);
    return dag::http_response{201, "application/json", R"({"deployment_id":"d-1"})"};
  });
  state_dir s;
  const std::string uri = "http://ml:registry-pass@127.0.0.1:" + std::to_string(registry.port()) + "/api";
  ::setenv("DAGRUN_CONN_MODEL_REGISTRY", uri.c_str(), 1);
  std::vector<std::string> args = s.with({"run", "model_training_pipeline", "--date", "2024-03-01"});
  args[args.size() - 5] = std::string(DAG_SOURCE_DIR) + "/dags";
  auto r = run(args);
  ::unsetenv("DAGRUN_CONN_MODEL_REGISTRY");
  registry.stop();
  INFO(r.out << r.err);
  CHECK(r.status == 0);
  REQUIRE(received.size() == 1);
  CHECK(received[0].method == "POST");
  CHECK(received[0].target == "/api/models/deploy");
  CHECK(received[0].headers["authorization"] == "Basic bWw6cmVnaXN0cnktcGFzcw==");  // ml:registry-pass
  CHECK(nlohmann::json::parse(received[0].body) ==
        nlohmann::json{{"dag_run", "manual__2024-03-01T00:00:00+00:00"}, {"data_date", "2024-03-01"}});
  auto db = dag::open_store("sqlite:" + (s.dir / "dagrun.db").string());
  CHECK(db->xcom("model_training_pipeline", "manual__2024-03-01T00:00:00+00:00", "deploy_models") == R"({"deployment_id":"d-1"})");
}

TEST_CASE("Cli.ClearWithRelativesAndMarkSuccessOrFailed" * doctest::timeout(120)) {
  state_dir s;
  s.write_dag("daily.yaml", daily_dag);
  CHECK(run(s.with({"run", "daily", "--date", "2024-01-03"})).status == 1);  // b fails on that date
  const std::string run_id = "manual__2024-01-03T00:00:00+00:00";
  auto states = [&] {
    std::string out;
    for (const auto& t : nlohmann::json::parse(run(s.with({"tasks", "list", "daily", run_id, "--json"})).out))
      out += t["task_id"].get<std::string>() + "=" + t["state"].get<std::string>() + " ";
    return out;
  };
  CHECK(states() == "a=success b=failed ");

  auto dry = run(s.with({"tasks", "clear", "daily", "--task", "^a$", "--downstream", "--dry-run"}));
  CHECK(dry.status == 0);
  CHECK(dry.out == run_id + " a\n" + run_id + " b\nwould have cleared 2 task instances in 1 run\n");
  CHECK(states() == "a=success b=failed ");

  auto marked = run(s.with({"tasks", "mark-success", "daily", run_id, "b"}));
  CHECK(marked.status == 0);
  CHECK(marked.out == "marked success 1 task instance in 1 run\n");
  CHECK(states() == "a=success b=success ");
  auto runs = nlohmann::json::parse(run(s.with({"runs", "list", "daily", "--json"})).out);
  CHECK(runs[0]["state"] == "queued");  // the scheduler ends it again, now by its new states

  // A real clear (not a dry run) with --downstream: b, downstream of a, is cleared with it.
  CHECK(run(s.with({"tasks", "clear", "daily", "--task", "^a$", "--downstream", "--run-id", run_id})).out ==
        "cleared 2 task instances in 1 run\n");
  CHECK(states() == "a=none b=none ");

  auto failed = run(s.with({"tasks", "mark-failed", "daily", run_id, "b", "--upstream", "--json"}));
  CHECK(failed.status == 0);
  CHECK(nlohmann::json::parse(failed.out).size() == 2);
  CHECK(states() == "a=failed b=failed ");

  CHECK(run(s.with({"tasks", "clear", "daily", "--task", "^b$", "--upstream", "--run-id", run_id})).out ==
        "cleared 2 task instances in 1 run\n");
  CHECK(states() == "a=none b=none ");

  auto unknown = run(s.with({"tasks", "mark-success", "daily", run_id, "bb"}));
  CHECK(unknown.status == 2);
  CHECK(unknown.err.find("DAG 'daily' has no task 'bb' (did you mean 'b'?)") != std::string::npos);
  CHECK(run(s.with({"tasks", "mark-failed", "daily", "nope", "b"})).status == 2);
  CHECK(run(s.with({"tasks", "clear", "daily", "--run-id", "nope"})).status == 2);
  CHECK(run(s.with({"tasks", "clear", "nodag", "--downstream"})).status == 2);
}
