#pragma once
/// @file The sqlite operator: runs SQL against a SQLite database file.

#include <dag/core/operator.hpp>

namespace dag::operators {

/// `operator: sqlite` — runs `sql` on the database of `conn_id` (or the file `database`);
/// result rows go to XCom as JSON.
struct sqlite {
  /// Fields: `sql` (templated, required), `conn_id` or `database`, `parameters`.
  static operator_spec spec() {
    return {"sqlite",
            {{"sql", field_kind::templated, true},
             {"conn_id", field_kind::text, false},
             {"database", field_kind::templated, false},
             {"parameters", field_kind::string_list, false}}};
  }
};

}  // namespace dag::operators
