// Dynamic task mapping: a mapped task's instances and their field values.
#include <dag/engine/mapping.hpp>

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

namespace dag {
namespace {

// How a list element becomes a field's text: a string is itself, anything else its JSON.
std::string text_of(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// The values of an XCom source as JSON, or an error message.
std::optional<nlohmann::json> read_list(const map_source& from, const xcom_reader& xcom, std::string& error) {
  const auto value = xcom ? xcom(from.xcom_task, from.xcom_key) : std::nullopt;
  const std::string which = "the XCom '" + from.xcom_key + "' of task '" + from.xcom_task + "'";
  if (!value) {
    error = "expand: " + which + " was not pushed";
    return std::nullopt;
  }
  auto parsed = nlohmann::json::parse(*value, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_array()) {
    error = "expand: " + which + " is not a JSON list: '" + value->substr(0, 200) + "'";
    return std::nullopt;
  }
  return parsed;
}

}  // namespace

std::map<std::string, std::string> map_expansion::instance(std::size_t map_index) const {
  if (!kwargs.empty()) return kwargs.at(map_index);
  std::map<std::string, std::string> out;
  // Mixed radix, the last field varying fastest.
  std::size_t rest = map_index;
  for (auto it = fields.rbegin(); it != fields.rend(); ++it) {
    const std::size_t n = it->second.size();
    out[it->first] = it->second.at(rest % n);
    rest /= n;
  }
  return out;
}

task mapped_instance(const task& t, const operator_spec* spec, const map_expansion& expansion, std::size_t map_index,
                     std::string* problem) {
  task out = t;
  std::set<std::string> from_xcom;
  for (const auto& [field, from] : t.mapping.expand)
    if (!from.xcom_task.empty()) from_xcom.insert(field);
  for (auto& [name, text] : expansion.instance(map_index)) {
    field_value value;
    value.literal = expansion.kwargs_from_xcom || from_xcom.contains(name);
    const field_spec* f = nullptr;
    if (spec)
      for (const auto& candidate : spec->fields)
        if (candidate.name == name) f = &candidate;
    const auto parsed = f && f->kind != field_kind::templated && f->kind != field_kind::text
                            ? nlohmann::json::parse(text, nullptr, false)
                            : nlohmann::json();
    if (f && f->kind == field_kind::string_map) {
      if (!parsed.is_object() && !parsed.is_null() && problem && problem->empty())  // null: no entries (Airflow's None)
        *problem = "expand: " + name + " of map index " + std::to_string(map_index) +
                   " must be a JSON object of its entries, got " + (parsed.is_discarded() ? "'" + text + "'" : parsed.dump());
      if (parsed.is_object())
        for (const auto& [k, v] : parsed.items()) value.entries[k] = text_of(v);
    } else if (f && f->kind == field_kind::string_list && parsed.is_array()) {
      for (const auto& item : parsed) value.items.push_back(text_of(item));
    } else {
      value.text = std::move(text);
    }
    out.fields[name] = std::move(value);
  }
  return out;
}

map_expansion expand_mapping(const task& t, const xcom_reader& xcom) {
  map_expansion out;
  const task_mapping& m = t.mapping;
  const std::size_t limit = static_cast<std::size_t>(std::max(0, m.max_map_length));
  if (m.has_kwargs) {
    if (m.kwargs_from.xcom_task.empty()) {
      out.kwargs = m.kwargs;
    } else {
      auto list = read_list(m.kwargs_from, xcom, out.error);
      if (!list) return out;
      out.kwargs_from_xcom = true;
      for (const auto& item : *list) {
        if (!item.is_object()) {
          out.error = "expand_kwargs: the XCom '" + m.kwargs_from.xcom_key + "' of task '" + m.kwargs_from.xcom_task +
                      "' must be a JSON list of objects; an element is " + item.dump();
          out.kwargs.clear();
          return out;
        }
        auto& fields = out.kwargs.emplace_back();
        for (const auto& [name, v] : item.items()) fields[name] = text_of(v);
      }
    }
    out.length = out.kwargs.size();
  }
  bool exact = true;  // false once a cross product stopped growing past the limit
  if (!m.has_kwargs) {
    out.length = 1;
    for (const auto& [field, from] : m.expand) {
      std::vector<std::string> values = from.items;
      if (!from.xcom_task.empty()) {
        auto list = read_list(from, xcom, out.error);
        if (!list) {
          out.length = 0;
          return out;
        }
        values.clear();
        for (const auto& item : *list) values.push_back(text_of(item));
      }
      // Checked as the product grows, so a huge cross product cannot overflow.
      if (values.empty()) out.length = 0;
      else if (out.length > limit) exact = false;
      else out.length *= values.size();
      out.fields.emplace_back(field, std::move(values));
    }
  }
  if (out.length > limit) {
    out.error = "expand: " + std::string(exact ? "" : "more than ") + std::to_string(out.length) +
                " instances exceed max_map_length (" + std::to_string(limit) + ")";
    out.length = 0;
    out.fields.clear();
    out.kwargs.clear();
  }
  return out;
}

}  // namespace dag
