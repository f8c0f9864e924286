#pragma once
/// @file The http operator: one HTTP request to a connection's base URL. libcurl stays inside
/// http.cpp (compiled into dag::operators): this header only declares the operator.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>

namespace dag::operators {

/// `operator: http` — sends `method` (default `POST`, Airflow's) to `endpoint` joined to the base
/// URL of `conn_id`, with `data` as a JSON or form body (a query string for GET, HEAD and DELETE)
/// and `headers`. Auth comes from the connection: basic from its login and password, a bearer
/// token from `extra.token`; TLS is verified unless `extra.verify` is false, against
/// `extra.ca_file` when set. A status outside `expected_status` (default: any 2xx) fails the try;
/// so does a `response_check` the body fails. The body (or the value `response_filter` points at)
/// goes to XCom, capped at 64 KiB with a message. `timeout`, `execution_timeout` and the stop
/// token end the request at once.
struct http {
  /// Fields: `conn_id` (required), `endpoint`, `method`, `data`, `headers`, `expected_status`,
  /// `response_check`, `response_filter`, `timeout`, `follow_redirects`.
  static operator_spec spec() {
    operator_spec s{"http", fields(), true, &run};
    s.check_value = &check_value;
    return s;
  }

  /// Load-time checks: `expected_status` items are status codes, `response_filter` a JSON pointer.
  static std::optional<std::string> check_value(std::string_view field, std::string_view value);

  /// The fields of one request, shared with `http_sensor`.
  static std::vector<field_spec> fields() {
    return {{"conn_id", field_kind::text, true},
            {"endpoint", field_kind::templated, false},
            {"method", field_kind::text, false, {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}},
            {"data", field_kind::templated, false},
            {"headers", field_kind::string_map, false},
            {"expected_status", field_kind::string_list, false},
            {"response_check", field_kind::templated, false},
            {"response_filter", field_kind::text, false},
            {"timeout", field_kind::time_span, false},
            {"follow_redirects", field_kind::boolean, false}};
  }

  /// The XCom size cap.
  static constexpr std::size_t xcom_limit = 64 * 1024;
  /// The largest response body read; a longer one fails the try.
  static constexpr std::size_t body_limit = 16 * 1024 * 1024;

  /// What one request brought back.
  struct reply {
    long status = 0;       ///< the HTTP status; 0 when no response came (see `failure`)
    std::string body;      ///< the response body
    std::string failure;   ///< why no response came (connection refused, TLS, timeout, stop)
  };

  /// Sends the request the fields of `ctx` describe and logs method, URL, status and timing.
  static reply send(task_context& ctx);

  /// Why `r` fails the try (a transport failure, a status outside `expected_status`, a failed
  /// `response_check`), or nullopt when it passes.
  static std::optional<std::string> rejected(const task_context& ctx, const reply& r);

  /// The result of a reply that passed `rejected`: success with the body (or the value
  /// `response_filter` picks) to XCom, capped at xcom_limit; failed when the filter finds nothing.
  static operator_result accepted(task_context& ctx, const reply& r);

  /// Runs one try: send, then rejected, then accepted.
  static operator_result run(const task& t, task_context& ctx);

  /// Why `response_check` `check` rejects `body`, or nullopt when it passes: a check starting with
  /// `/` is a JSON pointer whose value must exist and be truthy (not null, false, 0 or empty);
  /// any other text must occur in the body.
  static std::optional<std::string> failed_check(std::string_view check, const std::string& body);

  /// The value JSON pointer `pointer` selects in `body` (a string as it is, anything else as JSON
  /// text), or nullopt with `why` set when the body is not JSON or has nothing there.
  static std::optional<std::string> filtered(const std::string& pointer, const std::string& body, std::string& why);
};

}  // namespace dag::operators
