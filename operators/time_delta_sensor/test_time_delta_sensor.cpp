// The time delta sensor through the engine with an injected clock: it waits, slot given back,
// until the data interval's end plus the delta.
#include <doctest/doctest.h>

#include <dag/operators/time_delta_sensor.hpp>

#include "../../tests/support/engine_sandbox.hpp"

using namespace std::chrono_literals;

TEST_CASE("TimeDeltaSensor.WaitsUntilTheIntervalEndPlusTheDelta" * doctest::timeout(60)) {
  dag_test::engine_sandbox s("time-delta");
  // A daily DAG's run of 2024-01-01 covers [01-01, 01-02): with delta 2h it waits until 01-02T02:00.
  s.clock.set(dag::parse_time("2024-01-02T00:30:00Z"));
  dag::definition d{"late"};
  d.schedule("@daily").start_date("2024-01-01");
  d.add_task("wait", "time_delta_sensor").field("delta", "2h").field("mode", "reschedule").field("poke_interval", "1h");
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(std::move(d))});
  const auto key = *eng.create_run("late", dag::run_type::scheduled, dag::parse_time("2024-01-01"));
  eng.run_until([&] { return s.ti(key, "wait").state == dag::task_state::up_for_reschedule; });
  CHECK(s.ti(key, "wait").retry_at == dag::parse_time("2024-01-02T01:30:00Z"));
  CHECK(s.log_of(key, "wait") ==
        "[dagrun] poke after 0s of waiting: not yet (waiting for 2024-01-02T02:00:00+00:00)\n");

  // The next poke at 01:30 is still early; the one after, at 02:30, is past the target.
  s.clock.set(dag::parse_time("2024-01-02T01:30:00Z"));
  eng.run_until([&] { return s.ti(key, "wait").state == dag::task_state::up_for_reschedule && eng.running() == 0; });
  s.clock.set(dag::parse_time("2024-01-02T02:30:00Z"));
  CHECK(eng.run_to_completion({key}).front() == dag::run_state::success);
  const auto wait = s.ti(key, "wait");
  CHECK(wait.state == dag::task_state::success);
  CHECK(wait.try_number == 1);
  CHECK(s.log_of(key, "wait").ends_with("[dagrun] sensor condition met on poke after 2h of waiting\n"));
}

TEST_CASE("TimeDeltaSensor.UnitTryReadsTheInjectedClock") {
  dag_test::moving_clock clock("2024-01-02T03:00:00Z");
  dag::task_context ctx;
  ctx.data_interval_end = dag::parse_time("2024-01-02");
  ctx.fields = {{"delta", "3h"}};
  ctx.time_source = &clock;
  CHECK(dag::operators::time_delta_sensor::run(dag::task{}, ctx).outcome == dag::try_outcome::success);
  ctx.fields["delta"] = "4h";
  ctx.fields["mode"] = "reschedule";
  const auto r = dag::operators::time_delta_sensor::run(dag::task{}, ctx);
  CHECK(r.outcome == dag::try_outcome::rescheduled);
  CHECK(r.reschedule_after == 60s);
}
