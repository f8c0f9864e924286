// The command notifier, on the bash operator's process handling.
#include <dag/notifiers/command.hpp>

#include <unistd.h>

#include <dag/core/error.hpp>
#include <dag/exec/child_process.hpp>

namespace dag::notifiers {

void run_command(const std::string& command, const alert& a, std::chrono::milliseconds timeout) {
  process_spec p;
  p.command = command;
  p.environment = {{"DAGRUN_DAG_ID", a.dag_id},
                   {"DAGRUN_RUN_ID", a.run_id},
                   {"DAGRUN_TASK_ID", a.task_id},
                   {"DAGRUN_TRY_NUMBER", std::to_string(a.try_number)},
                   {"DAGRUN_LOGICAL_DATE", format_iso(a.logical_date)},
                   {"DAGRUN_OWNER_PID", std::to_string(::getpid())},
                   {"DAGRUN_ALERT", a.event},
                   {"DAGRUN_STATE", a.state},
                   {"DAGRUN_ERROR", a.error},
                   {"DAGRUN_LOG_URL", a.log_url}};
  p.timeout = timeout;
  const process_result r = child_process::start(p).wait();
  if (r.timed_out) throw error("command: did not finish within " + std::to_string(timeout.count() / 1000) + "s");
  if (r.signal != 0) throw error("command: killed by signal " + std::to_string(r.signal));
  if (r.exit_code != 0) throw error("command: exit status " + std::to_string(r.exit_code));
}

}  // namespace dag::notifiers
