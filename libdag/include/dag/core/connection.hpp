#pragma once
/// @file A connection: how to reach an external system (database, HTTP service).

#include <optional>
#include <string>

namespace dag {

/// A named connection, as `{{ conn.ID.host }}` and operators' `conn_id` see it.
struct connection {
  std::string conn_id;   ///< its id
  std::string conn_type; ///< `postgresql`, `https`, `sqlite`, …
  std::string host;      ///< host name or address (or file path for sqlite)
  std::optional<int> port;  ///< port, if given
  std::string login;     ///< user name
  std::string password;  ///< secret: never logged or listed
  std::string schema;    ///< database name or base path
};

}  // namespace dag
