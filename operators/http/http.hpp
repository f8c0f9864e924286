#pragma once
/// @file The http operator: one HTTP request to a connection's base URL.

#include <dag/core/operator.hpp>

namespace dag::operators {

/// `operator: http` — sends `method` to `endpoint` on `conn_id`; the response body goes to XCom;
/// a status outside 2xx (or outside `expected_status`) fails the try.
struct http {
  /// Fields: `conn_id` (required), `endpoint`, `method`, `data`, `headers`, `expected_status`.
  static operator_spec spec() {
    return {"http",
            {{"conn_id", field_kind::text, true},
             {"endpoint", field_kind::templated, false},
             {"method", field_kind::text, false, {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}},
             {"data", field_kind::templated, false},
             {"headers", field_kind::string_map, false},
             {"expected_status", field_kind::integer, false}}};
  }
};

}  // namespace dag::operators
