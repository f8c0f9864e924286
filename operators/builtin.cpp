// The built-in catalog, compiled once: the engine's default operators.
#include <builtin.hpp>

#include <bash/bash.hpp>
#include <callable/callable.hpp>
#include <http/http.hpp>
#include <postgres/postgres.hpp>
#include <sql_sensor/sql_sensor.hpp>
#include <sqlite/sqlite.hpp>

namespace dag {

operator_catalog builtin_operators() {
  operator_catalog c;
  c.add<operators::bash>();
  c.add<operators::sqlite>();
  c.add<operators::postgres>();
  c.add<operators::http>();
  c.add<operators::sql_sensor>();
  c.add<operators::callable>();
  return c;
}

}  // namespace dag
