#pragma once
/// @file How a try's result is written down wherever it waits to be recorded (the queue's rows,
/// the local executor's spool of unrecorded ends): one conversion, both ways.

#include <nlohmann/json.hpp>

#include <dag/core/operator.hpp>

namespace dag::detail {

/// `r` as a JSON object: outcome, message, exit_code, and xcom, keyed_xcoms and
/// reschedule_after_s when they are set.
nlohmann::json result_json(const operator_result& r);
/// The result `result_json` wrote; throws nlohmann::json::exception on a malformed one.
operator_result result_from_json(const nlohmann::json& j);

}  // namespace dag::detail
