#pragma once
/// @file The local executor: tries run on a pool of threads in this process; bash tasks as child
/// processes in their own process groups, C++ callables in-process.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <mutex>
#include <thread>
#include <vector>

#include <dag/exec/executor.hpp>

namespace dag {

namespace detail {
class end_spool;
}

/// Where a local executor keeps the ends of tries the store could not take yet, so that they
/// survive a restart of its process (see docs/reliability.md).
struct end_spool_options {
  std::filesystem::path folder;             ///< one file per end in it; empty: ends are held in memory only
  std::size_t max_entries = 10000;          ///< at most this many ends
  std::uintmax_t max_bytes = 64u << 20;     ///< in at most this many bytes of files (64 MiB)
};

/// Runs one try on this thread, as the local executor and `dagrun test` do. A try whose fields
/// could not be rendered, or whose operator cannot run in this build, fails without running; an
/// exception escaping the operator fails it with its message; an in-process operator that overran
/// `execution_timeout` fails when it returns. Lines the try writes through `context.log` (set it
/// to the raw sink) and the result's message have the try's secrets masked. `now` stamps the
/// start and the end.
task_event run_try(task_request& request, const std::function<timestamp()>& now);

/// Runs tries on `threads` worker threads (the daemon's parallelism), in this process.
class local_executor final : public executor {
public:
  /// A pool of `threads` workers (at least 1). With a spool folder, ends the store could not take
  /// are written there (`hold`) until recorded, and the ends a previous process left there are
  /// reported again when the executor is connected to its engine, before anything else.
  explicit local_executor(int threads, end_spool_options spool = {});
  /// Stops the pool; running tries are cancelled and waited for.
  ~local_executor() override;
  local_executor(const local_executor&) = delete;
  local_executor& operator=(const local_executor&) = delete;

  /// `LocalExecutor`: tries run in this process's threads (bash tasks as its children), as
  /// Airflow's LocalExecutor runs them beside its scheduler.
  std::string name() const override { return "LocalExecutor"; }
  /// Queues a try; `flush` wakes threads for it.
  void submit(task_request request) override;
  /// Wakes as many threads as tries were queued since the last flush.
  void flush() override;
  /// Requests every queued and running try to stop.
  void cancel_all() override;
  /// Stops one running try, or takes it off the queue (reporting it failed) before it starts.
  void cancel(const try_id& which) override;
  /// Waits until nothing is queued or running.
  void drain() override;
  /// Writes each end to the spool (when it has one); says why when one could not be. Until the
  /// next `recorded`, ends are spooled as their tries end, too.
  std::string hold(const std::vector<task_event>& events) noexcept override;
  /// Removes these ends from the spool (a pass was written: the outage is over).
  void recorded(const std::vector<task_event>& events) noexcept override;

private:
  void on_connect() override;
  void work(std::stop_token pool_stop);
  /// Spools one end as its try ends (during an outage), on the try's thread.
  void spool_now(const task_event& e) noexcept;

  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::condition_variable idle_;
  std::deque<task_request> queue_;
  int busy_ = 0;
  std::size_t unannounced_ = 0;
  std::stop_source cancel_;
  std::map<std::string, std::stop_source> running_;  // each running try's own stop, by try_text
  std::vector<std::jthread> threads_;
  std::unique_ptr<detail::end_spool> spool_;  // null without a spool folder
  std::mutex spool_mutex_;  // guards *spool_: the engine's thread uses it, and during an outage the try threads
  // The engine could not record ends lately (`hold` was called, and no pass succeeded since):
  // each end is spooled as its try ends, not only once the engine hands it back.
  std::atomic<bool> outage_{false};
};

}  // namespace dag
