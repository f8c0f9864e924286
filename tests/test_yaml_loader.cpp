// YAML DAG files: the format of PRODUCT.md, and every kind of broken file with its message.
#include <doctest/doctest.h>

#include <algorithm>

#include <filesystem>
#include <fstream>
#include <utility>

#include <unistd.h>

#include <dag/operators/builtin.hpp>
#include <dag/load/check.hpp>
#include <dag/load/dag_folder.hpp>
#include <dag/load/yaml_loader.hpp>

using namespace std::chrono_literals;

namespace {

const dag::operator_catalog& catalog() {
  static const dag::operator_catalog c = dag::builtin_operators();
  return c;
}

std::vector<std::string> problems_of(const std::string& text) {
  auto r = dag::load_yaml_text(text, "dags/t.yaml", catalog());
  std::vector<std::string> out;
  for (const auto& p : r.problems) out.push_back(p.what());
  CHECK(r.dag.has_value() == out.empty());
  return out;
}

// The single problem of `text`; fails the test if there is not exactly one.
std::string problem_of(const std::string& text) {
  auto all = problems_of(text);
  std::string joined;
  for (const auto& p : all) joined += p + "\n";
  INFO("problems:\n" << joined);
  REQUIRE(all.size() == 1);
  return all.front();
}

// A valid DAG whose first task's extra lines are `task_extra` (indented 4) and whose top has `top`.
std::string dag_with(const std::string& top, const std::string& task_extra = "") {
  return "dag_id: t\n" + top +
         "tasks:\n"
         "  - task_id: a\n"
         "    operator: bash\n"
         "    bash_command: echo a\n" +
         task_extra;
}

struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    path = std::filesystem::temp_directory_path() / ("dagrun-yaml-" + std::to_string(::getpid()) + "-" +
                                                     std::to_string(counter()++));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(path / name) << text; }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

}  // namespace

TEST_CASE("YamlLoader.ProductExampleLoadsWithEveryField") {
  const std::string text = R"(dag_id: batch_processing_pipeline
description: Process batch workflows
schedule: 6h                  # cron, preset, duration, or omit for manual only
timezone: UTC
start_date: 2024-01-01
catchup: false
max_active_runs: 1
max_active_tasks: 8
tags: [batch, processing]
params: {limit: 100}
default_args: {retries: 2, retry_delay: 5m}
tasks:
  - task_id: process_pending_workflows
    operator: postgres
    conn_id: warehouse
    sql: SELECT id FROM workflows WHERE status = 'pending' LIMIT {{ params.limit }}
  - task_id: cleanup_completed_workflows
    operator: bash
    bash_command: ./cleanup.sh {{ ds }}
    dependencies: [process_pending_workflows]
    trigger_rule: all_done
    execution_timeout: 10m
)";
  auto r = dag::load_yaml_text(text, "dags/batch.yaml", catalog());
  REQUIRE(r.problems.empty());
  REQUIRE(r.dag);
  const auto& d = *r.dag;
  CHECK(d.id() == "batch_processing_pipeline");
  CHECK(d.description() == "Process batch workflows");
  CHECK(d.schedule() == "6h");
  CHECK(d.timezone() == "UTC");
  CHECK(dag::format_iso(*d.start_date()) == "2024-01-01T00:00:00+00:00");
  CHECK_FALSE(d.catchup());
  CHECK(d.max_active_runs() == 1);
  CHECK(d.max_active_tasks() == 8);
  CHECK(d.tags() == std::vector<std::string>{"batch", "processing"});
  CHECK(d.params().at("limit") == "100");
  const auto* p = d.find("process_pending_workflows");
  REQUIRE(p);
  CHECK(p->operator_name == "postgres");
  CHECK(p->fields.at("conn_id").text == "warehouse");
  CHECK(p->fields.at("sql").line == 16);
  CHECK(p->settings.retry.retries == 2);
  CHECK(p->settings.retry.retry_delay == 5min);
  const auto* c = d.find("cleanup_completed_workflows");
  REQUIRE(c);
  CHECK(c->dependencies == std::vector<std::string>{"process_pending_workflows"});
  CHECK(c->settings.trigger == dag::trigger_rule::all_done);
  CHECK(c->settings.execution_timeout == 10min);
  CHECK(c->where.line == 17);
}

TEST_CASE("YamlLoader.StartDateIsWallClockInTheDagTimezone") {
  auto r = dag::load_yaml_text(dag_with("start_date: 2024-01-01\nschedule: \"@daily\"\ntimezone: Europe/Berlin\n"),
                               "dags/t.yaml", catalog());
  REQUIRE(r.dag);
  CHECK(dag::format_iso(*r.dag->start_date()) == "2023-12-31T23:00:00+00:00");
}

TEST_CASE("YamlLoader.DefaultArgsStartDateAndSeedKeysAreAccepted") {
  auto r = dag::load_yaml_text(dag_with("schedule: 1d\ndefault_args:\n  owner: platform\n  depends_on_past: false\n"
                                        "  start_date: 2024-02-01\n  email_on_failure: true\n  email: ops@example.com\n"),
                               "dags/t.yaml", catalog());
  REQUIRE(r.problems.empty());
  CHECK(dag::format_iso(*r.dag->start_date()) == "2024-02-01T00:00:00+00:00");
  const auto& s = r.dag->find("a")->settings;
  CHECK(s.owner == "platform");
  CHECK(s.email_on_failure);
  CHECK(s.email == std::vector<std::string>{"ops@example.com"});
}

TEST_CASE("YamlLoader.SyntaxErrorNamesTheLine") {
  auto m = problem_of("dag_id: t\ntasks:\n  - task_id: a\n   operator: bash\n");
  CHECK(m.starts_with("dags/t.yaml:4: YAML syntax error: "));
}

TEST_CASE("YamlLoader.UnquotedStarCronGetsAHint") {
  auto m = problem_of(dag_with("schedule: */5 * * * *\n"));
  CHECK(m.starts_with("dags/t.yaml:2: YAML syntax error"));
  CHECK(m.find("quote values that start with '*'") != std::string::npos);
}

TEST_CASE("YamlLoader.UnquotedPresetGetsAHint") {
  auto m = problem_of(dag_with("schedule: @daily\n"));
  CHECK(m.find("quote values that start with '@'") != std::string::npos);
}

TEST_CASE("YamlLoader.SingleValueListFieldIsCheckedAsAList") {
  auto m = problem_of("dag_id: t\ntasks:\n  - task_id: a\n    operator: sqlite\n    database: x.db\n    sql: select ?\n"
                      "    parameters: \"{{ params.nope }}\"\n");
  CHECK(m.starts_with("dags/t.yaml:7: task 'a': parameters: "));
  auto ok = dag::load_yaml_text("dag_id: t\ntasks:\n  - task_id: a\n    operator: sqlite\n    database: x.db\n"
                                "    sql: select ?\n    parameters: \"{{ ds }}\"\n", "dags/t.yaml", catalog());
  REQUIRE(ok.dag);
  CHECK(ok.dag->find("a")->fields.at("parameters").items == std::vector<std::string>{"{{ ds }}"});
}

TEST_CASE("YamlLoader.FileMustBeAMapping") {
  CHECK(problem_of("- a\n- b\n") == "dags/t.yaml:1: a DAG file must be a mapping with dag_id and tasks");
}

TEST_CASE("YamlLoader.MissingRequiredKeys") {
  auto all = problems_of("description: nothing else\n");
  REQUIRE(all.size() == 2);
  CHECK(all[0] == "dags/t.yaml:1: missing required key 'dag_id'");
  CHECK(all[1] == "dags/t.yaml:1: missing required key 'tasks'");
}

TEST_CASE("YamlLoader.UnknownKeysSuggestTheIntendedOne") {
  CHECK(problem_of(dag_with("schedul: 1d\n")) == "dags/t.yaml:2: unknown DAG key 'schedul' (did you mean 'schedule'?)");
  CHECK(problem_of(dag_with("schedule_interval: 1d\n")) ==
        "dags/t.yaml:2: unknown DAG key 'schedule_interval': Airflow's old name, use 'schedule'");
  CHECK(problem_of(dag_with("default_args:\n  retires: 2\n")) ==
        "dags/t.yaml:3: unknown default_args key 'retires' (did you mean 'retries'?)");
  CHECK(problem_of(dag_with("", "    retires: 2\n")) ==
        "dags/t.yaml:6: task 'a': unknown field 'retires' for operator 'bash' (did you mean 'retries'?)");
  CHECK(problem_of(dag_with("", "    bash_comand: echo\n")) ==
        "dags/t.yaml:6: task 'a': unknown field 'bash_comand' for operator 'bash' (did you mean 'bash_command'?)");
  CHECK(problem_of(dag_with("zzzzzz: 1\n")) == "dags/t.yaml:2: unknown DAG key 'zzzzzz'");
}

TEST_CASE("YamlLoader.DuplicateKeysAreErrors") {
  CHECK(problem_of(dag_with("catchup: true\ncatchup: false\n")) ==
        "dags/t.yaml:3: duplicate key 'catchup' (first on line 2)");
}

TEST_CASE("YamlLoader.BadScalarValues") {
  CHECK(problem_of(dag_with("catchup: maybe\n")) == "dags/t.yaml:2: catchup: expected true or false, got 'maybe'");
  CHECK(problem_of(dag_with("max_active_runs: 0\n")) == "dags/t.yaml:2: max_active_runs: must be at least 1, got 0");
  CHECK(problem_of(dag_with("max_active_tasks: many\n")) ==
        "dags/t.yaml:2: max_active_tasks: expected a whole number, got 'many'");
  CHECK(problem_of(dag_with("tags: {a: b}\n")) == "dags/t.yaml:2: tags: expected a list, got a mapping");
  CHECK(problem_of(dag_with("description: [a]\n")) == "dags/t.yaml:2: description: expected a single value, got a list");
  CHECK(problem_of(dag_with("", "    retries: -1\n")) == "dags/t.yaml:6: task 'a': retries: must be at least 0, got -1");
}

TEST_CASE("YamlLoader.DurationsAreStrict") {
  auto m = problem_of(dag_with("", "    retry_delay: 5 minutes\n"));
  CHECK(m.starts_with("dags/t.yaml:6: task 'a': retry_delay: "));
  CHECK(m.find("5 minutes") != std::string::npos);
  m = problem_of(dag_with("", "    execution_timeout: 300\n"));
  CHECK(m.starts_with("dags/t.yaml:6: task 'a': execution_timeout: "));
  auto ok = dag::load_yaml_text(dag_with("", "    retry_delay: 1h30m\n    max_retry_delay: 90s\n"), "dags/t.yaml", catalog());
  REQUIRE(ok.dag);
  CHECK(ok.dag->find("a")->settings.retry.retry_delay == 90min);
  CHECK(ok.dag->find("a")->settings.retry.max_retry_delay == 90s);
  // Only retry_delay may be zero (retry at once); a zero timeout means nothing.
  ok = dag::load_yaml_text(dag_with("", "    retry_delay: 0s\n"), "dags/t.yaml", catalog());
  REQUIRE(ok.dag);
  CHECK(ok.dag->find("a")->settings.retry.retry_delay == 0s);
  CHECK(problem_of(dag_with("", "    execution_timeout: 0s\n")).starts_with("dags/t.yaml:6: task 'a': execution_timeout: invalid duration '0s'"));
}

TEST_CASE("YamlLoader.BadDatesAndTimezones") {
  auto m = problem_of(dag_with("start_date: 2024-13-01\n"));
  CHECK(m.starts_with("dags/t.yaml:2: start_date: "));
  CHECK(problem_of(dag_with("timezone: Europe/Berln\n")) == "dags/t.yaml:2: timezone: unknown IANA timezone 'Europe/Berln'");
  CHECK(problem_of(dag_with("schedule: 1d\n")) == "dags/t.yaml:2: start_date is required when a schedule is set");
  CHECK(problem_of(dag_with("start_date: 2024-02-01\nend_date: 2024-01-01\n")) ==
        "dags/t.yaml:3: end_date 2024-01-01T00:00:00+00:00 is before start_date 2024-02-01T00:00:00+00:00");
}

TEST_CASE("YamlLoader.BadScheduleNamesItsLine") {
  auto m = problem_of(dag_with("start_date: 2024-01-01\nschedule: 0 25 * * *\n"));
  CHECK(m.starts_with("dags/t.yaml:3: schedule: "));
  CHECK(m.find("25") != std::string::npos);
  m = problem_of(dag_with("start_date: 2024-01-01\nschedule: \"@daly\"\n"));
  CHECK(m.starts_with("dags/t.yaml:3: schedule: "));
}

TEST_CASE("YamlLoader.TriggerRulesAndOperatorsAreChecked") {
  CHECK(problem_of(dag_with("", "    trigger_rule: all_sucess\n")) ==
        "dags/t.yaml:6: task 'a': trigger_rule: unknown rule 'all_sucess' (did you mean 'all_success'?)");
  CHECK(problem_of("dag_id: t\ntasks:\n  - task_id: a\n    operator: bsh\n    bash_command: x\n") ==
        "dags/t.yaml:3: task 'a': unknown operator 'bsh' (did you mean 'bash'?); known: bash, branch_day_of_week, "
        "date_time_sensor, empty, external_task_sensor, file_sensor, http, http_sensor, latest_only, postgres, "
        "sql_sensor, sqlite, time_delta_sensor, trigger_dagrun");
  CHECK(problem_of("dag_id: t\ntasks:\n  - task_id: a\n    operator: bash\n") ==
        "dags/t.yaml:3: task 'a': operator 'bash' requires field 'bash_command'");
  CHECK(problem_of("dag_id: t\ntasks:\n  - task_id: a\n    operator: callable\n") ==
        "dags/t.yaml:3: task 'a': operator 'callable' is only available to C++ DAGs; YAML operators: bash, "
        "branch_day_of_week, date_time_sensor, empty, external_task_sensor, file_sensor, http, http_sensor, "
        "latest_only, postgres, sql_sensor, sqlite, time_delta_sensor, trigger_dagrun");
  CHECK(problem_of("dag_id: t\ntasks:\n  - task_id: a\n    operator: http\n    conn_id: api\n    method: FETCH\n") ==
        "dags/t.yaml:6: task 'a': method: 'FETCH' is not one of GET, POST, PUT, PATCH, DELETE, HEAD");
  CHECK(problem_of("dag_id: t\ntasks:\n  - task_id: a\n    operator: postgres\n    conn_id: db\n    sql: x\n    autocommit: yes\n") ==
        "dags/t.yaml:7: task 'a': autocommit: expected true or false, got 'yes'");
  CHECK(problem_of(dag_with("", "    env: [A, B]\n")) == "dags/t.yaml:6: task 'a': env: expected a mapping, got a list");
  CHECK(problem_of(dag_with("", "    depends_on_past: maybe\n")).find("depends_on_past") != std::string::npos);
  CHECK(problem_of("dag_id: t\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: [a, b]\n") ==
        "dags/t.yaml:5: task 'a': bash_command: expected a single value, got a list");
}

TEST_CASE("YamlLoader.TaskListShapes") {
  CHECK(problem_of("dag_id: t\ntasks: nope\n") == "dags/t.yaml:2: tasks: expected a list of tasks, got 'nope'");
  CHECK(problem_of("dag_id: t\ntasks: []\n") == "dags/t.yaml:2: tasks: a DAG needs at least one task");
  CHECK(problem_of("dag_id: t\ntasks:\n  - just_a_string\n") ==
        "dags/t.yaml:3: each task must be a mapping with task_id and operator, got 'just_a_string'");
  CHECK(problem_of("dag_id: t\ntasks:\n  - operator: bash\n    bash_command: x\n") ==
        "dags/t.yaml:3: task: missing required key 'task_id'");
  CHECK(problem_of("dag_id: bad id\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: x\n") ==
        "dags/t.yaml:1: invalid dag_id 'bad id': use letters, digits, '_', '-' and '.'");
}

TEST_CASE("YamlLoader.GraphProblemsNameTheTaskLine") {
  const std::string base = "dag_id: t\ntasks:\n  - task_id: extract\n    operator: bash\n    bash_command: x\n";
  CHECK(problem_of(base + "  - task_id: load\n    operator: bash\n    bash_command: x\n    dependencies: [extarct]\n") ==
        "dags/t.yaml:6: task 'load' depends on unknown task 'extarct' (did you mean 'extract'?)");
  CHECK(problem_of(base + "  - task_id: extract\n    operator: bash\n    bash_command: y\n") ==
        "dags/t.yaml:6: duplicate task_id 'extract' (first defined on line 3)");
  auto m = problem_of(base + "    dependencies: [load]\n  - task_id: load\n    operator: bash\n    bash_command: x\n"
                             "    dependencies: extract\n");
  CHECK(m.find("dependency cycle: ") != std::string::npos);
  CHECK(m.find("extract") != std::string::npos);
  CHECK(m.find("load") != std::string::npos);
}

TEST_CASE("YamlLoader.TemplatesAreCheckedAtLoadTime") {
  CHECK(problem_of(dag_with("", "    env: {DAY: \"{{ dss }}\"}\n")).starts_with(
      "dags/t.yaml:6: task 'a': env.DAY: unknown template variable 'dss' (did you mean 'ds'?)"));
  auto m = problem_of("dag_id: t\nparams: {limit: 5}\ntasks:\n  - task_id: a\n    operator: bash\n"
                      "    bash_command: echo {{ params.limt }}\n");
  CHECK(m.starts_with("dags/t.yaml:6: task 'a': bash_command: "));
  CHECK(m.find("did you mean 'limit'") != std::string::npos);
  // The error sits on the third line of a block scalar that starts on line 6.
  m = problem_of("dag_id: t\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: |\n"
                 "      echo one\n      echo two\n      echo {{ ds\n");
  CHECK(m.starts_with("dags/t.yaml:8: task 'a': bash_command: "));
  CHECK(m.find("unclosed") != std::string::npos);
  m = problem_of("dag_id: t\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: echo {{ ti.xcom_pull('b') }}\n"
                 "  - task_id: b\n    operator: bash\n    bash_command: echo b\n    dependencies: [a]\n");
  CHECK(m.starts_with("dags/t.yaml:5: task 'a': bash_command: "));
  CHECK(m.find("'b'") != std::string::npos);
  CHECK(problems_of("dag_id: t\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: echo a\n"
                    "  - task_id: b\n    operator: bash\n    bash_command: echo {{ ti.xcom_pull('a') }}\n"
                    "    dependencies: [a]\n")
            .empty());
}

TEST_CASE("YamlLoader.SeveralProblemsOfOneFileAreAllReported") {
  auto all = problems_of(dag_with("catchup: maybe\nmax_active_runs: none\nschedul: 1d\n"));
  CHECK(all.size() == 3);
}

TEST_CASE("YamlLoader.OneBrokenFileNeverHidesTheOthers") {
  temp_dir dir;
  dir.write("a_good.yaml", "dag_id: good_one\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: x\n");
  dir.write("b_broken.yaml", "dag_id: broken\ntasks:\n  - task_id: a\n    operator: nope\n");
  dir.write("c_good.yml", "dag_id: good_two\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: x\n");
  dir.write("d_dupe.yaml", "dag_id: good_one\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: x\n");
  dir.write("notes.txt", "not a DAG");
  auto folder = dag::load_dag_folder(dir.path, catalog());
  REQUIRE(folder.dags.size() == 2);
  CHECK(folder.dags[0]->id() == "good_one");
  CHECK(folder.dags[1]->id() == "good_two");
  REQUIRE(folder.problems.size() == 2);
  CHECK(std::string(folder.problems[0].what()).starts_with((dir.path / "b_broken.yaml").string() + ":3: "));
  CHECK(std::string(folder.problems[1].what()) ==
        (dir.path / "d_dupe.yaml").string() + ":1: dag_id 'good_one' is already defined in " +
            (dir.path / "a_good.yaml").string());
  CHECK(folder.find("good_two") != nullptr);
  CHECK(folder.find("broken") == nullptr);
}

TEST_CASE("YamlLoader.NothingInTheFolderIsSkippedUnseen") {
  // A second DAG after `---` in one file, a link to nothing and a folder with a DAG file's name are
  // each a problem of its own, never silently left out (a trailing `---` is no DAG).
  temp_dir dir;
  dir.write("a_two.yaml", "dag_id: z1\ntasks:\n  - task_id: a\n    operator: empty\n---\n"
                          "dag_id: z2\ntasks:\n  - task_id: a\n    operator: empty\n");
  dir.write("b_trailing.yaml", "dag_id: z3\ntasks:\n  - task_id: a\n    operator: empty\n---\n");
  std::filesystem::create_symlink(dir.path / "gone.yaml", dir.path / "c_dangling.yaml");
  std::filesystem::create_directory(dir.path / "d_folder.yaml");
  std::filesystem::create_symlink("user@host.1234:1700000000", dir.path / ".#a_two.yaml");  // an editor's lock: not a DAG
  auto folder = dag::load_dag_folder(dir.path, catalog());
  REQUIRE(folder.dags.size() == 1);
  CHECK(folder.dags[0]->id() == "z3");
  std::vector<std::string> problems;
  for (const auto& p : folder.problems) problems.emplace_back(p.what());
  std::sort(problems.begin(), problems.end());
  REQUIRE(problems.size() == 3);
  CHECK(problems[0] == (dir.path / "a_two.yaml").string() +
                           ":6: a DAG file holds one YAML document, and a second one starts here: "
                           "put each DAG in a file of its own");
  CHECK(problems[1] == (dir.path / "c_dangling.yaml").string() + ": a link to nothing (" + (dir.path / "gone.yaml").string() + ")");
  CHECK(problems[2] == (dir.path / "d_folder.yaml").string() + ": not a regular file, so not read as a DAG file");
}

TEST_CASE("YamlLoader.AStrayCommaIsASyntaxErrorNotAHang") {
  // yaml-cpp's LoadAll hands out empty documents for ever at a stray ',' (found by fuzz_yaml in CI):
  // each of these is one problem on its line, after the first document or before any.
  CHECK(problem_of(",# a comment\ndag_id: t\n") ==
        "dags/t.yaml:1: YAML syntax error: unexpected ',' where a value or a new document should start");
  CHECK(problem_of("dag_id: t\ntasks:\n  - task_id: a\n    operator: empty\n---\n[1]\n,\n") ==
        "dags/t.yaml:6: a DAG file holds one YAML document, and a second one starts here: "
        "put each DAG in a file of its own");
  CHECK(problem_of("[1]\n,\n") ==
        "dags/t.yaml:2: YAML syntax error: unexpected ',' where a value or a new document should start");
  CHECK(problem_of("\xEF\xBB\xBF,\n") ==  // after a byte-order mark
        "dags/t.yaml:1: YAML syntax error: unexpected token where a value or a new document should start");
  // A mapping off the left margin ends where a line starts at it: what follows is a document too.
  CHECK(problem_of("  dag_id: t\n,\n") ==
        "dags/t.yaml:2: YAML syntax error: unexpected ',' where a value or a new document should start");
  CHECK(problem_of("  dag_id: t\ntasks: []\n") ==
        "dags/t.yaml:2: a DAG file holds one YAML document, and a second one starts here: put each DAG in a file of its own");
  CHECK(problem_of("{dag_id: t}\n{tasks: []}\n") ==
        "dags/t.yaml:2: a DAG file holds one YAML document, and a second one starts here: put each DAG in a file of its own");
  // A trailing end marker, or a `---` with nothing after it, is still one DAG.
  CHECK(problems_of("dag_id: t\ntasks:\n  - task_id: a\n    operator: empty\n...\n").empty());
  CHECK(problems_of("---\ndag_id: t\ntasks:\n  - task_id: a\n    operator: empty\n---\n").empty());
}

TEST_CASE("YamlLoader.AFolderLoaderReadsAgainOnlyTheFilesThatChanged") {
  temp_dir dir;
  const auto dag_text = [](const std::string& id, const std::string& command) {
    return "dag_id: " + id + "\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: " + command + "\n";
  };
  for (const std::string id : {"a", "b", "c"}) dir.write(id + ".yaml", dag_text(id, "echo " + id));
  dag::dag_folder_loader loader(dir.path, catalog());
  CHECK(loader.refresh() == 3);
  CHECK(loader.changed());
  const auto first = loader.folder();
  CHECK(first.dags.size() == 3);
  CHECK(loader.refresh() == 0);  // nothing changed: nothing parsed
  CHECK_FALSE(loader.changed());

  // One file edited: only it is parsed again; the others' DAGs are kept, the very same definitions
  // (shared, not copied: the engine keeps their scheduled form).
  dir.write("b.yaml", dag_text("b", "echo edited"));
  CHECK(loader.refresh() == 1);
  CHECK(loader.changed());
  auto folder = loader.folder();
  REQUIRE(folder.dags.size() == 3);
  REQUIRE(folder.find("b"));
  CHECK(folder.find("b")->find("a")->fields.at("bash_command").text == "echo edited");
  CHECK(folder.dags[0] == first.dags[0]);
  CHECK(folder.dags[1] != first.dags[1]);
  CHECK(folder.dags[2] == first.dags[2]);
  CHECK(folder.dags[1]->checked());
  // Who still holds the folder of before sees b as it was.
  CHECK(first.find("b")->find("a")->fields.at("bash_command").text == "echo b");

  // A file broken, then another defining a dag_id twice, then a file removed: each as load_dag_folder says.
  dir.write("c.yaml", "dag_id: c\ntasks: [broken\n");
  dir.write("d.yaml", dag_text("a", "echo again"));
  CHECK(loader.refresh() == 2);
  folder = loader.folder();
  const auto fresh = dag::load_dag_folder(dir.path, catalog());
  REQUIRE(folder.dags.size() == fresh.dags.size());
  for (std::size_t i = 0; i < fresh.dags.size(); ++i) CHECK(folder.dags[i]->id() == fresh.dags[i]->id());
  REQUIRE(folder.problems.size() == fresh.problems.size());
  for (std::size_t i = 0; i < fresh.problems.size(); ++i) CHECK(std::string(folder.problems[i].what()) == fresh.problems[i].what());
  std::filesystem::remove(dir.path / "d.yaml");
  CHECK(loader.refresh() == 0);
  CHECK(loader.changed());
  CHECK(loader.folder().problems.size() == 1);  // only the broken file
}

TEST_CASE("YamlLoader.AFolderLoaderReadsEveryDagAgainWhenATemplateFileChanges") {
  // A template file is read into its DAG when the YAML loads: editing it alone must reach the DAG.
  temp_dir dir;
  dir.write("job.sh", "echo one\n");
  dir.write("a.yaml", "dag_id: a\ntasks:\n  - task_id: t\n    operator: bash\n    bash_command: job.sh\n");
  dir.write("b.yaml", "dag_id: b\ntasks:\n  - task_id: t\n    operator: bash\n    bash_command: echo b\n");
  dag::dag_folder_loader loader(dir.path, catalog());
  CHECK(loader.refresh() == 2);
  REQUIRE(loader.folder().find("a"));
  CHECK(loader.folder().find("a")->find("t")->fields.at("bash_command").text == "echo one\n");
  CHECK(loader.refresh() == 0);
  dir.write("job.sh", "echo two, longer\n");
  CHECK(loader.refresh() == 2);
  CHECK(loader.changed());
  CHECK(loader.folder().find("a")->find("t")->fields.at("bash_command").text == "echo two, longer\n");
  CHECK(loader.refresh() == 0);
}

TEST_CASE("Check.ADefinitionStaysCheckedUntilSomethingCanChangeIt") {
  dag::definition d{"flagged"};
  d.default_args([] {
    dag::task_options o;
    o.retries = 2;
    return o;
  }());
  d.bash("a", "true");
  CHECK_FALSE(d.checked());
  REQUIRE(dag::check(d, catalog()).empty());
  CHECK(d.checked());
  CHECK(d.find("a")->settings.retry.retries == 2);  // default_args applied
  const dag::definition copy = d;
  CHECK(copy.checked());
  CHECK(std::as_const(d).all_tasks().size() == 1);  // reading changes nothing
  CHECK(d.checked());

  // Anything that can change it: a task added, a setter, the tasks or groups handed out to change.
  d.bash("b", "true");
  CHECK_FALSE(d.checked());
  REQUIRE(dag::check(d, catalog()).empty());
  CHECK(d.find("b")->settings.retry.retries == 2);
  d.description("now described");
  CHECK_FALSE(d.checked());
  REQUIRE(dag::check(d, catalog()).empty());
  d.all_tasks();
  CHECK_FALSE(d.checked());
  REQUIRE(dag::check(d, catalog()).empty());
  d.groups();
  CHECK_FALSE(d.checked());

  // A definition with a problem is never checked: each check finds the problem again.
  dag::definition bad{"bad"};
  bad.add_task("a", "bsh");
  CHECK(dag::check(bad, catalog()).size() == 1);
  CHECK_FALSE(bad.checked());
  CHECK(dag::check(bad, catalog()).size() == 1);
}

TEST_CASE("Check.ADefinitionCheckedWithOtherOperatorsOrMovedFromIsCheckedAgain") {
  // Checked with a catalog that knows `custom`: against one that does not, the check runs again
  // and finds the unknown operator (an engine with other operators must refuse the DAG).
  dag::operator_catalog with_custom = catalog();
  dag::operator_spec custom;
  custom.name = "custom";
  with_custom.add(custom);
  dag::definition d{"custom_dag"};
  d.add_task("a", "custom");
  REQUIRE(dag::check(d, with_custom).empty());
  CHECK(d.checked());
  CHECK(d.checked_with(with_custom.stamp()));
  CHECK_FALSE(d.checked_with(catalog().stamp()));
  const auto problems = dag::check(d, catalog());
  REQUIRE(problems.size() == 1);
  CHECK(std::string(problems[0].what()).find("custom") != std::string::npos);
  CHECK_FALSE(d.checked());
  // A copy of a catalog has the same operators, hence the same stamp; an add() makes another.
  const dag::operator_catalog same = with_custom;
  CHECK(same.stamp() == with_custom.stamp());
  const auto before = with_custom.stamp();
  with_custom.add(custom);
  CHECK(with_custom.stamp() != before);

  // A moved-from definition is empty: it is not checked any more, and a check finds its problems.
  dag::definition e{"moved"};
  e.bash("a", "true");
  REQUIRE(dag::check(e, catalog()).empty());
  const dag::definition taken = std::move(e);
  CHECK(taken.checked());
  CHECK_FALSE(e.checked());  // NOLINT(bugprone-use-after-move): the point of the test
  CHECK_FALSE(dag::check(e, catalog()).empty());
}

TEST_CASE("YamlLoader.MissingPathIsAProblemNotACrash") {
  auto folder = dag::load_dag_folder("/nonexistent/dagrun/dags", catalog());
  CHECK(folder.dags.empty());
  REQUIRE(folder.problems.size() == 1);
  CHECK(std::string(folder.problems[0].what()) == "/nonexistent/dagrun/dags: no such file or directory");
}

TEST_CASE("YamlLoader.ShippedExampleDagsAreValid") {
  auto folder = dag::load_dag_folder(std::filesystem::path(DAG_SOURCE_DIR) / "dags", catalog());
  for (const auto& p : folder.problems) FAIL_CHECK(p.what());
  const auto* training = folder.find("model_training_pipeline");
  REQUIRE(training);
  CHECK(training->schedule() == "1d");
  CHECK_FALSE(training->catchup());
  CHECK(training->tags() == std::vector<std::string>{"ml", "training"});
  CHECK(training->all_tasks().size() == 5);
  for (const auto& t : training->all_tasks()) {
    CHECK(t.settings.retry.retries == 1);
    CHECK(t.settings.retry.retry_delay == 5min);
  }
  const auto* batch = folder.find("batch_processing_pipeline");
  REQUIRE(batch);
  CHECK(batch->schedule() == "6h");
  CHECK_FALSE(batch->catchup());
  CHECK(batch->tags() == std::vector<std::string>{"batch", "processing"});
  CHECK(batch->find("generate_reports")->dependencies == std::vector<std::string>{"process_pending_workflows"});
  CHECK(batch->find("cleanup_completed_workflows")->settings.retry.retries == 2);
}

TEST_CASE("YamlLoader.FlowKeysSetTheTasksFlowRule") {
  auto r = dag::load_yaml_text(
      "dag_id: t\ntasks:\n"
      "  - {task_id: pick, operator: bash, bash_command: echo b, branch: true}\n"
      "  - {task_id: b, operator: bash, bash_command: 'true', dependencies: [pick]}\n"
      "  - {task_id: gate, operator: bash, bash_command: echo 0, short_circuit: true, ignore_downstream_trigger_rules: false, dependencies: [b]}\n"
      "  - {task_id: check, operator: bash, bash_command: echo true, branch: true, follow_task_ids_if_true: [yes], follow_task_ids_if_false: no, dependencies: [gate]}\n"
      "  - {task_id: 'yes', operator: bash, bash_command: 'true', dependencies: [check]}\n"
      "  - {task_id: 'no', operator: bash, bash_command: 'true', dependencies: [check]}\n"
      "  - {task_id: latest, operator: latest_only, dependencies: [check]}\n"
      "  - {task_id: monday, operator: branch_day_of_week, week_day: [Monday, sunday], follow_task_ids_if_true: [yes], follow_task_ids_if_false: [no]}\n",
      "dags/t.yaml", catalog());
  for (const auto& p : r.problems) FAIL_CHECK(p.what());
  REQUIRE(r.dag);
  CHECK(r.dag->find("pick")->flow.rule == dag::flow_rule::branch);
  CHECK(r.dag->find("gate")->flow.rule == dag::flow_rule::short_circuit);
  CHECK_FALSE(r.dag->find("gate")->flow.ignore_downstream_trigger_rules);
  CHECK(r.dag->find("check")->flow.follow_if_true == std::vector<std::string>{"yes"});
  CHECK(r.dag->find("check")->flow.follow_if_false == std::vector<std::string>{"no"});
  CHECK(r.dag->find("latest")->flow.rule == dag::flow_rule::latest_only);
  CHECK(r.dag->find("monday")->flow.rule == dag::flow_rule::branch);
}

TEST_CASE("YamlLoader.FlowMistakesAreNamed") {
  CHECK(problem_of(dag_with("", "    follow_task_ids_if_true: [a]\n    follow_task_ids_if_false: [a]\n")) ==
        "dags/t.yaml:3: task 'a': follow_task_ids_if_true/_if_false need branch: true");
  CHECK(problem_of(dag_with("", "    branch: true\n    follow_task_ids_if_true: [b]\n    follow_task_ids_if_false: [a]\n")) ==
        "dags/t.yaml:3: task 'a': follows unknown task 'b' (did you mean 'a'?)");
  CHECK(problem_of(dag_with("", "    branch: true\n    follow_task_ids_if_true: [a]\n")) ==
        "dags/t.yaml:3: task 'a': set both follow_task_ids_if_true and follow_task_ids_if_false");
  CHECK(problem_of("dag_id: t\ntasks:\n  - {task_id: a, operator: branch_day_of_week, week_day: Monday}\n") ==
        "dags/t.yaml:3: task 'a': operator 'branch_day_of_week' needs follow_task_ids_if_true and follow_task_ids_if_false");
  CHECK(problem_of("dag_id: t\ntasks:\n  - {task_id: a, operator: latest_only, short_circuit: true}\n") ==
        "dags/t.yaml:3: task 'a': operator 'latest_only' decides its downstream tasks itself; remove branch/short_circuit");
  CHECK(problem_of(dag_with("", "    branch: maybe\n")) == "dags/t.yaml:6: task 'a': branch: expected true or false, got 'maybe'");
}

TEST_CASE("YamlLoader.GroupsPrefixTheirTasksAndResolveNamesInside") {
  auto r = dag::load_yaml_text(
      "dag_id: t\n"
      "tasks:\n"
      "  - {task_id: load, operator: bash, bash_command: 'true'}\n"
      "groups:\n"
      "  - group_id: g\n"
      "    tasks:\n"
      "      - {task_id: load, operator: bash, bash_command: 'true'}\n"
      "      - {task_id: after, operator: bash, bash_command: 'true', dependencies: [load]}\n"
      "      - {task_id: outer, operator: bash, bash_command: 'true', dependencies: [h]}\n"
      "    groups:\n"
      "      - group_id: h\n"
      "        default_args: {retries: 4}\n"
      "        tasks:\n"
      "          - {task_id: x, operator: bash, bash_command: 'true', dependencies: [load]}\n",
      "dags/t.yaml", catalog());
  for (const auto& p : r.problems) FAIL_CHECK(p.what());
  REQUIRE(r.dag);
  CHECK(r.dag->find("g.after")->dependencies == std::vector<std::string>{"g.load"});
  CHECK(r.dag->find("g.h.x")->dependencies == std::vector<std::string>{"g.load"});  // the closest enclosing group first
  CHECK(r.dag->find("g.outer")->dependencies == std::vector<std::string>{"g.h.x"});
  CHECK(r.dag->find("g.h.x")->settings.retry.retries == 4);
  CHECK(r.dag->find("g.h.x")->group == "g.h");
  REQUIRE(r.dag->groups().size() == 2);
  CHECK(r.dag->groups()[1].parent == "g");
}

TEST_CASE("YamlLoader.GroupMistakesAreNamed") {
  const std::string top = "dag_id: t\ntasks:\n  - {task_id: a, operator: bash, bash_command: 'true'}\ngroups:\n";
  CHECK(problem_of(top + "  - group_id: a\n    tasks: []\n") == "dags/t.yaml:5: group_id 'a' is also a task_id");
  CHECK(problem_of(top + "  - group_id: g.h\n    tasks: []\n") ==
        "dags/t.yaml:5: group_id 'g.h': a group's own id has no '.' (nested groups get their prefix from the enclosing group)");
  CHECK(problem_of(top + "  - group_id: g\n    tasks: []\n  - group_id: g\n    tasks: []\n") ==
        "dags/t.yaml:7: duplicate group_id 'g'");
  CHECK(problem_of(top + "  - group_id: g\n    dependencies: [b]\n    tasks:\n      - {task_id: x, operator: bash, bash_command: 'true'}\n") ==
        "dags/t.yaml:8: task 'g.x' depends on unknown task 'b' (did you mean 'a'?)");
  CHECK(problem_of(top + "  - group_id: g\n    tooltip: x\n    colour: red\n") ==
        "dags/t.yaml:7: unknown group key 'colour'");
  CHECK(problem_of(top + "  - group_id: g\n    prefix_group_id: false\n") ==
        "dags/t.yaml:6: group 'g': prefix_group_id: false is not supported (task ids always carry their group's id)");
}

TEST_CASE("YamlLoader.UnsupportedAirflowKeysSayWhy") {
  CHECK(problem_of(dag_with("sla_miss_callback: notify\n")) ==
        "dags/t.yaml:2: DAG key 'sla_miss_callback' is not supported in YAML; use on_sla_miss (notifiers: email, webhook, command)");
  CHECK(problem_of(dag_with("concurrency: 4\n")) ==
        "dags/t.yaml:2: DAG key 'concurrency' is Airflow's old name of max_active_tasks: use 'max_active_tasks'");
  CHECK(problem_of(dag_with("", "    run_as_user: etl\n")) ==
        "dags/t.yaml:6: task 'a': key 'run_as_user' is not supported; tasks run as the user running dagrun");
  // A list or mapping given to such a key, or to an unknown one, is named as what it is.
  CHECK(problem_of(dag_with("", "    run_as_user:\n      x: [1, 2]\n")) ==
        "dags/t.yaml:6: task 'a': key 'run_as_user' is not supported; tasks run as the user running dagrun");
  // Dynamic task mapping is supported: what it expands must be a field of the operator.
  CHECK(problem_of(dag_with("", "    expand:\n      x: [1, 2]\n")) == "dags/t.yaml:3: task 'a': expand: 'x' is not a field of operator 'bash'");
  CHECK(problem_of(dag_with("", "    inlets: [s3://bucket/x]\n")) ==
        "dags/t.yaml:6: task 'a': key 'inlets' (lineage) is not supported; a task's outlets update datasets, and a DAG's "
        "schedule lists those it waits for");
  CHECK(problem_of(dag_with("colours: [red, green]\n")) == "dags/t.yaml:2: unknown DAG key 'colours'");
  CHECK(problem_of(dag_with("", "    colours: {a: red}\n")) == "dags/t.yaml:6: task 'a': unknown field 'colours' for operator 'bash'");
  CHECK(problem_of(dag_with("default_args:\n  on_failure_callback: alert\n")) ==
        "dags/t.yaml:3: default_args key 'on_failure_callback' is not supported in YAML; use on_failure (notifiers: email, webhook, command)");
}

TEST_CASE("YamlLoader.DatasetSchedulesAndOutletsAreReadAndCheckedAtLoad") {
  auto r = dag::load_yaml_text(dag_with("schedule: [\"s3://b/x\", \"s3://b/y\"]\n", "    outlets: file:///data/z.csv\n"),
                               "dags/t.yaml", catalog());
  REQUIRE(r.dag);
  REQUIRE(r.dag->dataset_schedule());
  CHECK(r.dag->dataset_schedule()->text() == "(s3://b/x & s3://b/y)");
  CHECK(r.dag->schedule().empty());
  CHECK(r.dag->schedule_summary() == "on dataset updates");
  CHECK(r.dag->all_tasks()[0].outlets == std::vector<std::string>{"file:///data/z.csv"});
  r = dag::load_yaml_text(dag_with("schedule:\n  all:\n    - any: [\"s3://b/x\", \"s3://b/y\"]\n    - \"s3://b/z\"\n"),
                          "dags/t.yaml", catalog());
  REQUIRE(r.dag);
  CHECK(r.dag->dataset_schedule()->text() == "((s3://b/x | s3://b/y) & s3://b/z)");

  CHECK(problem_of(dag_with("schedule:\n  al: [\"s3://b/x\"]\n")) ==
        "dags/t.yaml:3: schedule: unknown dataset condition 'al' (did you mean 'all'?); use all: [uri, …] or any: [uri, …]");
  CHECK(problem_of(dag_with("schedule: [orders]\n")) ==
        "dags/t.yaml:2: schedule: 'orders' is not a dataset URI: expected SCHEME:REST such as s3://bucket/key or file:///data/x.csv");
  CHECK(problem_of(dag_with("schedule: s3://b/x\n")) ==
        "dags/t.yaml:2: schedule: to run on updates of a dataset, give a list: schedule: [s3://b/x]");
  CHECK(problem_of(dag_with("schedule: []\n")) ==
        "dags/t.yaml:2: schedule: an empty list of datasets; give dataset URIs, or leave schedule out for manual runs");
  CHECK(problem_of(dag_with("schedule:\n  any: s3://b/x\n")) ==
        "dags/t.yaml:3: schedule.any: expected a list of dataset URIs or conditions, got 's3://b/x'");
  CHECK(problem_of(dag_with("", "    outlets: [\"s3://b/a b\"]\n")) ==
        "dags/t.yaml:3: task 'a': outlets: dataset URI 's3://b/a b' holds a space or a non-ASCII character");
}

TEST_CASE("YamlLoader.NestedValuesOfAnUnknownKeyAreNotReadAsValues") {
  CHECK(problem_of(dag_with("", "    colours: {a: [1, 2]}\n")) == "dags/t.yaml:6: task 'a': unknown field 'colours' for operator 'bash'");
  CHECK(problem_of(dag_with("", "    colours: [[1], {a: 2}]\n")) == "dags/t.yaml:6: task 'a': unknown field 'colours' for operator 'bash'");
  CHECK(problem_of(dag_with("default_args:\n  colours: [1]\n")) == "dags/t.yaml:3: unknown default_args key 'colours'");
}

TEST_CASE("YamlLoader.WeightRuleAndMaxActiveTisPerDag") {
  auto r = dag::load_yaml_text(dag_with("default_args:\n  weight_rule: upstream\n", "    max_active_tis_per_dag: 2\n"),
                               "dags/t.yaml", catalog());
  REQUIRE(r.dag);
  CHECK(r.dag->find("a")->settings.weights == dag::weight_rule::upstream);
  CHECK(r.dag->find("a")->settings.max_active_tis_per_dag == 2);
  CHECK(problem_of(dag_with("", "    weight_rule: downstreem\n")) ==
        "dags/t.yaml:6: task 'a': weight_rule: unknown rule 'downstreem' (did you mean 'downstream'?); use downstream, upstream or absolute");
  CHECK(problem_of(dag_with("", "    max_active_tis_per_dag: 0\n")) == "dags/t.yaml:6: task 'a': max_active_tis_per_dag: must be at least 1, got 0");
}

TEST_CASE("YamlLoader.PoolsAndDagrunTimeout") {
  auto r = dag::load_yaml_text(dag_with("dagrun_timeout: 2h\ndefault_args:\n  pool: warehouse\n", "    pool_slots: 2\n"),
                               "dags/t.yaml", catalog());
  REQUIRE(r.dag);
  CHECK(r.dag->dagrun_timeout() == std::chrono::hours(2));
  CHECK(r.dag->find("a")->settings.pool == "warehouse");
  CHECK(r.dag->find("a")->settings.pool_slots == 2);
  auto plain = dag::load_yaml_text(dag_with("", ""), "dags/t.yaml", catalog());
  REQUIRE(plain.dag);
  CHECK(plain.dag->find("a")->settings.pool == "default_pool");
  CHECK(plain.dag->find("a")->settings.pool_slots == 1);
  CHECK_FALSE(plain.dag->dagrun_timeout().has_value());
  CHECK(problem_of(dag_with("", "    pool_slots: 0\n")) == "dags/t.yaml:6: task 'a': pool_slots: must be at least 1, got 0");
  // Names looked up again in the store are text (a Latin-1 file's bytes would not match on PostgreSQL).
  CHECK(problem_of(dag_with("", "    pool: caf\xe9\n")) == "dags/t.yaml:3: task 'a': pool: must be UTF-8 text without NUL bytes");
  CHECK(problem_of(dag_with("", "    queue: caf\xe9\n")) == "dags/t.yaml:3: task 'a': queue: must be UTF-8 text without NUL bytes");
  CHECK(problem_of(dag_with("default_args:\n  pool: caf\xe9\n")) ==
        "dags/t.yaml:3: default_args.pool: must be UTF-8 text without NUL bytes");
  CHECK(problem_of(dag_with("dagrun_timeout: soon\n")).find("dagrun_timeout") != std::string::npos);
}

TEST_CASE("YamlLoader.DependsOnPastAndWaitForDownstream") {
  auto r = dag::load_yaml_text(dag_with("default_args:\n  depends_on_past: true\n", "    wait_for_downstream: true\n    max_active_tis_per_dagrun: 1\n"),
                               "dags/t.yaml", catalog());
  REQUIRE(r.dag);
  CHECK(r.dag->find("a")->settings.depends_on_past);
  CHECK(r.dag->find("a")->settings.wait_for_downstream);
  CHECK(r.dag->find("a")->settings.max_active_tis_per_dagrun == 1);
  // wait_for_downstream implies depends_on_past, as in Airflow.
  auto implied = dag::load_yaml_text(dag_with("", "    wait_for_downstream: true\n"), "dags/t.yaml", catalog());
  REQUIRE(implied.dag);
  CHECK(implied.dag->find("a")->settings.depends_on_past);
}

TEST_CASE("YamlLoader.TypedParamsAreCheckedWhenLoaded") {
  const std::string dag_head =
      "dag_id: typed\n"
      "tasks:\n"
      "  - task_id: t\n"
      "    operator: bash\n"
      "    bash_command: echo {{ params.limit + 1 }} {{ params.region }} {{ params.day }}\n"
      "params:\n";
  auto r = dag::load_yaml_text(dag_head +
                                   "  limit: {type: integer, default: 5, minimum: 1, maximum: 10, description: rows}\n"
                                   "  region: {default: eu, enum: [eu, us], title: Region}\n"
                                   "  day: {type: string, format: date, default: '2024-01-01', pattern: '^[0-9-]+$'}\n",
                               "dags/t.yaml", catalog());
  REQUIRE(r.dag);
  CHECK(r.dag->params().at("limit") == "5");
  CHECK(r.dag->params().at("region") == "eu");
  CHECK(r.dag->params().at("day") == "2024-01-01");
  CHECK(r.dag->param_schemas().at("limit") == R"({"description":"rows","maximum":10,"minimum":1,"type":"integer"})");
  CHECK(r.dag->conf_overrides_params());

  struct bad_case {
    std::string params;
    std::string message;
  };
  const std::vector<bad_case> table{
      {"  limit: {type: integer, default: 50, maximum: 10}\n", "params.limit: default 50 is greater than the maximum of 10"},
      {"  limit: {type: integer, default: '5'}\n", "params.limit: default \"5\" is not of type integer"},
      {"  region: {default: asia, enum: [eu, us]}\n", "params.region: default \"asia\" is not one of [\"eu\",\"us\"]"},
      {"  day: {type: string, format: date, default: '2024-13-01'}\n", "params.day: default \"2024-13-01\" is not a valid date"},
      {"  region: {default: 'x y', pattern: '^[a-z]+$'}\n", "params.region: default \"x y\" does not match the pattern \"^[a-z]+$\""},
      {"  region: {default: ab, minLength: 3}\n", "params.region: default \"ab\" is shorter than 3 characters"},
      {"  region: {type: string}\n", "params.region: a typed param needs a 'default' (the value a run gets without conf)"},
      {"  region: {default: a, typo: 1}\n", "unknown param 'region' key 'typo'"},
  };
  for (const auto& row : table) {
    CAPTURE(row.params);
    auto bad = dag::load_yaml_text("dag_id: typed\ntasks:\n  - task_id: t\n    operator: bash\n    bash_command: echo\nparams:\n" + row.params,
                                   "dags/t.yaml", catalog());
    REQUIRE_FALSE(bad.problems.empty());
    CHECK(std::string(bad.problems[0].what()).find(row.message) != std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// Template files (Airflow's template_ext and template_searchpath)

namespace {

std::vector<std::string> file_problems(const dag::yaml_load_result& r) {
  std::vector<std::string> out;
  for (const auto& p : r.problems) out.push_back(p.what());
  return out;
}

const std::string bash_task = "tasks:\n  - task_id: a\n    operator: bash\n    bash_command: ";

}  // namespace

TEST_CASE("YamlLoader.TemplateFileIsReadFromTheDagFolderThenTheSearchPath") {
  temp_dir d;
  std::filesystem::create_directories(d.path / "scripts");
  std::filesystem::create_directories(d.path / "shared");
  d.write("scripts/run.sh", "echo {{ ds }} from the dag folder\n");
  d.write("shared/run.sh", "echo from shared\n");
  d.write("shared/only.bash", "echo only {{ params.x }}\n");
  d.write("t.yaml", "dag_id: t\nparams: {x: 1}\ntemplate_searchpath: [shared]\n" + bash_task +
                        "scripts/run.sh\n  - task_id: b\n    operator: bash\n    bash_command: only.bash\n"
                        "  - task_id: c\n    operator: bash\n    bash_command: run.sh\n"
                        "  - task_id: d\n    operator: bash\n    bash_command: \"echo run.sh \"\n");
  auto r = dag::load_yaml_file(d.path / "t.yaml", catalog());
  INFO(file_problems(r).size());
  REQUIRE(r.dag);
  auto field = [&](std::size_t i) { return r.dag->all_tasks()[i].fields.at("bash_command"); };
  CHECK(field(0).text == "echo {{ ds }} from the dag folder\n");
  CHECK(field(0).template_file == (d.path / "scripts" / "run.sh").string());
  CHECK(field(1).text == "echo only {{ params.x }}\n");
  CHECK(field(2).text == "echo from shared\n");  // not in the DAG folder itself: the search path's
  CHECK(field(3).text == "echo run.sh ");        // a trailing space keeps it text, as in Airflow
  CHECK(field(3).template_file.empty());
  // Checking again (the engine checks what the loader checked) changes nothing.
  dag::definition again = *r.dag;
  CHECK(dag::check(again, catalog()).empty());
  CHECK(again.all_tasks()[0].fields.at("bash_command").text == field(0).text);
}

TEST_CASE("YamlLoader.TemplateFileProblemsNameTheFileAndLine") {
  temp_dir d;
  d.write("bad.sql", "SELECT 1;\nSELECT '{{ ds_nodash | uper }}';\n");
  d.write("t.yaml", "dag_id: t\ntasks:\n  - task_id: q\n    operator: sqlite\n    database: ':memory:'\n    sql: bad.sql\n"
                    "  - task_id: m\n    operator: sqlite\n    database: ':memory:'\n    sql: missing.sql\n"
                    "  - task_id: up\n    operator: bash\n    bash_command: ../outside.sh\n");
  auto r = dag::load_yaml_file(d.path / "t.yaml", catalog());
  auto problems = file_problems(r);
  REQUIRE(problems.size() == 3);
  auto with = [&](const std::string& part) {
    for (const auto& p : problems)
      if (p.find(part) != std::string::npos) return p;
    return std::string("(none has '" + part + "')");
  };
  const std::string file = (d.path / "bad.sql").string();
  CHECK(with("uper").starts_with(file + ":2: task 'q': sql: "));
  CHECK(with("missing.sql") == (d.path / "t.yaml").string() + ":10: task 'm': sql: template file 'missing.sql' not found in " +
                                   d.path.string() + "; a value ending in .sql names a template file, as in Airflow (end it "
                                   "with a space to use it as text)");
  CHECK(with("outside.sh").find("'..' is not allowed in a template file's name") != std::string::npos);
}

TEST_CASE("YamlLoader.TemplateFilesAreBounded") {
  temp_dir d;
  d.write("big.sh", std::string(1024 * 1024 + 1, '#'));
  d.write("t.yaml", "dag_id: t\n" + bash_task + "big.sh\n");
  auto problems = file_problems(dag::load_yaml_file(d.path / "t.yaml", catalog()));
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("1048577 bytes is more than the 1048576 a template file may have") != std::string::npos);
}

TEST_CASE("YamlLoader.TemplateFileFromTextWithoutAFolder") {
  // A DAG read from text has no folder of its own: only template_searchpath is searched.
  auto r = dag::load_yaml_text("dag_id: t\n" + bash_task + "run.sh\n", "", catalog());
  auto problems = file_problems(r);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("(no folder to search: set template_searchpath)") != std::string::npos);
}

TEST_CASE("YamlLoader.MappedValuesMayBeMappingsForAMappingField") {
  // An element given to bash's env is a JSON object of its entries: written in YAML it is a
  // mapping, in expand's list and in expand_kwargs alike (read as an XCom's element would be).
  auto r = dag::load_yaml_text(dag_with("", "    expand:\n      env: [{X: \"1\"}, {X: two, Y: 3, V: 1.10}]\n"), "dags/t.yaml", catalog());
  REQUIRE(r.problems.empty());
  const auto& expand = r.dag->all_tasks()[0].mapping.expand;
  REQUIRE(expand.size() == 1);
  CHECK(expand[0].first == "env");
  CHECK(expand[0].second.items == std::vector<std::string>{R"({"X":"1"})", R"({"V":"1.10","X":"two","Y":"3"})"});
  auto k = dag::load_yaml_text("dag_id: t\ntasks:\n  - task_id: a\n    operator: bash\n    expand_kwargs:\n"
                               "      - {bash_command: 'echo $X', env: {X: \"1\"}}\n      - {bash_command: 'echo b'}\n",
                               "dags/t.yaml", catalog());
  REQUIRE(k.problems.empty());
  const auto& kwargs = k.dag->all_tasks()[0].mapping.kwargs;
  REQUIRE(kwargs.size() == 2);
  CHECK(kwargs[0].at("env") == R"({"X":"1"})");
  CHECK(kwargs[0].at("bash_command") == "echo $X");
  CHECK(kwargs[1].at("bash_command") == "echo b");
  CHECK(problem_of(dag_with("", "    expand:\n      env: [~]\n")) ==
        "dags/t.yaml:7: task 'a': expand.env: expected a single value, got nothing");
}
