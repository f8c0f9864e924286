// Shell commands as real child processes: exit codes, environment, working directory, the log,
// the last stdout line, timeouts and cancellation that take the whole process group down,
// background jobs left behind, spawn failures, concurrency and large outputs.
//
// Nothing here sleeps to synchronise: the tests wait for conditions (a FIFO written by the child,
// a pidfd becoming readable) with deadlines.

#include <dag/core/error.hpp>
#include <dag/core/secret_mask.hpp>
#include <dag/exec/child_process.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// A fresh directory under the system temp directory, removed with everything in it.
class temp_dir {
public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "dagrun-child-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  /// A path inside the directory.
  fs::path operator/(const std::string& name) const { return path_ / name; }
  /// The directory itself.
  const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

/// The whole content of a file, empty when it does not exist.
std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// A path quoted for the shell (test paths hold no single quotes).
std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }

/// A last-line value printable by doctest.
std::string show(const std::optional<std::string>& line) { return line ? "[" + *line + "]" : "<none>"; }

/// A spec with a log file in `dir`.
dag::process_spec spec_in(const temp_dir& dir, std::string command) {
  dag::process_spec spec;
  spec.command = std::move(command);
  spec.log_file = dir / "task.log";
  spec.timeout = 60s;  // a broken test fails instead of hanging
  return spec;
}

/// Starts and waits.
dag::process_result run(const dag::process_spec& spec) { return dag::child_process::start(spec).wait(); }

/// True when /proc says the process is a zombie (dead, its parent has not reaped it yet).
bool is_zombie(int pid) {
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

/// Waits until process `pid` (not necessarily our child) has died. A dead orphan stays a zombie
/// until init reaps it, which may take a while in containers, so a zombie counts as dead.
bool process_dies_within(int pid, std::chrono::milliseconds limit) {
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return errno == ESRCH;
  pollfd exited{static_cast<int>(fd), POLLIN, 0};
  const int ready = ::poll(&exited, 1, static_cast<int>(limit.count()));
  ::close(static_cast<int>(fd));
  if (ready <= 0) return false;
  return (::kill(pid, 0) == -1 && errno == ESRCH) || is_zombie(pid);
}

/// The pid a command wrote into `path`.
int read_pid(const fs::path& path) {
  const std::string text = read_text(path);
  REQUIRE_MESSAGE(!text.empty(), "no pid in " << path);
  return std::stoi(text);
}

/// A FIFO that a child writes to once it is ready, read by the test with a deadline.
class ready_fifo {
public:
  explicit ready_fifo(fs::path path) : path_(std::move(path)) {
    REQUIRE(::mkfifo(path_.c_str(), 0600) == 0);
    // Opened before the child starts, so the child's open for writing does not block.
    fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(fd_ >= 0);
  }
  ready_fifo(const ready_fifo&) = delete;
  ready_fifo& operator=(const ready_fifo&) = delete;
  ~ready_fifo() { ::close(fd_); }
  /// The FIFO's path, for the command.
  const fs::path& path() const { return path_; }
  /// True once the child wrote something, false when `limit` passed first.
  bool wait(std::chrono::milliseconds limit) const {
    pollfd readable{fd_, POLLIN, 0};
    if (::poll(&readable, 1, static_cast<int>(limit.count())) <= 0) return false;
    char buffer[64];
    return ::read(fd_, buffer, sizeof buffer) > 0;
  }

private:
  fs::path path_;
  int fd_ = -1;
};

TEST_CASE("ChildProcess.ExitCodesPropagate") {
  temp_dir dir;
  for (const int code : {0, 1, 99, 7}) {
    CAPTURE(code);
    const auto result = run(spec_in(dir, "exit " + std::to_string(code)));
    CHECK(result.exit_code == code);
    CHECK(result.signal == 0);
    CHECK_FALSE(result.timed_out);
    CHECK_FALSE(result.cancelled);
    CHECK(result.pid > 0);
    CHECK(result.elapsed > 0us);
  }
  const auto killed = run(spec_in(dir, "kill -KILL $$"));
  CHECK(killed.exit_code == -1);
  CHECK(killed.signal == SIGKILL);
  CHECK_FALSE(killed.timed_out);

  auto spec = spec_in(dir, "exit 3");
  spec.shell = "sh";  // looked up in PATH
  CHECK(run(spec).exit_code == 3);
}

TEST_CASE("ChildProcess.EnvironmentReachesChild") {
  temp_dir dir;
  REQUIRE(::setenv("DAGRUN_TEST_INHERITED", "from-parent", 1) == 0);
  REQUIRE(::setenv("DAGRUN_TEST_OVERRIDDEN", "old", 1) == 0);
  auto spec = spec_in(dir,
                      "echo \"$DAGRUN_DAG_ID|$DAGRUN_TASK_ID|$DAGRUN_RUN_ID|$DAGRUN_LOGICAL_DATE|$DAGRUN_TRY_NUMBER|"
                      "$DAGRUN_TEST_INHERITED|$DAGRUN_TEST_OVERRIDDEN|$(env | grep -c '^DAGRUN_TEST_OVERRIDDEN=')\"");
  spec.environment = {{"DAGRUN_DAG_ID", "etl"},
                      {"DAGRUN_TASK_ID", "load"},
                      {"DAGRUN_RUN_ID", "scheduled__2024-01-01T00:00:00+00:00"},
                      {"DAGRUN_LOGICAL_DATE", "2024-01-01T00:00:00+00:00"},
                      {"DAGRUN_TRY_NUMBER", "2"},
                      {"DAGRUN_TEST_OVERRIDDEN", "new value with spaces"}};
  const auto result = run(spec);
  ::unsetenv("DAGRUN_TEST_INHERITED");
  ::unsetenv("DAGRUN_TEST_OVERRIDDEN");
  CHECK(result.exit_code == 0);
  // PATH is inherited too, or `env` and `grep` would not be found; the override appears once.
  CHECK(show(result.last_stdout_line) ==
        "[etl|load|scheduled__2024-01-01T00:00:00+00:00|2024-01-01T00:00:00+00:00|2|from-parent|"
        "new value with spaces|1]");
}

TEST_CASE("ChildProcess.WorkingDirectory") {
  temp_dir dir;
  fs::create_directory(dir / "work");
  auto spec = spec_in(dir, "pwd -P; touch created-here");
  spec.working_directory = (dir / "work").string();
  const auto result = run(spec);
  CHECK(result.exit_code == 0);
  CHECK(show(result.last_stdout_line) == "[" + fs::canonical(dir / "work").string() + "]");
  CHECK(fs::exists(dir / "work" / "created-here"));

  const auto inherited = run(spec_in(dir, "pwd -P"));
  CHECK(show(inherited.last_stdout_line) == "[" + fs::canonical(fs::current_path()).string() + "]");
}

TEST_CASE("ChildProcess.StdoutAndStderrLandInLog") {
  temp_dir dir;
  auto spec = spec_in(dir, "echo out-1; echo err-1 >&2; echo out-2");
  spec.log_file = dir / "logs" / "dag" / "task" / "1.log";  // parent directories get created
  auto result = run(spec);
  CHECK(result.exit_code == 0);
  CHECK(show(result.last_stdout_line) == "[out-2]");
  std::string log = read_text(spec.log_file);
  CHECK(log.find("out-1\n") != std::string::npos);
  CHECK(log.find("err-1\n") != std::string::npos);
  CHECK(log.find("out-2\n") != std::string::npos);
  CHECK(log.size() == 18);

  // A second run appends.
  spec.command = "echo again; echo again-err >&2";
  result = run(spec);
  log = read_text(spec.log_file);
  CHECK(log.find("out-1\n") != std::string::npos);
  CHECK(log.find("again\n") != std::string::npos);
  CHECK(log.find("again-err\n") != std::string::npos);
  CHECK(log.size() == 18 + 16);

  // Without a log file output is discarded, but the last line is still captured.
  spec.log_file.clear();
  spec.command = "echo kept; echo dropped >&2";
  CHECK(show(run(spec).last_stdout_line) == "[kept]");
}

TEST_CASE("ChildProcess.SecretsNeverReachTheLog") {
  temp_dir dir;
  auto spec = spec_in(dir,
                      "echo \"pw=hunter2-secret\"; echo \"denied for hunter2-secret\" >&2; "
                      // a secret split across writes, and one at the end of output with no newline
                      "printf 'split hunter2-'; printf 'secret\\n'; "
                      // a line longer than a read, with the secret across the 64 KiB mark
                      "head -c 65530 /dev/zero | tr '\\0' x; echo hunter2-secret; "
                      "echo short pw; printf 'hunter2-secret'");
  spec.log_file = dir / "try.log";
  spec.secrets = {"hunter2-secret", "pw"};  // "pw" is too short to mask (it would mangle text)
  auto result = run(spec);
  CHECK(result.exit_code == 0);
  const std::string log = read_text(spec.log_file);
  CHECK(log.find("hunter2") == std::string::npos);
  CHECK(log.find("secret") == std::string::npos);
  CHECK(log.find("pw=***\n") != std::string::npos);
  CHECK(log.find("denied for ***\n") != std::string::npos);
  CHECK(log.find("split ***\n") != std::string::npos);
  CHECK(log.find(std::string(65530, 'x') + "***\n") != std::string::npos);
  CHECK(log.find("short pw\n") != std::string::npos);
  CHECK(log.ends_with("\n***"));
  CHECK(show(result.last_stdout_line) == "[hunter2-secret]");  // the XCom is the task's own value
}

TEST_CASE("SecretMask.MultiLineSecretsAreMaskedLineByLine") {
  std::vector<std::string> secrets;
  dag::add_secret(secrets, "-----BEGIN KEY-----\r\nMIIEabcdef\r\nok\r\n-----END KEY-----");
  dag::add_secret(secrets, "pw");  // too short
  CHECK(secrets.size() == 4);      // the whole value and its three long lines
  CHECK(dag::mask_secrets("line MIIEabcdef here", secrets) == "line *** here");
  CHECK(dag::mask_secrets("ok pw", secrets) == "ok pw");
}

TEST_CASE("ChildProcess.LastStdoutLine") {
  temp_dir dir;
  struct example {
    std::string command;
    std::string expected;
  };
  const std::vector<example> examples = {
      {"echo a; echo b", "[b]"},
      {"printf 'a\\nb'", "[b]"},                          // no trailing newline
      {"printf 'a\\nb\\n\\n  \\n\\n'", "[b]"},            // trailing blank lines
      {"printf 'a\\r\\nb\\r\\n'", "[b]"},                 // CRLF
      {"echo out; echo err >&2", "[out]"},                // stderr never counts
      {"echo out; printf 'partial err' >&2", "[out]"},
      {"echo '  spaced  '", "[  spaced  ]"},             // inner and trailing spaces kept
      {"printf 'one\\ntwo'; printf ' more\\n\\n'", "[two more]"},  // a line split over writes
      {"true", "<none>"},
      {"printf '\\n \\n\\t\\n'", "<none>"},
  };
  for (const auto& [command, expected] : examples) {
    CAPTURE(command);
    CHECK(show(run(spec_in(dir, command)).last_stdout_line) == expected);
  }
  // A huge last line is cut to 64 KiB.
  const auto huge = run(spec_in(dir, "echo first; head -c 100000 /dev/zero | tr '\\0' x; echo"));
  REQUIRE(huge.last_stdout_line);
  CHECK(huge.last_stdout_line->size() == 64 * 1024);
  CHECK(huge.last_stdout_line->find_first_not_of('x') == std::string::npos);
}

TEST_CASE("ChildProcess.StdinIsDevNull") {
  temp_dir dir;
  const auto result = run(spec_in(dir, "cat; read -r line; echo \"read=$?\""));
  CHECK(show(result.last_stdout_line) == "[read=1]");
}

TEST_CASE("ChildProcess.TimeoutKillsTheWholeGroup") {
  temp_dir dir;
  auto spec = spec_in(dir, "sleep 30 & echo $! > " + quoted(dir / "pid") + "; wait");
  spec.timeout = 300ms;
  spec.kill_grace = 200ms;
  const auto result = run(spec);
  CHECK(result.timed_out);
  CHECK_FALSE(result.cancelled);
  CHECK(result.exit_code == -1);
  CHECK(result.signal == SIGTERM);
  CHECK(result.elapsed >= 300ms);
  CHECK(result.elapsed < 10s);
  CHECK(process_dies_within(read_pid(dir / "pid"), 10s));
}

TEST_CASE("ChildProcess.IgnoredTermIsKilledAfterGrace") {
  temp_dir dir;
  // The background sleep inherits the ignored SIGTERM, so only SIGKILL ends either of them.
  auto spec = spec_in(dir, "trap '' TERM; sleep 30 & echo $! > " + quoted(dir / "pid") + "; sleep 30");
  spec.timeout = 200ms;
  spec.kill_grace = 200ms;
  const auto result = run(spec);
  CHECK(result.timed_out);
  CHECK(result.signal == SIGKILL);
  CHECK(result.elapsed >= 400ms);
  CHECK(result.elapsed < 10s);
  CHECK(process_dies_within(read_pid(dir / "pid"), 10s));
}

TEST_CASE("ChildProcess.StopTokenCancels") {
  temp_dir dir;
  ready_fifo ready(dir / "ready");
  auto spec = spec_in(dir, "echo ready > " + quoted(ready.path()) + "; sleep 30");
  spec.kill_grace = 200ms;
  auto child = dag::child_process::start(spec);
  std::stop_source stop;
  dag::process_result result;
  std::thread waiter([&] { result = child.wait(stop.get_token()); });
  const bool started = ready.wait(10s);
  stop.request_stop();
  waiter.join();
  CHECK(started);
  CHECK(result.cancelled);
  CHECK_FALSE(result.timed_out);
  CHECK(result.exit_code == -1);
  CHECK(result.elapsed < 10s);
  // Waiting again gives the same result.
  CHECK(child.wait().cancelled);
}

TEST_CASE("ChildProcess.StopRequestedBeforeWaitEndsTheChildAtOnce") {
  temp_dir dir;
  std::stop_source already;
  already.request_stop();
  const auto result = dag::child_process::start(spec_in(dir, "exec sleep 30")).wait(already.get_token());
  CHECK(result.cancelled);
  CHECK(result.signal == SIGTERM);
  CHECK(result.elapsed < 10s);
}

TEST_CASE("ChildProcess.BackgroundJobsAreTerminatedAfterNormalExit") {
  temp_dir dir;
  SUBCASE("a job holding stdout open") {
    auto spec = spec_in(dir, "sleep 30 & echo $! > " + quoted(dir / "pid") + "; echo done");
    const auto result = run(spec);
    CHECK(result.exit_code == 0);
    CHECK_FALSE(result.timed_out);
    CHECK(show(result.last_stdout_line) == "[done]");
    CHECK(process_dies_within(read_pid(dir / "pid"), 10s));
  }
  SUBCASE("a job ignoring SIGTERM is killed after the grace") {
    // The shell exits only once the job has set its trap (it reads the job's "ready" first).
    REQUIRE(::mkfifo((dir / "trap-set").c_str(), 0600) == 0);
    const std::string fifo = quoted(dir / "trap-set");
    auto spec = spec_in(dir, "(trap '' TERM; echo ready > " + fifo + "; exec sleep 30) > /dev/null 2>&1 & echo $! > " +
                                 quoted(dir / "pid") + "; read -r line < " + fifo);
    spec.kill_grace = 200ms;
    const auto before = std::chrono::steady_clock::now();
    const auto result = run(spec);
    CHECK(result.exit_code == 0);
    CHECK(std::chrono::steady_clock::now() - before >= 200ms);
    CHECK(process_dies_within(read_pid(dir / "pid"), 10s));
  }
}

TEST_CASE("ChildProcess.ProcessLeavingTheGroupDoesNotBlockWait") {
  temp_dir dir;
  // setsid takes the job out of the group (so it is not terminated) while it keeps stdout open.
  // The shell exits only after the job is in its own session (it reads the job's "ready" first).
  REQUIRE(::mkfifo((dir / "left").c_str(), 0600) == 0);
  const std::string fifo = quoted(dir / "left");
  const auto result = run(spec_in(dir, "setsid sh -c \"echo ready > " + fifo + "; exec sleep 30\" & echo $! > " +
                                           quoted(dir / "pid") + "; read -r line < " + fifo + "; echo left"));
  const int escaped = read_pid(dir / "pid");
  CHECK(::kill(escaped, 0) == 0);  // not ours to terminate
  ::kill(escaped, SIGKILL);
  CHECK(result.exit_code == 0);
  CHECK(show(result.last_stdout_line) == "[left]");
  CHECK(result.elapsed < 10s);
}

TEST_CASE("ChildProcess.SpawnFailuresThrowNamingThePath") {
  temp_dir dir;
  std::ofstream(dir / "plain-file") << "not a directory";
  auto spec = spec_in(dir, "true");
  spec.log_file = dir / "plain-file" / "sub" / "task.log";
  try {
    (void)dag::child_process::start(spec);
    FAIL("no error for an uncreatable log path");
  } catch (const dag::error& e) {
    CHECK_MESSAGE(std::string(e.what()).find(spec.log_file.string()) != std::string::npos, e.what());
  }

  spec = spec_in(dir, "true");
  spec.shell = (dir / "no-such-shell").string();
  try {
    (void)dag::child_process::start(spec);
    FAIL("no error for a missing shell");
  } catch (const dag::error& e) {
    CHECK_MESSAGE(std::string(e.what()).find(spec.shell) != std::string::npos, e.what());
  }

  spec = spec_in(dir, "true");
  spec.working_directory = (dir / "missing").string();
  try {
    (void)dag::child_process::start(spec);
    FAIL("no error for a missing working directory");
  } catch (const dag::error& e) {
    CHECK_MESSAGE(std::string(e.what()).find(spec.working_directory) != std::string::npos, e.what());
  }
}

TEST_CASE("ChildProcess.TheLogIsMadeOnTheFirstOutput") {
  temp_dir dir;
  // A silent command makes no file and no folder.
  auto spec = spec_in(dir, "true");
  spec.log_on_first_output = true;
  spec.log_file = dir / "logs" / "task" / "1.log";
  auto result = run(spec);
  CHECK(result.exit_code == 0);
  CHECK(result.log_error.empty());
  CHECK_FALSE(fs::exists(dir / "logs"));

  // Output on stderr alone makes it, folders and all (through a pipe: its first byte).
  spec.command = "echo only-err >&2";
  result = run(spec);
  CHECK(result.log_error.empty());
  CHECK(read_text(spec.log_file) == "only-err\n");

  // A log that cannot be made is reported, naming its path, once the command writes; the command
  // itself ran, and its last stdout line is still captured.
  std::ofstream(dir / "plain-file") << "not a directory";
  spec.log_file = dir / "plain-file" / "sub" / "task.log";
  spec.command = "echo made-it > " + quoted(dir / "ran") + "; echo out";
  result = run(spec);
  CHECK(result.exit_code == 0);
  CHECK(fs::exists(dir / "ran"));
  CHECK(show(result.last_stdout_line) == "[out]");
  CHECK_MESSAGE(result.log_error.find(spec.log_file.string()) != std::string::npos, result.log_error);
  spec.command = "true";
  CHECK(run(spec).log_error.empty());  // nothing written, nothing to make
}

TEST_CASE("ChildProcess.ManyConcurrentChildren") {
  temp_dir dir;
  constexpr int count = 50;
  std::vector<dag::process_result> results(count);
  std::vector<std::string> errors(count);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < count; ++i) {
      threads.emplace_back([&, i] {
        try {
          auto spec = spec_in(dir, "echo \"task-$DAGRUN_TASK_ID\"; echo \"err-$DAGRUN_TASK_ID\" >&2; "
                                   "exit $((DAGRUN_TASK_ID % 3))");
          spec.environment["DAGRUN_TASK_ID"] = std::to_string(i);
          spec.log_file = dir / ("task-" + std::to_string(i) + ".log");
          results[static_cast<std::size_t>(i)] = run(spec);
        } catch (const std::exception& e) {
          errors[static_cast<std::size_t>(i)] = e.what();
        }
      });
    }
  }
  for (int i = 0; i < count; ++i) {
    CAPTURE(i);
    const auto& result = results[static_cast<std::size_t>(i)];
    CHECK(errors[static_cast<std::size_t>(i)].empty());
    CHECK(result.exit_code == i % 3);
    CHECK(show(result.last_stdout_line) == "[task-" + std::to_string(i) + "]");
    const std::string log = read_text(dir / ("task-" + std::to_string(i) + ".log"));
    CHECK(log.find("task-" + std::to_string(i) + "\n") != std::string::npos);
    CHECK(log.find("err-" + std::to_string(i) + "\n") != std::string::npos);
  }
}

TEST_CASE("ChildProcess.LargeOutputIsFullyLogged") {
  temp_dir dir;
  std::string expected;
  for (int i = 1; i <= 200000; ++i) expected += std::to_string(i) + '\n';
  const auto lines = run(spec_in(dir, "seq 1 200000"));
  CHECK(lines.exit_code == 0);
  CHECK(show(lines.last_stdout_line) == "[200000]");
  const std::string log = read_text(dir / "task.log");
  CHECK(log.size() == expected.size());
  CHECK(log == expected);

  auto spec = spec_in(dir, "head -c 1048576 /dev/zero | tr '\\0' x");
  spec.log_file = dir / "mb.log";
  const auto megabyte = run(spec);
  CHECK(megabyte.exit_code == 0);
  CHECK(fs::file_size(spec.log_file) == 1048576);
}

TEST_CASE("ChildProcess.DestructorKillsAndReapsTheGroup") {
  temp_dir dir;
  ready_fifo ready(dir / "ready");
  int leader = 0;
  {
    auto child = dag::child_process::start(spec_in(
        dir, "sleep 30 & echo $! > " + quoted(dir / "pid") + "; echo ready > " + quoted(ready.path()) + "; wait"));
    leader = child.pid();
    REQUIRE(ready.wait(10s));
  }
  // Reaped by the destructor: no zombie left, so the pid is no longer our child.
  CHECK(::waitpid(leader, nullptr, WNOHANG) == -1);
  CHECK(errno == ECHILD);
  CHECK(process_dies_within(read_pid(dir / "pid"), 10s));
}

TEST_CASE("ChildProcess.MovesTransferTheChild") {
  temp_dir dir;
  auto first = dag::child_process::start(spec_in(dir, "exit 4"));
  const int pid = first.pid();
  dag::child_process second(std::move(first));
  CHECK(first.pid() == 0);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  CHECK(second.pid() == pid);
  auto third = dag::child_process::start(spec_in(dir, "exit 5"));
  third = std::move(second);
  CHECK(third.pid() == pid);
  const auto result = third.wait();
  CHECK(result.exit_code == 4);
  CHECK(result.pid == pid);
  CHECK_THROWS_AS(first.wait(), dag::error);  // NOLINT(bugprone-use-after-move)
}

TEST_CASE("ChildProcess.CleanDescriptorsAndSignals") {
  temp_dir dir;
  const int leaky = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  REQUIRE(leaky >= 0);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_pipe {};
  ::sigaction(SIGPIPE, &ignore, &old_pipe);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigset_t old_mask;
  ::pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);

  const auto result = run(spec_in(dir, "if [ -e /proc/self/fd/" + std::to_string(leaky) +
                                           " ]; then echo leaked; else echo clean; fi; "
                                           "grep -E '^Sig(Blk|Ign):' /proc/self/status"));

  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  ::close(leaky);
  const std::string log = read_text(dir / "task.log");
  INFO(log);
  CHECK(log.find("clean\n") != std::string::npos);
  CHECK(log.find("SigBlk:\t0000000000000000\n") != std::string::npos);
  CHECK(log.find("SigIgn:\t0000000000000000\n") != std::string::npos);
  CHECK(result.exit_code == 0);
}

TEST_CASE("ChildProcess.BrokenPipeLogDoesNotKillTheParent") {
  // Made by start(), and made on the first output.
  for (const bool lazy : {false, true}) {
    CAPTURE(lazy);
    temp_dir dir;
    // The log is a FIFO whose reader takes one byte and goes: the parent's copy of more output
    // than a pipe holds then meets EPIPE.
    const fs::path fifo = dir / "log.fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(reader >= 0);
    auto spec = spec_in(dir, "seq 1 100000; echo there");
    spec.log_file = fifo;
    spec.log_on_first_output = lazy;
    auto child = dag::child_process::start(spec);
    // wait() copies the output, so the reader is another thread.
    int read_bytes = -1;
    std::thread take_one_byte([reader, &read_bytes] {
      pollfd readable{reader, POLLIN, 0};
      char byte = 0;
      if (::poll(&readable, 1, 30000) == 1) read_bytes = static_cast<int>(::read(reader, &byte, 1));
      ::close(reader);
    });
    const auto result = child.wait();
    take_one_byte.join();
    CHECK(read_bytes == 1);
    CHECK(result.exit_code == 0);
    CHECK(show(result.last_stdout_line) == "[there]");
    CHECK(result.log_error.empty());  // a reader that leaves is its choice, not a failed log
    // No SIGPIPE left pending or blocked behind.
    sigset_t pending;
    ::sigpending(&pending);
    CHECK(sigismember(&pending, SIGPIPE) == 0);
    sigset_t mask;
    ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
    CHECK(sigismember(&mask, SIGPIPE) == 0);
  }
}

TEST_CASE("ChildProcess.TimeoutNotReached") {
  temp_dir dir;
  auto spec = spec_in(dir, "echo quick");
  spec.timeout = 10s;
  const auto result = run(spec);
  CHECK(result.exit_code == 0);
  CHECK_FALSE(result.timed_out);
  CHECK(result.elapsed < 10s);
}

}  // namespace

TEST_CASE("ChildProcess.PlainCommandWordsOnlyWithoutShellSyntax") {
  using words = std::vector<std::string>;
  CHECK(dag::plain_command_words("true") == words{"true"});
  CHECK(dag::plain_command_words("  /usr/bin/python3 job.py\t--date 2024-01-01 ") ==
        words{"/usr/bin/python3", "job.py", "--date", "2024-01-01"});
  CHECK(dag::plain_command_words("./report.sh --out=/tmp/x,y 100%") == words{"./report.sh", "--out=/tmp/x,y", "100%"});
  CHECK(dag::plain_command_words("echo hello") == words{"echo", "hello"});
  // Each shell feature keeps the shell.
  for (const char* shell_syntax :
       {"a | b", "a && b", "a; b", "a > out", "a < in", "a 2>&1", "a &", "(a)", "echo $HOME", "echo ${X}", "echo `id`",
        "echo $(id)", "echo 'quoted'", "echo \"quoted\"", "echo a\\ b", "ls *.txt", "ls file?", "ls [ab]", "echo {a,b}",
        "echo ~/x", "a # comment", "! a", "a\nb", "X=1 env", "cd /tmp", "export X=1", "source env.sh", ". env.sh",
        "exit 3", "test -f x", "[ -f x ]", "pwd", "read x", "set -e", "if", "for", "while", "eval a", "exec a",
        "ulimit -n 10", "umask 022", "trap x EXIT", "", "   "})
    CHECK_MESSAGE(!dag::plain_command_words(shell_syntax), "'" << shell_syntax << "' must go through the shell");
}

TEST_CASE("ChildProcess.PlainCommandsAreExecutedWithoutTheShell") {
  // bash sets `_` to the path of each program it starts (even when it execs a one-command -c
  // string in place of itself); a program executed directly inherits `_` as the spec gives it.
  temp_dir dir;
  auto spec = spec_in(dir, "env");
  spec.environment["_"] = "direct";
  spec.direct_exec = true;
  REQUIRE(run(spec).exit_code == 0);
  CHECK(read_text(dir / "task.log").find("\n_=direct\n") != std::string::npos);
  // The same command with shell syntax, or without direct_exec, goes through bash.
  for (const auto& [command, direct] : {std::pair<const char*, bool>{"env | cat", true}, {"env", false}}) {
    fs::remove(dir / "task.log");
    spec.command = command;
    spec.direct_exec = direct;
    REQUIRE(run(spec).exit_code == 0);
    const auto log = read_text(dir / "task.log");
    CHECK_MESSAGE(log.find("\n_=direct\n") == std::string::npos, command);
    CHECK_MESSAGE(log.find("_=/usr/bin/env\n") != std::string::npos, command);
  }
}

TEST_CASE("ChildProcess.DirectExecFallsBackToTheShellAsItWouldBehave") {
  temp_dir dir;
  // A script without #! (the kernel refuses it; bash runs it as a script).
  std::ofstream(dir / "no_shebang.sh") << "echo ran as a script\nexit 7\n";
  fs::permissions(dir / "no_shebang.sh", fs::perms::owner_all);
  auto spec = spec_in(dir, "./no_shebang.sh");
  spec.working_directory = dir.path().string();
  spec.direct_exec = true;
  CHECK(run(spec).exit_code == 7);
  CHECK(read_text(dir / "task.log").find("ran as a script") != std::string::npos);
  // A program on the PATH the task gets (not the scheduler's), found and run with its arguments.
  fs::create_directories(dir / "bin");
  std::ofstream(dir / "bin" / "greet") << "#!/bin/sh\necho \"hello $1\"\n";
  fs::permissions(dir / "bin" / "greet", fs::perms::owner_all);
  spec.command = "greet world";
  spec.environment["PATH"] = (dir / "bin").string() + ":/usr/bin:/bin";
  const auto r = run(spec);
  CHECK(r.exit_code == 0);
  CHECK(show(r.last_stdout_line) == "[hello world]");
  // A program that is nowhere: the shell's own message and status.
  spec.command = "no-such-program-dagrun --flag";
  CHECK(run(spec).exit_code == 127);
  CHECK(read_text(dir / "task.log").find("no-such-program-dagrun: command not found") != std::string::npos);
}
