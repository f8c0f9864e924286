#pragma once
/// @file Finding the processes a dead dagrun left running: after kill -9 (or a power cut of the
/// daemon alone), a bash try's process group outlives the process that waited for it. Recovery
/// records the try as lost and ends these groups, so a retry never runs beside its orphan.

#include <string>
#include <vector>

namespace dag {

/// Identifies one try as its processes see it: the `DAGRUN_*` variables every bash task gets.
struct try_identity {
  std::string dag_id;   ///< DAGRUN_DAG_ID
  std::string run_id;   ///< DAGRUN_RUN_ID
  std::string task_id;  ///< DAGRUN_TASK_ID
  int try_number = 0;   ///< DAGRUN_TRY_NUMBER
};

/// Sends SIGKILL to the process group of every process on this machine (readable in /proc, so
/// this user's) whose environment names one of `tries`, except this process's own group.
/// Returns how many groups were signalled.
std::size_t end_orphaned_tries(const std::vector<try_identity>& tries);

/// Sends SIGKILL to the process group of every process whose `DAGRUN_WORKER_PID` names a queue
/// worker that no longer exists (a worker killed with kill -9 leaves its tries' processes behind;
/// their tries were re-queued when the lease ran out). Returns how many groups were signalled.
std::size_t end_orphans_of_dead_workers();

}  // namespace dag
