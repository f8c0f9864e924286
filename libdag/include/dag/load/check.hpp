#pragma once
/// @file Whole-DAG validation shared by YAML and C++ DAGs.

#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/error.hpp>
#include <dag/load/operator_catalog.hpp>

namespace dag {

/// Validates a definition and completes it: identifiers, timezone, schedule and dates, limits,
/// each task's operator and fields (with templates checked against the DAG's params and tasks),
/// and the graph. Applies `default_args` to every task. Returns every problem found, each with
/// file and line where known; an empty result means the DAG is ready to schedule. A definition
/// that passed and has not changed since (definition::checked) is not checked again: one process
/// checks against one catalog of operators.
std::vector<definition_error> check(definition& d, const operator_catalog& operators);

/// True when `id` is a valid dag_id or task_id: letters, digits, `_`, `-`, `.`, at most 250.
bool is_valid_id(std::string_view id);

}  // namespace dag
