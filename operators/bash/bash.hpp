#pragma once
/// @file The bash operator: runs a shell command in its own process group.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <system_error>

#include <dag/core/error.hpp>
#include <dag/core/operator.hpp>
#include <dag/core/task.hpp>
#include <dag/exec/child_process.hpp>

namespace dag::operators {

/// `operator: bash` — runs `bash_command` with `bash -c` in its own process group, stdout and
/// stderr into the try's log (a command of plain words, such as `./report.sh 2024-01-01`, is
/// executed directly: one exec instead of two; see dag::plain_command_words); exit 0 is success, 99 skipped, anything else a failed try. The last
/// line of stdout goes to XCom. `execution_timeout` kills the whole group (SIGTERM, then SIGKILL).
///
/// Keyed XComs (Airflow's `ti.xcom_push(key=..., value=...)`): the command may append lines
/// `KEY=VALUE` to the file `$DAGRUN_XCOM_FILE`; after a successful try each line pushes VALUE
/// (the rest of the line, kept as written) under KEY, a later line winning. A file rather than
/// stdout, so that no output of the command's programs is ever taken for a push.
struct bash {
  /// Fields: `bash_command` (templated, required), `env` (extra environment), `cwd`.
  static operator_spec spec() {
    return {"bash",
            {{"bash_command", field_kind::templated, true, {}, {".sh", ".bash"}},
             {"env", field_kind::string_map, false},
             {"cwd", field_kind::templated, false}},
            true,
            &run};
  }

  /// Runs one try.
  static operator_result run(const task&, task_context& ctx) {
    process_spec p;
    p.command = ctx.fields.at("bash_command");
    p.environment = try_environment(ctx);
    const std::string env_prefix = "env.";
    for (const auto& [name, value] : ctx.fields)
      if (name.starts_with(env_prefix)) p.environment[name.substr(env_prefix.size())] = value;
    if (auto cwd = ctx.fields.find("cwd"); cwd != ctx.fields.end()) p.working_directory = cwd->second;
    p.log_file = ctx.log_path;
    p.timeout = ctx.timeout;
    p.secrets = ctx.secrets;
    p.direct_exec = true;
    p.log_on_first_output = true;
    const xcom_file pushes;
    p.environment["DAGRUN_XCOM_FILE"] = pushes.path().string();
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
      std::string bad_line;
      out.keyed_xcoms = pushes.read(bad_line);
      if (!bad_line.empty()) {
        out.outcome = try_outcome::failed;
        out.message = "bad line in $DAGRUN_XCOM_FILE (expected KEY=VALUE): " + bad_line;
      }
      if (auto rv = out.keyed_xcoms.find("return_value"); rv != out.keyed_xcoms.end()) {
        out.xcom = rv->second;
        out.keyed_xcoms.erase(rv);
      }
    } else if (r.exit_code == 99) {
      out.outcome = try_outcome::skipped;
      out.message = "exit status 99: skipped";
    } else {
      out.outcome = try_outcome::failed;
      out.message = "exit status " + std::to_string(r.exit_code);
    }
    // The output could not be kept: the try is not a success whose log is silently missing.
    if (!r.log_error.empty()) {
      const std::string ended = out.outcome == try_outcome::success ? "succeeded" : "ended: " + out.message;
      out.outcome = try_outcome::failed;
      out.message = r.log_error + " (the command " + ended + ")";
      out.xcom.reset();
      out.keyed_xcoms.clear();
    }
    if (ctx.log && !out.message.empty()) ctx.log("[dagrun] " + out.message);
    return out;
  }

private:
  /// The path of one try's pushes: `try-N` in a folder of this process's own,
  /// `dagrun-xcom-BOOT-NS-PID-XXXXXX` in the temporary folder (mode 0700, made once). The file is
  /// not made for the try — the command's first `>>` makes it — so a try that pushes nothing costs
  /// no new file; it is removed when the try is over. The folder's name names the process that
  /// owns it (PID in the pid namespace NS of the kernel boot BOOT): one killed (kill -9) removes
  /// nothing, so a later try of any dagrun process of that boot and namespace removes the folders
  /// (and the files of older versions) of owners that are gone. The boot id keeps machines that
  /// share a temporary folder (NFS, a volume) apart: the host's pid namespace has the same inode
  /// on every kernel.
  class xcom_file {
  public:
    xcom_file() {
      static std::atomic<std::uint64_t> tries{0};
      const std::filesystem::path temp = std::filesystem::temp_directory_path();
      remove_orphans(temp);
      path_ = folder(temp) / ("try-" + std::to_string(++tries));
    }
    ~xcom_file() { ::unlink(path_.c_str()); }
    xcom_file(const xcom_file&) = delete;
    xcom_file& operator=(const xcom_file&) = delete;

    const std::filesystem::path& path() const { return path_; }

    /// The pushes, by key; `bad` gets the first line that is not `KEY=VALUE` (KEY a name).
    std::map<std::string, std::string> read(std::string& bad) const {
      std::map<std::string, std::string> out;
      std::ifstream in(path_);  // none: nothing was pushed
      for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        const std::size_t eq = line.find('=');
        const std::string key = line.substr(0, eq);
        const bool valid_key = eq != std::string::npos && !key.empty() &&
                               std::all_of(key.begin(), key.end(), [](char c) {
                                 return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
                               });
        if (!valid_key) {
          if (bad.empty()) bad = line.substr(0, 200);
          continue;
        }
        out[key] = line.substr(eq + 1);
      }
      return out;
    }

  private:
    /// True when `path` is the very folder made (`made`: its device and inode, which the open
    /// descriptor kept of it stops from being reused), not a symlink, owned by this user and
    /// closed to everyone else: a cleaner of the temporary folder may remove ours, and another
    /// user may then make one of the same (public) name.
    static bool still_ours(const std::string& path, const struct stat& made) {
      struct stat at{};
      return ::lstat(path.c_str(), &at) == 0 && S_ISDIR(at.st_mode) && at.st_dev == made.st_dev &&
             at.st_ino == made.st_ino && at.st_uid == ::geteuid() && (at.st_mode & 077) == 0;
    }

    /// This process's folder in `temp`, made on first use and again if it is no longer ours (see
    /// still_ours) or the temporary folder changed (TMPDIR). A folder left behind stays (a try may
    /// still be about to push there); the orphan sweep of a later process removes it.
    static std::filesystem::path folder(const std::filesystem::path& temp) {
      struct owned {
        std::mutex mutex;
        std::string path;
        std::filesystem::path made_in;
        int fd = -1;          // the folder, held open so that its inode is not reused
        struct stat made{};   // its device and inode: what the path must still name
        // At a normal exit the folder goes too; rmdir keeps a file a try still writes.
        ~owned() {
          if (!path.empty() && still_ours(path, made)) ::rmdir(path.c_str());
          if (fd >= 0) ::close(fd);
        }
      };
      static owned f;
      std::lock_guard lock(f.mutex);
      if (f.path.empty() || f.made_in != temp || !still_ours(f.path, f.made)) {
        std::string pattern = (temp / (owner_prefix() + std::to_string(::getpid()) + "-XXXXXX")).string();
        if (::mkdtemp(pattern.data()) == nullptr) {
          const int e = errno;
          throw error("cannot create the XCom folder in " + temp.string() + ": " + std::system_category().message(e));
        }
        const int fd = ::open(pattern.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat made{};
        if (fd < 0 || ::fstat(fd, &made) != 0) {
          const int e = errno;
          if (fd >= 0) ::close(fd);
          throw error("cannot open the XCom folder " + pattern + ": " + std::system_category().message(e));
        }
        if (f.fd >= 0) ::close(f.fd);
        f.made = made;
        f.fd = fd;
        f.path = pattern;
        f.made_in = temp;
      }
      return f.path;
    }

    /// `dagrun-xcom-BOOT-NS-`: BOOT this kernel boot's id, NS the inode of this process's pid
    /// namespace (each `0` when unknown): a pid means something only within its namespace of one
    /// boot of one machine.
    static const std::string& owner_prefix() {
      static const std::string prefix = [] {
        const auto digits_of = [](const std::string& text, bool hex) {
          std::string out;
          for (const char c : text)
            if ((hex ? std::isxdigit(static_cast<unsigned char>(c)) : std::isdigit(static_cast<unsigned char>(c))) != 0)
              out += c;
          return out.empty() ? std::string("0") : out;
        };
        std::string boot;
        std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;  // 36 characters, a UUID
        std::error_code ec;
        const std::string ns = std::filesystem::read_symlink("/proc/self/ns/pid", ec).string();  // pid:[4026531836]
        return "dagrun-xcom-" + digits_of(boot.substr(0, 36), true) + "-" + digits_of(ns, false) + "-";
      }();
      return prefix;
    }

    /// Removes the XCom folders (and older versions' files) whose owner process is gone, at most
    /// once a minute per process (a look through the temporary folder).
    static void remove_orphans(const std::filesystem::path& folder) {
      static std::atomic<std::int64_t> last_look{0};  // steady-clock seconds; 0: never
      const std::int64_t now =
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count() + 1;
      std::int64_t before = last_look.load();
      if ((before != 0 && now - before < 60) || !last_look.compare_exchange_strong(before, now)) return;
      const std::string& prefix = owner_prefix();
      if (prefix.starts_with("dagrun-xcom-0-") || prefix.ends_with("-0-")) return;  // owners cannot be told apart: leave all
      std::error_code ec;
      for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.starts_with(prefix)) continue;
        const std::size_t dash = name.find('-', prefix.size());
        const std::string pid = name.substr(prefix.size(), dash == std::string::npos ? 0 : dash - prefix.size());
        if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
        // Only a pid that names no process: a live one (even another user's) keeps its file.
        if (::kill(static_cast<pid_t>(std::stol(pid)), 0) == 0 || errno != ESRCH) continue;
        // Only what this user made (a folder, or an older version's file), never through a link.
        struct stat st{};
        if (::lstat(it->path().c_str(), &st) != 0 || st.st_uid != ::geteuid() || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)))
          continue;
        std::error_code ignored;
        std::filesystem::remove_all(it->path(), ignored);
      }
    }

    std::filesystem::path path_;
  };
};

}  // namespace dag::operators
