#pragma once
/// @file The bash operator: runs a shell command in its own process group.

#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/exec/child_process.hpp>

namespace dag::operators {

/// `operator: bash` — runs `bash_command` with `bash -c` in its own process group, stdout and
/// stderr into the try's log (a command of plain words, such as `./report.sh 2024-01-01`, is
/// executed directly: one exec instead of two; see dag::plain_command_words); exit 0 is success, 99 skipped, anything else a failed try. The last
/// line of stdout goes to XCom. `execution_timeout` kills the whole group (SIGTERM, then SIGKILL).
struct bash {
  /// Fields: `bash_command` (templated, required), `env` (extra environment), `cwd`.
  static operator_spec spec() {
    return {"bash",
            {{"bash_command", field_kind::templated, true},
             {"env", field_kind::string_map, false},
             {"cwd", field_kind::templated, false}},
            true,
            &run};
  }

  /// Runs one try.
  static operator_result run(const task&, task_context& ctx) {
    process_spec p;
    p.command = ctx.fields.at("bash_command");
    p.environment = ctx.environment;
    const std::string env_prefix = "env.";
    for (const auto& [name, value] : ctx.fields)
      if (name.starts_with(env_prefix)) p.environment[name.substr(env_prefix.size())] = value;
    if (auto cwd = ctx.fields.find("cwd"); cwd != ctx.fields.end()) p.working_directory = cwd->second;
    p.log_file = ctx.log_path;
    p.timeout = ctx.timeout;
    p.secrets = ctx.secrets;
    p.direct_exec = true;
    child_process child = child_process::start(p);
    process_result r = child.wait(ctx.stop);
    operator_result out;
    out.exit_code = r.exit_code;
    if (r.timed_out) {
      out.outcome = try_outcome::failed;
      out.message = "execution_timeout exceeded: process group killed";
    } else if (r.cancelled) {
      out.outcome = try_outcome::failed;
      out.message = "stopped: the scheduler is shutting down";
    } else if (r.signal != 0) {
      out.outcome = try_outcome::failed;
      out.message = "killed by signal " + std::to_string(r.signal);
    } else if (r.exit_code == 0) {
      out.outcome = try_outcome::success;
      out.xcom = r.last_stdout_line;
    } else if (r.exit_code == 99) {
      out.outcome = try_outcome::skipped;
      out.message = "exit status 99: skipped";
    } else {
      out.outcome = try_outcome::failed;
      out.message = "exit status " + std::to_string(r.exit_code);
    }
    if (ctx.log && !out.message.empty()) ctx.log("[dagrun] " + out.message);
    return out;
  }
};

}  // namespace dag::operators
