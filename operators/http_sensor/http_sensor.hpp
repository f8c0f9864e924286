#pragma once
/// @file The HTTP sensor: pokes an HTTP endpoint until its response passes the checks.

#include <string>

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/operators/http.hpp>
#include <dag/operators/sensor.hpp>

namespace dag::operators {

/// `operator: http_sensor` — at each poke sends the request the `http` operator would (same
/// fields, same code; `method` defaults to `GET`, as Airflow's HttpSensor): met once the status is
/// in `expected_status` (default 2xx) and `response_check` passes; the body (or the
/// `response_filter` value) goes to XCom. Any other status, a failed check or no response at all
/// (the server is not up yet) means "not yet". `timeout` is the sensor's; `request_timeout` bounds
/// each request.
struct http_sensor {
  /// Fields: the `http` operator's (its `timeout` named `request_timeout`), and the sensor fields.
  static operator_spec spec() {
    std::vector<field_spec> own;
    for (auto& f : http::fields()) {
      if (f.name == "timeout") f.name = "request_timeout";
      own.push_back(std::move(f));
    }
    operator_spec s{"http_sensor", sensor::with_fields(std::move(own)), true, &run};
    s.check_value = &http::check_value;
    return s;
  }

  /// Runs one execution of the sensor.
  static operator_result run(const task&, task_context& ctx) {
    // The request sees the http operator's fields only: the sensor's `timeout` is not the request's.
    task_context request = ctx;
    for (const auto& f : sensor::fields()) request.fields.erase(f.name);
    if (auto t = ctx.fields.find("request_timeout"); t != ctx.fields.end()) request.fields["timeout"] = t->second;
    request.fields.erase("request_timeout");
    request.fields.try_emplace("method", "GET");
    return sensor::run(ctx, [&](task_context&) {
      const http::reply r = http::send(request);
      if (auto why = http::rejected(request, r)) return poke_result::not_yet(*why);
      operator_result out = http::accepted(request, r);
      if (out.outcome != try_outcome::success) return poke_result::error(out.message);
      return poke_result::met(std::move(out.xcom));
    });
  }
};

}  // namespace dag::operators
