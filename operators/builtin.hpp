#pragma once
/// @file The catalog of every operator shipped with dagrun (compiled into dag::operators; the
/// operators themselves are header-only: `<bash/bash.hpp>`, `<sqlite/sqlite.hpp>`, …).

#include <dag/load/operator_catalog.hpp>

namespace dag {

/// A catalog holding dagrun's own operators: bash, sqlite, postgres, http, sql_sensor, callable, empty,
/// latest_only, branch_day_of_week, the sensors (file, time delta, date-time, http, external task) and
/// trigger_dagrun.
operator_catalog builtin_operators();

}  // namespace dag
