#pragma once
/// @file Dynamic task mapping: what a mapped task expands to (how many instances, and the field
/// values of each), from its literal lists or its upstream XComs. The scheduler core counts the
/// instances when the task becomes ready; the engine sets each instance's fields when it starts.

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <dag/core/task.hpp>

namespace dag {

/// Reads an XCom of the run a task is expanded in: the value `task_id` pushed under `key`,
/// nullopt when it pushed none.
using xcom_reader = std::function<std::optional<std::string>(std::string_view task_id, std::string_view key)>;

/// A mapped task's values, resolved.
struct map_expansion {
  std::size_t length = 0;  ///< how many instances (0: the task is skipped)
  std::string error;       ///< non-empty: the task cannot be expanded and fails with this message
  std::vector<std::pair<std::string, std::vector<std::string>>> fields;  ///< `expand`: each field's values
  std::vector<std::map<std::string, std::string>> kwargs;                  ///< `expand_kwargs`: each instance's fields
  bool kwargs_from_xcom = false;  ///< `kwargs` came from an upstream XCom

  /// The fields instance `map_index` sets (its values; `map_index` < length).
  std::map<std::string, std::string> instance(std::size_t map_index) const;
};

/// Expands mapped task `t`: `expand` over several fields is their cross product (the first field
/// varies slowest), `expand_kwargs` one instance per mapping. XCom values are JSON lists (of
/// objects for expand_kwargs); a JSON string element is its text, other elements their JSON.
/// An XCom that is missing or not such a list, or more instances than `max_map_length`, is an error.
map_expansion expand_mapping(const task& t, const xcom_reader& xcom);

/// Task `t` as instance `map_index` of `expansion` runs it: its expanded fields set to the
/// instance's values. A value for a mapping field of `spec` (bash's `env`) that is a JSON object
/// gives its entries, one for a list field that is a JSON list its items; others are text. Values
/// from an XCom are data (field_value::literal): rendering leaves them as they are, as Airflow's.
/// A value for a mapping field that is not a JSON object has no entries to give: `problem` (when
/// given) then says so, and the instance must not run (it would run with that field empty).
task mapped_instance(const task& t, const operator_spec* spec, const map_expansion& expansion, std::size_t map_index,
                     std::string* problem = nullptr);

}  // namespace dag
