// The state shown for several task instances together (a mapped task's instances, a task group's
// tasks): Airflow's order of relevance, and each task's instance in that state.
//
// The order is Airflow's `state_priority` list (airflow/api_fastapi/common/parameters.py, used by
// its grid to summarise a group or a mapped task): failed, upstream_failed, up_for_retry,
// up_for_reschedule, queued, scheduled, deferred, running, restarting, none (no state yet), success,
// skipped, removed. dagrun has no deferred nor restarting state.

#include <dag/core/states.hpp>
#include <dag/model/operations.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

using dag::task_state;

std::string name(task_state s) { return std::string(dag::to_string(s)); }

/// A task instance of run `r1` in `state`.
dag::task_instance_record instance(const std::string& task_id, int map_index, task_state state) {
  dag::task_instance_record ti;
  ti.dag_id = "d";
  ti.run_id = "r1";
  ti.task_id = task_id;
  ti.map_index = map_index;
  ti.state = state;
  return ti;
}

}  // namespace

TEST_CASE("TaskStates.MostRelevantFollowsAirflowsOrder") {
  const std::vector<task_state> airflow_order{
      task_state::failed,  task_state::upstream_failed, task_state::up_for_retry, task_state::up_for_reschedule,
      task_state::queued,  task_state::scheduled,       task_state::running,      task_state::none,
      task_state::success, task_state::skipped,         task_state::removed};
  REQUIRE(airflow_order.size() == dag::task_state_names.size());  // every state has its place
  for (std::size_t i = 0; i < airflow_order.size(); ++i) {
    CHECK(dag::state_priority(airflow_order[i]) == static_cast<int>(i));
    // Together with any state after it, a state is the one shown, whichever comes first.
    for (std::size_t j = i; j < airflow_order.size(); ++j) {
      CHECK_MESSAGE(name(dag::most_relevant(airflow_order[i], airflow_order[j])) == name(airflow_order[i]), name(airflow_order[j]));
      CHECK_MESSAGE(name(dag::most_relevant(airflow_order[j], airflow_order[i])) == name(airflow_order[i]), name(airflow_order[j]));
    }
  }
  // What a grid shows: one failed instance makes the whole failed, any running one (with the rest
  // done) running, and a mix of done states success.
  CHECK(name(dag::most_relevant(task_state::running, task_state::failed)) == "failed");
  CHECK(name(dag::most_relevant(task_state::success, task_state::running)) == "running");
  CHECK(name(dag::most_relevant(task_state::skipped, task_state::success)) == "success");
  static_assert(dag::most_relevant(task_state::none, task_state::queued) == task_state::queued);
}

TEST_CASE("TaskStates.EachTaskIsShownByItsMostRelevantInstance") {
  const std::vector<dag::task_instance_record> tis{
      instance("each", 0, task_state::success), instance("each", 1, task_state::running),
      instance("each", 2, task_state::up_for_retry), instance("each", 3, task_state::success),
      instance("plain", -1, task_state::skipped), instance("tied", 0, task_state::success),
      instance("tied", 1, task_state::success)};
  const auto shown = dag::most_relevant_instances(tis);
  REQUIRE(shown.size() == 3);
  CHECK(shown.at("each") == &tis[2]);  // up_for_retry comes before running and success
  CHECK(shown.at("plain") == &tis[4]);
  CHECK(shown.at("tied") == &tis[5]);  // the first of equals
  CHECK(dag::most_relevant_instances({}).empty());
}
