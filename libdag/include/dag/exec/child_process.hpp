#pragma once
/// @file A shell command as a child process in its own process group, with its log, timeout and
/// cancellation: what the bash operator and the local executor run tasks with.
///
/// The child runs `shell -c command` as the leader of a new process group, with stdin from
/// /dev/null, stdout through a pipe that the parent copies into the log file (keeping the last
/// line for XCom), stderr appended straight to the log file (or through a pipe too, see
/// process_spec), no other inherited descriptors, and default signal dispositions and an empty
/// signal mask. Everything the task starts stays in that group unless it leaves on purpose
/// (setsid/setpgid), so the group is what a timeout, a cancellation or the end of the task
/// terminates: SIGTERM to the whole group, up to `kill_grace` for it to go, then SIGKILL to the
/// group.
///
/// Linux only: children are spawned with posix_spawn (vfork-like, cheap from a large parent) and
/// watched through a pidfd (Linux >= 5.3), so waiting costs no thread and no fixed-interval polling.

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace dag {

/// What to run and how: one shell command with its environment, directory, log and limits.
struct process_spec {
  /// The command line, run as `shell -c command`.
  std::string command;
  /// Variables added to (or overriding) the parent's environment, e.g. DAGRUN_DAG_ID.
  std::map<std::string, std::string> environment;
  /// Directory the command starts in; empty inherits the parent's.
  std::string working_directory;
  /// File that stdout and stderr are appended to, created with its parent directories by
  /// start() (or on the first output, see log_on_first_output); empty discards both (the last
  /// stdout line is still captured). A write of the parent's that fails (disk full) is reported in
  /// process_result::log_error, and the output past that point is dropped; a log that is a pipe
  /// whose reader went away is dropped without an error.
  std::filesystem::path log_file;
  /// When set, the log file and its folders are made when the command first writes to stdout or
  /// stderr, not by start(): a silent command creates nothing on disk (on ext4 a new inode is a
  /// short task's largest cost). stderr then goes through a pipe too, so its lines reach the log
  /// only while wait() runs; a log that cannot be made is reported in process_result::log_error.
  bool log_on_first_output = false;
  /// Limit on the run, counted from start(); none waits for as long as the command runs.
  std::optional<std::chrono::milliseconds> timeout;
  /// How long the group gets between SIGTERM and SIGKILL.
  std::chrono::milliseconds kill_grace{5000};
  /// The shell: an absolute path, or a name looked up in PATH.
  std::string shell = "/bin/bash";
  /// Values written to the log as `***` (connection passwords and the like). When set, stderr too
  /// goes through a pipe so that it can be masked; lines are masked whole. The last stdout line
  /// (the XCom) is kept as the task printed it.
  std::vector<std::string> secrets;
  /// When set, a command that is plain words (see plain_command_words) is executed directly,
  /// without the shell: one exec instead of two, as make does for a recipe without shell syntax.
  /// Anything else, a program not found on the PATH, or one the kernel cannot execute (a script
  /// without `#!`), goes through `shell -c` as usual.
  bool direct_exec = false;
};

/// The words of `command` when a shell would run it as one simple command with no expansion at
/// all, so executing the words directly behaves the same; none otherwise. The rule: words split on
/// spaces and tabs, none of the characters ``| & ; < > ( ) $ ` \ " ' * ? [ ] { } # ~ !`` or a line
/// break anywhere, no `=` in the first word (an assignment), and a first word that is not a shell
/// keyword or a builtin that acts on the shell itself or has no program of the same behaviour
/// (cd, export, source, exit, test, pwd, read, ...; `true`, `echo` and `printf` are programs too
/// and run directly).
std::optional<std::vector<std::string>> plain_command_words(std::string_view command);

/// How a child process ended.
struct process_result {
  /// The exit status when the shell exited, -1 when a signal killed it (or when its status was
  /// lost because something else in the program reaped it, e.g. with SIGCHLD set to SIG_IGN).
  int exit_code = -1;
  /// The signal that killed the shell, 0 when it exited.
  int signal = 0;
  /// True when the timeout expired and the group was terminated.
  bool timed_out = false;
  /// True when the stop token was triggered and the group was terminated.
  bool cancelled = false;
  /// The last stdout line that is not blank (whitespace only), without its trailing `\r`/`\n`,
  /// cut to its first 64 KiB; none when stdout had no such line. stderr never counts.
  std::optional<std::string> last_stdout_line;
  /// The shell's process id (also its process group id).
  int pid = 0;
  /// From spawning the shell to reaping it.
  std::chrono::microseconds elapsed{0};
  /// Why the output was not (all) logged: the log file or its folder could not be made, or a
  /// write failed (disk full). Empty otherwise (also when the log is a pipe whose reader left).
  std::string log_error;
};

/// A running shell command in its own process group; see the file comment for its environment.
///
/// When the shell exits, any members of its group still alive (background jobs such as
/// `sleep 30 &`) are terminated too — SIGTERM, `kill_grace`, SIGKILL — so that nothing a task
/// started outlives it. Processes that left the group (setsid, setpgid) are not followed.
///
/// One thread waits on one child; different children may be started and waited on from any
/// number of threads at once.
class child_process {
public:
  /// Spawns `spec.shell -c spec.command`. Throws dag::error naming the log path when the log
  /// file or its directory cannot be created (unless it is made on the first output), and naming
  /// the shell, directory and command when the process cannot be started (shell missing, working
  /// directory missing, out of resources).
  [[nodiscard]] static child_process start(const process_spec& spec);

  /// Takes over the child of `other`, which is left empty.
  child_process(child_process&& other) noexcept;
  /// Kills and reaps this object's running child (as the destructor does), then takes over `other`'s.
  child_process& operator=(child_process&& other) noexcept;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  /// A child not yet waited for is killed with its group (SIGKILL, no grace) and reaped.
  ~child_process();

  /// The shell's process id, which is also its process group id; 0 for a moved-from object.
  int pid() const noexcept { return pid_; }

  /// Blocks until the shell exits, the timeout expires or `stop` is requested, copying stdout
  /// (and stderr, when it goes through a pipe) into the log meanwhile. On timeout or stop the
  /// group gets SIGTERM, then SIGKILL after `kill_grace` if the shell is still alive; after the
  /// shell is gone, members of its group left alive are terminated the same way (SIGTERM, up to
  /// `kill_grace`, SIGKILL). Calling it again returns the same result. SIGPIPE from a log that
  /// is a closed pipe is suppressed, not raised.
  process_result wait(std::stop_token stop = {});

private:
  child_process() = default;
  /// Releases descriptors and, when the shell was never reaped, kills its group and reaps it.
  void kill_and_reap() noexcept;

  int pid_ = 0;
  int pidfd_ = -1;        // readable once the shell exits; -1 on kernels without pidfd_open
  int stdout_fd_ = -1;    // read end of the shell's stdout pipe, non-blocking
  int stderr_fd_ = -1;    // read end of a stderr pipe (secrets masked, or the log made later); else stderr is the log
  std::filesystem::path log_file_;  // empty when output is discarded
  int log_fd_ = -1;       // the log file (O_APPEND) once made, -1 until then or when output is discarded
  bool reaped_ = false;
  std::optional<std::chrono::milliseconds> timeout_;
  std::chrono::milliseconds kill_grace_{5000};
  std::chrono::steady_clock::time_point started_{};
  std::optional<process_result> result_;
  std::vector<std::string> secrets_;
};

}  // namespace dag
