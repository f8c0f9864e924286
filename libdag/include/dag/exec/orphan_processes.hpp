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
  int owner_pid = 0;    ///< DAGRUN_OWNER_PID: the dagrun process that ran the try
};

/// True when process `pid` has ended: it does not exist, or it is a zombie its parent has not
/// reaped yet.
bool process_ended(int pid);

/// Sends SIGKILL to every process group on this machine whose leader (a try's shell) names one of
/// `tries` in its environment, its owner included — never this process's own group, and never a
/// process of another user or pid namespace (not readable, or not comparable). Returns how many
/// groups were signalled.
std::size_t end_orphaned_tries(const std::vector<try_identity>& tries);

/// Sends SIGKILL to every process group whose leader's `DAGRUN_OWNER_PID` names a dagrun process
/// that no longer exists (a worker killed with kill -9 leaves its tries' processes behind; their
/// tries were re-queued when the lease ran out). Same limits as above. Returns how many groups.
std::size_t end_orphans_of_dead_workers();

}  // namespace dag
