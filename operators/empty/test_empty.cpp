// The empty operator: loads without fields, succeeds, and refuses fields it does not have.
#include <doctest/doctest.h>

#include <dag/load/yaml_loader.hpp>
#include <dag/operators/builtin.hpp>
#include <dag/operators/empty.hpp>

TEST_CASE("EmptyOperator.SucceedsWithoutDoingAnything") {
  dag::task_context ctx;
  const auto r = dag::operators::empty::run(dag::task{}, ctx);
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK_FALSE(r.xcom.has_value());
}

TEST_CASE("EmptyOperator.LoadsFromYamlAndRefusesFields") {
  const auto catalog = dag::builtin_operators();
  const std::string head = "dag_id: e\ntasks:\n  - task_id: start\n    operator: empty\n";
  CHECK(dag::load_yaml_text(head, "dags/e.yaml", catalog).problems.empty());
  const auto bad = dag::load_yaml_text(head + "    bash_command: x\n", "dags/e.yaml", catalog);
  REQUIRE(bad.problems.size() == 1);
  CHECK(std::string(bad.problems[0].what()) == "dags/e.yaml:5: task 'start': unknown field 'bash_command' for operator 'empty'");
}
