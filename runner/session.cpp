// Shared pieces of the commands that use the store.
#include "session.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <spdlog/spdlog.h>

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

std::pair<std::optional<dag::time_point>, std::optional<dag::time_point>> flag_range(const invocation& inv) {
  std::optional<dag::time_point> start, end;
  if (inv.args.count("start")) start = parse_flag_time(inv, "start");
  if (inv.args.count("end")) end = parse_flag_time(inv, "end");
  if (start && end && *end < *start)
    throw dag::usage_error("--end " + dag::format_iso(*end) + " is before --start " + dag::format_iso(*start));
  return {start, end};
}

int default_worker_concurrency() {
  const auto cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::clamp(worker_slots_per_cpu * cpus, 16, max_threads);
}

int bounded_flag(const invocation& inv, const char* flag, int low, int high) {
  const int value = inv.args[flag].as<int>();
  if (value < low || value > high)
    throw dag::usage_error(std::string("--") + flag + ": must be between " + std::to_string(low) + " and " +
                           std::to_string(high) + ", got " + std::to_string(value));
  return value;
}

void print_task_instances(std::ostream& out, const std::vector<dag::task_instance_record>& tis,
                          const std::vector<std::string>& columns,
                          const std::function<std::vector<std::string>(const dag::task_instance_record&)>& cells) {
  const bool mapped = std::any_of(tis.begin(), tis.end(), [](const dag::task_instance_record& ti) { return ti.map_index >= 0; });
  std::vector<std::string> header{"task_id"};
  if (mapped) header.emplace_back("map_index");
  header.insert(header.end(), columns.begin(), columns.end());
  std::vector<std::vector<std::string>> rows;
  for (const auto& ti : tis) {
    std::vector<std::string> row{ti.task_id};
    if (mapped) row.push_back(ti.map_index >= 0 ? std::to_string(ti.map_index) : "");
    auto more = cells(ti);
    row.insert(row.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    rows.push_back(std::move(row));
  }
  print_table(out, header, rows);
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

std::vector<dag::shared_definition> engine_dags(const dag::dag_folder& folder, const std::string& dag_id) {
  std::vector<dag::shared_definition> out;
  for (const auto& d : folder.dags)
    if (dag_id.empty() || d->id() == dag_id) out.push_back(d);
  return out;
}

void set_alert_options(dag::engine_options& o) {
  if (const char* base = std::getenv("DAGRUN_BASE_URL"); base && *base) {
    o.base_url = base;
    while (o.base_url.ends_with('/')) o.base_url.pop_back();
  }
  o.warn = [](const std::string& line) { spdlog::warn("{}", line); };
}

dag::engine_options foreground_options(const invocation& inv, int parallelism) {
  dag::engine_options o;
  set_alert_options(o);
  o.parallelism = parallelism;
  o.log_folder = inv.global.logs;
  o.create_scheduled_runs = false;
  o.adopt_store_runs = false;
  return o;
}

std::unique_ptr<dag::executor> foreground_executor(int parallelism) {
  return std::make_unique<dag::local_executor>(parallelism);
}

}  // namespace dagrun
