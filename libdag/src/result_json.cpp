// A try's result as JSON (see result_json.hpp).
#include "result_json.hpp"

#include <cstdint>
#include <map>
#include <string>

namespace dag::detail {

nlohmann::json result_json(const operator_result& r) {
  nlohmann::json j{{"outcome", static_cast<int>(r.outcome)}, {"message", r.message}, {"exit_code", r.exit_code}};
  if (r.xcom) j["xcom"] = *r.xcom;
  if (!r.keyed_xcoms.empty()) j["keyed_xcoms"] = r.keyed_xcoms;
  if (r.outcome == try_outcome::rescheduled) j["reschedule_after_s"] = r.reschedule_after.count();
  return j;
}

operator_result result_from_json(const nlohmann::json& j) {
  operator_result r;
  r.outcome = static_cast<try_outcome>(j.at("outcome").get<int>());
  r.message = j.at("message").get<std::string>();
  r.exit_code = j.at("exit_code").get<int>();
  if (j.contains("xcom")) r.xcom = j.at("xcom").get<std::string>();
  if (j.contains("keyed_xcoms")) r.keyed_xcoms = j.at("keyed_xcoms").get<std::map<std::string, std::string>>();
  if (j.contains("reschedule_after_s")) r.reschedule_after = duration(j.at("reschedule_after_s").get<std::int64_t>());
  return r;
}

}  // namespace dag::detail
