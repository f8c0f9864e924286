// A shell command as a child process: posix_spawn into its own process group, one poll loop over
// the stdout pipe, a pidfd and a stop eventfd, and group termination (SIGTERM, grace, SIGKILL).

#include <dag/core/error.hpp>
#include <dag/core/secret_mask.hpp>
#include <dag/exec/child_process.hpp>

#include "file_descriptors.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

extern char** environ;  // NOLINT: POSIX declares it nowhere in a header

namespace dag {
namespace {

using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// The longest last stdout line kept; XCom values are meant to be small.
constexpr std::size_t max_line_bytes = 64 * 1024;
/// One read from the stdout pipe (its default capacity).
constexpr std::size_t chunk_bytes = 64 * 1024;
/// Reads per drain before going back to poll, so that a child writing without pause cannot keep
/// the loop from noticing its timeout or a stop request.
constexpr int max_reads_per_drain = 16;

/// The text of an errno value (thread-safe, unlike strerror).
std::string errno_text(int e) { return std::system_category().message(e); }

/// A command as it may appear in an error message: long commands are cut.
std::string abbreviate(const std::string& command) {
  constexpr std::size_t max = 200;
  return command.size() <= max ? command : command.substr(0, max) + "...";
}

using detail::unique_fd;
using detail::stop_wakeup;

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

/// Moves a descriptor above 0..2 so that the child's dup2 onto its standard descriptors can never
/// overwrite it (possible only when the parent runs with a standard descriptor closed).
void move_above_stdio(unique_fd& fd) {
  if (fd.get() > 2) return;
  const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) throw error("cannot duplicate a descriptor: " + errno_text(errno));
  fd.reset(moved);
}

/// A pidfd for `pid`, or -1 where the kernel or a seccomp filter refuses pidfd_open.
int open_pidfd(int pid) noexcept {
#ifdef SYS_pidfd_open
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);  // pidfds are always close-on-exec
  return fd < 0 ? -1 : static_cast<int>(fd);
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

/// Milliseconds from now until `deadline` for poll, rounded up so that a wake-up is never early.
int poll_timeout(steady::time_point now, steady::time_point deadline) {
  if (deadline <= now) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
  return static_cast<int>(std::min<std::int64_t>(ms, std::numeric_limits<int>::max()));
}

/// Signals a whole process group; ESRCH (nobody left) is the expected outcome, not an error.
void signal_group(int pgid, int sig) noexcept { ::kill(-pgid, sig); }

/// SIGTERM plus SIGCONT, so that a stopped member also gets to act on the SIGTERM.
void terminate_group(int pgid) noexcept {
  signal_group(pgid, SIGTERM);
  signal_group(pgid, SIGCONT);
}

/// The state letter and process group of /proc/<pid>/stat, or false when the process is gone.
bool read_proc_stat(const char* pid_text, char& state, long& pgrp) {
  // d_name can be 255 bytes: build the path as a string, not into a fixed buffer.
  const std::string path = std::string("/proc/") + pid_text + "/stat";
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return false;
  char text[512];
  const ssize_t n = ::read(fd.get(), text, sizeof text - 1);
  if (n <= 0) return false;
  text[n] = '\0';
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so parse after the last ')'.
  const char* close = std::strrchr(text, ')');
  if (close == nullptr) return false;
  long ppid = 0;
  return std::sscanf(close + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3;
}

/// Live (not zombie) members of a process group, found through /proc; nullopt when /proc cannot
/// be read. Only used when a group outlives its leader, which is rare, so a scan is affordable.
std::optional<std::vector<int>> live_group_members(int pgid) {
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return std::nullopt;
  std::vector<int> members;
  while (const dirent* entry = ::readdir(dir)) {
    const char* name = entry->d_name;
    if (name[0] < '1' || name[0] > '9') continue;
    char state = 0;
    long pgrp = 0;
    if (!read_proc_stat(name, state, pgrp)) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') members.push_back(std::atoi(name));
  }
  ::closedir(dir);
  return members;
}

/// Keeps the last non-blank line of a byte stream seen in chunks, without storing the stream.
class line_tracker {
public:
  /// Takes the next chunk of the stream.
  void feed(std::string_view data) {
    const std::size_t last_newline = data.rfind('\n');
    if (last_newline == std::string_view::npos) {
      append_partial(data);
      return;
    }
    // Complete lines end inside data[0, last_newline]; the newest non-blank one is the only one
    // that matters, so search backwards and stop at the first.
    std::size_t end = last_newline;
    for (;;) {
      const std::size_t previous = end == 0 ? std::string_view::npos : data.rfind('\n', end - 1);
      if (previous == std::string_view::npos) {
        append_partial(data.substr(0, end));  // the first line continues the unfinished one
        if (partial_non_blank_) last_ = strip(partial_);
        break;
      }
      const std::string_view line = data.substr(previous + 1, end - previous - 1);
      if (!is_blank(line)) {
        last_ = strip(line.substr(0, max_line_bytes));
        break;
      }
      end = previous;
    }
    partial_.clear();
    partial_non_blank_ = false;
    append_partial(data.substr(last_newline + 1));
  }

  /// The last non-blank line, counting an unfinished last line.
  std::optional<std::string> last_line() const {
    if (partial_non_blank_) return strip(partial_);
    return last_;
  }

private:
  static bool is_blank(std::string_view text) {
    return text.find_first_not_of(" \t\r\n\v\f") == std::string_view::npos;
  }
  static std::string strip(std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    return std::string(line);
  }
  void append_partial(std::string_view data) {
    if (!partial_non_blank_ && !is_blank(data)) partial_non_blank_ = true;
    if (partial_.size() < max_line_bytes) partial_.append(data.substr(0, max_line_bytes - partial_.size()));
  }

  std::string partial_;             // the unfinished line, capped
  bool partial_non_blank_ = false;  // judged on all of it, not just the capped part
  std::optional<std::string> last_;
};

/// Blocks SIGPIPE in the waiting thread, so that a log that is a pipe with no reader yields EPIPE
/// instead of killing the process; a SIGPIPE raised meanwhile is consumed before unblocking.
class sigpipe_guard {
public:
  sigpipe_guard() noexcept {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    was_blocked_ = sigismember(&old, SIGPIPE) == 1;
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;
  ~sigpipe_guard() {
    if (was_blocked_) return;  // the caller blocks it anyway: leave any pending one to the caller
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    if (raised_) {
      const timespec zero{};
      while (sigtimedwait(&pipe_only, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_UNBLOCK, &pipe_only, nullptr);
  }
  /// Notes that a write failed with EPIPE, so a SIGPIPE is pending.
  void raised() noexcept { raised_ = true; }

private:
  bool was_blocked_ = false;
  bool raised_ = false;
};

/// The log file, made (with its folder) when the child first writes: a silent try creates
/// nothing on disk, and on ext4 a new inode is what a try of a short command costs most.
class lazy_log {
public:
  /// `fd`, when open, is the log made already (ownership passes here).
  lazy_log(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd), tried_(fd >= 0) {}
  lazy_log(const lazy_log&) = delete;
  lazy_log& operator=(const lazy_log&) = delete;
  ~lazy_log() { close(); }

  /// The open log, made on the first call; -1 when there is none or it failed (see error()).
  int fd() {
    if (fd_ < 0 && !tried_ && !path_.empty()) {
      tried_ = true;
      const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY;
      fd_ = ::open(path_.c_str(), flags, 0644);
      if (fd_ < 0 && errno == ENOENT && path_.has_parent_path()) {
        std::error_code ec;
        std::filesystem::create_directories(path_.parent_path(), ec);
        if (ec) {
          error_ = "cannot create the directory of log file '" + path_.string() + "': " + ec.message();
          return -1;
        }
        fd_ = ::open(path_.c_str(), flags, 0644);
      }
      if (fd_ < 0) error_ = "cannot open log file '" + path_.string() + "': " + errno_text(errno);
    }
    return fd_;
  }
  /// A write failed: logging stops here, and why is kept — unless the log is a pipe whose reader
  /// went away (`dagrun tasks test … | head`), which is the reader's choice, not lost output.
  void failed(int e) {
    if (error_.empty() && e != EPIPE) error_ = "cannot write log file '" + path_.string() + "': " + errno_text(e);
    close();
  }
  const std::string& error() const { return error_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool tried_ = false;
  std::string error_;
};

/// Copies one of the child's streams into the log (masking secrets) and tracks its last line.
class output_sink {
public:
  output_sink(lazy_log& log, sigpipe_guard& guard, const std::vector<std::string>& secrets)
      : log_(log), guard_(guard), buffer_(chunk_bytes), secrets_(secrets), hold_back_(longest_secret(secrets)) {}

  /// Reads what the pipe holds (up to a bound); false once it reached end of file.
  bool drain(int fd) {
    for (int reads = 0; reads < max_reads_per_drain; ++reads) {
      const ssize_t n = ::read(fd, buffer_.data(), buffer_.size());
      if (n > 0) {
        const std::string_view data(buffer_.data(), static_cast<std::size_t>(n));
        lines_.feed(data);
        write_log(data);
        continue;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;  // any other error ends the stream
    }
    return true;
  }

  /// The last non-blank stdout line seen.
  std::optional<std::string> last_line() const { return lines_.last_line(); }

  /// Writes what masking held back (an unfinished last line); call once the stream has ended.
  void finish() {
    if (!pending_.empty()) write_raw(mask_secrets(pending_, secrets_));
    pending_.clear();
  }

private:
  // With secrets, text is masked a whole line at a time, so that a secret split across two reads
  // is still found; a line longer than a chunk is masked and written except for its last
  // (longest secret − 1) bytes, which may be the start of a secret.
  void write_log(std::string_view data) {
    if (hold_back_ == 0) {
      write_raw(data);
      return;
    }
    pending_.append(data);
    const std::size_t newline = pending_.rfind('\n');
    if (newline != std::string::npos) {
      write_raw(mask_secrets(std::string_view(pending_).substr(0, newline + 1), secrets_));
      pending_.erase(0, newline + 1);
    }
    if (pending_.size() > chunk_bytes) {
      std::string masked = mask_secrets(pending_, secrets_);
      const std::size_t keep = std::min(masked.size(), hold_back_ - 1);
      write_raw(std::string_view(masked).substr(0, masked.size() - keep));
      pending_ = masked.substr(masked.size() - keep);
    }
  }

  void write_raw(std::string_view data) {
    // After a failed write (disk full, reader gone) the streams are still drained so the child
    // never blocks on a full pipe, but no longer logged; the result says why.
    while (!data.empty()) {
      const int fd = log_.fd();
      if (fd < 0) return;
      const ssize_t n = ::write(fd, data.data(), data.size());
      if (n >= 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
      } else if (errno != EINTR) {
        if (errno == EPIPE) guard_.raised();
        log_.failed(errno);
      }
    }
  }

  lazy_log& log_;  // shared by the stdout and stderr sinks: a failed write stops both
  sigpipe_guard& guard_;
  std::vector<char> buffer_;
  line_tracker lines_;
  const std::vector<std::string>& secrets_;
  std::size_t hold_back_;
  std::string pending_;
};

/// RAII for posix_spawn's attribute and file-action objects.
struct spawn_objects {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  spawn_objects() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  spawn_objects(const spawn_objects&) = delete;
  spawn_objects& operator=(const spawn_objects&) = delete;
  ~spawn_objects() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

/// The parent's environment with `overrides` added or replacing same-named entries.
std::vector<std::string> merged_environment(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> merged;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::string name(text.substr(0, text.find('=')));
    if (overrides.find(name) == overrides.end()) merged.emplace_back(text);
  }
  for (const auto& [name, value] : overrides) merged.push_back(name + '=' + value);
  return merged;
}

/// Exit status fields from a waitid() result.
void record_status(const siginfo_t& info, process_result& result) {
  if (info.si_code == CLD_EXITED) {
    result.exit_code = info.si_status;
    result.signal = 0;
  } else {
    result.exit_code = -1;
    result.signal = info.si_status;
  }
}

/// Where a plain command's program is: a word with a slash as it is (relative to the working
/// directory, as the shell would take it), else the first executable file of that name in the
/// PATH the task gets. None when it is not there, or PATH has a relative entry (the shell is then
/// left to decide).
std::optional<std::string> program_path(const std::string& word, const std::map<std::string, std::string>& environment) {
  if (word.find('/') != std::string::npos) return word;
  std::string path;
  if (const auto it = environment.find("PATH"); it != environment.end()) path = it->second;
  else if (const char* p = std::getenv("PATH")) path = p;
  else path = "/usr/local/bin:/usr/bin:/bin";
  for (std::size_t start = 0; start <= path.size();) {
    const std::size_t end = std::min(path.find(':', start), path.size());
    const std::string dir = path.substr(start, end - start);
    if (dir.empty() || dir[0] != '/') return std::nullopt;
    const std::string candidate = dir + "/" + word;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::vector<std::string>> plain_command_words(std::string_view command) {
  // Shell keywords, and builtins that change the shell or differ from the program of that name.
  static constexpr std::string_view shell_only[] = {
      ".",       ":",        "[",       "[[",      "]]",     "{",        "}",        "!",        "alias",   "bg",
      "bind",    "break",    "builtin", "caller",  "case",   "cd",       "command",  "compgen",  "complete", "compopt",
      "continue", "coproc",  "declare", "dirs",    "disown", "do",       "done",     "elif",     "else",    "enable",
      "esac",    "eval",     "exec",    "exit",    "export", "fc",       "fg",       "fi",       "for",     "function",
      "getopts", "hash",     "help",    "history", "if",     "in",       "jobs",     "let",      "local",   "logout",
      "mapfile", "popd",     "pushd",   "pwd",     "read",   "readarray", "readonly", "return",  "select",  "set",
      "shift",   "shopt",    "source",  "suspend", "test",   "then",     "time",     "times",    "trap",    "type",
      "typeset", "ulimit",   "umask",   "unalias", "unset",  "until",    "wait",     "while"};
  constexpr std::string_view special = "|&;<>()$`\\\"'*?[]{}#~!\n\r";
  if (command.find_first_of(special) != std::string_view::npos) return std::nullopt;
  std::vector<std::string> words;
  for (std::size_t i = 0; i < command.size();) {
    if (command[i] == ' ' || command[i] == '\t') {
      ++i;
      continue;
    }
    const std::size_t end = std::min(command.find_first_of(" \t", i), command.size());
    words.emplace_back(command.substr(i, end - i));
    i = end;
  }
  if (words.empty() || words.front().find('=') != std::string::npos) return std::nullopt;
  for (const auto& k : shell_only)
    if (words.front() == k) return std::nullopt;
  return words;
}

child_process child_process::start(const process_spec& spec) {
  for (const auto& [name, value] : spec.environment) {
    if (name.empty() || name.find('=') != std::string::npos)
      throw error("invalid environment variable name '" + name + "' for command '" + abbreviate(spec.command) + "'");
  }

  unique_fd log;
  if (!spec.log_file.empty() && !spec.log_on_first_output) {
    const std::filesystem::path dir = spec.log_file.parent_path();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    if (ec) throw error("cannot create the directory of log file '" + spec.log_file.string() + "': " + ec.message());
    log.reset(::open(spec.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644));
    if (log.get() < 0) throw error("cannot open log file '" + spec.log_file.string() + "': " + errno_text(errno));
    move_above_stdio(log);
  }

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
    throw error("cannot create a pipe for command '" + abbreviate(spec.command) + "': " + errno_text(errno));
  unique_fd stdout_read(pipe_fds[0]);
  unique_fd stdout_write(pipe_fds[1]);
  move_above_stdio(stdout_read);
  move_above_stdio(stdout_write);
  // Only the parent's end is non-blocking: the child must block on a full pipe, not fail.
  ::fcntl(stdout_read.get(), F_SETFL, ::fcntl(stdout_read.get(), F_GETFL) | O_NONBLOCK);

  spawn_objects spawn;
  // A fresh process group (so the task can be signalled as a whole), no blocked signals and
  // default dispositions (the parent may ignore SIGPIPE or block signals for its own threads).
  posix_spawnattr_setflags(&spawn.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&spawn.attr, 0);
  sigset_t signals;
  sigemptyset(&signals);
  posix_spawnattr_setsigmask(&spawn.attr, &signals);
  // Every bit set, not sigfillset(): glibc leaves its two internal signals (32, 33) out of
  // sigfillset and its posix_spawn then sets them to SIG_IGN in the child, which exec would hand
  // on to the task. The set is only copied into the attribute, so raw bits are fine.
  std::memset(&signals, 0xff, sizeof signals);
  posix_spawnattr_setsigdefault(&spawn.attr, &signals);

  // stderr goes straight to an open log; through a pipe when the parent makes the log on the
  // first byte of either stream, or masks secrets on the way.
  unique_fd stderr_read, stderr_write;
  if (!spec.log_file.empty() && (log.get() < 0 || longest_secret(spec.secrets) > 0)) {
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
      throw error("cannot create a pipe for command '" + abbreviate(spec.command) + "': " + errno_text(errno));
    stderr_read.reset(pipe_fds[0]);
    stderr_write.reset(pipe_fds[1]);
    move_above_stdio(stderr_read);
    move_above_stdio(stderr_write);
    ::fcntl(stderr_read.get(), F_SETFL, ::fcntl(stderr_read.get(), F_GETFL) | O_NONBLOCK);
  }

  posix_spawn_file_actions_addopen(&spawn.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&spawn.actions, stdout_write.get(), 1);
  if (stderr_write.get() >= 0)
    posix_spawn_file_actions_adddup2(&spawn.actions, stderr_write.get(), 2);
  else if (log.get() >= 0)
    posix_spawn_file_actions_adddup2(&spawn.actions, log.get(), 2);
  else
    posix_spawn_file_actions_addopen(&spawn.actions, 2, "/dev/null", O_WRONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  // Descriptors opened elsewhere in the program without O_CLOEXEC must not leak into tasks.
  posix_spawn_file_actions_addclosefrom_np(&spawn.actions, 3);
#endif
  if (!spec.working_directory.empty())
    posix_spawn_file_actions_addchdir_np(&spawn.actions, spec.working_directory.c_str());

  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  char** env = environ;
  if (!spec.environment.empty()) {
    env_strings = merged_environment(spec.environment);
    envp.reserve(env_strings.size() + 1);
    for (auto& entry : env_strings) envp.push_back(entry.data());
    envp.push_back(nullptr);
    env = envp.data();
  }

  child_process child;
  child.started_ = steady::now();
  pid_t pid = 0;
  int rc = -1;
  // A plain command is executed as it is. When that fails (a script without `#!` is ENOEXEC,
  // which the shell runs as a script), the shell below gets it, as it would have anyway.
  if (spec.direct_exec) {
    if (auto words = plain_command_words(spec.command)) {
      if (const auto program = program_path(words->front(), spec.environment)) {
        std::vector<char*> argv;
        for (auto& w : *words) argv.push_back(w.data());
        argv.push_back(nullptr);
        rc = ::posix_spawn(&pid, program->c_str(), &spawn.actions, &spawn.attr, argv.data(), env);
      }
    }
  }
  std::string shell = spec.shell;
  std::string dash_c = "-c";
  std::string command = spec.command;
  char* argv[] = {shell.data(), dash_c.data(), command.data(), nullptr};
  // posix_spawn clones with CLONE_VM|CLONE_VFORK, so its cost does not grow with the parent's
  // memory, and it reports exec failures (missing shell, bad directory) as its result.
  if (rc != 0)
    rc = spec.shell.find('/') != std::string::npos
             ? ::posix_spawn(&pid, shell.c_str(), &spawn.actions, &spawn.attr, argv, env)
             : ::posix_spawnp(&pid, shell.c_str(), &spawn.actions, &spawn.attr, argv, env);
  if (rc != 0) {
    std::string what = "cannot start command '" + abbreviate(spec.command) + "' with shell '" + spec.shell + "'";
    std::error_code ec;
    if (!spec.working_directory.empty()) {
      what += " in '" + spec.working_directory + "'";
      if (!std::filesystem::is_directory(spec.working_directory, ec)) what += " (no such directory)";
    }
    throw error(what + ": " + errno_text(rc));
  }

  child.pid_ = pid;
  child.pidfd_ = open_pidfd(pid);
  child.stdout_fd_ = stdout_read.release();
  child.stderr_fd_ = stderr_read.release();
  child.log_file_ = spec.log_file;
  child.log_fd_ = log.release();
  child.secrets_ = spec.secrets;
  child.timeout_ = spec.timeout;
  child.kill_grace_ = spec.kill_grace;
  return child;  // stdout_write closes here, so the pipe reaches end of file when the group is done
}

child_process::child_process(child_process&& other) noexcept
    : pid_(std::exchange(other.pid_, 0)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      stdout_fd_(std::exchange(other.stdout_fd_, -1)),
      stderr_fd_(std::exchange(other.stderr_fd_, -1)),
      log_file_(std::move(other.log_file_)),
      log_fd_(std::exchange(other.log_fd_, -1)),
      reaped_(std::exchange(other.reaped_, false)),
      timeout_(other.timeout_),
      kill_grace_(other.kill_grace_),
      started_(other.started_),
      result_(std::move(other.result_)),
      secrets_(std::move(other.secrets_)) {
  other.result_.reset();
}

child_process& child_process::operator=(child_process&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, 0);
    pidfd_ = std::exchange(other.pidfd_, -1);
    stdout_fd_ = std::exchange(other.stdout_fd_, -1);
    stderr_fd_ = std::exchange(other.stderr_fd_, -1);
    log_file_ = std::move(other.log_file_);
    log_fd_ = std::exchange(other.log_fd_, -1);
    reaped_ = std::exchange(other.reaped_, false);
    timeout_ = other.timeout_;
    kill_grace_ = other.kill_grace_;
    started_ = other.started_;
    result_ = std::move(other.result_);
    secrets_ = std::move(other.secrets_);
    other.result_.reset();
  }
  return *this;
}

child_process::~child_process() { kill_and_reap(); }

void child_process::kill_and_reap() noexcept {
  if (pid_ > 0 && !reaped_) {
    // No grace here: a destructor must not block for seconds. The unreaped leader keeps the
    // group id from being reused, so the signal cannot reach an unrelated group.
    signal_group(pid_, SIGKILL);
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED) == -1 && errno == EINTR) {
    }
    reaped_ = true;
  }
  close_fd(pidfd_);
  close_fd(stdout_fd_);
  close_fd(stderr_fd_);
  close_fd(log_fd_);
  pid_ = 0;
}

process_result child_process::wait(std::stop_token stop) {
  if (result_) return *result_;
  if (pid_ <= 0) throw error("wait() on a child_process that holds no process");

  process_result result;
  result.pid = pid_;
  sigpipe_guard guard;
  lazy_log log(log_file_, std::exchange(log_fd_, -1));
  output_sink sink(log, guard, secrets_);
  output_sink errors(log, guard, secrets_);

  // A stop request wakes the poll below.
  const stop_wakeup woken(stop);
  const int wake_fd = woken.fd();

  enum class phase { running, terminating, killing };
  phase current = phase::running;
  const std::optional<steady::time_point> timeout_at =
      timeout_ ? std::optional(started_ + *timeout_) : std::nullopt;
  steady::time_point kill_at{};
  auto backoff = 1ms;  // only without pidfd support, where exit is noticed by checking

  auto drain_stdout = [&] {
    if (stdout_fd_ >= 0 && !sink.drain(stdout_fd_)) close_fd(stdout_fd_);
  };
  auto drain_stderr = [&] {
    if (stderr_fd_ >= 0 && !errors.drain(stderr_fd_)) close_fd(stderr_fd_);
  };

  // Until the shell (the group leader) has exited: copy stdout, watch the clock and the stop token.
  siginfo_t info{};
  for (;;) {
    const auto now = steady::now();
    if (current == phase::running) {
      const bool stopped = stop.stop_requested();
      if (stopped || (timeout_at && now >= *timeout_at)) {
        (stopped ? result.cancelled : result.timed_out) = true;
        terminate_group(pid_);
        current = phase::terminating;
        kill_at = now + kill_grace_;
      }
    } else if (current == phase::terminating && now >= kill_at) {
      signal_group(pid_, SIGKILL);
      current = phase::killing;
    }

    info = {};
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == -1) {
      if (errno == EINTR) continue;
      break;  // ECHILD: reaped behind our back (SIGCHLD ignored); nothing left to wait for
    }
    if (info.si_pid == pid_) break;  // exited, still a zombie: its group id cannot be reused yet

    int timeout_ms = -1;
    if (current == phase::running && timeout_at) timeout_ms = poll_timeout(now, *timeout_at);
    if (current == phase::terminating) timeout_ms = poll_timeout(now, kill_at);
    if (pidfd_ < 0) {
      const int step = static_cast<int>(backoff.count());
      timeout_ms = timeout_ms < 0 ? step : std::min(timeout_ms, step);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
    }

    pollfd fds[4] = {{stdout_fd_, POLLIN, 0}, {pidfd_, POLLIN, 0},
                     {current == phase::running ? wake_fd : -1, POLLIN, 0}, {stderr_fd_, POLLIN, 0}};
    if (::poll(fds, 4, timeout_ms) < 0 && errno != EINTR)
      throw error("cannot wait for process " + std::to_string(pid_) + ": " + errno_text(errno));
    if (fds[0].revents != 0) drain_stdout();
    if (fds[3].revents != 0) drain_stderr();
    // The pidfd and the eventfd need no handling: the next round checks exit and stop state.
  }

  // The leader is dead but not reaped. Signal the group while the zombie pins its id, so that
  // background jobs die with the task and the signal cannot hit a reused id.
  const bool leader_known = info.si_pid == pid_;
  if (current == phase::killing)
    signal_group(pid_, SIGKILL);
  else
    terminate_group(pid_);
  if (leader_known) {
    record_status(info, result);
    while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED) == -1 && errno == EINTR) {
    }
  }
  reaped_ = true;
  close_fd(pidfd_);
  result.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - started_);

  // Members still alive got SIGTERM above; give them until the grace ends, then SIGKILL.
  if (current != phase::killing && ::kill(-pid_, 0) == 0) {
    const auto grace_end = current == phase::terminating ? kill_at : steady::now() + kill_grace_;
    backoff = 1ms;
    for (;;) {
      const auto members = live_group_members(pid_);
      if (members && members->empty()) break;
      if (!members && ::kill(-pid_, 0) != 0) break;
      if (steady::now() >= grace_end) {
        signal_group(pid_, SIGKILL);
        break;
      }
      // Wait for every member found to exit (pidfds work for non-children too), then look
      // again, since members may have started others meanwhile.
      std::vector<pollfd> fds{{stdout_fd_, POLLIN, 0}, {stderr_fd_, POLLIN, 0}};
      std::vector<unique_fd> pidfds;
      bool polling = !members.has_value();
      if (members) {
        for (const int member : *members) {
          const int fd = open_pidfd(member);
          if (fd >= 0) {
            pidfds.emplace_back(fd);
            fds.push_back({fd, POLLIN, 0});
          } else if (errno != ESRCH) {
            polling = true;  // no pidfd support: check again after a backoff
          }
        }
      }
      std::size_t pending = pidfds.size();
      while (pending > 0 || polling) {
        const auto now = steady::now();
        if (now >= grace_end) break;
        int timeout_ms = poll_timeout(now, grace_end);
        if (polling) {
          timeout_ms = std::min(timeout_ms, static_cast<int>(backoff.count()));
          backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
        }
        fds[0].fd = stdout_fd_;
        fds[1].fd = stderr_fd_;
        if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) break;
        if (fds[0].revents != 0) drain_stdout();
        if (fds[1].revents != 0) drain_stderr();
        for (std::size_t i = 2; i < fds.size(); ++i) {
          if (fds[i].fd >= 0 && fds[i].revents != 0) {
            fds[i].fd = -1;  // exited: poll ignores negative descriptors
            --pending;
          }
        }
        if (polling) break;  // rescan after each backoff step
      }
    }
  }

  // Every writer in the group is gone now, so what is left in the pipe is the rest of stdout.
  // A process that left the group may still hold the pipe open: take what is there, not more.
  while (stdout_fd_ >= 0) {
    pollfd fd{stdout_fd_, POLLIN, 0};
    if (::poll(&fd, 1, 0) <= 0 || fd.revents == 0) break;
    drain_stdout();
  }
  while (stderr_fd_ >= 0) {
    pollfd fd{stderr_fd_, POLLIN, 0};
    if (::poll(&fd, 1, 0) <= 0 || fd.revents == 0) break;
    drain_stderr();
  }
  sink.finish();
  errors.finish();
  close_fd(stdout_fd_);
  close_fd(stderr_fd_);
  log.close();

  result.last_stdout_line = sink.last_line();
  result.log_error = log.error();
  result_ = result;
  return result;
}

}  // namespace dag
