#pragma once
/// @file Connections and variables given in the environment (`DAGRUN_CONN_<ID>`, `DAGRUN_VAR_<NAME>`),
/// which win over the store's, as Airflow's `AIRFLOW_CONN_*` / `AIRFLOW_VAR_*` do.

#include <cctype>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include <dag/core/connection.hpp>

namespace dag {

namespace detail {
/// `prefix` + `name` upper-cased: the environment variable that carries `name`.
inline std::string environment_key(std::string_view prefix, std::string_view name) {
  std::string key(prefix);
  for (char c : name) key += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return key;
}
}  // namespace detail

/// The connection `id` from `DAGRUN_CONN_<ID>` (a URI), if set.
inline std::optional<connection> connection_from_environment(std::string_view id) {
  if (const char* uri = std::getenv(detail::environment_key("DAGRUN_CONN_", id).c_str()))
    return parse_connection_uri(std::string(id), uri);
  return std::nullopt;
}

/// The variable `name` from `DAGRUN_VAR_<NAME>`, if set.
inline std::optional<std::string> variable_from_environment(std::string_view name) {
  if (const char* v = std::getenv(detail::environment_key("DAGRUN_VAR_", name).c_str())) return std::string(v);
  return std::nullopt;
}

}  // namespace dag
