// The built-in catalog, compiled once: the engine's default operators.
#include <dag/operators/builtin.hpp>

#include <dag/operators/bash.hpp>
#include <dag/operators/callable.hpp>
#include <dag/operators/date_time_sensor.hpp>
#include <dag/operators/external_task_sensor.hpp>
#include <dag/operators/file_sensor.hpp>
#include <dag/operators/flow.hpp>
#include <dag/operators/empty.hpp>
#include <dag/operators/http.hpp>
#include <dag/operators/http_sensor.hpp>
#include <dag/operators/postgres.hpp>
#include <dag/operators/sql_sensor.hpp>
#include <dag/operators/sqlite.hpp>
#include <dag/operators/time_delta_sensor.hpp>
#include <dag/operators/trigger_dagrun.hpp>

namespace dag {

operator_catalog builtin_operators() {
  operator_catalog c;
  c.add<operators::bash>();
  c.add<operators::sqlite>();
  c.add<operators::postgres>();
  c.add<operators::http>();
  c.add<operators::sql_sensor>();
  c.add<operators::callable>();
  c.add<operators::latest_only>();
  c.add<operators::branch_day_of_week>();
  c.add<operators::empty>();
  c.add<operators::file_sensor>();
  c.add<operators::time_delta_sensor>();
  c.add<operators::date_time_sensor>();
  c.add<operators::http_sensor>();
  c.add<operators::external_task_sensor>();
  c.add<operators::trigger_dagrun>();
  return c;
}

}  // namespace dag
