#pragma once
/// @file The local executor: tries run on a pool of threads in this process; bash tasks as child
/// processes in their own process groups, C++ callables in-process.

#include <atomic>
#include <chrono>
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

/// Runs tries on worker threads in this process: as many as the machine has CPUs to begin with,
/// growing up to `max_threads` (the daemon's parallelism) while tries wait for a thread.
///
/// Most in-process tries take microseconds: spread over 32 threads on 2 CPUs they would cost a
/// context switch each. A try that blocks (a bash process, a sensor's poke, a callable that
/// sleeps) holds its thread, so when a queued try has waited `grow_after` with every thread busy
/// and tries have held their threads that long, a watcher thread adds a thread per such try, up
/// to `max_threads`: blocking tries still get up to `max_threads` concurrent slots, a few
/// milliseconds later. (A waiting queue alone is not enough: on a loaded machine, threads that
/// run microsecond tries are merely not scheduled for a while.) Added threads stay until the
/// executor stops.
class local_executor final : public executor {
public:
  /// How long a queued try waits with every thread busy before the pool grows.
  static constexpr std::chrono::milliseconds grow_after{2};

  /// A pool of at most `max_threads` workers (at least 1). With a spool folder, ends the store
  /// could not take are written there (`hold`) until recorded, and the ends a previous process
  /// left there are reported again when the executor is connected to its engine, before anything
  /// else.
  explicit local_executor(int max_threads, end_spool_options spool = {});
  /// The threads the pool has now (for tests and benchmarks).
  int threads();
  /// Stops the pool; running tries are cancelled and waited for.
  ~local_executor() override;
  local_executor(const local_executor&) = delete;
  local_executor& operator=(const local_executor&) = delete;

  /// `LocalExecutor`: tries run in this process's threads (bash tasks as its children), as
  /// Airflow's LocalExecutor runs them beside its scheduler.
  std::string name() const override { return "LocalExecutor"; }
  /// Queues a try; `flush` wakes threads for it.
  void submit(task_request request) override;
  /// Wakes a sleeping thread for each try queued since the last flush, less one for a thread that
  /// is watching for work (it takes a try without a wake-up; counted once per watch).
  void flush() override;
  /// Asks every running try to stop, and takes every queued one off the queue, reporting it failed
  /// without running it (as `cancel` does); tries submitted afterwards run as usual.
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
  /// Grows the pool while queued tries wait with every thread busy (see the class comment).
  void watch(std::stop_token stop);
  /// Adds one worker; under mutex_.
  void add_thread();
  /// Tries wait and no thread is free to take them; under mutex_.
  bool starved() const { return !queue_.empty() && busy_ >= live_; }
  struct queued_try;
  /// Reports tries taken off the queue before they started as failed, without running them.
  void report_unstarted(const std::deque<queued_try>& tries);
  /// Spools one end as its try ends (during an outage), on the try's thread.
  void spool_now(const task_event& e) noexcept;

  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::condition_variable idle_;
  struct queued_try {
    task_request request;
    std::chrono::steady_clock::time_point since;  // when it was queued
  };
  std::deque<queued_try> queue_;
  // queue_.size(), written under mutex_: a thread watching for work before it sleeps reads it
  // without the lock (detail::spin_until).
  std::atomic<std::size_t> queued_{0};
  bool spinning_ = false;  // a thread is watching for work (at most one); under mutex_
  bool spinner_counted_ = false;  // a flush counted on the watching thread for one try; under mutex_
  int sleeping_ = 0;       // threads blocked on wake_; under mutex_
  int busy_ = 0;   // threads running a try
  std::size_t reporting_ = 0;  // tries taken off the queue unstarted whose ends are being reported
  int live_ = 0;   // threads started (threads_.size(), readable by the workers under mutex_)
  int max_threads_ = 1;
  std::condition_variable_any watch_;  // wakes the watcher
  bool watching_ = false;              // the watcher is timing a starved queue (no need to wake it)
  std::size_t unannounced_ = 0;
  std::stop_source cancel_;
  struct running_try {
    std::stop_source stop;                         // its own stop
    std::chrono::steady_clock::time_point since;  // when it started
  };
  std::map<std::string, running_try> running_;  // by try_text
  std::vector<std::jthread> threads_;
  std::jthread watcher_;  // only when the pool may grow
  std::unique_ptr<detail::end_spool> spool_;  // null without a spool folder
  std::mutex spool_mutex_;  // guards *spool_: the engine's thread uses it, and during an outage the try threads
  // The engine could not record ends lately (`hold` was called, and no pass succeeded since):
  // each end is spooled as its try ends, not only once the engine hands it back.
  std::atomic<bool> outage_{false};
};

}  // namespace dag
