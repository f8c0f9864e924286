#pragma once
/// @file The dependency graph of a DAG: validation, topological order, upstream/downstream sets.

#include <cstddef>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/error.hpp>

namespace dag {

/// The tasks of one definition as a graph, indexed like `definition::all_tasks()`.
/// Built only from a definition without graph problems, so the order always exists.
class task_graph {
public:
  /// Checks `d` for duplicate task ids, unknown or self dependencies (suggesting the closest
  /// id) and cycles (naming the tasks on one), appending one error per problem to `problems`.
  /// Returns the graph when there was none, else an empty graph.
  static task_graph build(const definition& d, std::vector<definition_error>& problems);

  /// Number of tasks.
  std::size_t size() const { return upstream_.size(); }
  /// Task indexes in an order where every task comes after all of its upstream tasks.
  const std::vector<std::size_t>& topological_order() const { return order_; }
  /// Direct upstream tasks of task `i`.
  const std::vector<std::size_t>& upstream(std::size_t i) const { return upstream_[i]; }
  /// Direct downstream tasks of task `i`.
  const std::vector<std::size_t>& downstream(std::size_t i) const { return downstream_[i]; }
  /// Every task `i` depends on, directly or not, in ascending index order.
  std::vector<std::size_t> all_upstream(std::size_t i) const;
  /// Every task that depends on `i`, directly or not, in ascending index order.
  std::vector<std::size_t> all_downstream(std::size_t i) const;
  /// For each task, the sum of `weights` over every task downstream of it (`downstream` true) or
  /// upstream of it, each counted once (Airflow's `priority_weight_total` without the task's own
  /// weight). Linear where the tasks below (above) a task form a tree — a chain, a fan-out — and
  /// a search per task elsewhere. `weights` has one entry per task. With `wanted` (one flag per
  /// task), only the flagged tasks are searched for: the others' totals are exact where their
  /// reach is a tree and 0 elsewhere.
  std::vector<long long> reach_weights(const std::vector<int>& weights, bool downstream,
                                       const std::vector<bool>& wanted = {}) const;
  /// Tasks without upstream tasks.
  std::vector<std::size_t> roots() const;
  /// Tasks without downstream tasks: their states decide the run's state.
  std::vector<std::size_t> leaves() const;

private:
  std::vector<std::vector<std::size_t>> upstream_;
  std::vector<std::vector<std::size_t>> downstream_;
  std::vector<std::size_t> order_;
};

}  // namespace dag
