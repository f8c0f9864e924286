// A try's context is built in one place: the engine (`dagrun run`, the daemon), `dagrun test` and
// queue workers give a try the same fields, environment and masked secrets.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include <unistd.h>

#include <dag/operators/builtin.hpp>
#include <dag/core/environment.hpp>
#include <dag/engine/engine.hpp>
#include <dag/engine/try_context.hpp>
#include <dag/exec/child_process.hpp>
#include <dag/exec/queue_executor.hpp>

namespace {

const std::string password = "s3cr3t-pass";
const std::string api_key = "key-123456";

// A DAGs folder and a SQLite store holding a connection and a secret-looking variable.
struct sandbox {
  std::filesystem::path dir;
  std::unique_ptr<dag::store> db;
  sandbox() {
    static int n = 0;
    dir = std::filesystem::temp_directory_path() / ("dagrun-context-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "dags");
    db = dag::open_store("sqlite:" + (dir / "dagrun.db").string());
    db->set_connection(dag::parse_connection_uri("vault", "postgresql://admin:" + password + "@db.example:5432/x"));
    db->set_variable("api_key", api_key);
  }
  ~sandbox() { std::filesystem::remove_all(dir); }

  // Runs `dagrun ARGS` to its end; returns its exit status and what it printed.
  std::pair<int, std::string> dagrun(const std::string& args) const {
    dag::process_spec p;
    p.command = std::string(DAGRUN_BINARY) + " " + args + " --dags " + (dir / "dags").string() + " --db sqlite:" +
                (dir / "dagrun.db").string() + " --logs " + (dir / "logs").string() + " 2>&1";
    p.log_file = dir / "out.log";
    std::filesystem::remove(p.log_file);
    const int status = dag::child_process::start(p).wait().exit_code;
    return {status, read(p.log_file)};
  }
  static std::string read(const std::filesystem::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), {}};
  }
};

// An executor that runs nothing: it keeps what the engine hands it and reports success at once.
class keeping_executor final : public dag::executor {
public:
  std::vector<dag::task_request> requests;
  void submit(dag::task_request request) override {
    dag::task_event e;
    e.dag_id = request.context.dag_id;
    e.run_id = request.context.run_id;
    e.task_id = request.context.task_id;
    e.try_number = request.context.try_number;
    e.started = e.ended = now();
    requests.push_back(std::move(request));
    report(std::move(e));
  }
  void cancel_all() override {}
  void drain() override {}
};

}  // namespace

TEST_CASE("TryContext.DagrunTestMasksSecretsAndSeesWhatRunSees" * doctest::timeout(60)) {
  sandbox s;
  std::ofstream(s.dir / "dags" / "masked.yaml")
      << "dag_id: masked\n"
         "tasks:\n"
         "  - task_id: show\n"
         "    operator: bash\n"
         "    bash_command: \"echo pass {{ conn.vault.password }} key {{ var.value.api_key }}; "
         "env | grep '^DAGRUN_' | grep -v '^DAGRUN_OWNER_PID=' | grep -v '^DAGRUN_XCOM_FILE=' | sort\"\n"
         "  - task_id: query\n"
         "    operator: sqlite\n"
         "    database: " << (s.dir / "data.db").string() << "\n"
         "    sql: \"SELECT * FROM \\\"{{ var.value.api_key }}\\\"\"\n";

  const auto [test_status, test_out] = s.dagrun("test masked show 2024-01-01");
  CHECK(test_status == 0);
  CHECK(test_out.find("pass *** key ***\n") != std::string::npos);
  CHECK(test_out.find(password) == std::string::npos);
  CHECK(test_out.find(api_key) == std::string::npos);

  // A message quoting a secret (here SQLite's error naming the table) is masked too.
  const auto [query_status, query_out] = s.dagrun("test masked query 2024-01-01");
  CHECK(query_status == 1);
  CHECK(query_out.find("no such table: ***") != std::string::npos);
  CHECK(query_out.find(api_key) == std::string::npos);

  // `dagrun run` (the engine) gives the same try the same output: rendering, masking, environment.
  CHECK(s.dagrun("run masked --date 2024-01-01").first == 1);  // `query` fails
  const auto tis = s.db->task_instances("masked", "manual__2024-01-01T00:00:00+00:00");
  REQUIRE(tis.size() == 2);
  const std::string run_log = s.read(tis[1].task_id == "show" ? tis[1].log_path : tis[0].log_path);
  CHECK(run_log.find("pass *** key ***\nDAGRUN_DAG_ID=masked\n") == 0);
  CHECK(test_out.find(run_log) != std::string::npos);
}

TEST_CASE("TryContext.WorkerCompletesTheEnginesContextToTheSameTry") {
  sandbox s;
  // The worker resolves connections from its own environment; here it holds the same one.
  ::setenv("DAGRUN_CONN_VAULT", ("postgresql://admin:" + password + "@db.example:5432/x").c_str(), 1);
  dag::definition d{"copied"};
  d.param("table", "events");
  d.add_task("load", "postgres")
      .field("conn_id", "vault")
      .field("sql", "INSERT INTO {{ params.table }} VALUES ('{{ var.value.api_key }}', '{{ ds }}')")
      .execution_timeout(std::chrono::minutes(5));
  const dag::operator_catalog operators = dag::builtin_operators();
  dag::system_clock clock;
  dag::engine_options options;
  options.log_folder = s.dir / "logs";
  options.create_scheduled_runs = options.adopt_store_runs = false;
  auto keeping = std::make_unique<keeping_executor>();
  keeping_executor& kept = *keeping;
  dag::engine eng(*s.db, operators, clock, options, std::move(keeping));
  eng.set_dags({d});
  const auto key = eng.create_run("copied", dag::run_type::manual, dag::parse_time("2024-01-01"), R"({"table":"audit"})");
  REQUIRE(key);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  REQUIRE(kept.requests.size() == 1);
  const dag::task_context& built = kept.requests.front().context;
  CHECK(built.fields.at("sql") == "INSERT INTO audit VALUES ('" + api_key + "', '2024-01-01')");
  CHECK(built.secrets == std::vector<std::string>{api_key, password});
  CHECK(dag::try_environment(built).at("DAGRUN_TRY_NUMBER") == "1");
  CHECK(built.timeout == std::chrono::minutes(5));

  // Through the queue and a worker's completion, the try is the same.
  dag::task_context worker = dag::to_task_context(dag::to_queued_try(kept.requests.front()));
  dag::finish_try_context(worker, dag::connection_from_environment);
  ::unsetenv("DAGRUN_CONN_VAULT");
  // Everything but the stop token, the log sink and the connection lookup (a function), compared
  // below by what it answers. One process here: the same owner in the environment too.
  auto facts = [](const dag::task_context& c) {
    return std::tie(c.dag_id, c.task_id, c.run_id, c.logical_date, c.data_interval_start, c.data_interval_end,
                    c.try_number, c.waited, c.fields, c.params, c.environment, c.log_path, c.timeout, c.secrets);
  };
  CHECK(facts(worker) == facts(built));
  CHECK(dag::try_environment(worker) == dag::try_environment(built));
  CHECK(worker.connection_lookup("vault")->password == built.connection_lookup("vault")->password);
  CHECK_FALSE(worker.connection_lookup("other"));
}

TEST_CASE("TryContext.RenderErrorsTravelWithTheTryInsteadOfThrowing") {
  dag::definition d{"broken"};
  auto h = d.bash("t", "echo {{ var.value.nowhere_at_all }}");
  dag::run_record run;
  run.run_id = "manual__2024-01-01T00:00:00+00:00";
  const dag::operator_catalog operators = dag::builtin_operators();
  const dag::task_context ctx =
      dag::make_try_context(d, h.get(), operators.find("bash"), run, {}, dag::try_sources{});
  REQUIRE(ctx.fields.size() == 1);
  CHECK(ctx.fields.at(std::string(dag::render_error_field)).find("nowhere_at_all") != std::string::npos);
  CHECK(dag::try_environment(ctx).at("DAGRUN_RUN_ID") == run.run_id);
}

// A run's type is the run's, not its id's: a run triggered under an id of its own (the API's
// dag_run_id, TriggerDagRunOperator's trigger_run_id) is manual and externally triggered.
TEST_CASE("TryContext.TemplatesSeeTheRunsTypeWhateverItsId") {
  dag::definition d{"typed"};
  auto h = d.bash("t", "echo {{ dag_run.run_type }} {{ dag_run.external_trigger }}");
  const dag::operator_catalog operators = dag::builtin_operators();
  const auto rendered = [&](dag::run_type type, const std::string& id) {
    dag::run_record run;
    run.run_id = id;
    run.type = type;
    return dag::make_try_context(d, h.get(), operators.find("bash"), run, {}, dag::try_sources{}).fields.at("bash_command");
  };
  CHECK(rendered(dag::run_type::manual, "deploy-1234") == "echo manual True");
  CHECK(rendered(dag::run_type::scheduled, "scheduled__2024-01-01T00:00:00+00:00") == "echo scheduled False");
  CHECK(rendered(dag::run_type::backfill, "backfill__2024-01-01T00:00:00+00:00") == "echo backfill False");
  CHECK(rendered(dag::run_type::dataset_triggered, "nightly") == "echo dataset_triggered False");
}

// The injection example of docs/concepts.md "Safe values in commands": a conf value that is a
// shell command substitution reaches the command as text with `| shquote` or through `env:`.
TEST_CASE("TryContext.ConfInjectionStaysTextWithShquoteOrEnv" * doctest::timeout(60)) {
  sandbox s;
  const auto pwned = s.dir / "pwned";
  std::ofstream(s.dir / "dags" / "inject.yaml")
      << "dag_id: inject\n"
         "params:\n"
         "  x: world\n"
         "tasks:\n"
         "  - task_id: quoted\n"
         "    operator: bash\n"
         "    bash_command: \"echo quoted {{ params.x | shquote }}; echo \\\"rows={{ dag_run.conf.extra }}\\\" >> \\\"$DAGRUN_XCOM_FILE\\\"\"\n"
         "  - task_id: via_env\n"
         "    operator: bash\n"
         "    dependencies: [quoted]\n"
         "    bash_command: 'echo \"env $X rows {{ ti.xcom_pull(task_ids=''quoted'', key=''rows'') }}\"'\n"
         "    env:\n"
         "      X: \"{{ params.x }}\"\n";
  const std::string conf = R"j({"x": "$(touch )j" + pwned.string() + R"j()", "extra": "7"})j";
  const auto [status, out] = s.dagrun("run inject --date 2024-01-01 --conf '" + conf + "'");
  CHECK(status == 0);
  CHECK_FALSE(std::filesystem::exists(pwned));
  const auto tis = s.db->task_instances("inject", "manual__2024-01-01T00:00:00+00:00");
  REQUIRE(tis.size() == 2);
  for (const auto& ti : tis) {
    const std::string log = s.read(ti.log_path);
    CAPTURE(log);
    if (ti.task_id == "quoted") CHECK(log.find("quoted $(touch " + pwned.string() + ")\n") != std::string::npos);
    if (ti.task_id == "via_env") CHECK(log.find("env $(touch " + pwned.string() + ") rows 7\n") != std::string::npos);
  }
}
