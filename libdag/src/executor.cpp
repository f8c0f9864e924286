// What every executor shares: its connection to an engine, and the lost-try rule of tries that
// live in the engine's own process.
#include <dag/exec/executor.hpp>

#include <csignal>

#include <unistd.h>

#include <dag/core/error.hpp>
#include <dag/exec/orphan_processes.hpp>

namespace dag {

task_event event_of(const task_context& context) {
  task_event e;
  e.dag_id = context.dag_id;
  e.run_id = context.run_id;
  e.task_id = context.task_id;
  e.try_number = context.try_number;
  e.map_index = context.map_index;
  e.instance_start = context.start_date;
  return e;
}

void executor::connect(task_listener listener, std::function<timestamp()> now) {
  if (connected_) throw usage_error("this executor is connected to an engine already: give each engine its own");
  connected_ = true;
  listener_ = std::move(listener);
  now_ = std::move(now);
  on_connect();
}

std::vector<bool> executor::lost(const std::vector<recorded_try>& tries, const std::string& hostname, timestamp) {
  std::vector<bool> out;
  out.reserve(tries.size());
  std::vector<try_identity> orphans;
  for (const auto& t : tries) {
    // Tries of other hosts are theirs to recover when they restart; a try of another live dagrun
    // process on this host (a foreground `run`, say) is still running.
    const bool other_host = !t.hostname.empty() && t.hostname != hostname;
    const bool other_live_process = t.pid > 0 && t.pid != ::getpid() && ::kill(t.pid, 0) == 0;
    out.push_back(!other_host && !other_live_process);
    if (out.back() && t.pid > 0) orphans.push_back({t.dag_id, t.run_id, t.task_id, t.try_number, t.pid});
  }
  // A bash try of the dead process may still be running: end it before its retry can start.
  end_orphaned_tries(orphans);
  return out;
}

}  // namespace dag
