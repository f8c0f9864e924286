#pragma once
/// @file Typed params, as Airflow's `Param`: a JSON Schema subset checked when a DAG is loaded (the
/// default) and when a run is triggered (the value its conf gives).

#include <string>
#include <string_view>

namespace dag {

/// Why `value_json` does not satisfy `schema_json` (a JSON object with any of `type` (a name or
/// a list of names: string, integer, number, boolean, array, object, null), `enum`, `minimum`,
/// `maximum`, `minLength`, `maxLength`, `pattern`, `format` (`date`, `date-time`)), or "" when it
/// does. The reason names the value and the rule, not the param; callers add the param's name.
std::string param_problem(std::string_view schema_json, std::string_view value_json);

/// True when a schema's `type` makes the param's value JSON rather than a plain string (any type
/// other than `string`): templates then see numbers, booleans, lists and objects as such.
bool param_is_typed(std::string_view schema_json);

}  // namespace dag
