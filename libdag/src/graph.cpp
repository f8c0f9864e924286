// Graph validation with Boost.Graph, kept out of every header.
#include <dag/graph/task_graph.hpp>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/depth_first_search.hpp>
#include <boost/graph/topological_sort.hpp>

#include <dag/core/suggest.hpp>

namespace dag {
namespace {

using boost_graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
using vertex = boost::graph_traits<boost_graph>::vertex_descriptor;

// Records the first back edge (a cycle) and the DFS tree, so the cycle can be named.
struct cycle_finder : boost::default_dfs_visitor {
  std::vector<vertex>* parent;
  std::pair<vertex, vertex>* closing_edge;
  bool* found;
  template <class Edge, class Graph>
  void tree_edge(Edge e, const Graph& g) const { (*parent)[boost::target(e, g)] = boost::source(e, g); }
  template <class Edge, class Graph>
  void back_edge(Edge e, const Graph& g) const {
    if (*found) return;
    *found = true;
    *closing_edge = {boost::source(e, g), boost::target(e, g)};
  }
};

error_context context_of(const definition& d, const task& t) {
  error_context c;
  c.file = t.where.file.empty() ? d.where().file : t.where.file;
  c.line = t.where.line;
  c.dag_id = d.id();
  c.task_id = t.id;
  return c;
}

}  // namespace

task_graph task_graph::build(const definition& d, std::vector<definition_error>& problems) {
  const auto& tasks = d.all_tasks();
  const std::size_t before = problems.size();
  std::vector<std::string> ids;
  ids.reserve(tasks.size());
  std::map<std::string, std::size_t> first_seen;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    ids.push_back(tasks[i].id);
    auto [it, fresh] = first_seen.emplace(tasks[i].id, i);
    if (!fresh) {
      const auto& first = tasks[it->second];
      std::string where = first.where.line > 0 ? " (first defined on line " + std::to_string(first.where.line) + ")" : "";
      problems.emplace_back(context_of(d, tasks[i]), "duplicate task_id '" + tasks[i].id + "'" + where);
    }
  }

  task_graph g;
  g.upstream_.resize(tasks.size());
  g.downstream_.resize(tasks.size());
  boost_graph bg(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    for (const auto& dep : tasks[i].dependencies) {
      auto it = first_seen.find(dep);
      if (it == first_seen.end()) {
        problems.emplace_back(context_of(d, tasks[i]), "task '" + tasks[i].id + "' depends on unknown task '" + dep +
                                                           "'" + did_you_mean(dep, ids));
        continue;
      }
      if (it->second == i) {
        problems.emplace_back(context_of(d, tasks[i]), "task '" + tasks[i].id + "' depends on itself");
        continue;
      }
      auto& up = g.upstream_[i];
      if (std::find(up.begin(), up.end(), it->second) != up.end()) continue;  // listed twice: harmless
      up.push_back(it->second);
      g.downstream_[it->second].push_back(i);
      boost::add_edge(it->second, i, bg);
    }
  }

  std::vector<vertex> parent(tasks.size(), static_cast<vertex>(-1));
  std::pair<vertex, vertex> back{};
  bool found = false;
  cycle_finder finder;
  finder.parent = &parent;
  finder.closing_edge = &back;
  finder.found = &found;
  boost::depth_first_search(bg, boost::visitor(finder));
  if (found) {
    // The back edge u→v closes the cycle v → … → u → v along the DFS tree.
    std::vector<std::string> path{ids[back.first]};
    for (vertex v = back.first; v != back.second && parent[v] != static_cast<vertex>(-1);) {
      v = parent[v];
      path.push_back(ids[v]);
    }
    std::reverse(path.begin(), path.end());
    std::string text;
    for (const auto& p : path) text += p + " >> ";
    text += path.front();
    problems.emplace_back(context_of(d, tasks[back.second]), "dependency cycle: " + text);
  }
  if (problems.size() != before) return {};

  std::vector<vertex> reversed;
  boost::topological_sort(bg, std::back_inserter(reversed));
  g.order_.assign(reversed.rbegin(), reversed.rend());
  for (auto& list : g.upstream_) std::sort(list.begin(), list.end());
  for (auto& list : g.downstream_) std::sort(list.begin(), list.end());
  return g;
}

namespace {
std::vector<std::size_t> reach(const std::vector<std::vector<std::size_t>>& edges, std::size_t from) {
  std::vector<bool> seen(edges.size(), false);
  std::vector<std::size_t> stack{from}, out;
  while (!stack.empty()) {
    std::size_t v = stack.back();
    stack.pop_back();
    for (std::size_t w : edges[v])
      if (!seen[w]) {
        seen[w] = true;
        out.push_back(w);
        stack.push_back(w);
      }
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::vector<std::size_t> task_graph::all_upstream(std::size_t i) const { return reach(upstream_, i); }
std::vector<std::size_t> task_graph::all_downstream(std::size_t i) const { return reach(downstream_, i); }

std::vector<long long> task_graph::reach_weights(const std::vector<int>& weights, bool downstream,
                                                 const std::vector<bool>& wanted) const {
  if (weights.size() != size() || (!wanted.empty() && wanted.size() != size()))
    throw std::invalid_argument("task_graph::reach_weights: one weight (and flag) per task");
  const auto& next = downstream ? downstream_ : upstream_;  // the direction summed over
  const auto& back = downstream ? upstream_ : downstream_;
  std::vector<long long> total(size(), 0);
  // Tasks whose reach is a tree: each task in it reached by one path only, so the sum is the
  // sum over the next tasks of their weight and their own total. A next task with one edge back
  // (to this task) heads a tree if its own next tasks do; visited so that the next tasks come
  // first (reverse topological order for downstream, topological for upstream).
  std::vector<bool> tree(size(), false);
  const auto visit = [&](std::size_t v) {
    bool is_tree = true;
    long long sum = 0;
    for (std::size_t w : next[v]) {
      is_tree = is_tree && tree[w] && back[w].size() == 1;
      sum += weights[w] + total[w];
    }
    tree[v] = is_tree;
    if (is_tree) {
      total[v] = sum;
    } else if (wanted.empty() || wanted[v]) {  // a task that is not a tree's head: no parent sums it
      sum = 0;
      for (std::size_t w : reach(next, v)) sum += weights[w];
      total[v] = sum;
    }
  };
  if (downstream)
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) visit(*it);
  else
    for (std::size_t v : order_) visit(v);
  return total;
}

std::vector<std::size_t> task_graph::roots() const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < upstream_.size(); ++i)
    if (upstream_[i].empty()) out.push_back(i);
  return out;
}

std::vector<std::size_t> task_graph::leaves() const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < downstream_.size(); ++i)
    if (downstream_[i].empty()) out.push_back(i);
  return out;
}

}  // namespace dag
