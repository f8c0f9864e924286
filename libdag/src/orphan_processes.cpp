// Orphaned tries: processes are matched by the DAGRUN_* variables in /proc/PID/environ, which a
// process cannot lose by forking or exec'ing, rather than by a recorded pid that may be reused.
#include <dag/exec/orphan_processes.hpp>

#include <algorithm>
#include <csignal>
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
         has("DAGRUN_TRY_NUMBER=" + std::to_string(t.try_number));
}

}  // namespace

std::size_t end_orphaned_tries(const std::vector<try_identity>& tries) {
  if (tries.empty()) return 0;
  const pid_t own_group = ::getpgrp();
  std::set<pid_t> groups;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto vars = dagrun_variables(entry.path() / "environ");
    if (vars.empty()) continue;
    for (const auto& t : tries) {
      if (!names(vars, t)) continue;
      const pid_t group = ::getpgid(static_cast<pid_t>(std::stol(name)));
      if (group > 1 && group != own_group) groups.insert(group);
    }
  }
  for (pid_t g : groups) ::kill(-g, SIGKILL);
  return groups.size();
}

}  // namespace dag
