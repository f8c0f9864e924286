// The file sensor: matching rules on real files, and through the engine a file that appears after
// the sensor poked twice.
#include <doctest/doctest.h>

#include <fstream>

#include <dag/load/yaml_loader.hpp>
#include <dag/operators/file_sensor.hpp>

#include "../../tests/support/engine_sandbox.hpp"

using namespace std::chrono_literals;

TEST_CASE("FileSensor.MatchesPathsGlobsAndFoldersHoldingFiles") {
  dag_test::engine_sandbox s("file-sensor");
  using dag::operators::file_sensor;
  const auto in = s.dir / "in";
  std::filesystem::create_directories(in / "deep" / "er");
  CHECK(file_sensor::first_match((in / "*.csv").string(), false).empty());
  CHECK(file_sensor::first_match(in.string(), false).empty());  // a folder counts only with a file inside
  std::ofstream(in / "empty.csv").close();
  CHECK(file_sensor::first_match((in / "*.csv").string(), false) == (in / "empty.csv").string());
  CHECK(file_sensor::first_match((in / "*.csv").string(), true).empty());  // non_empty: a 0-byte file does not count
  std::ofstream(in / "deep" / "er" / "data.txt") << "rows";
  CHECK(file_sensor::first_match((in / "deep").string(), true) == (in / "deep" / "er" / "data.txt").string());
  CHECK(file_sensor::first_match((in / "deep" / "er" / "data.txt").string(), true) == (in / "deep" / "er" / "data.txt").string());
}

TEST_CASE("FileSensor.FieldsAreCheckedAtLoadTime") {
  const auto catalog = dag::builtin_operators();
  const std::string head = "dag_id: f\ntasks:\n  - task_id: wait\n    operator: file_sensor\n";
  CHECK(dag::load_yaml_text(head + "    filepath: /data/{{ ds }}/*.csv\n    mode: reschedule\n    soft_fail: true\n",
                            "dags/f.yaml", catalog)
            .problems.empty());
  auto missing = dag::load_yaml_text(head + "    poke_interval: 30s\n", "dags/f.yaml", catalog);
  REQUIRE(missing.problems.size() == 1);
  CHECK(std::string(missing.problems[0].what()) == "dags/f.yaml:3: task 'wait': operator 'file_sensor' requires field 'filepath'");
  auto bad_mode = dag::load_yaml_text(head + "    filepath: /x\n    mode: sleep\n", "dags/f.yaml", catalog);
  REQUIRE(bad_mode.problems.size() == 1);
  CHECK(std::string(bad_mode.problems[0].what()) == "dags/f.yaml:6: task 'wait': mode: 'sleep' is not one of poke, reschedule");
}

TEST_CASE("FileSensor.SucceedsOnceTheFileAppearsAfterTwoPokes" * doctest::timeout(60)) {
  dag_test::engine_sandbox s("file-sensor");
  dag::definition d{"files"};
  d.add_task("wait", "file_sensor")
      .field("filepath", (s.dir / "incoming" / "{{ ds_nodash }}*.csv").string())
      .field("poke_interval", "1s");
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(std::move(d))});
  const auto key = *eng.create_run("files", dag::run_type::manual, dag::parse_time("2024-01-01"));
  const auto file = s.dir / "incoming" / "20240101_orders.csv";
  // The file is written once the log shows two pokes that found nothing.
  eng.run_until([&] {
    if (!std::filesystem::exists(file) && s.log_of(key, "wait").find("poke 2: not yet") != std::string::npos) {
      std::filesystem::create_directories(file.parent_path());
      std::ofstream(file) << "id\n1\n";
    }
    return !eng.tracking(key);
  });
  const auto wait = s.ti(key, "wait");
  CHECK(wait.state == dag::task_state::success);
  CHECK(wait.try_number == 1);
  CHECK(s.db->xcom("files", key.run_id, "wait") == file.string());
  const std::string log = s.log_of(key, "wait");
  CHECK(log.find("[dagrun] poke 1: not yet (no file at " + (s.dir / "incoming" / "20240101*.csv").string() + ")") != std::string::npos);
  CHECK(log.find("[dagrun] poke 2: not yet") != std::string::npos);
  CHECK(log.find("[dagrun] sensor condition met on poke ") != std::string::npos);
}

TEST_CASE("FileSensor.SoftFailSkipsOnTimeoutInRescheduleMode" * doctest::timeout(60)) {
  dag_test::engine_sandbox s("file-sensor");
  const auto t0 = s.clock.now();
  dag::definition d{"files"};
  d.add_task("wait", "file_sensor")
      .field("filepath", (s.dir / "never.csv").string())
      .field("mode", "reschedule")
      .field("poke_interval", "1m")
      .field("timeout", "90s")
      .field("soft_fail", "true");
  d.bash("after", "true").trigger(dag::trigger_rule::all_done);
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(std::move(d))});
  const auto key = *eng.create_run("files", dag::run_type::manual, dag::parse_time("2024-01-01"));
  eng.run_until([&] { return s.ti(key, "wait").state == dag::task_state::up_for_reschedule; });
  CHECK(s.ti(key, "wait").retry_at == t0 + 60s);
  s.clock.set(t0 + 61s);
  CHECK(eng.run_to_completion({key}).front() == dag::run_state::success);
  const auto wait = s.ti(key, "wait");
  CHECK(wait.state == dag::task_state::skipped);
  CHECK(wait.message == "sensor timeout: condition not met within 1m30s (soft_fail: skipped)");
}
