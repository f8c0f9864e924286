// Orphaned tries: processes are matched by the DAGRUN_* variables in /proc/PID/environ, which a
// process cannot lose by forking or exec'ing, rather than by a recorded pid that may be reused.
#include <dag/exec/orphan_processes.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include <unistd.h>

namespace dag {
namespace {

// The DAGRUN_* entries of a process's environment; empty when it cannot be read (gone, not ours).
std::vector<std::string> dagrun_variables(const std::filesystem::path& environ_file) {
  std::ifstream in(environ_file, std::ios::binary);
  const std::string all{std::istreambuf_iterator<char>(in), {}};
  std::vector<std::string> out;
  for (std::size_t start = 0; start < all.size();) {
    const std::size_t end = std::min(all.find('\0', start), all.size());
    if (all.compare(start, 7, "DAGRUN_") == 0) out.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool names(const std::vector<std::string>& vars, const try_identity& t) {
  auto has = [&](const std::string& entry) { return std::find(vars.begin(), vars.end(), entry) != vars.end(); };
  return has("DAGRUN_DAG_ID=" + t.dag_id) && has("DAGRUN_RUN_ID=" + t.run_id) && has("DAGRUN_TASK_ID=" + t.task_id) &&
         has("DAGRUN_TRY_NUMBER=" + std::to_string(t.try_number)) && has("DAGRUN_OWNER_PID=" + std::to_string(t.owner_pid));
}

// Signals the process group of every process whose DAGRUN_* variables `matches` accepts, except
// this process's own group; returns how many groups.
std::size_t end_groups_where(const std::function<bool(const std::vector<std::string>&)>& matches) {
  const pid_t own_group = ::getpgrp();
  std::error_code ec;
  const auto own_namespace = std::filesystem::read_symlink("/proc/self/ns/pid", ec);
  if (ec) return 0;  // cannot tell namespaces apart: do nothing rather than guess
  std::set<pid_t> groups;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.size() > 9 || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto pid = static_cast<pid_t>(std::stol(name));
    // Only a group leader counts: a try's shell leads its own group, while a process that merely
    // inherited the variables (a dagrun started from a task, say) does not.
    if (::getpgid(pid) != pid || pid == own_group || pid <= 1) continue;
    std::error_code ns_ec;
    if (std::filesystem::read_symlink(entry.path() / "ns" / "pid", ns_ec) != own_namespace || ns_ec) continue;
    const auto vars = dagrun_variables(entry.path() / "environ");
    if (!vars.empty() && matches(vars)) groups.insert(pid);
  }
  for (pid_t g : groups) ::kill(-g, SIGKILL);
  return groups.size();
}

}  // namespace

bool process_ended(int pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  const std::string text{std::istreambuf_iterator<char>(stat), {}};
  const auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z';
}

std::size_t end_orphaned_tries(const std::vector<try_identity>& tries) {
  if (tries.empty()) return 0;
  return end_groups_where([&](const std::vector<std::string>& vars) {
    return std::any_of(tries.begin(), tries.end(), [&](const try_identity& t) { return names(vars, t); });
  });
}

std::size_t end_orphans_of_dead_workers() {
  const std::string prefix = "DAGRUN_OWNER_PID=";
  return end_groups_where([&](const std::vector<std::string>& vars) {
    for (const auto& v : vars) {
      if (!v.starts_with(prefix)) continue;
      const long worker = std::strtol(v.c_str() + prefix.size(), nullptr, 10);
      // Gone (ESRCH) or a zombie means dead; a live process, even one that reused the pid, is left alone.
      return worker > 0 && process_ended(static_cast<int>(worker));
    }
    return false;
  });
}

}  // namespace dag
