// Graph validation and order (Boost.Graph inside libdag).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <utility>

#include <dag/graph/task_graph.hpp>

namespace {
std::vector<std::string> ids(const dag::definition& d, const std::vector<std::size_t>& idx) {
  std::vector<std::string> out;
  for (auto i : idx) out.push_back(d.all_tasks()[i].id);
  return out;
}
std::string messages(const std::vector<dag::definition_error>& problems) {
  std::string s;
  for (const auto& p : problems) s += std::string(p.what()) + "\n";
  return s;
}
}  // namespace

TEST_CASE("Graph.TopologicalOrderPutsUpstreamFirst") {
  dag::definition d{"diamond"};
  auto load = d.bash("load", "true");  // defined first on purpose
  auto a = d.bash("a", "true");
  auto b = d.bash("b", "true");
  auto start = d.bash("start", "true");
  start >> dag::tasks{a, b} >> load;
  std::vector<dag::definition_error> problems;
  auto g = dag::task_graph::build(d, problems);
  REQUIRE(problems.empty());
  auto order = ids(d, g.topological_order());
  auto pos = [&](const std::string& id) { return std::find(order.begin(), order.end(), id) - order.begin(); };
  CHECK(order.size() == 4);
  CHECK(pos("start") < pos("a"));
  CHECK(pos("start") < pos("b"));
  CHECK(pos("a") < pos("load"));
  CHECK(pos("b") < pos("load"));
  CHECK(ids(d, g.roots()) == std::vector<std::string>{"start"});
  CHECK(ids(d, g.leaves()) == std::vector<std::string>{"load"});
  CHECK(ids(d, g.upstream(0)) == std::vector<std::string>{"a", "b"});
  CHECK(ids(d, g.all_upstream(0)) == std::vector<std::string>{"a", "b", "start"});
  CHECK(ids(d, g.all_downstream(3)) == std::vector<std::string>{"load", "a", "b"});
  CHECK(ids(d, g.downstream(3)) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("Graph.DuplicateIdsAreReportedWithTheFirstLine") {
  dag::definition d{"dupes"};
  dag::task t;
  t.id = "same";
  t.operator_name = "bash";
  t.where = {"dags/x.yaml", 7};
  d.add_task(t);
  t.where.line = 12;
  d.add_task(t);
  std::vector<dag::definition_error> problems;
  dag::task_graph::build(d, problems);
  REQUIRE(problems.size() == 1);
  CHECK(std::string(problems[0].what()) == "dags/x.yaml:12: duplicate task_id 'same' (first defined on line 7)");
}

TEST_CASE("Graph.UnknownDependencySuggestsTheClosestId") {
  dag::definition d{"typo"};
  d.bash("extract", "true");
  d.bash("load", "true").get().dependencies = {"extarct"};
  std::vector<dag::definition_error> problems;
  auto g = dag::task_graph::build(d, problems);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].message() == "task 'load' depends on unknown task 'extarct' (did you mean 'extract'?)");
  CHECK(problems[0].where().task_id == "load");
  CHECK(g.size() == 0);
}

TEST_CASE("Graph.UnrelatedUnknownDependencyHasNoSuggestion") {
  dag::definition d{"typo"};
  d.bash("extract", "true");
  d.bash("load", "true").get().dependencies = {"zzzzzz"};
  std::vector<dag::definition_error> problems;
  dag::task_graph::build(d, problems);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].message() == "task 'load' depends on unknown task 'zzzzzz'");
}

TEST_CASE("Graph.SelfDependencyIsAnError") {
  dag::definition d{"self"};
  auto a = d.bash("a", "true");
  a >> a;
  std::vector<dag::definition_error> problems;
  dag::task_graph::build(d, problems);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].message() == "task 'a' depends on itself");
}

TEST_CASE("Graph.CycleNamesEveryTaskOnIt") {
  dag::definition d{"loop"};
  auto start = d.bash("start", "true");
  auto a = d.bash("a", "true");
  auto b = d.bash("b", "true");
  auto c = d.bash("c", "true");
  start >> a >> b >> c >> a;
  std::vector<dag::definition_error> problems;
  auto g = dag::task_graph::build(d, problems);
  REQUIRE(problems.size() == 1);
  const std::string m = problems[0].message();
  INFO(messages(problems));
  CHECK(m.starts_with("dependency cycle: "));
  // The cycle is a >> b >> c >> a, starting at whichever of them the search met first.
  const bool named = m == "dependency cycle: a >> b >> c >> a" || m == "dependency cycle: b >> c >> a >> b" ||
                     m == "dependency cycle: c >> a >> b >> c";
  CHECK(named);
  CHECK(m.find("start") == std::string::npos);
  CHECK(g.size() == 0);
}

TEST_CASE("Graph.LargeChainIsOrdered") {
  dag::definition d{"chain"};
  auto prev = d.bash("t0", "true");
  for (int i = 1; i < 5000; ++i) {
    auto next = d.bash("t" + std::to_string(i), "true");
    prev >> next;
    prev = next;
  }
  std::vector<dag::definition_error> problems;
  auto g = dag::task_graph::build(d, problems);
  REQUIRE(problems.empty());
  const auto& order = g.topological_order();
  REQUIRE(order.size() == 5000);
  for (std::size_t i = 0; i < order.size(); ++i) CHECK(order[i] == i);
}

TEST_CASE("Graph.ReachWeightsCountEveryTaskAboveOrBelowOnce") {
  // Against a search per task, on graphs where the tree shortcut holds (chain, fan-out, tree)
  // and where it must not be taken (diamonds, shared descendants): random DAGs of 60 tasks.
  std::uint32_t seed = 12345;
  const auto next_random = [&] { return seed = seed * 1664525u + 1013904223u; };
  for (int round = 0; round < 40; ++round) {
    dag::definition d{"weights"};
    constexpr int n = 60;
    std::vector<dag::task_handle> t;
    std::vector<int> w;
    for (int i = 0; i < n; ++i) {
      t.push_back(d.bash("t" + std::to_string(i), "true"));
      w.push_back(static_cast<int>(next_random() % 7) + 1);
    }
    // Rounds alternate tree-shaped graphs (one upstream at most) and denser ones.
    const unsigned extra = round % 2 ? 3 : 0;
    std::set<std::pair<unsigned, int>> edges;
    const auto link = [&](unsigned from, int to) {
      if (edges.insert({from, to}).second) t[from] >> t[static_cast<std::size_t>(to)];
    };
    for (int i = 1; i < n; ++i) {
      if (next_random() % 5 != 0) link(next_random() % static_cast<unsigned>(i), i);
      for (unsigned e = 0; e < extra; ++e)
        if (next_random() % 4 == 0) link(next_random() % static_cast<unsigned>(i), i);
    }
    std::vector<dag::definition_error> problems;
    const auto g = dag::task_graph::build(d, problems);
    REQUIRE(problems.empty());
    const auto below = g.reach_weights(w, true);
    const auto above = g.reach_weights(w, false);
    for (std::size_t i = 0; i < g.size(); ++i) {
      long long down = 0, up = 0;
      for (std::size_t j : g.all_downstream(i)) down += w[j];
      for (std::size_t j : g.all_upstream(i)) up += w[j];
      CHECK(below[i] == down);
      CHECK(above[i] == up);
    }
    // Only the flagged tasks need a total: theirs is exact, whatever the others hold.
    std::vector<bool> wanted(g.size());
    for (std::size_t i = 0; i < g.size(); ++i) wanted[i] = next_random() % 3 == 0;
    const auto some = g.reach_weights(w, true, wanted);
    for (std::size_t i = 0; i < g.size(); ++i)
      if (wanted[i]) CHECK(some[i] == below[i]);
  }
  // A diamond: the bottom task counts once for the top one.
  dag::definition d{"diamond"};
  auto top = d.bash("top", "true");
  auto l = d.bash("l", "true");
  auto r = d.bash("r", "true");
  auto bottom = d.bash("bottom", "true");
  top >> dag::tasks{l, r} >> bottom;
  std::vector<dag::definition_error> problems;
  const auto g = dag::task_graph::build(d, problems);
  REQUIRE(problems.empty());
  CHECK(g.reach_weights({1, 10, 100, 1000}, true)[0] == 1110);
  CHECK(g.reach_weights({1, 10, 100, 1000}, false)[3] == 111);
  CHECK_THROWS_AS(g.reach_weights({1, 2}, true), std::invalid_argument);
}
