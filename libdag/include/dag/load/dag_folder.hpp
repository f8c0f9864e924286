#pragma once
/// @file Loading every DAG of a folder: one broken file never keeps the others out.

#include <filesystem>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/error.hpp>
#include <dag/load/operator_catalog.hpp>

namespace dag {

/// The DAGs of a folder (or of one file) and the problems of the files that failed.
struct dag_folder {
  std::vector<definition> dags;            ///< loaded DAGs, sorted by dag_id
  std::vector<definition_error> problems;  ///< import errors, in file order

  /// The DAG with this id, or nullptr.
  const definition* find(std::string_view dag_id) const {
    for (const auto& d : dags)
      if (d.id() == dag_id) return &d;
    return nullptr;
  }
};

/// Loads `path`: a `.yaml`/`.yml` file, or every such file in a folder (not recursive,
/// sorted by name). A dag_id defined by two files is a problem of the second file.
/// A missing path is a problem, not an exception.
dag_folder load_dag_folder(const std::filesystem::path& path, const operator_catalog& operators);

}  // namespace dag
