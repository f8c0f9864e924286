// Shared pieces of the commands that use the store.
#include "session.hpp"

#include <cstdio>

#include <dag/exec/local_executor.hpp>

namespace dagrun {

std::unique_ptr<dag::store> open_db(const invocation& inv) { return dag::open_store(inv.global.db); }

dag::time_point parse_flag_time(const invocation& inv, const char* flag) {
  const std::string text = inv.args[flag].as<std::string>();
  try {
    return dag::parse_time(text);
  } catch (const dag::error& e) {
    throw dag::usage_error(std::string("--") + flag + ": " + e.message());
  }
}

std::string iso(const std::optional<dag::timestamp>& t) {
  if (!t) return "";
  return dag::format_iso(std::chrono::floor<std::chrono::seconds>(*t));
}

std::vector<dag::try_record> tries_of(dag::store& db, const std::string& dag_id, const std::string& run_id,
                                      const std::string& task_id) {
  auto tries = db.tries(dag_id, run_id, task_id);
  for (const auto& ti : db.task_instances(dag_id, run_id))
    if (ti.task_id == task_id && ti.try_number > 0 && (tries.empty() || tries.back().try_number < ti.try_number))
      tries.push_back(dag::try_record_of(ti));
  return tries;
}

std::vector<std::pair<std::string, std::string>> clear_task_instances(dag::store& db, const clear_selection& which) {
  dag::run_filter filter;
  filter.dag_id = which.dag_id;
  filter.logical_from = which.logical_from;
  filter.logical_to = which.logical_to;
  dag::change_set changes;
  std::vector<std::pair<std::string, std::string>> cleared;
  for (const auto& run : db.runs(filter)) {
    if (which.run_id && run.run_id != *which.run_id) continue;
    bool any = false;
    for (auto ti : db.task_instances(which.dag_id, run.run_id)) {
      if (which.task_matches && !which.task_matches(ti.task_id)) continue;
      if (which.failed_only && ti.state != dag::task_state::failed && ti.state != dag::task_state::upstream_failed) continue;
      if (ti.state == dag::task_state::none) continue;
      const dag::task_state expected = ti.state;
      // The try number stays: the next try is counted after the ones already made (Airflow), and
      // the retries start over.
      ti.state = dag::task_state::none;
      ti.end_date.reset();
      ti.retry_at.reset();
      ti.first_start_date.reset();
      ti.cleared_tries = ti.try_number;
      ti.message.clear();
      changes.task_instances.push_back({expected, ti.try_number, ti});
      changes.xcom_deletes.push_back({ti.dag_id, ti.run_id, ti.task_id, "", ""});  // Airflow clears them too
      cleared.emplace_back(run.run_id, ti.task_id);
      any = true;
    }
    if (any) changes.runs.push_back({run.dag_id, run.run_id, run.state, dag::run_state::queued, std::nullopt, std::nullopt});
  }
  if (!which.dry_run && !changes.empty()) db.apply(changes);
  return cleared;
}

std::optional<double> seconds_between(const std::optional<dag::timestamp>& a, const std::optional<dag::timestamp>& b) {
  if (!a || !b) return std::nullopt;
  return std::chrono::duration<double>(*b - *a).count();
}

}  // namespace dagrun

#include <csignal>
#include <pthread.h>

namespace dagrun {

stop_on_signals::stop_on_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);  // used only to end the waiter
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  waiter_ = std::jthread([this, set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGUSR1) return;
      signal_.store(sig);
      source_.request_stop();
    }
  });
}

stop_on_signals::~stop_on_signals() {
  pthread_kill(waiter_.native_handle(), SIGUSR1);
  waiter_.join();
}

std::vector<dag::definition> engine_dags(const dag::dag_folder& folder, const std::string& dag_id) {
  std::vector<dag::definition> out;
  for (const auto& d : folder.dags)
    if (dag_id.empty() || d.id() == dag_id) out.push_back(d);
  return out;
}

dag::engine_options foreground_options(const invocation& inv, int parallelism) {
  dag::engine_options o;
  o.parallelism = parallelism;
  o.log_folder = inv.global.logs;
  o.create_scheduled_runs = false;
  o.adopt_store_runs = false;
  return o;
}

std::unique_ptr<dag::executor> foreground_executor(int parallelism) {
  if (parallelism < 1) throw dag::usage_error("--parallelism: must be at least 1");
  return std::make_unique<dag::local_executor>(parallelism);
}

}  // namespace dagrun
