/// @file Typed params: the JSON Schema subset Airflow's `Param` uses.

#include <dag/core/params.hpp>

#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include <dag/core/json_text.hpp>
#include <dag/core/time.hpp>

namespace dag {
namespace {

using json = nlohmann::json;

bool has_type(const json& v, const std::string& type) {
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer() || (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<long long>(v.get<double>())));
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "array") return v.is_array();
  if (type == "object") return v.is_object();
  if (type == "null") return v.is_null();
  return false;
}

std::size_t characters(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0u) != 0x80u ? 1 : 0;
  return n;
}

}  // namespace

std::string param_problem(std::string_view schema_json, std::string_view value_json) {
  const json schema = json::parse(schema_json, nullptr, false);
  const json v = json::parse(value_json, nullptr, false);
  if (schema.is_discarded() || !schema.is_object()) return "its schema is not a JSON object";
  if (v.is_discarded()) return "the value is not JSON";
  const std::string shown = json_dump(v);
  if (schema.contains("type")) {
    const json& t = schema["type"];
    bool ok = false;
    if (t.is_string()) ok = has_type(v, t.get<std::string>());
    if (t.is_array())
      for (const auto& one : t) ok = ok || (one.is_string() && has_type(v, one.get<std::string>()));
    if (!ok) return shown + " is not of type " + (t.is_string() ? t.get<std::string>() : t.dump());
  }
  if (schema.contains("enum") && schema["enum"].is_array()) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == v;
    if (!found) return shown + " is not one of " + schema["enum"].dump();
  }
  if (v.is_number()) {
    const double x = v.get<double>();
    if (schema.contains("minimum") && schema["minimum"].is_number() && x < schema["minimum"].get<double>())
      return shown + " is less than the minimum of " + schema["minimum"].dump();
    if (schema.contains("maximum") && schema["maximum"].is_number() && x > schema["maximum"].get<double>())
      return shown + " is greater than the maximum of " + schema["maximum"].dump();
  }
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (schema.contains("minLength") && schema["minLength"].is_number_unsigned() &&
        characters(s) < schema["minLength"].get<std::size_t>())
      return shown + " is shorter than " + schema["minLength"].dump() + " characters";
    if (schema.contains("maxLength") && schema["maxLength"].is_number_unsigned() &&
        characters(s) > schema["maxLength"].get<std::size_t>())
      return shown + " is longer than " + schema["maxLength"].dump() + " characters";
    if (schema.contains("pattern") && schema["pattern"].is_string()) {
      // JSON Schema patterns are searched, not anchored (a `^…$` pattern anchors itself).
      try {
        if (!std::regex_search(s, std::regex(schema["pattern"].get<std::string>(), std::regex::ECMAScript)))
          return shown + " does not match the pattern " + schema["pattern"].dump();
      } catch (const std::regex_error&) {
        return "its pattern " + schema["pattern"].dump() + " is not a valid regular expression";
      }
    }
    if (schema.contains("format") && schema["format"].is_string()) {
      const std::string format = schema["format"].get<std::string>();
      static const std::regex date(R"(^\d{4}-\d{2}-\d{2}$)");
      static const std::regex date_time(R"(^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$)");
      bool ok = true;
      if (format == "date") ok = std::regex_match(s, date);
      else if (format == "date-time") ok = std::regex_match(s, date_time);
      if (ok && (format == "date" || format == "date-time")) {
        try {
          (void)parse_time(format == "date" ? s : s.substr(0, 10));
        } catch (const std::exception&) {
          ok = false;
        }
      }
      if (!ok) return shown + " is not a valid " + format;
    }
  }
  return {};
}

bool param_is_typed(std::string_view schema_json) {
  const json schema = json::parse(schema_json, nullptr, false);
  if (!schema.is_object() || !schema.contains("type")) return false;
  return !(schema["type"].is_string() && schema["type"].get<std::string>() == "string");
}

}  // namespace dag
