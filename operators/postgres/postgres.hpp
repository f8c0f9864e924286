#pragma once
/// @file The postgres operator: runs SQL on a PostgreSQL connection.

#include <dag/core/operator.hpp>

namespace dag::operators {

/// `operator: postgres` — runs `sql` on `conn_id` in one transaction unless `autocommit`;
/// result rows go to XCom as JSON.
struct postgres {
  /// Fields: `sql` (templated, required), `conn_id` (required), `parameters`, `autocommit`.
  static operator_spec spec() {
    return {"postgres",
            {{"sql", field_kind::templated, true},
             {"conn_id", field_kind::text, true},
             {"parameters", field_kind::string_list, false},
             {"autocommit", field_kind::boolean, false}}};
  }
};

}  // namespace dag::operators
