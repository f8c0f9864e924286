// The date-time sensor: a templated target time, read against the engine's injected clock.
#include <doctest/doctest.h>

#include <dag/operators/date_time_sensor.hpp>

#include "../../tests/support/engine_sandbox.hpp"

using namespace std::chrono_literals;

TEST_CASE("DateTimeSensor.WaitsForTheRenderedTargetTime" * doctest::timeout(60)) {
  dag_test::engine_sandbox s("date-time");
  s.clock.set(dag::parse_time("2024-01-01T17:00:00Z"));
  dag::definition d{"evening"};
  d.add_task("wait", "date_time_sensor")
      .field("target_time", "{{ ds }}T18:00:00+00:00")
      .field("mode", "reschedule")
      .field("poke_interval", "30m");
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(std::move(d))});
  const auto key = *eng.create_run("evening", dag::run_type::manual, dag::parse_time("2024-01-01"));
  eng.run_until([&] { return s.ti(key, "wait").state == dag::task_state::up_for_reschedule; });
  CHECK(s.log_of(key, "wait").find("waiting for 2024-01-01T18:00:00+00:00") != std::string::npos);
  s.clock.set(dag::parse_time("2024-01-01T18:00:00Z"));
  CHECK(eng.run_to_completion({key}).front() == dag::run_state::success);
  CHECK(s.ti(key, "wait").state == dag::task_state::success);
}

TEST_CASE("DateTimeSensor.ATargetThatIsNotATimeFailsTheTry") {
  dag::task_context ctx;
  ctx.fields = {{"target_time", "tomorrow-ish"}};
  const auto r = dag::operators::date_time_sensor::run(dag::task{}, ctx);
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message.starts_with("target_time: "));
}
