// The sensor base: poke loop, timeout, soft_fail, never, and Airflow's exponential backoff.
#include <doctest/doctest.h>

#include <dag/operators/sensor.hpp>

using namespace std::chrono_literals;
using dag::operators::poke_result;
using dag::operators::sensor;

namespace {
dag::task_context context(std::map<std::string, std::string> fields) {
  dag::task_context ctx;
  ctx.dag_id = "d";
  ctx.task_id = "t";
  ctx.run_id = "manual__2024-01-01T00:00:00+00:00";
  ctx.fields = std::move(fields);
  return ctx;
}
}  // namespace

TEST_CASE("Sensor.PokesUntilMetAndPushesTheValue" * doctest::timeout(30)) {
  auto ctx = context({{"poke_interval", "1s"}});
  std::vector<std::string> lines;
  ctx.log = [&](std::string_view l) { lines.emplace_back(l); };
  int pokes = 0;
  const auto r = sensor::run(ctx, [&](dag::task_context&) {
    return ++pokes < 2 ? poke_result::not_yet("nothing yet") : poke_result::met("found");
  });
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(r.xcom == "found");
  CHECK(lines == std::vector<std::string>{"[dagrun] poke 1: not yet (nothing yet)", "[dagrun] sensor condition met on poke 2"});
}

TEST_CASE("Sensor.NeverFailsAtOnceAndSoftFailSkips") {
  auto ctx = context({});
  auto never = [](dag::task_context&) { return poke_result::never("the source failed"); };
  auto r = sensor::run(ctx, never);
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message == "the source failed");
  ctx.fields["soft_fail"] = "true";
  r = sensor::run(ctx, never);
  CHECK(r.outcome == dag::try_outcome::skipped);
  CHECK(r.message == "the source failed (soft_fail: skipped)");
  // A poke that errs fails the try even under soft_fail: retries apply to it.
  r = sensor::run(ctx, [](dag::task_context&) { return poke_result::error("no such table"); });
  CHECK(r.outcome == dag::try_outcome::failed);
}

TEST_CASE("Sensor.TimeoutFailsOrSkipsWhenTheNextPokeWouldComeTooLate") {
  auto ctx = context({{"mode", "reschedule"}, {"poke_interval", "1m"}, {"timeout", "10m"}});
  auto not_yet = [](dag::task_context&) { return poke_result::not_yet(); };
  ctx.waited = 9min;
  auto r = sensor::run(ctx, not_yet);
  CHECK(r.outcome == dag::try_outcome::rescheduled);  // 9m + 1m is not past 10m
  ctx.waited = 9min + 1s;
  r = sensor::run(ctx, not_yet);
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message == "sensor timeout: condition not met within 10m");
  ctx.fields["soft_fail"] = "true";
  CHECK(sensor::run(ctx, not_yet).outcome == dag::try_outcome::skipped);
}

TEST_CASE("Sensor.ExponentialBackoffDoublesWithJitterAndCap") {
  auto ctx = context({{"poke_interval", "60s"}, {"exponential_backoff", "true"}});
  auto s = sensor::settings::of(ctx);
  // Poke k waits at least poke_interval × 2^(k−2) (1s at least) and less than twice that.
  for (int k = 1; k <= 8; ++k) {
    const auto least = std::max<std::int64_t>(static_cast<std::int64_t>(60 * std::ldexp(1.0, k - 2)), 1);
    const auto wait = sensor::next_interval(s, ctx, k).count();
    CHECK(wait >= least);
    CHECK(wait < 2 * least);
  }
  // The same try always computes the same waits (a rescheduled try replays them).
  CHECK(sensor::next_interval(s, ctx, 3) == sensor::next_interval(s, ctx, 3));
  s.max_wait = dag::duration(300);
  CHECK(sensor::next_interval(s, ctx, 8) == dag::duration(300));
  // Without backoff: poke_interval every time.
  s.exponential_backoff = false;
  CHECK(sensor::next_interval(s, ctx, 8) == dag::duration(60));
}

TEST_CASE("Sensor.RescheduledBackoffContinuesFromThePokesMadeSoFar") {
  auto ctx = context({{"poke_interval", "60s"}, {"exponential_backoff", "true"}, {"mode", "reschedule"}});
  const auto s = sensor::settings::of(ctx);
  CHECK(sensor::poke_count_after(s, ctx, dag::duration(0)) == 1);
  const auto first = sensor::next_interval(s, ctx, 1);
  const auto second = sensor::next_interval(s, ctx, 2);
  CHECK(sensor::poke_count_after(s, ctx, first + dag::duration(2)) == 2);
  CHECK(sensor::poke_count_after(s, ctx, first + second + dag::duration(2)) == 3);
  // The third execution asks to wait the third interval.
  ctx.waited = first + second + 2s;
  const auto r = sensor::run(ctx, [](dag::task_context&) { return poke_result::not_yet(); });
  CHECK(r.outcome == dag::try_outcome::rescheduled);
  CHECK(r.reschedule_after == sensor::next_interval(s, ctx, 3));
}
