// Builds a DAG in C++, checks it and loads a YAML one, using only the installed package.
#include <iostream>

#include <dag/operators/builtin.hpp>
#include <dag/dag.hpp>

int main() {
  dag::definition d{"consumer"};
  d.schedule("@daily").start_date("2024-01-01");
  auto a = d.bash("a", "echo {{ ds }}");
  auto b = d.bash("b", "echo b");
  a >> b;
  const auto operators = dag::builtin_operators();
  auto problems = dag::check(d, operators);
  for (const auto& p : problems) std::cerr << p.what() << "\n";
  dag::timetable tt(d);
  auto runs = tt.runs_after(dag::parse_time("2024-01-01"), 1);
  auto loaded = dag::load_yaml_text("dag_id: y\ntasks:\n  - task_id: t\n    operator: bash\n    bash_command: x\n", "y.yaml", operators);
  const bool ok = problems.empty() && runs.size() == 1 && loaded.dag.has_value();
  std::cout << (ok ? "consumer ok" : "consumer FAILED") << "\n";
  return ok ? 0 : 1;
}
