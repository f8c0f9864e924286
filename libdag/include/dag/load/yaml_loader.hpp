#pragma once
/// @file Loading DAGs from YAML files (`dags/*.yaml`, one DAG a file).

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dag/core/definition.hpp>
#include <dag/core/error.hpp>
#include <dag/load/operator_catalog.hpp>

namespace dag {

/// The outcome of loading one file: a checked DAG, or the problems that kept it out.
struct yaml_load_result {
  std::optional<definition> dag;            ///< set only when there was no problem
  std::vector<definition_error> problems;   ///< each formatted `file:line: message`
};

/// Parses and checks one YAML DAG given as text; `file` names it in messages.
yaml_load_result load_yaml_text(std::string_view text, const std::string& file, const operator_catalog& operators);

/// Reads, parses and checks one YAML DAG file.
yaml_load_result load_yaml_file(const std::filesystem::path& file, const operator_catalog& operators);

}  // namespace dag
