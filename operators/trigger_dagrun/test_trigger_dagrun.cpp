// trigger_dagrun through the engine: it triggers another DAG with a rendered conf through the
// model's trigger operation, waits for the run (poke and reschedule), and resets an existing run.
#include <doctest/doctest.h>

#include <dag/load/yaml_loader.hpp>
#include <dag/model/operations.hpp>
#include <dag/operators/trigger_dagrun.hpp>

#include "../../tests/support/engine_sandbox.hpp"

using namespace std::chrono_literals;

namespace {
dag::definition child() {
  dag::definition d{"child"};
  d.bash("work", "echo batch {{ dag_run.conf['batch'] }}");
  return d;
}
}  // namespace

TEST_CASE("TriggerDagrun.TriggersWithARenderedConfAndWaitsForCompletion" * doctest::timeout(60)) {
  dag_test::engine_sandbox s("trigger");
  dag::definition parent{"parent"};
  parent.add_task("kick", "trigger_dagrun")
      .field("trigger_dag_id", "child")
      .field("conf", R"({"batch": "{{ ds }}"})")
      .field("wait_for_completion", "true")
      .field("poke_interval", "1s");
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(child()), s.checked(std::move(parent))});
  const auto key = *eng.create_run("parent", dag::run_type::manual, dag::parse_time("2024-01-01"));
  CHECK(eng.run_to_completion({key}).front() == dag::run_state::success);
  // The logical date defaults to when the try started: the engine's clock.
  const std::string child_run = "manual__2024-06-01T00:00:00+00:00";
  const auto run = s.db->find_run("child", child_run);
  REQUIRE(run);
  CHECK(run->state == dag::run_state::success);
  CHECK(run->conf == R"({"batch":"2024-01-01"})");
  CHECK(run->type == dag::run_type::manual);
  CHECK(s.db->xcom("parent", key.run_id, "kick", "trigger_run_id") == child_run);
  CHECK(s.db->xcom("parent", key.run_id, "kick", "trigger_logical_date") == "2024-06-01T00:00:00+00:00");
  CHECK(s.log_of(dag::run_key{"child", child_run}, "work").find("batch 2024-01-01") != std::string::npos);
  CHECK(s.log_of(key, "kick").starts_with("[dagrun] triggered run '" + child_run + "' of DAG 'child'\n"));
}

TEST_CASE("TriggerDagrun.WaitsInRescheduleModeAndFailsOnAFailedRun" * doctest::timeout(60)) {
  dag_test::engine_sandbox s("trigger");
  const auto t0 = s.clock.now();
  dag::definition failing{"child"};
  failing.bash("work", "exit 2");
  dag::definition parent{"parent"};
  parent.add_task("kick", "trigger_dagrun")
      .field("trigger_dag_id", "child")
      .field("trigger_run_id", "from_{{ run_id }}")
      .field("logical_date", "{{ ds }}")
      .field("wait_for_completion", "true")
      .field("mode", "reschedule")
      .field("poke_interval", "1m");
  dag::engine eng(*s.db, s.operators, s.clock, s.options(1));
  eng.set_dags({s.checked(std::move(failing)), s.checked(std::move(parent))});
  const auto key = *eng.create_run("parent", dag::run_type::manual, dag::parse_time("2024-01-01"));
  const dag::run_key triggered{"child", "from_" + key.run_id};
  // The triggered run is advanced by this engine while the parent's try gives its slot back.
  eng.run_until([&] {
    auto run = s.db->find_run(triggered.dag_id, triggered.run_id);
    return run && run->state == dag::run_state::failed;
  });
  CHECK(s.ti(key, "kick").state == dag::task_state::up_for_reschedule);
  CHECK(s.db->find_run(triggered.dag_id, triggered.run_id)->logical_date == dag::parse_time("2024-01-01"));
  s.clock.set(t0 + 61s);
  CHECK(eng.run_to_completion({key}).front() == dag::run_state::failed);
  const auto kick = s.ti(key, "kick");
  CHECK(kick.try_number == 1);
  CHECK(kick.message == "run '" + triggered.run_id + "' of DAG 'child' is failed");
  // One trigger: the rescheduled execution found the run it had made.
  dag::run_filter all;
  all.dag_id = "child";
  CHECK(s.db->runs(all).size() == 1);
}

TEST_CASE("TriggerDagrun.AnExistingRunFailsTheTryUnlessResetDagRunClearsIt" * doctest::timeout(60)) {
  dag_test::engine_sandbox s("trigger");
  auto parent = [](const std::string& id, bool reset) {
    dag::definition d{id};
    auto t = d.add_task("kick", "trigger_dagrun")
                 .field("trigger_dag_id", "child")
                 .field("trigger_run_id", "nightly")
                 .field("conf", R"({"batch": "{{ ds }}"})")
                 .field("wait_for_completion", "true")
                 .field("poke_interval", "1s");
    if (reset) t.field("reset_dag_run", "true");
    return d;
  };
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(child()), s.checked(parent("first", false)), s.checked(parent("again", false)),
                s.checked(parent("reset", true))});
  const auto date = dag::parse_time("2024-01-01");
  CHECK(eng.run_to_completion({*eng.create_run("first", dag::run_type::manual, date)}).front() == dag::run_state::success);
  const auto again = *eng.create_run("again", dag::run_type::manual, date);
  CHECK(eng.run_to_completion({again}).front() == dag::run_state::failed);
  CHECK(s.ti(again, "kick").message ==
        "trigger_dagrun: run 'nightly' of DAG 'child' already exists (reset_dag_run: true clears it)");
  const auto reset = *eng.create_run("reset", dag::run_type::manual, date);
  CHECK(eng.run_to_completion({reset}).front() == dag::run_state::success);
  const dag::run_key nightly{"child", "nightly"};
  CHECK(s.ti(nightly, "work").state == dag::task_state::success);
  CHECK(s.ti(nightly, "work").try_number == 2);  // cleared and run again
  CHECK(s.log_of(reset, "kick").starts_with("[dagrun] cleared run 'nightly' of DAG 'child' to run again\n"));
}

TEST_CASE("TriggerDagrun.AnUnknownDagFailsTheTry" * doctest::timeout(60)) {
  dag_test::engine_sandbox s("trigger");
  dag::definition parent{"parent"};
  parent.add_task("kick", "trigger_dagrun").field("trigger_dag_id", "nowhere");
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(std::move(parent))});
  const auto key = *eng.create_run("parent", dag::run_type::manual, dag::parse_time("2024-01-01"));
  CHECK(eng.run_to_completion({key}).front() == dag::run_state::failed);
  CHECK(s.ti(key, "kick").message == "trigger_dagrun: DAG 'nowhere' is not loaded");
}
