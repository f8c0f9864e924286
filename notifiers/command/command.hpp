#pragma once
/// @file The command notifier: a bash command run with the environment a task of the run gets,
/// plus what the alert says.

#include <chrono>
#include <string>

#include <dag/core/alert.hpp>

namespace dag::notifiers {

/// Runs `command` with `bash -c` and `DAGRUN_DAG_ID`, `DAGRUN_RUN_ID`, `DAGRUN_TASK_ID`,
/// `DAGRUN_TRY_NUMBER`, `DAGRUN_LOGICAL_DATE`, `DAGRUN_ALERT` (the event), `DAGRUN_STATE`,
/// `DAGRUN_ERROR` and `DAGRUN_LOG_URL` set. Throws dag::error when it exits non-zero or overruns
/// `timeout` (its process group is then killed).
void run_command(const std::string& command, const alert& a, std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace dag::notifiers
