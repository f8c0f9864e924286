// The external task sensor across two DAGs in one engine: poke and reschedule modes, a shifted
// logical date, failing fast on a failed state, and soft_fail.
#include <doctest/doctest.h>

#include <dag/load/yaml_loader.hpp>
#include <dag/operators/external_task_sensor.hpp>

#include "../../tests/support/engine_sandbox.hpp"

using namespace std::chrono_literals;

namespace {
dag::definition producer(const std::string& command) {
  dag::definition d{"producer"};
  d.bash("load", command);
  return d;
}
}  // namespace

TEST_CASE("ExternalTaskSensor.WaitsForTheOtherDagsTaskInPokeMode" * doctest::timeout(60)) {
  dag_test::engine_sandbox s("external");
  dag::definition c{"consumer"};
  c.add_task("wait_load", "external_task_sensor")
      .field("external_dag_id", "producer")
      .field("external_task_id", "load")
      .field("poke_interval", "1s");
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(producer("true")), s.checked(std::move(c))});
  const auto date = dag::parse_time("2024-01-01");
  const auto key = *eng.create_run("consumer", dag::run_type::manual, date);
  // The producer's run is made only once the sensor found none (on the loop's thread, between passes).
  bool produced = false;
  eng.run_until([&] {
    if (!produced && s.log_of(key, "wait_load").find("poke 1: not yet") != std::string::npos) {
      produced = eng.create_run("producer", dag::run_type::manual, date).has_value();
    }
    return !eng.tracking(key);
  });
  CHECK(produced);
  CHECK(s.ti(key, "wait_load").state == dag::task_state::success);
  CHECK(s.log_of(key, "wait_load").starts_with(
      "[dagrun] poke 1: not yet (DAG 'producer' has no run at 2024-01-01T00:00:00+00:00)\n"));
}

TEST_CASE("ExternalTaskSensor.RescheduleModeWithAShiftedLogicalDate" * doctest::timeout(60)) {
  dag_test::engine_sandbox s("external");
  const auto t0 = s.clock.now();
  dag::definition c{"consumer"};
  c.add_task("wait_yesterday", "external_task_sensor")
      .field("external_dag_id", "producer")
      .field("execution_delta", "1d")
      .field("mode", "reschedule")
      .field("poke_interval", "1m");
  dag::engine eng(*s.db, s.operators, s.clock, s.options(1));
  eng.set_dags({s.checked(producer("true")), s.checked(std::move(c))});
  const auto key = *eng.create_run("consumer", dag::run_type::manual, dag::parse_time("2024-01-02"));
  eng.run_until([&] { return s.ti(key, "wait_yesterday").state == dag::task_state::up_for_reschedule; });
  CHECK(eng.running() == 0);  // the one slot is free for the producer
  const auto produced = *eng.create_run("producer", dag::run_type::manual, dag::parse_time("2024-01-01"));
  CHECK(eng.run_to_completion({produced}).front() == dag::run_state::success);
  CHECK(s.ti(key, "wait_yesterday").state == dag::task_state::up_for_reschedule);
  s.clock.set(t0 + 61s);
  CHECK(eng.run_to_completion({key}).front() == dag::run_state::success);
  const auto wait = s.ti(key, "wait_yesterday");
  CHECK(wait.state == dag::task_state::success);
  CHECK(wait.try_number == 1);
  CHECK(s.log_of(key, "wait_yesterday") ==
        "[dagrun] poke after 0s of waiting: not yet (DAG 'producer' has no run at 2024-01-01T00:00:00+00:00)\n"
        "[dagrun] sensor condition met on poke after 1m1s of waiting\n");
}

TEST_CASE("ExternalTaskSensor.AFailedStateFailsAtOnceOrSkipsUnderSoftFail" * doctest::timeout(60)) {
  dag_test::engine_sandbox s("external");
  dag::definition strict{"strict"};
  strict.add_task("wait_load", "external_task_sensor")
      .field("external_dag_id", "producer")
      .field("external_task_id", "load")
      .field_list("failed_states", {"failed", "upstream_failed"})
      .field("poke_interval", "1h");
  dag::definition soft{"soft"};
  soft.add_task("wait_run", "external_task_sensor")
      .field("external_dag_id", "producer")
      .field_list("failed_states", {"failed"})
      .field("soft_fail", "true")
      .field("poke_interval", "1h");
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(producer("exit 1")), s.checked(std::move(strict)), s.checked(std::move(soft))});
  const auto date = dag::parse_time("2024-01-01");
  const auto produced = *eng.create_run("producer", dag::run_type::manual, date);
  CHECK(eng.run_to_completion({produced}).front() == dag::run_state::failed);
  const auto a = *eng.create_run("strict", dag::run_type::manual, date);
  const auto b = *eng.create_run("soft", dag::run_type::manual, date);
  const auto states = eng.run_to_completion({a, b});
  CHECK(states == std::vector{dag::run_state::failed, dag::run_state::success});
  CHECK(s.ti(a, "wait_load").message == "task 'load' of run '" + produced.run_id + "' of DAG 'producer' is failed");
  CHECK(s.ti(b, "wait_run").state == dag::task_state::skipped);
  CHECK(s.ti(b, "wait_run").message == "run '" + produced.run_id + "' of DAG 'producer' is failed (soft_fail: skipped)");
}

TEST_CASE("ExternalTaskSensor.StateNamesAreCheckedAtLoadTime") {
  const auto catalog = dag::builtin_operators();
  auto r = dag::load_yaml_text("dag_id: e\ntasks:\n  - task_id: w\n    operator: external_task_sensor\n"
                               "    external_dag_id: other\n    allowed_states: [success, sucess]\n",
                               "dags/e.yaml", catalog);
  REQUIRE(r.problems.size() == 1);
  CHECK(std::string(r.problems[0].what()).starts_with("dags/e.yaml:6: task 'w': allowed_states: 'sucess' is not a state (none, "));
}

TEST_CASE("ExternalTaskSensor.WithoutTheSchedulersStoreItFailsSayingSo") {
  dag::task_context ctx;
  ctx.fields = {{"external_dag_id", "other"}};
  const auto r = dag::operators::external_task_sensor::run(dag::task{}, ctx);
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message == "external_task_sensor reads the scheduler's store, which this executor does not offer");
}
