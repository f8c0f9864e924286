#pragma once
// An engine over a scratch SQLite store and log folder, with a clock the test moves: how operator
// tests run their tries through the real engine.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <unistd.h>

#include <doctest/doctest.h>

#include <dag/engine/engine.hpp>
#include <dag/load/check.hpp>
#include <dag/operators/builtin.hpp>

namespace dag_test {

/// A clock the test sets; tries read it from executor threads, hence atomic.
struct moving_clock final : dag::clock {
  std::atomic<std::int64_t> seconds;
  explicit moving_clock(std::string_view iso) : seconds(dag::parse_time(iso).time_since_epoch().count()) {}
  dag::time_point now() const override { return dag::time_point(std::chrono::seconds(seconds.load())); }
  void set(dag::time_point t) { seconds = t.time_since_epoch().count(); }
};

/// A scratch folder with a store, a log folder and the built-in operators; removed at the end.
struct engine_sandbox {
  std::filesystem::path dir;
  std::unique_ptr<dag::store> db;
  dag::operator_catalog operators = dag::builtin_operators();
  moving_clock clock{"2024-06-01T00:00:00Z"};

  explicit engine_sandbox(const std::string& name) {
    static std::atomic<int> n{0};
    dir = std::filesystem::temp_directory_path() /
          ("dagrun-" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    db = dag::open_store("sqlite:" + (dir / "dagrun.db").string());
  }
  ~engine_sandbox() { std::filesystem::remove_all(dir); }
  engine_sandbox(const engine_sandbox&) = delete;
  engine_sandbox& operator=(const engine_sandbox&) = delete;

  /// Options of an engine that runs the runs it is given (and those its tries trigger).
  dag::engine_options options(int parallelism = 4) const {
    dag::engine_options o;
    o.parallelism = parallelism;
    o.log_folder = dir / "logs";
    o.create_scheduled_runs = false;
    o.adopt_store_runs = false;
    return o;
  }
  /// `d` checked, every problem a test failure.
  dag::definition checked(dag::definition d) const {
    for (const auto& p : dag::check(d, operators)) FAIL_CHECK(p.what());
    return d;
  }
  /// A task instance of a run as the store has it.
  dag::task_instance_record ti(const dag::run_key& k, const std::string& task_id) const {
    for (auto& t : db->task_instances(k.dag_id, k.run_id))
      if (t.task_id == task_id) return t;
    return {};
  }
  /// The log of the latest try of a task instance ("" when none yet).
  std::string log_of(const dag::run_key& k, const std::string& task_id) const {
    const auto t = ti(k, task_id);
    std::ifstream in(t.log_path);
    return {std::istreambuf_iterator<char>(in), {}};
  }
};

}  // namespace dag_test
