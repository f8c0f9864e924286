// The callable operator: the task's C++ body is the try.
#include <doctest/doctest.h>

#include <dag/operators/callable.hpp>

TEST_CASE("CallableOperator.RunsTheBodyWithItsContext") {
  dag::task t;
  t.id = "c";
  t.callable = [](dag::task_context& ctx) { return dag::operator_result::success("ran " + ctx.task_id); };
  dag::task_context ctx;
  ctx.task_id = "c";
  CHECK(dag::operators::callable::run(t, ctx).xcom == "ran c");
}

TEST_CASE("CallableOperator.ATaskWithoutBodyFails") {
  dag::task t;
  t.id = "empty";
  dag::task_context ctx;
  auto r = dag::operators::callable::run(t, ctx);
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message == "task 'empty' has no C++ body");
}
