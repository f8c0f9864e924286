// Embedding the engine on a thread of its own: a std::jthread drives the engine loop
// (engine::run_until) while main waits on a condition variable for what the tasks report and for
// the run's end, as a program with its own work on the main thread would. Prints each report as
// main sees it and each task's state; exits 0 if and only if the run succeeded.
#include <chrono>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <dag/operators/builtin.hpp>
#include <dag/dag.hpp>
#include <dag/engine/engine.hpp>
#include <dag/store/store.hpp>

namespace {

using namespace std::chrono_literals;

// What the engine's side tells main: reports from the tasks (executor threads) and the run's end
// (the loop thread). Guarded by `mutex`; `changed` wakes main.
struct progress {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> reports;
  std::optional<dag::run_state> final_state;
  std::string run_id;

  // Called by tasks on executor threads.
  void report(std::string line) {
    {
      std::lock_guard lock(mutex);
      reports.push_back(std::move(line));
    }
    changed.notify_all();
  }
};

dag::definition make_dag(progress& p) {
  dag::definition d{"embedded_background"};
  auto fetch = d.callable("fetch", [&p](dag::task_context& ctx) {
    p.report(ctx.task_id + ": fetched 2 files");
    return dag::operator_result::success("2");
  });
  auto resize = d.callable("resize", [&p](dag::task_context& ctx) {
    p.report(ctx.task_id + ": resized images");
    return dag::operator_result::success();
  });
  auto index = d.callable("index", [&p](dag::task_context& ctx) {
    p.report(ctx.task_id + ": indexed metadata");
    return dag::operator_result::success();
  });
  auto notify = d.bash("notify", "echo {{ ti.xcom_pull('fetch') }} files done in {{ run_id }}");
  fetch >> dag::tasks{resize, index} >> notify;
  return d;
}

}  // namespace

int main() {
  progress p;
  const dag::operator_catalog operators = dag::builtin_operators();
  dag::definition d = make_dag(p);
  if (auto problems = dag::check(d, operators); !problems.empty()) {
    for (const auto& problem : problems) std::cerr << problem.what() << "\n";
    return 2;
  }

  namespace fs = std::filesystem;
  const fs::path scratch = fs::temp_directory_path() / ("dagrun-background-" + std::to_string(::getpid()));
  fs::create_directories(scratch);
  bool succeeded = false;
  {
    // The store and the engine belong to the loop thread while it runs (neither is thread-safe);
    // main reads the store only after joining it.
    auto store = dag::open_store("sqlite:" + (scratch / "dagrun.db").string());
    dag::system_clock clock;
    std::jthread loop([&](std::stop_token stop) {
      std::optional<dag::run_state> state;
      std::string run_id;
      try {
        dag::engine_options options;
        options.log_folder = scratch / "logs";
        options.create_scheduled_runs = false;
        options.adopt_store_runs = false;
        dag::engine eng(*store, operators, clock, options);
        eng.set_dags({d});
        if (const auto key = eng.create_run(d.id(), dag::run_type::manual, clock.now())) {
          // Done once the engine stops tracking the run (it ended) and no try is still running.
          eng.run_until([&] { return !eng.tracking(*key) && eng.running() == 0; }, stop);
          // Stopped early: let running tries end (or cancel them) before the engine goes away.
          if (stop.stop_requested()) eng.shutdown(5s);
          state = eng.state_of(*key);
          run_id = key->run_id;
        }
      } catch (const std::exception& e) {
        std::cerr << "engine: " << e.what() << "\n";  // main must hear of the end all the same
      }
      {
        std::lock_guard lock(p.mutex);
        p.run_id = run_id;
        p.final_state = state.value_or(dag::run_state::failed);
      }
      p.changed.notify_all();
    });

    // Main's side: show each report as it arrives, until the run ends or a minute has passed.
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    std::unique_lock lock(p.mutex);
    std::size_t shown = 0;
    while (!p.final_state) {
      const bool woke = p.changed.wait_until(lock, deadline, [&] { return p.final_state || p.reports.size() > shown; });
      for (; shown < p.reports.size(); ++shown) std::cout << "main saw: " << p.reports[shown] << "\n";
      if (!woke) {
        std::cerr << "the run did not end within a minute; stopping the engine\n";
        loop.request_stop();
        p.changed.wait(lock, [&] { return p.final_state.has_value(); });
      }
    }
    for (; shown < p.reports.size(); ++shown) std::cout << "main saw: " << p.reports[shown] << "\n";
    const dag::run_state state = *p.final_state;
    const std::string run_id = p.run_id;
    lock.unlock();
    loop.join();

    for (const auto& ti : store->task_instances(d.id(), run_id))
      std::cout << ti.task_id << ": " << dag::to_string(ti.state) << "\n";
    std::cout << "run " << run_id << ": " << dag::to_string(state) << "\n";
    succeeded = state == dag::run_state::success;
  }
  fs::remove_all(scratch);
  return succeeded ? 0 : 1;
}
