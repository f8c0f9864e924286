// The DAG model and its fluent C++ API.
#include <doctest/doctest.h>

#include <dag/core/definition.hpp>

using namespace std::chrono_literals;

TEST_CASE("Definition.ShiftOperatorsWireDependencies") {
  dag::definition d{"etl"};
  auto extract = d.bash("extract", "echo e");
  auto clean = d.bash("clean", "echo c");
  auto audit = d.bash("audit", "echo a");
  auto load = d.bash("load", "echo l");
  extract >> dag::tasks{clean, audit} >> load;

  CHECK(d.find("extract")->dependencies.empty());
  CHECK(d.find("clean")->dependencies == std::vector<std::string>{"extract"});
  CHECK(d.find("audit")->dependencies == std::vector<std::string>{"extract"});
  CHECK(d.find("load")->dependencies == std::vector<std::string>{"clean", "audit"});
}

TEST_CASE("Definition.ChainsReadLeftToRightAndRepeatsAreIgnored") {
  dag::definition d{"chain"};
  auto a = d.bash("a", "true");
  auto b = d.bash("b", "true");
  auto c = d.bash("c", "true");
  a >> b >> c;
  a >> b;
  c.after(b);
  CHECK(d.find("b")->dependencies == std::vector<std::string>{"a"});
  CHECK(d.find("c")->dependencies == std::vector<std::string>{"b"});
}

TEST_CASE("Definition.HandlesSurviveTaskStorageGrowth") {
  dag::definition d{"many"};
  auto first = d.bash("t0", "true");
  for (int i = 1; i < 1000; ++i) d.bash("t" + std::to_string(i), "true");
  first.retries(3);
  CHECK(d.find("t0")->options.retries == 3);
  CHECK(first.id() == "t0");
}

TEST_CASE("Definition.DefaultArgsApplyUnlessTheTaskSetsTheField") {
  dag::definition d{"defaults"};
  dag::task_options defaults;
  defaults.retries = 2;
  defaults.retry_delay = 10min;
  defaults.queue = "heavy";
  d.default_args(defaults);
  d.bash("inherits", "true");
  d.bash("overrides", "true").retries(0).retry_delay(30s).trigger(dag::trigger_rule::all_done);
  d.apply_default_args();

  const auto& inherits = d.find("inherits")->settings;
  CHECK(inherits.retry.retries == 2);
  CHECK(inherits.retry.retry_delay == 10min);
  CHECK(inherits.queue == "heavy");
  CHECK(inherits.trigger == dag::trigger_rule::all_success);

  const auto& overrides = d.find("overrides")->settings;
  CHECK(overrides.retry.retries == 0);
  CHECK(overrides.retry.retry_delay == 30s);
  CHECK(overrides.queue == "heavy");
  CHECK(overrides.trigger == dag::trigger_rule::all_done);
}

TEST_CASE("Definition.BuiltInDefaultsAreAirflows") {
  dag::definition d{"plain"};
  d.bash("t", "true");
  d.apply_default_args();
  const auto& s = d.find("t")->settings;
  CHECK(s.retry.retries == 0);
  CHECK(s.retry.retry_delay == 5min);
  CHECK_FALSE(s.retry.exponential_backoff);
  CHECK_FALSE(s.execution_timeout.has_value());
  CHECK(s.queue == "default");
  CHECK(s.priority_weight == 1);
  CHECK(d.catchup());
  CHECK(d.max_active_runs() == 16);
  CHECK(d.max_active_tasks() == 16);
  CHECK(d.timezone() == "UTC");
}

TEST_CASE("Definition.StatesRoundTripTheirAirflowNames") {
  for (auto name : dag::task_state_names) CHECK(dag::to_string(*dag::parse_task_state(name)) == name);
  for (auto name : dag::run_state_names) CHECK(dag::to_string(*dag::parse_run_state(name)) == name);
  CHECK_FALSE(dag::parse_task_state("sucess").has_value());
  CHECK(dag::is_finished(dag::task_state::upstream_failed));
  CHECK_FALSE(dag::is_finished(dag::task_state::up_for_retry));
}
