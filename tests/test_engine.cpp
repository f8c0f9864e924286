// The engine end to end: a real SQLite file, real child processes, an injected clock.
#include <doctest/doctest.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <set>
#include <stdexcept>
#include <mutex>
#include <optional>
#include <chrono>
#include <thread>

#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <dag/operators/builtin.hpp>
#include <dag/engine/engine.hpp>
#include <dag/exec/local_executor.hpp>
#include <dag/exec/orphan_processes.hpp>
#include <dag/load/check.hpp>
#include <dag/load/yaml_loader.hpp>
#include <dag/model/operations.hpp>

#include "support/eventually.hpp"
#include "support/forwarding_store.hpp"
#include "support/held_write_lock.hpp"

using namespace std::chrono_literals;
using dag::task_state;
using dag_test::eventually;

namespace {

struct fixed_clock final : dag::clock {
  dag::time_point at;
  explicit fixed_clock(std::string_view iso) : at(dag::parse_time(iso)) {}
  dag::time_point now() const override { return at; }
};

// A scratch folder with a store and a log folder, removed at the end.
struct sandbox {
  std::filesystem::path dir;
  std::unique_ptr<dag::store> db;
  dag::operator_catalog operators = dag::builtin_operators();
  fixed_clock clock{"2024-06-01T00:00:00Z"};

  sandbox() {
    static int n = 0;
    dir = std::filesystem::temp_directory_path() / ("dagrun-engine-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    db = dag::open_store("sqlite:" + (dir / "dagrun.db").string());
  }
  ~sandbox() { std::filesystem::remove_all(dir); }

  dag::engine_options options(bool daemon = false) const {
    dag::engine_options o;
    o.parallelism = 4;
    o.log_folder = dir / "logs";
    o.create_scheduled_runs = daemon;
    o.adopt_store_runs = daemon;
    return o;
  }
  dag::definition checked(dag::definition d) const {
    auto problems = dag::check(d, operators);
    for (const auto& p : problems) FAIL_CHECK(p.what());
    return d;
  }
  // Runs `d` once to its end; returns the run's key.
  dag::run_key run(dag::definition d, dag::run_state expected) {
    dag::engine eng(*db, operators, clock, options());
    const std::string id = d.id();
    eng.set_dags({checked(std::move(d))});
    auto key = eng.create_run(id, dag::run_type::manual, dag::parse_time("2024-01-01"));
    REQUIRE(key);
    auto states = eng.run_to_completion({*key});
    CHECK(states.front() == expected);
    return *key;
  }
  std::map<std::string, dag::task_instance_record> tis(const dag::run_key& k) {
    std::map<std::string, dag::task_instance_record> out;
    for (auto& ti : db->task_instances(k.dag_id, k.run_id)) out[ti.task_id] = ti;
    return out;
  }
  std::string read(const std::filesystem::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), {}};
  }
};

}  // namespace

TEST_CASE("Engine.DiamondWithFailingBranchFollowsTriggerRules") {
  sandbox s;
  dag::definition d{"diamond"};
  auto start = d.bash("start", "true");
  auto ok = d.bash("ok", "true");
  auto bad = d.bash("bad", "exit 3");
  auto join = d.bash("join", "true");
  auto all_done = d.bash("cleanup", "true").trigger(dag::trigger_rule::all_done);
  auto alert = d.bash("alert", "true").trigger(dag::trigger_rule::one_failed);
  start >> dag::tasks{ok, bad};
  dag::tasks{ok, bad} >> join;
  dag::tasks{ok, bad} >> all_done;
  dag::tasks{ok, bad} >> alert;
  auto key = s.run(std::move(d), dag::run_state::failed);
  auto tis = s.tis(key);
  CHECK(tis["start"].state == task_state::success);
  CHECK(tis["ok"].state == task_state::success);
  CHECK(tis["bad"].state == task_state::failed);
  CHECK(tis["bad"].exit_code == 3);
  CHECK(tis["join"].state == task_state::upstream_failed);
  CHECK(tis["cleanup"].state == task_state::success);
  CHECK(tis["alert"].state == task_state::success);
}

TEST_CASE("Engine.FailedTryIsRetriedAndEachTryKeepsItsLog") {
  sandbox s;
  dag::definition d{"flaky"};
  d.bash("flaky", "echo \"try $DAGRUN_TRY_NUMBER\"; [ \"$DAGRUN_TRY_NUMBER\" -ge 2 ]").retries(2).retry_delay(0s);
  auto key = s.run(std::move(d), dag::run_state::success);
  auto tis = s.tis(key);
  CHECK(tis["flaky"].state == task_state::success);
  CHECK(tis["flaky"].try_number == 2);
  auto tries = s.db->tries(key.dag_id, key.run_id, "flaky");
  REQUIRE(tries.size() == 2);
  CHECK(tries[0].state == task_state::up_for_retry);
  CHECK(tries[0].exit_code == 1);
  CHECK(tries[1].state == task_state::success);
  CHECK(tries[0].log_path != tries[1].log_path);
  CHECK(s.read(tries[0].log_path) == "try 1\n[dagrun] exit status 1\n");
  CHECK(s.read(tries[1].log_path) == "try 2\n");
}

TEST_CASE("Engine.ExitNinetyNineSkipsAndTheSkipCascades") {
  sandbox s;
  dag::definition d{"skips"};
  auto a = d.bash("a", "exit 99");
  auto b = d.bash("b", "true");
  auto c = d.bash("c", "true");
  a >> b >> c;
  auto key = s.run(std::move(d), dag::run_state::success);
  auto tis = s.tis(key);
  CHECK(tis["a"].state == task_state::skipped);
  CHECK(tis["b"].state == task_state::skipped);
  CHECK(tis["c"].state == task_state::skipped);
  CHECK(tis["b"].try_number == 0);  // never ran
}

TEST_CASE("Engine.ExecutionTimeoutKillsTheWholeProcessGroup" * doctest::timeout(60)) {
  sandbox s;
  const auto pidfile = s.dir / "grandchild.pid";
  dag::definition d{"slow"};
  d.bash("slow", "sleep 30 & echo $! > " + pidfile.string() + "; wait").execution_timeout(1s);
  auto key = s.run(std::move(d), dag::run_state::failed);
  auto tis = s.tis(key);
  CHECK(tis["slow"].state == task_state::failed);
  CHECK(tis["slow"].message.find("execution_timeout") != std::string::npos);
  std::ifstream in(pidfile);
  pid_t grandchild = 0;
  in >> grandchild;
  REQUIRE(grandchild > 0);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!dag::process_ended(grandchild) && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  CHECK(dag::process_ended(grandchild));
}

TEST_CASE("Engine.TemplatesRenderAndXComFlowsBetweenTasks") {
  sandbox s;
  ::setenv("DAGRUN_VAR_GREETING", "hello", 1);
  dag::definition d{"xcom"};
  d.param("who", "world");
  auto a = d.bash("a", "echo '{{ var.value.greeting }} {{ params.who }} {{ ds }}'");
  auto b = d.bash("b", "echo \"got {{ ti.xcom_pull('a') }} in {{ run_id }}\"");
  a >> b;
  auto key = s.run(std::move(d), dag::run_state::success);
  ::unsetenv("DAGRUN_VAR_GREETING");
  CHECK(s.db->xcom(key.dag_id, key.run_id, "a") == "hello world 2024-01-01");
  CHECK(s.db->xcom(key.dag_id, key.run_id, "b") == "got hello world 2024-01-01 in manual__2024-01-01T00:00:00+00:00");
}

TEST_CASE("Engine.CallableTasksRunInProcessAndExceptionsFailTheTry") {
  sandbox s;
  std::atomic<int> calls{0};
  dag::definition d{"callables"};
  auto ok = d.callable("ok", [&](dag::task_context& ctx) {
    ++calls;
    ctx.log("computing " + ctx.task_id);
    return dag::operator_result::success("42");
  });
  auto boom = d.callable("boom", [](dag::task_context&) -> dag::operator_result { throw std::runtime_error("disk full"); });
  ok >> boom;
  auto key = s.run(std::move(d), dag::run_state::failed);
  auto tis = s.tis(key);
  CHECK(calls == 1);
  CHECK(tis["ok"].state == task_state::success);
  CHECK(s.db->xcom(key.dag_id, key.run_id, "ok") == "42");
  CHECK(s.read(tis["ok"].log_path) == "computing ok\n");
  CHECK(tis["boom"].state == task_state::failed);
  CHECK(tis["boom"].message == "exception: disk full");
}

TEST_CASE("Engine.SecretsAreMaskedInTryLogs") {
  sandbox s;
  s.db->set_connection(dag::parse_connection_uri("vault", "postgresql://admin:s3cr3t-pass@db.example:5432/x"));
  s.db->set_variable("api_key", "key-123456");
  s.db->set_variable("region", "eu-west-1");
  dag::definition d{"masked"};
  d.bash("show", "echo login {{ conn.vault.login }} pass {{ conn.vault.password }}; "
                 "echo {{ conn.vault.password }} >&2; echo key {{ var.value.api_key }} in {{ var.value.region }}");
  auto key = s.run(std::move(d), dag::run_state::success);
  // stdout and stderr reach the log through separate pipes: lines, not their order, are fixed.
  const std::string log = s.read(s.tis(key)["show"].log_path);
  CHECK(log.size() == std::string("login admin pass ***\n***\nkey *** in eu-west-1\n").size());
  CHECK(log.find("login admin pass ***\n") != std::string::npos);
  CHECK(log.find("key *** in eu-west-1\n") != std::string::npos);
  CHECK(log.find("s3cr3t") == std::string::npos);
}

TEST_CASE("Engine.RecordsMetricsOfTriesRunsAndTheLoop") {
  sandbox s;
  dag::metrics_registry m;
  auto options = s.options();
  options.metrics = &m;
  dag::definition d{"measured"};
  auto a = d.callable("a", [](dag::task_context&) { return dag::operator_result::success(); });
  auto b = d.callable("b", [](dag::task_context&) { return dag::operator_result::failed("no"); });
  a >> b;
  dag::engine eng(*s.db, s.operators, s.clock, options);
  eng.set_dags({s.checked(std::move(d))});
  auto key = eng.create_run("measured", dag::run_type::manual, dag::parse_time("2024-01-01"));
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::failed);
  CHECK(m.value("dagrun_task_instance_finished_total", {"measured", "a", "success"}) == 1);
  CHECK(m.value("dagrun_task_instance_finished_total", {"measured", "b", "failed"}) == 1);
  CHECK(m.value("dagrun_dag_run_finished_total", {"measured", "failed"}) == 1);
  CHECK(m.count("dagrun_task_duration_seconds", {"measured", "a"}) == 1);
  CHECK(m.count("dagrun_dag_run_duration_seconds", {"measured", "failed"}) == 1);
  CHECK(m.count("dagrun_schedule_delay_seconds") == 1);  // b after a; a has no upstream
  CHECK(m.count("dagrun_scheduler_loop_duration_seconds") >= 2);
  // The heartbeat is the engine's clock (injected here), in Unix seconds.
  CHECK(m.value("dagrun_scheduler_heartbeat") == static_cast<double>(s.clock.at.time_since_epoch().count()));
  CHECK(m.value("dagrun_executor_running_tasks") == 0);
  CHECK(m.value("dagrun_executor_open_slots") == 4);
}

TEST_CASE("Engine.RendersErrorsFailTheTryWithTheirMessage") {
  sandbox s;
  dag::definition d{"render"};
  d.bash("needs_var", "echo {{ var.value.not_set_anywhere }}");
  auto key = s.run(std::move(d), dag::run_state::failed);
  CHECK(s.tis(key)["needs_var"].message.find("not_set_anywhere") != std::string::npos);
}

TEST_CASE("Engine.LostTriesAreFailedAndRetried") {
  sandbox s;
  dag::definition d{"lost"};
  d.bash("a", "true").retries(1).retry_delay(0s);
  d.bash("b", "true");
  auto def = s.checked(std::move(d));
  dag::run_key key;
  {
    dag::engine eng(*s.db, s.operators, s.clock, s.options());
    eng.set_dags({def});
    key = *eng.create_run("lost", dag::run_type::manual, dag::parse_time("2024-01-01"));
  }
  // What a killed daemon leaves behind: both instances running on try 1.
  dag::change_set c;
  for (auto ti : s.db->task_instances(key.dag_id, key.run_id)) {
    const task_state was = ti.state;  // as the run's creation and first pass left it
    ti.state = task_state::running;
    ti.try_number = 1;
    c.task_instances.push_back({was, 0, ti});
  }
  s.db->apply(c);
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({def});
  CHECK(eng.recover_lost_tries() == 2);
  auto tis = s.tis(key);
  CHECK(tis["a"].state == task_state::up_for_retry);
  CHECK(tis["a"].message.starts_with("executor lost"));
  CHECK(tis["b"].state == task_state::failed);
  eng.track_run(key);
  eng.run_to_completion({key});
  tis = s.tis(key);
  CHECK(tis["a"].state == task_state::success);
  CHECK(tis["a"].try_number == 2);
}

namespace {
// The `.end` files of a spool folder.
// The ends a local executor on spool `o` replays when it connects.
std::vector<dag::task_event> replayed_from(const dag::end_spool_options& o) {
  std::mutex m;
  std::vector<dag::task_event> replayed;
  dag::local_executor again(1, o);
  again.connect([&](dag::task_event e) {
    std::lock_guard lock(m);
    replayed.push_back(std::move(e));
  }, [] { return dag::timestamp{}; });
  std::lock_guard lock(m);
  return replayed;
}

std::size_t spooled_ends(const std::filesystem::path& folder) {
  std::size_t n = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".end") ++n;
  return n;
}

dag::task_event an_end(const std::string& task_id) {
  dag::task_event e;
  e.dag_id = "d";
  e.run_id = "manual__2024-01-01T00:00:00+00:00";
  e.task_id = task_id;
  e.try_number = 1;
  e.result = dag::operator_result::success("{\"n\": 1}");
  e.result.keyed_xcoms["other"] = "\xff bytes";
  e.result.message = "done";
  e.started = dag::timestamp{std::chrono::microseconds(1'700'000'000'000'001)};
  e.ended = e.started + 5s;
  e.pid = 42;
  e.instance_start = e.started - 3ms;  // the scheduler's stamp of the try's start
  return e;
}

// A stop token requested once `limit` has passed, unless this is destroyed first: a loop given it
// ends even when what it waits for never happens.
class give_up_after {
public:
  explicit give_up_after(std::chrono::seconds limit)
      : guard_([this, limit](std::stop_token st) {
          std::mutex m;
          std::condition_variable_any cv;
          std::unique_lock lock(m);
          if (!cv.wait_for(lock, st, limit, [] { return false; })) stop_.request_stop();
        }) {}
  std::stop_token token() const { return stop_.get_token(); }

private:
  std::stop_source stop_;
  std::jthread guard_;  // last: started once stop_ is made, joined first
};
}  // namespace

TEST_CASE("Engine.EndsAPassCouldNotWriteAreSpooledAndRecordedOnceByTheNextEngine" * doctest::timeout(90)) {
  // A try ends while the store refuses writes (another connection holds its write lock), and its
  // engine goes away before the store is back. The next engine records that end: the try is not
  // taken for lost, it succeeded once with its XCom, and the spool is empty again.
  sandbox s;
  std::atomic<int> runs{0};
  dag::definition d{"spooled"};
  auto a = d.callable("a", [&runs](dag::task_context&) {
    ++runs;
    return dag::operator_result::success("7");
  });
  d.bash("b", "true").after(a);
  const auto def = s.checked(std::move(d));
  auto o = s.options();
  o.spool_unrecorded_ends = true;
  const auto spool = o.log_folder / ".unrecorded";
  dag::run_key key;
  {
    dag::engine eng(*s.db, s.operators, s.clock, o);
    eng.set_dags({def});
    key = *eng.create_run("spooled", dag::run_type::manual, dag::parse_time("2024-01-01"));
    eng.step();  // a starts
    REQUIRE(eventually([&] { return runs == 1; }));
    dag_test::held_write_lock writer(s.dir / "dagrun.db");
    REQUIRE(dag_test::a_pass_fails(eng));  // the pass with a's end could not be written
    CHECK(spooled_ends(spool) == 1);
    writer.release();
  }
  CHECK(s.tis(key)["a"].state == task_state::running);
  dag::engine next(*s.db, s.operators, s.clock, o);
  next.set_dags({def});
  CHECK(next.recover_lost_tries() == 0);
  next.track_run(key);
  CHECK(next.run_to_completion({key}).front() == dag::run_state::success);
  CHECK(runs == 1);
  const auto tries = s.db->tries("spooled", key.run_id, "a");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0].state == task_state::success);
  CHECK(s.db->xcom("spooled", key.run_id, "a") == "7");
  CHECK(spooled_ends(spool) == 0);
}

TEST_CASE("LocalExecutor.StartsWithAThreadPerCpuAndGrowsToParallelismWhileTriesBlock") {
  const int cpus = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  CHECK(dag::local_executor(64).threads() == std::min(cpus, 64));
  CHECK(dag::local_executor(1).threads() == 1);
  // Eight tries that each wait for all eight to be running: they finish only if the pool grows
  // past the CPUs to the parallelism, and none gives up before its deadline.
  sandbox s;
  constexpr int width = 8;
  std::mutex m;
  std::condition_variable all_in;
  int started = 0;
  int met = 0;
  dag::definition d{"blocking"};
  d.max_active_tasks(width);
  for (int i = 0; i < width; ++i)
    d.callable("t" + std::to_string(i), [&](dag::task_context&) {
      std::unique_lock lock(m);
      ++started;
      all_in.notify_all();
      if (!all_in.wait_for(lock, 60s, [&] { return started == width; })) return dag::operator_result::failed("not all running");
      ++met;
      return dag::operator_result::success();
    });
  auto o = s.options();
  o.parallelism = width;
  dag::engine eng(*s.db, s.operators, s.clock, o);
  eng.set_dags({s.checked(std::move(d))});
  const auto key = eng.create_run("blocking", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  std::lock_guard lock(m);
  CHECK(met == width);
}

namespace {
// A request for try 1 of `task_id` in run "r" of DAG "held", run by `op`.
dag::task_request held_request(const dag::task& t, const dag::operator_spec& op, const std::string& task_id) {
  dag::task_request r;
  r.definition = &t;
  r.op = &op;
  r.context.dag_id = "held";
  r.context.run_id = "r";
  r.context.task_id = task_id;
  r.context.try_number = 1;
  return r;
}

// Connects `ex` to collect each end into `ends` under `m`, waking `cv`; its clock says 42 µs.
void connect_collecting(dag::local_executor& ex, std::mutex& m, std::condition_variable& cv, std::vector<dag::task_event>& ends) {
  ex.connect([&](dag::task_event e) {
    std::lock_guard lock(m);
    ends.push_back(std::move(e));
    cv.notify_all();
  }, [] { return dag::timestamp{std::chrono::microseconds(42)}; });
}
}  // namespace

TEST_CASE("LocalExecutor.ACancelledTryThatHadNotStartedEndsAtOnceWithoutRunningAndOnlyTheOneNamed") {
  // One thread, held by a try: a cancel of a queued try ends it at once without running it, and
  // only the try it names, by its whole key (another try number of the same task is not it).
  dag::definition d{"held"};
  d.callable("t", [](dag::task_context&) { return dag::operator_result::success(); });
  const dag::task& t = d.all_tasks().front();
  std::mutex m;
  std::condition_variable cv;
  bool holding = false, release = false;
  std::vector<std::string> ran;
  dag::operator_spec hold;
  hold.run = [&](const dag::task&, dag::task_context& ctx) {
    std::unique_lock lock(m);
    ran.push_back(ctx.task_id);
    holding = true;
    cv.notify_all();
    cv.wait_for(lock, 15s, [&] { return release; });
    return dag::operator_result::success();
  };
  dag::operator_spec quick;
  quick.run = [&](const dag::task&, dag::task_context& ctx) {
    std::lock_guard lock(m);
    ran.push_back(ctx.task_id);
    return dag::operator_result::success();
  };
  std::vector<dag::task_event> ends;  // guarded by m
  dag::local_executor ex(1);
  connect_collecting(ex, m, cv, ends);
  const auto request = [&](const dag::operator_spec& op, const std::string& task_id) {
    dag::task_request r = held_request(t, op, task_id);
    r.context.map_index = 3;
    r.context.start_date = dag::timestamp{std::chrono::microseconds(7)};
    return r;
  };
  ex.submit(request(hold, "holder"));
  ex.flush();
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, 15s, [&] { return holding; }));
  }
  ex.submit(request(quick, "waiting"));
  ex.submit(request(quick, "kept"));
  ex.flush();
  ex.cancel(dag::try_id{"held", "r", "waiting", 2, 3});  // another try of it: not queued
  ex.cancel(dag::try_id{"held", "r", "waiting", 1, -1});  // another instance: not queued
  {
    std::lock_guard lock(m);
    CHECK(ends.empty());
  }
  ex.cancel(dag::try_id{"held", "r", "waiting", 1, 3});
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, 15s, [&] { return ends.size() == 1; }));  // at once, the holder still running
    CHECK(ends[0].task_id == "waiting");
    CHECK(ends[0].try_number == 1);
    CHECK(ends[0].map_index == 3);
    CHECK(ends[0].instance_start == dag::timestamp{std::chrono::microseconds(7)});  // the poke it was
    CHECK(ends[0].result.outcome == dag::try_outcome::failed);
    CHECK(ends[0].result.message == "cancelled before it started");
    CHECK(ends[0].started == dag::timestamp{std::chrono::microseconds(42)});
    release = true;
    cv.notify_all();
    REQUIRE(cv.wait_for(lock, 15s, [&] { return ends.size() == 3; }));
    CHECK(ran == std::vector<std::string>{"holder", "kept"});
  }
  ex.drain();
}

TEST_CASE("LocalExecutor.CancelAllStopsTheRunningTriesAndEndsTheQueuedOnesUnstarted" * doctest::timeout(60)) {
  // One thread, held by a try that runs until it is asked to stop, and a try queued behind it that
  // would do the same: cancel_all stops the first and ends the second without running it, so a
  // drain returns (before, the second was taken with a fresh stop and the drain waited on it).
  // A try handed over afterwards runs as usual.
  dag::definition d{"held"};
  d.callable("t", [](dag::task_context&) { return dag::operator_result::success(); });
  const dag::task& t = d.all_tasks().front();
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> ran;  // guarded by m
  std::vector<dag::task_event> ends;  // guarded by m
  dag::operator_spec until_stopped;
  until_stopped.run = [&](const dag::task&, dag::task_context& ctx) {
    {
      std::lock_guard lock(m);
      ran.push_back(ctx.task_id);
      cv.notify_all();
    }
    std::mutex own;
    std::condition_variable_any asked;
    std::unique_lock lock(own);
    if (!asked.wait_for(lock, ctx.stop, 30s, [] { return false; }) && ctx.stop.stop_requested())
      return dag::operator_result::failed("stopped");
    return dag::operator_result::success();
  };
  dag::local_executor ex(1);
  connect_collecting(ex, m, cv, ends);
  const auto request = [&](const std::string& task_id) { return held_request(t, until_stopped, task_id); };
  ex.submit(request("running"));
  ex.flush();
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, 15s, [&] { return ran.size() == 1; }));
  }
  ex.submit(request("queued"));
  ex.flush();
  ex.cancel_all();
  auto drained = std::async(std::launch::async, [&] { ex.drain(); });
  REQUIRE(drained.wait_for(15s) == std::future_status::ready);
  {
    std::lock_guard lock(m);
    CHECK(ran == std::vector<std::string>{"running"});
    REQUIRE(ends.size() == 2);
    std::map<std::string, std::string> why;
    for (const auto& e : ends) why[e.task_id] = e.result.message;
    CHECK(why["running"] == "stopped");
    CHECK(why["queued"] == "cancelled before it started");
    for (const auto& e : ends) CHECK(e.result.outcome == dag::try_outcome::failed);
  }
  // Later tries are not cancelled by the earlier cancel_all: this one runs until cancelled itself.
  ex.submit(request("later"));
  ex.flush();
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, 15s, [&] { return ran.size() == 2; }));
    CHECK(ran.back() == "later");
    CHECK(ends.size() == 2);
  }
  ex.cancel(dag::try_id{"held", "r", "later", 1, -1});
  ex.drain();
  std::lock_guard lock(m);
  REQUIRE(ends.size() == 3);
  CHECK(ends.back().result.message == "stopped");
}

TEST_CASE("LocalExecutor.ADrainWaitsForTheEndOfATryCancelledBeforeItStarted" * doctest::timeout(60)) {
  // The end of a try taken off the queue is reported after the queue's lock is let go: a drain
  // on another thread returns only once it is, as it does for a try that ran.
  dag::definition d{"held"};
  d.callable("t", [](dag::task_context&) { return dag::operator_result::success(); });
  const dag::task& t = d.all_tasks().front();
  std::mutex m;
  std::condition_variable cv;
  bool holding = false, release = false, reporting = false, let_report = false;  // guarded by m
  dag::operator_spec hold;
  hold.run = [&](const dag::task&, dag::task_context&) {
    std::unique_lock lock(m);
    holding = true;
    cv.notify_all();
    cv.wait_for(lock, 15s, [&] { return release; });
    return dag::operator_result::success();
  };
  dag::local_executor ex(1);
  ex.connect([&](dag::task_event e) {
    std::unique_lock lock(m);
    if (e.task_id != "queued") return;
    reporting = true;
    cv.notify_all();
    cv.wait_for(lock, 15s, [&] { return let_report; });
  }, [] { return dag::timestamp{}; });
  ex.submit(held_request(t, hold, "holder"));
  ex.flush();
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, 15s, [&] { return holding; }));
  }
  ex.submit(held_request(t, hold, "queued"));
  ex.flush();
  auto cancelled = std::async(std::launch::async, [&] { ex.cancel(dag::try_id{"held", "r", "queued", 1, -1}); });
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, 15s, [&] { return reporting; }));  // its end is being reported
    release = true;  // and the holder ends: nothing is queued or running now
    cv.notify_all();
  }
  auto drained = std::async(std::launch::async, [&] { ex.drain(); });
  CHECK(drained.wait_for(300ms) == std::future_status::timeout);
  {
    std::lock_guard lock(m);
    let_report = true;
  }
  cv.notify_all();
  CHECK(drained.wait_for(15s) == std::future_status::ready);
  cancelled.get();
}

TEST_CASE("LocalExecutor.TriesHandedOverWhileAThreadWatchesForWorkAllStart") {
  // A thread that ran out of work watches for more before it sleeps, and flush() wakes one thread
  // fewer for it, once per watch: flushes that each counted on it would leave tries queued with
  // threads asleep. Each round hands over three tries, one flush each, right after a quick try
  // ended (so that its thread is watching); the three wait for each other, so all must be running
  // at once (the pool grows past the CPUs for the ones no sleeping thread takes).
  dag::definition d{"handed"};
  d.callable("t", [](dag::task_context&) { return dag::operator_result::success(); });
  const dag::task& t = d.all_tasks().front();
  constexpr int group = 3;
  std::mutex m;
  std::condition_variable cv;
  int running = 0;
  int met = 0;
  dag::operator_spec together;
  together.run = [&](const dag::task&, dag::task_context&) {
    std::unique_lock lock(m);
    ++running;
    cv.notify_all();
    if (!cv.wait_for(lock, 10s, [&] { return running >= group; })) return dag::operator_result::failed("not all running");
    ++met;
    return dag::operator_result::success();
  };
  std::mutex em;  // declared before the executor: its threads report until it is destroyed
  std::condition_variable ended;
  int ends = 0;
  dag::local_executor ex(8);
  ex.connect([&](dag::task_event) {
    std::lock_guard lock(em);
    ++ends;
    ended.notify_all();
  }, [] { return dag::timestamp{}; });
  // Woken by the end itself (not polled): the next tries are handed over while its thread watches.
  const auto all_ended = [&](int n) {
    std::unique_lock lock(em);
    return ended.wait_for(lock, 15s, [&] { return ends == n; });
  };
  const auto request = [&](const dag::operator_spec* op, int n) {
    dag::task_request r;
    r.definition = &t;
    r.op = op;  // null: the try ends at once, failed
    r.context.dag_id = "handed";
    r.context.run_id = "r";
    r.context.task_id = "t" + std::to_string(n);
    return r;
  };
  int handed = 0;
  for (int round = 0; round < 30; ++round) {
    {
      std::lock_guard lock(m);
      running = 0;
      met = 0;
    }
    ex.submit(request(nullptr, handed++));
    ex.flush();
    REQUIRE(all_ended(handed));
    for (int i = 0; i < group; ++i) {
      ex.submit(request(&together, handed++));
      ex.flush();
    }
    REQUIRE(all_ended(handed));
    std::lock_guard lock(m);
    REQUIRE(met == group);
  }
}

TEST_CASE("LocalExecutor.TheSpoolKeepsTheEndsOfTwoPokesOfOneTryApart") {
  sandbox s;
  dag::end_spool_options o;
  o.folder = s.dir / "spool";
  const auto now = [] { return dag::timestamp{}; };
  dag::task_event first = an_end("wait"), second = an_end("wait");  // one try, two pokes
  second.instance_start = first.instance_start + 61s;
  first.result = dag::operator_result::reschedule(60s);
  {
    dag::local_executor ex(1, o);
    ex.connect([](dag::task_event) {}, now);
    CHECK(ex.hold({first, second}).empty());
    CHECK(spooled_ends(o.folder) == 2);  // not "held already"
    ex.recorded({first});  // forgets the first poke's end only
    CHECK(spooled_ends(o.folder) == 1);
  }
  const auto replayed = replayed_from(o);
  REQUIRE(replayed.size() == 1);
  CHECK(replayed.front().instance_start == second.instance_start);
  CHECK(replayed.front().result.outcome == dag::try_outcome::success);
}

TEST_CASE("LocalExecutor.SpoolIsBoundedAndReplayedWhenTheNextExecutorConnects") {
  sandbox s;
  dag::end_spool_options o;
  o.folder = s.dir / "spool";
  o.max_entries = 2;
  const auto now = [] { return dag::timestamp{}; };
  {
    dag::local_executor ex(1, o);
    ex.connect([](dag::task_event) {}, now);
    CHECK(ex.hold({an_end("x"), an_end("y")}).empty());
    CHECK(ex.hold({an_end("x")}).empty());  // held already
    CHECK(spooled_ends(o.folder) == 2);
    const std::string why = ex.hold({an_end("z")});
    CHECK(why.find("is full (2 ends") != std::string::npos);
    CHECK(why.find("d.z") != std::string::npos);
    CHECK(spooled_ends(o.folder) == 2);
    ex.recorded({an_end("x")});
    CHECK(spooled_ends(o.folder) == 1);
    CHECK(ex.hold({an_end("z")}).empty());  // room again
    ex.recorded({an_end("z")});
  }
  std::ofstream(o.folder / "0123.end.tmp") << "{\"dag_id\":";  // a write a crash cut short
  const auto replayed = replayed_from(o);
  REQUIRE(replayed.size() == 1);
  const dag::task_event want = an_end("y");
  const dag::task_event& got = replayed.front();
  CHECK(got.task_id == "y");
  CHECK(got.run_id == want.run_id);
  CHECK(got.try_number == 1);
  CHECK(got.map_index == -1);
  CHECK(got.started == want.started);
  CHECK(got.ended == want.ended);
  CHECK(got.pid == 42);
  CHECK(got.instance_start == want.instance_start);  // which poke the end is of
  CHECK(got.result.outcome == dag::try_outcome::success);
  CHECK(got.result.xcom == want.result.xcom);
  CHECK(got.result.message == "done");
  CHECK(got.result.keyed_xcoms.at("other") == "\xef\xbf\xbd bytes");  // text is text
  CHECK(!std::filesystem::exists(o.folder / "0123.end.tmp"));
}

// A sensor in reschedule mode over a real SQLite file: the first poke finds nothing, so the task
// gives its only slot back (the other task runs) until the clock reaches its next poke.
struct reschedule_sandbox : sandbox {
  std::filesystem::path flags = dir / "flags.db";
  reschedule_sandbox() {
    SQLite::Database f(flags.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    f.exec("CREATE TABLE flags(ready INTEGER)");
    db->set_connection(dag::parse_connection_uri("flags", "sqlite://" + flags.string()));
  }
  // Task "wait": pokes every 60 s until the flag is set, for at most `timeout`.
  static dag::task_handle add_sensor(dag::definition& d, const std::string& timeout) {
    auto wait = d.add_task("wait", "sql_sensor");
    wait.field("conn_id", "flags")
        .field("sql", "SELECT count(*) FROM flags WHERE ready = 1")
        .field("mode", "reschedule")
        .field("poke_interval", "60s")
        .field("timeout", timeout);
    return wait;
  }
  dag::definition sensor_dag(const std::string& timeout) {
    dag::definition d{"sensing"};
    add_sensor(d, timeout).priority_weight(10);  // first in line for the single slot
    d.callable("other", [](dag::task_context&) { return dag::operator_result::success(); });
    return checked(std::move(d));
  }
  dag::engine_options one_slot() const {
    auto o = options();
    o.parallelism = 1;
    return o;
  }
};

TEST_CASE("Engine.RescheduledSensorFreesItsSlotAndPokesAgainAsTheSameTry" * doctest::timeout(60)) {
  reschedule_sandbox s;
  const auto t0 = s.clock.at;
  dag::engine eng(*s.db, s.operators, s.clock, s.one_slot());
  eng.set_dags({s.sensor_dag("1h")});
  const auto key = *eng.create_run("sensing", dag::run_type::manual, dag::parse_time("2024-01-01"));
  eng.run_until([&] {
    auto tis = s.tis(key);
    return tis["wait"].state == task_state::up_for_reschedule && tis["other"].state == task_state::success;
  });
  auto tis = s.tis(key);
  CHECK(tis["wait"].try_number == 1);
  CHECK(tis["wait"].retry_at == t0 + 60s);
  CHECK(tis["wait"].first_start_date == t0);
  CHECK(eng.running() == 0);  // the slot is free while it waits

  // Not due yet: a step starts nothing.
  s.clock.at = t0 + 59s;
  eng.step();
  CHECK(s.tis(key)["wait"].state == task_state::up_for_reschedule);

  SQLite::Database(s.flags.string(), SQLite::OPEN_READWRITE).exec("INSERT INTO flags VALUES (1)");
  s.clock.at = t0 + 61s;
  CHECK(eng.run_to_completion({key}).front() == dag::run_state::success);
  tis = s.tis(key);
  CHECK(tis["wait"].state == task_state::success);
  CHECK(tis["wait"].try_number == 1);            // the same try, not a retry
  CHECK(tis["wait"].start_date == t0);           // the try spans both pokes
  CHECK_FALSE(tis["wait"].first_start_date.has_value());
  const auto tries = s.db->tries(key.dag_id, key.run_id, "wait");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0].state == task_state::success);
  CHECK(tries[0].start_date == t0);
  // Both pokes went to the try's one log.
  CHECK(s.read(tries[0].log_path) ==
        "[dagrun] poke after 0s of waiting: not yet\n[dagrun] sensor condition met on poke after 1m1s of waiting\n");
}

TEST_CASE("Engine.RescheduledSensorTimesOutCountingFromItsFirstPoke" * doctest::timeout(60)) {
  reschedule_sandbox s;
  const auto t0 = s.clock.at;
  dag::engine eng(*s.db, s.operators, s.clock, s.one_slot());
  eng.set_dags({s.sensor_dag("90s")});
  const auto key = *eng.create_run("sensing", dag::run_type::manual, dag::parse_time("2024-01-01"));
  eng.run_until([&] { return s.tis(key)["wait"].state == task_state::up_for_reschedule; });
  // The second poke, 61 s after the first, finds nothing; another 60 s would pass 90 s.
  s.clock.at = t0 + 61s;
  CHECK(eng.run_to_completion({key}).front() == dag::run_state::failed);
  const auto wait = s.tis(key)["wait"];
  CHECK(wait.state == task_state::failed);
  CHECK(wait.try_number == 1);
  CHECK(wait.message == "sensor timeout: condition not met within 1m30s");
}

namespace {

// Runs each try in this process and reports its end. When `task` is started a second time (a
// rescheduled sensor's next poke), the end of its first start is reported again first, as a queue
// hands out an end taken again from its table when the scheduler that recorded it stalled or died
// before acknowledging it; the second start runs then at once, or when `release` is called.
class replaying_executor final : public dag::executor {
public:
  replaying_executor(std::string task, bool hold) : task_(std::move(task)), hold_(hold) {}
  void submit(dag::task_request request) override {
    if (request.context.task_id == task_) ++starts_;
    if (request.context.task_id == task_ && first_) {
      report(*first_);  // the late end
      if (hold_) {
        held_ = std::move(request);
        return;
      }
    }
    run(std::move(request));
  }
  void cancel_all() override {}
  void drain() override {}
  bool holding() const { return held_.has_value(); }
  int starts() const { return starts_; }  ///< of `task`
  void release() {
    run(std::move(*held_));
    held_.reset();
  }

private:
  void run(dag::task_request request) {
    dag::task_event e = dag::run_try(request, [this] { return now(); });
    if (e.task_id == task_ && !first_) first_ = e;
    report(std::move(e));
  }

  const std::string task_;
  const bool hold_;
  std::optional<dag::task_event> first_;  // all on the engine's thread: submit runs there
  std::optional<dag::task_request> held_;
  int starts_ = 0;
};

}  // namespace

TEST_CASE("Engine.ALateEndOfARescheduledSensorsEarlierPokeIsNotTakenForTheRunningPokes" * doctest::timeout(60)) {
  for (const bool hold : {true, false}) {
    CAPTURE(hold);  // the late end alone in a pass while the next poke runs, or in one pass with its end
    reschedule_sandbox s;
    const auto t0 = s.clock.at;
    auto owned = std::make_unique<replaying_executor>("wait", hold);
    replaying_executor& ex = *owned;
    dag::engine eng(*s.db, s.operators, s.clock, s.one_slot(), std::move(owned));
    dag::definition d{"sensing"};
    reschedule_sandbox::add_sensor(d, "1h") >> d.add_task("after", "empty");
    eng.set_dags({s.checked(std::move(d))});
    const auto key = *eng.create_run("sensing", dag::run_type::manual, dag::parse_time("2024-01-01"));
    eng.run_until([&] { return s.tis(key)["wait"].state == task_state::up_for_reschedule; });

    // The flag is set, so the second poke succeeds; the first poke's "reschedule" comes again
    // (same task, same try number) before the second poke's end.
    SQLite::Database(s.flags.string(), SQLite::OPEN_READWRITE).exec("INSERT INTO flags VALUES (1)");
    s.clock.at = t0 + 61s;
    if (hold) {
      eng.run_until([&] { return ex.holding(); });
      for (int pass = 0; pass < 3; ++pass) eng.step();
      const auto running = s.tis(key)["wait"];
      CHECK(running.state == task_state::running);  // the second poke, still running
      CHECK(running.start_date == t0 + 61s);
      CHECK(ex.starts() == 2);  // no third poke: the late end did not end the second one
      ex.release();
    }
    // A late end taken for the running poke's leaves the run waiting for a third poke the test's
    // clock never reaches: given up on, it fails the test instead of hanging it.
    const give_up_after guard(20s);
    CHECK(eng.run_to_completion({key}, guard.token()).front() == dag::run_state::success);
    auto tis = s.tis(key);
    CHECK(tis["wait"].state == task_state::success);  // the second poke's end
    CHECK(tis["wait"].try_number == 1);
    CHECK(tis["after"].state == task_state::success);
    CHECK(ex.starts() == 2);
    const auto tries = s.db->tries(key.dag_id, key.run_id, "wait");
    REQUIRE(tries.size() == 1);
    CHECK(tries[0].state == task_state::success);
  }
}

namespace {

// Holds every try it is given; the test runs one when it likes and hands its end to this
// executor's engine or another's, as a queue shared by two schedulers does.
class holding_executor final : public dag::executor {
public:
  void submit(dag::task_request request) override { held_.push_back(std::move(request)); }
  void cancel(const dag::try_id& which) override { cancelled_.push_back(which); }
  void cancel_all() override {}
  void drain() override {}
  std::vector<bool> lost(const std::vector<dag::recorded_try>& tries, const std::string&, dag::timestamp) override {
    return std::vector<bool>(tries.size(), all_lost_);  // by default another scheduler's tries: running, not lost
  }
  /// From now on `lost` says every try it is asked about is lost.
  void lose_everything() { all_lost_ = true; }
  std::size_t held() const { return held_.size(); }
  /// The task of the `i`th try given.
  const std::string& task_of(std::size_t i) const { return held_.at(i).context.task_id; }
  /// The tries the engine asked to stop, in order.
  const std::vector<dag::try_id>& cancelled() const { return cancelled_; }
  /// Runs the `i`th try given and returns its end, not reported.
  dag::task_event run(std::size_t i) { return dag::run_try(held_.at(i), [this] { return now(); }); }
  void deliver(dag::task_event e) { report(std::move(e)); }

private:
  std::vector<dag::task_request> held_;
  std::vector<dag::try_id> cancelled_;
  bool all_lost_ = false;
};

}  // namespace

TEST_CASE("Engine.AnEarlierPokesUnrecordedEndDoesNotShieldTheRunningPokeFromRecovery") {
  // A rescheduled sensor's second poke is running (its start in the store); the executor says it
  // is lost. An end the engine holds but has not recorded yet shields a try from recovery (its own
  // end is recorded instead), but only an end of the running poke: a late end of the first poke
  // (the same try number) is no news of the second.
  sandbox s;
  dag::definition d{"sensing"};
  d.bash("wait", "true").retries(1).retry_delay(0s);
  auto def = s.checked(std::move(d));
  dag::run_key key;
  {
    dag::engine eng(*s.db, s.operators, s.clock, s.options());
    eng.set_dags({def});
    key = *eng.create_run("sensing", dag::run_type::manual, dag::parse_time("2024-01-01"));
  }
  const dag::timestamp first_poke = s.clock.at, second_poke = s.clock.at + 61s;
  dag::change_set c;
  for (auto ti : s.db->task_instances(key.dag_id, key.run_id)) {
    const task_state was = ti.state;  // as the run's creation and first pass left it
    ti.state = task_state::running;
    ti.try_number = 1;
    ti.start_date = second_poke;
    ti.first_start_date = first_poke;
    c.task_instances.push_back({was, 0, ti});
  }
  s.db->apply(c);
  const auto end_of = [&](dag::timestamp poke) {
    dag::task_event e;
    e.dag_id = key.dag_id;
    e.run_id = key.run_id;
    e.task_id = "wait";
    e.try_number = 1;
    e.result = dag::operator_result::success();
    e.started = e.ended = poke;
    e.instance_start = poke;
    return e;
  };
  for (const bool of_running_poke : {true, false}) {
    CAPTURE(of_running_poke);
    auto owned = std::make_unique<holding_executor>();
    holding_executor& ex = *owned;
    dag::engine eng(*s.db, s.operators, s.clock, s.options(), std::move(owned));
    eng.set_dags({def});
    ex.lose_everything();
    ex.deliver(end_of(of_running_poke ? second_poke : first_poke));  // held by the engine, not recorded yet
    CHECK(eng.recover_lost_tries() == (of_running_poke ? 0u : 1u));
    const auto wait = s.tis(key)["wait"];
    CHECK(wait.state == (of_running_poke ? task_state::running : task_state::up_for_retry));
  }
}

namespace {
// Another process (a store of its own on the same file) marks `task` of run `key`, on its first
// try and running, `state`.
void mark_running_try_from_another_process(sandbox& s, const dag::run_key& key, const std::string& task, task_state state) {
  auto other = dag::open_store("sqlite:" + (s.dir / "dagrun.db").string());
  auto ti = s.tis(key)[task];
  REQUIRE(ti.state == task_state::running);
  ti.state = state;
  dag::change_set mark;
  mark.task_instances.push_back({task_state::running, 1, ti});
  REQUIRE(other->apply(mark).applied);
}

// An engine over `s`'s store with `d` loaded, whose tries `ex` holds, and a manual run of `d`
// after its first pass (its first tries handed over).
struct holding_engine {
  holding_executor* ex = nullptr;
  std::optional<dag::engine> eng;
  dag::run_key key;
  holding_engine(sandbox& s, dag::definition d) {
    auto owned = std::make_unique<holding_executor>();
    ex = owned.get();
    eng.emplace(*s.db, s.operators, s.clock, s.options(), std::move(owned));
    const std::string id = d.id();
    eng->set_dags({s.checked(std::move(d))});
    const auto created = eng->create_run(id, dag::run_type::manual, dag::parse_time("2024-01-01"));
    REQUIRE(created);
    key = *created;
    eng->step();
  }
};
}  // namespace

TEST_CASE("Engine.ARetryClaimedInAPassWhoseRunLostIsClaimedAgainNotLeftUnstarted" * doctest::timeout(60)) {
  // One pass records two ends of one run: a's (a failure with a retry due at once, which the same
  // pass claims) and c's, which another process had marked meanwhile, so c's update loses and the
  // run is read again. a's end stays written; its retry, decided from the outdated view, is not:
  // written but not handed over, it would stay `running` with nothing running it.
  sandbox s;
  dag::definition d{"pair"};
  d.callable("a", [](dag::task_context& c) {
     return c.try_number == 1 ? dag::operator_result::failed("first try fails") : dag::operator_result::success();
   }).retries(1).retry_delay(0s);
  d.callable("c", [](dag::task_context&) { return dag::operator_result::success(); });
  auto owned = std::make_unique<holding_executor>();
  holding_executor& ex = *owned;
  dag::engine eng(*s.db, s.operators, s.clock, s.options(), std::move(owned));
  eng.set_dags({s.checked(std::move(d))});
  const auto key = eng.create_run("pair", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  eng.step();
  REQUIRE(ex.held() == 2);

  mark_running_try_from_another_process(s, *key, "c", task_state::success);

  ex.deliver(ex.run(0));
  ex.deliver(ex.run(1));
  eng.step();  // both ends in one pass
  auto a = s.tis(*key)["a"];
  CHECK(a.state != task_state::running);
  CHECK(a.try_number == 1);
  CHECK(ex.held() == 2);
  REQUIRE(eventually([&] {
    eng.step();
    return ex.held() == 3;
  }));
  a = s.tis(*key)["a"];
  CHECK(a.state == task_state::running);
  CHECK(a.try_number == 2);
  ex.deliver(ex.run(2));
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  CHECK(s.tis(*key)["a"].state == task_state::success);
  const auto tries = s.db->tries("pair", key->run_id, "a");
  REQUIRE(tries.size() == 2);
  CHECK(tries[0].state == task_state::up_for_retry);
}

TEST_CASE("Engine.ABranchsEndInAPassWhoseRunLostKeepsItsSkipsAndItsXCom" * doctest::timeout(60)) {
  // A branch ends in the same pass as c, which another process had marked meanwhile: c's update
  // loses and the run is read again. The branch's end stays written, and so does what comes of it
  // (decided only at its end, never again): the branch it did not follow is skipped, and its XCom
  // is there for the task it follows. The branch's end is counted once in the metrics, with the
  // pass that wrote it; c's, which the store refused, is not.
  sandbox s;
  dag::metrics_registry metrics;
  auto o = s.options();
  o.metrics = &metrics;
  dag::definition d{"forked"};
  auto pick = d.callable("pick", [](dag::task_context&) { return dag::operator_result::success("x"); }).branch();
  auto x = d.callable("x", [](dag::task_context&) { return dag::operator_result::success(); });
  auto y = d.callable("y", [](dag::task_context&) { return dag::operator_result::success(); });
  pick >> dag::tasks{x, y};
  d.callable("c", [](dag::task_context&) { return dag::operator_result::success(); });
  auto owned = std::make_unique<holding_executor>();
  holding_executor& ex = *owned;
  dag::engine eng(*s.db, s.operators, s.clock, o, std::move(owned));
  eng.set_dags({s.checked(std::move(d))});
  const auto key = eng.create_run("forked", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  eng.step();
  REQUIRE(ex.held() == 2);  // pick and c

  mark_running_try_from_another_process(s, *key, "c", task_state::failed);

  ex.deliver(ex.run(0));
  ex.deliver(ex.run(1));
  eng.step();  // both ends in one pass
  auto tis = s.tis(*key);
  CHECK(tis["pick"].state == task_state::success);
  CHECK(tis["y"].state == task_state::skipped);
  CHECK(tis["c"].state == task_state::failed);  // as the other process marked it
  CHECK(s.db->xcom("forked", key->run_id, "pick", "return_value").value_or("") == "x");
  REQUIRE(eventually([&] {
    eng.step();
    return ex.held() == 3;
  }));
  const auto end_of_x = ex.run(2);
  CHECK(end_of_x.task_id == "x");
  ex.deliver(end_of_x);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::failed);  // c was marked failed
  tis = s.tis(*key);
  CHECK(tis["x"].state == task_state::success);
  CHECK(tis["y"].state == task_state::skipped);
  const std::string counted = metrics.text();
  CHECK(counted.find(R"(dagrun_task_instance_finished_total{dag_id="forked",task_id="pick",state="success"} 1)" "\n") != std::string::npos);
  CHECK(counted.find(R"(dagrun_task_instance_finished_total{dag_id="forked",task_id="x",state="success"} 1)" "\n") != std::string::npos);
  // c's end lost to the mark: not counted (as a success the store never held).
  CHECK(counted.find(R"(dagrun_task_instance_finished_total{dag_id="forked",task_id="c",)") == std::string::npos);
  CHECK(counted.find(R"(dagrun_dag_run_finished_total{dag_id="forked",state="failed"} 1)" "\n") != std::string::npos);
}

TEST_CASE("Engine.ASuccessTheStoreRefusesUpdatesNoDatasetAndOneItRecordsDoes" * doctest::timeout(60)) {
  // Two producers end in one pass, one of them marked failed by another process meanwhile: its
  // success is refused, and so is its dataset event (as its XCom); the other's is recorded.
  sandbox s;
  dag::definition d{"producers"};
  d.callable("marked", [](dag::task_context&) { return dag::operator_result::success("m"); }).outlets({"ds://marked"});
  d.callable("kept", [](dag::task_context&) { return dag::operator_result::success(); }).outlets({"ds://kept"});
  auto owned = std::make_unique<holding_executor>();
  holding_executor& ex = *owned;
  dag::engine eng(*s.db, s.operators, s.clock, s.options(), std::move(owned));
  eng.set_dags({s.checked(std::move(d))});
  const auto key = eng.create_run("producers", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  eng.step();
  REQUIRE(ex.held() == 2);

  mark_running_try_from_another_process(s, *key, "marked", task_state::failed);

  ex.deliver(ex.run(0));
  ex.deliver(ex.run(1));
  eng.step();  // both ends in one pass
  auto tis = s.tis(*key);
  CHECK(tis["marked"].state == task_state::failed);  // as the other process marked it
  CHECK(tis["kept"].state == task_state::success);
  const auto events_of = [&](const std::string& uri) {
    dag::dataset_event_filter f;
    f.uri = uri;
    return s.db->dataset_events(f).size();
  };
  CHECK(events_of("ds://marked") == 0);
  CHECK(events_of("ds://kept") == 1);
  CHECK_FALSE(s.db->xcom("producers", key->run_id, "marked", "return_value"));
}

TEST_CASE("Engine.ARunAPassFailedForItsTimeoutIsFailedByTheNextWhenThatOneWasNotWritten" * doctest::timeout(60)) {
  // An engine that neither adopts the store's runs nor is told of runs' ends: the pass that fails
  // the run for its dagrun_timeout is refused by the store. The next pass reads the run again
  // and fails it (the run had left the engine's view with the refused pass).
  sandbox s;
  dag::definition d{"timed"};
  d.dagrun_timeout(std::chrono::hours(1));
  d.callable("t", [](dag::task_context&) { return dag::operator_result::success(); });
  holding_engine h(s, std::move(d));
  REQUIRE(h.ex->held() == 1);
  s.clock.at += std::chrono::hours(2);
  {
    dag_test::held_write_lock writer(s.dir / "dagrun.db");
    CHECK_THROWS(h.eng->step());
  }
  CHECK(s.db->find_run("timed", h.key.run_id)->state == dag::run_state::running);
  h.eng->step();
  CHECK(s.db->find_run("timed", h.key.run_id)->state == dag::run_state::failed);
  CHECK(s.tis(h.key)["t"].state == task_state::skipped);
}

TEST_CASE("Engine.ATryADagrunTimeoutStopsInAPassWhoseRunLostIsStoppedOnce" * doctest::timeout(60)) {
  // The run's dagrun_timeout passes in the pass that records c's end, which another process had
  // marked meanwhile: c's update loses and the run is read again. The stop of the running try t
  // is written all the same (the try's record with it) and the executor is told to stop it, once;
  // the rest of the timeout (the run failed, `after` skipped) follows from the store's view.
  sandbox s;
  dag::definition d{"timed"};
  d.dagrun_timeout(std::chrono::hours(1));
  auto noop = [](dag::task_context&) { return dag::operator_result::success(); };
  d.callable("t", noop) >> d.callable("after", noop);
  d.callable("c", noop);
  auto owned = std::make_unique<holding_executor>();
  holding_executor& ex = *owned;
  dag::engine eng(*s.db, s.operators, s.clock, s.options(), std::move(owned));
  eng.set_dags({s.checked(std::move(d))});
  const auto key = eng.create_run("timed", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  eng.step();
  REQUIRE(ex.held() == 2);  // t and c
  const std::size_t c_index = ex.task_of(0) == "c" ? 0 : 1;

  mark_running_try_from_another_process(s, *key, "c", task_state::success);
  ex.deliver(ex.run(c_index));
  s.clock.at += std::chrono::hours(2);
  eng.step();  // c's end (refused) and the timeout in one pass
  auto t = s.tis(*key)["t"];
  CHECK(t.state == task_state::skipped);
  CHECK(t.message == "the run exceeded its dagrun_timeout");
  REQUIRE(ex.cancelled().size() == 1);
  CHECK(ex.cancelled()[0].task_id == "t");
  CHECK(ex.cancelled()[0].try_number == 1);
  const auto tries = s.db->tries("timed", key->run_id, "t");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0].state == task_state::skipped);

  REQUIRE(eventually([&] {
    eng.step();
    return s.db->find_run("timed", key->run_id)->state == dag::run_state::failed;
  }));
  CHECK(s.tis(*key)["after"].state == task_state::skipped);
  CHECK(s.tis(*key)["c"].state == task_state::success);  // as the other process marked it
  CHECK(ex.cancelled().size() == 1);
  CHECK(ex.held() == 2);
}

TEST_CASE("Engine.AnEndAnotherSchedulerRecordedIsNotTakenForTheNextPokeByAStaleView" * doctest::timeout(60)) {
  // Two schedulers on one database: A started a sensor's first poke, B recorded its end (A
  // stalled) and started the second poke. A's view still shows the first poke running when the
  // same end reaches A: the store refuses it (the start A saw is not the row's any more), while
  // the second poke runs or once it has ended.
  for (const bool second_ended : {false, true}) {
    CAPTURE(second_ended);
    reschedule_sandbox s;
    const auto t0 = s.clock.at;
    auto a_owned = std::make_unique<holding_executor>(), b_owned = std::make_unique<holding_executor>();
    holding_executor &a_ex = *a_owned, &b_ex = *b_owned;
    dag::engine a(*s.db, s.operators, s.clock, s.one_slot(), std::move(a_owned));
    auto b_store = dag::open_store("sqlite:" + (s.dir / "dagrun.db").string());
    auto b_options = s.one_slot();
    b_options.adopt_store_runs = true;
    b_options.poll_interval = std::chrono::milliseconds(0);
    dag::engine b(*b_store, s.operators, s.clock, b_options, std::move(b_owned));
    auto dag_of = [&] {
      dag::definition d{"sensing"};
      reschedule_sandbox::add_sensor(d, "1h");
      return s.checked(std::move(d));
    };
    a.set_dags({dag_of()});
    b.set_dags({dag_of()});
    const auto key = *a.create_run("sensing", dag::run_type::manual, dag::parse_time("2024-01-01"));
    a.step();
    REQUIRE(a_ex.held() == 1);  // the first poke, started by A
    const dag::task_event first = a_ex.run(0);
    CHECK(first.result.outcome == dag::try_outcome::rescheduled);
    CHECK(first.instance_start == t0);

    b.step();  // B finds the run
    b_ex.deliver(first);
    b.step();
    CHECK(s.tis(key)["wait"].state == task_state::up_for_reschedule);
    SQLite::Database(s.flags.string(), SQLite::OPEN_READWRITE).exec("INSERT INTO flags VALUES (1)");
    s.clock.at = t0 + 61s;
    b.step();
    REQUIRE(b_ex.held() == 1);  // the second poke, started by B
    CHECK(s.tis(key)["wait"].start_date == t0 + 61s);
    if (second_ended) {
      b_ex.deliver(b_ex.run(0));
      b.step();
      CHECK(s.tis(key)["wait"].state == task_state::success);
    }

    a_ex.deliver(first);  // the same end, taken again by A
    a.step();
    auto wait = s.tis(key)["wait"];
    CHECK(wait.state == (second_ended ? task_state::success : task_state::running));
    CHECK(wait.start_date == (second_ended ? t0 : t0 + 61s));  // a finished try spans its pokes
    CHECK(a_ex.held() == 1);  // A started no third poke
    auto tries = s.db->tries(key.dag_id, key.run_id, "wait");
    REQUIRE(tries.size() == 1);
    // As B left it: its instance shows the try (running its second poke, or ended), whatever A's
    // late end of the first poke said.
    CHECK(tries[0].state == (second_ended ? task_state::success : task_state::running));

    if (!second_ended) {
      b_ex.deliver(b_ex.run(0));
      b.step();
    }
    wait = s.tis(key)["wait"];
    CHECK(wait.state == task_state::success);
    CHECK(wait.try_number == 1);
    tries = s.db->tries(key.dag_id, key.run_id, "wait");
    REQUIRE(tries.size() == 1);
    CHECK(tries[0].state == task_state::success);
  }
}

namespace {
// Schedulers A and B on one SQLite database (each its own store and holding executor, both
// adopting the store's runs at every pass) and a run of DAG "one" (callable "t") that A created
// and started the try of, and B found.
struct two_schedulers {
  reschedule_sandbox s;
  std::vector<std::pair<dag::run_key, std::optional<dag::run_state>>> told;  // A's run_ended
  holding_executor* a_ex = nullptr;
  holding_executor* b_ex = nullptr;
  std::unique_ptr<dag::store> b_store = dag::open_store("sqlite:" + (s.dir / "dagrun.db").string());
  std::optional<dag::engine> a, b;
  dag::run_key key;

  explicit two_schedulers(int a_parallelism = 1) {
    auto options = s.one_slot();
    options.adopt_store_runs = true;
    options.poll_interval = std::chrono::milliseconds(0);
    auto a_owned = std::make_unique<holding_executor>(), b_owned = std::make_unique<holding_executor>();
    a_ex = a_owned.get();
    b_ex = b_owned.get();
    b.emplace(*b_store, s.operators, s.clock, options, std::move(b_owned));
    options.run_ended = [this](const dag::run_key& k, std::optional<dag::run_state> state) { told.emplace_back(k, state); };
    options.parallelism = a_parallelism;
    a.emplace(*s.db, s.operators, s.clock, options, std::move(a_owned));
    a->set_dags({dag_of()});
    b->set_dags({dag_of()});
    key = *a->create_run("one", dag::run_type::manual, dag::parse_time("2024-01-01"));
    a->step();
    REQUIRE(a_ex->held() == 1);
    b->step();  // B finds the run
  }
  dag::definition dag_of() {
    dag::definition d{"one"};
    d.callable("t", [](dag::task_context&) { return dag::operator_result::success(); });
    return s.checked(std::move(d));
  }
  // B records the end of A's try (taken by B), which finishes the run.
  void b_finishes() {
    b_ex->deliver(a_ex->run(0));
    b->step();
    REQUIRE(s.db->find_run(key.dag_id, key.run_id)->state == dag::run_state::success);
  }
};
}  // namespace

TEST_CASE("Engine.ARunAnotherSchedulerFinishedOrDeletedIsLetGoOfAtThePoll" * doctest::timeout(60)) {
  // B finished the run (or it was deleted); A, which recorded nothing of it, lets go of its stale
  // view at its next look at the store: told that the run ended, as B left it. Also when A's
  // folder lost the run's DAG meanwhile (A keeps such a run, waiting for its DAG).
  enum class way { finished, deleted, finished_without_its_dag };
  for (const way how : {way::finished, way::deleted, way::finished_without_its_dag}) {
    CAPTURE(static_cast<int>(how));
    const bool deleted = how == way::deleted;
    two_schedulers t;
    if (how == way::finished_without_its_dag) t.a->set_dags({});
    if (deleted) REQUIRE(t.s.db->delete_run(t.key.dag_id, t.key.run_id));
    else t.b_finishes();
    REQUIRE(t.a->state_of(t.key) == dag::run_state::running);  // A's view
    t.told.clear();
    t.a->step();
    REQUIRE(t.told.size() == 1);
    CHECK(t.told[0].first.run_id == t.key.run_id);
    CHECK(t.told[0].second == (deleted ? std::nullopt : std::optional(dag::run_state::success)));
    CHECK(t.a->state_of(t.key) == (deleted ? std::nullopt : std::optional(dag::run_state::success)));
    t.a->step();  // let go of: told once
    CHECK(t.told.size() == 1);
  }
}

TEST_CASE("Engine.ASweepForLostTriesReadsAgainARunThisEngineLeftAloneForALease" * doctest::timeout(60)) {
  // A sweep (every lease, with the queue) reads again the runs this engine neither read nor moved
  // on since the one before, not those it keeps moving on: A started the run's try, B recorded its
  // end; A's view catches up at its second sweep, not its first.
  two_schedulers t;
  t.b_finishes();
  CHECK(t.a->recover_lost_tries() == 0);
  CHECK(t.a->state_of(t.key) == dag::run_state::running);  // A started its try this lease: not read
  CHECK(t.a->recover_lost_tries() == 0);
  CHECK(t.a->state_of(t.key) == dag::run_state::success);  // a lease without moving it: read
  // The lease starts after the sweep's reads: the third sweep reads the run again (now deleted).
  REQUIRE(t.s.db->delete_run(t.key.dag_id, t.key.run_id));
  CHECK(t.a->recover_lost_tries() == 0);
  CHECK(t.a->state_of(t.key) == std::nullopt);
}

TEST_CASE("Engine.ASweepForLostTriesLeavesARunOfADagThatLeftTheFolderToThePoll" * doctest::timeout(60)) {
  // Nothing moves such a run on here: the sweeps do not read it again, however long it is left
  // alone; the poll lets go of it once another process finished it.
  two_schedulers t;
  t.a->set_dags({});
  t.b_finishes();
  CHECK(t.a->recover_lost_tries() == 0);
  CHECK(t.a->recover_lost_tries() == 0);
  CHECK(t.a->state_of(t.key) == dag::run_state::running);  // A's view, not read again
  t.told.clear();
  t.a->step();
  REQUIRE(t.told.size() == 1);
  CHECK(t.told[0].second == dag::run_state::success);
}

TEST_CASE("Engine.ARunLetGoOfByAPassThatCouldNotBeWrittenIsStillToldAbout" * doctest::timeout(60)) {
  // B finished the run; A's next pass lets go of it, and starts the try of a run B created, but
  // the store refuses the pass's write (another connection holds its write lock). The run is not
  // active in the store any more, so no look at the store's active runs brings it back: A reads
  // it again and tells of it, once, when the store takes its writes again.
  two_schedulers t(2);
  t.b_finishes();
  t.a_ex->deliver(t.a_ex->run(0));  // the same end reaches A too: A's pass reads the run for it
  const auto second = t.b->create_run("one", dag::run_type::manual, dag::parse_time("2024-01-02"));
  REQUIRE(second);
  t.told.clear();
  dag_test::held_write_lock writer(t.s.dir / "dagrun.db");
  CHECK_THROWS(t.a->step());
  writer.release();
  CHECK(t.told.empty());  // not before the store is written again
  t.a->step();
  REQUIRE(t.told.size() == 1);
  CHECK(t.told[0].first.run_id == t.key.run_id);
  CHECK(t.told[0].second == dag::run_state::success);
  CHECK(t.a->state_of(*second) == dag::run_state::running);  // and the other run goes on
  t.a->step();
  CHECK(t.told.size() == 1);  // told once
}

TEST_CASE("Engine.ARescheduledTryIsNotMadeDueByAViewOfAnEarlierPoke" * doctest::timeout(60)) {
  // This engine saw the first poke reschedule the try to t0 + 60 s. Meanwhile another scheduler
  // ran a later poke of the same try, which rescheduled it to t0 + 121 s. At t0 + 61 s this
  // engine's view says the try is due: its write, which expects the poke it saw, is refused, and
  // the try waits for the later poke's time. Whether the one slot is taken (the try would only
  // be scheduled) or free (it would start).
  for (const bool slot_free : {false, true}) {
    CAPTURE(slot_free);
    reschedule_sandbox s;
    const auto t0 = s.clock.at;
    auto owned = std::make_unique<holding_executor>();
    holding_executor& ex = *owned;
    dag::engine eng(*s.db, s.operators, s.clock, s.one_slot(), std::move(owned));
    eng.set_dags({s.sensor_dag("1h")});
    const auto key = *eng.create_run("sensing", dag::run_type::manual, dag::parse_time("2024-01-01"));
    eng.step();
    REQUIRE(ex.held() == 1);
    ex.deliver(ex.run(0));  // the first poke finds nothing
    eng.step();             // rescheduled; "other" takes the one slot
    REQUIRE(ex.held() == 2);
    REQUIRE(ex.task_of(1) == "other");
    if (slot_free) {
      ex.deliver(ex.run(1));
      eng.step();
      REQUIRE(s.tis(key)["other"].state == task_state::success);
    }
    auto later = s.tis(key)["wait"];
    REQUIRE(later.state == task_state::up_for_reschedule);
    REQUIRE(later.retry_at == t0 + 60s);
    const int try_number = later.try_number;
    later.start_date = t0 + 61s;  // the later poke, as the other scheduler wrote it
    later.retry_at = t0 + 121s;
    dag::change_set other;
    other.task_instances.push_back({task_state::up_for_reschedule, try_number, later});
    s.db->apply(other);
    s.clock.at = t0 + 61s;
    eng.step();
    const auto now = s.tis(key)["wait"];
    CHECK(now.state == task_state::up_for_reschedule);
    CHECK(now.retry_at == t0 + 121s);
    CHECK(ex.held() == 2);  // not started
  }
}

TEST_CASE("Engine.APokeThatEndsAfterItsTaskWasClearedStaysItsTrysRecord" * doctest::timeout(60)) {
  // The poke's end is refused (the instance was cleared meanwhile), but its try happened: the try
  // has no row yet, and gets this one.
  reschedule_sandbox s;
  auto owned = std::make_unique<holding_executor>();
  holding_executor& ex = *owned;
  dag::engine eng(*s.db, s.operators, s.clock, s.one_slot(), std::move(owned));
  dag::definition d{"sensing"};
  reschedule_sandbox::add_sensor(d, "1h");
  eng.set_dags({s.checked(std::move(d))});
  const auto key = *eng.create_run("sensing", dag::run_type::manual, dag::parse_time("2024-01-01"));
  eng.step();
  REQUIRE(ex.held() == 1);
  dag::clear_selection which;
  which.dag_id = key.dag_id;
  which.run_id = key.run_id;
  REQUIRE(dag::clear_task_instances(*s.db, which).size() == 1);
  ex.deliver(ex.run(0));
  eng.step();
  const auto tries = s.db->tries(key.dag_id, key.run_id, "wait");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0].try_number == 1);
  CHECK(tries[0].state == task_state::up_for_reschedule);
  CHECK(s.tis(key)["wait"].state == task_state::none);  // as the clear left it
}

TEST_CASE("Engine.DaemonCreatesDueRunsOnceAndRunsThem") {
  sandbox s;
  s.clock.at = dag::parse_time("2024-01-04T12:00:00Z");
  dag::definition d{"daily"};
  d.schedule("@daily").start_date("2024-01-01").max_active_runs(2);
  d.bash("t", "true");
  dag::engine eng(*s.db, s.operators, s.clock, s.options(true));
  eng.set_dags({s.checked(std::move(d))});
  dag::run_filter all;
  all.dag_id = "daily";
  auto finished = [&] {
    auto runs = s.db->runs(all);
    return runs.size() == 3 && std::all_of(runs.begin(), runs.end(), [](auto& r) { return r.state == dag::run_state::success; });
  };
  const give_up_after guard(30s);  // the runs never finishing fails the test instead of hanging it
  eng.run_until(finished, guard.token());
  auto runs = s.db->runs(all);
  REQUIRE(runs.size() == 3);
  CHECK(runs[0].run_id == "scheduled__2024-01-03T00:00:00+00:00");
  CHECK(runs[2].run_id == "scheduled__2024-01-01T00:00:00+00:00");
  eng.step();
  CHECK(s.db->runs(all).size() == 3);  // nothing new is due until 2024-01-05
}

TEST_CASE("Engine.ADueRunAnotherSchedulerWroteFirstIsNotWrittenAgainAndRunsOnce") {
  // Two schedulers on one store: the other writes the run due at midnight after this one last
  // polled and before its pass does. This pass's run, and what it decided for it, are refused
  // whole; the run is adopted at the next poll and runs once.
  sandbox s;
  s.clock.at = dag::parse_time("2024-01-01T12:00:00Z");
  dag::definition d{"race"};
  d.schedule("@daily").start_date("2024-01-01");
  d.callable("t", [](dag::task_context&) { return dag::operator_result::success(); });
  dag::engine_options options = s.options(true);
  options.poll_interval = 24h;  // polled at construction, next at 2024-01-02T12:00
  dag::engine eng(*s.db, s.operators, s.clock, options);
  eng.set_dags({s.checked(d)});
  eng.step();
  dag::run_filter all;
  all.dag_id = "race";
  CHECK(s.db->runs(all).empty());  // the first interval ends at midnight
  const auto theirs = dag::create_run_record(*s.db, dag::scheduled_dag(s.checked(d)), dag::run_type::scheduled,
                                             dag::parse_time("2024-01-01"));
  REQUIRE(theirs);
  s.clock.at = dag::parse_time("2024-01-02T00:00:01Z");
  CHECK_NOTHROW(eng.step());
  CHECK_NOTHROW(eng.step());
  auto runs = s.db->runs(all);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].run_id == theirs->run_id);
  CHECK(runs[0].state == dag::run_state::queued);  // as the other scheduler wrote it
  const dag::run_key key{"race", theirs->run_id};
  CHECK(s.tis(key).at("t").state == task_state::none);
  CHECK(s.tis(key).at("t").try_number == 0);
  // Adopted at the next poll, and run.
  s.clock.at = dag::parse_time("2024-01-02T12:00:01Z");
  const give_up_after guard(30s);
  eng.run_until([&] { return s.db->find_run("race", theirs->run_id)->state == dag::run_state::success; }, guard.token());
  CHECK(s.db->find_run("race", theirs->run_id)->state == dag::run_state::success);
  CHECK(s.tis(key).at("t").state == task_state::success);
  CHECK(s.tis(key).at("t").try_number == 1);
  CHECK(s.db->runs(all).size() == 1);
}

TEST_CASE("Engine.ChecksTheDagsItIsGivenSoRetriesCount") {
  sandbox s;
  dag::definition d{"unchecked"};
  d.bash("flaky", "[ \"$DAGRUN_TRY_NUMBER\" -ge 3 ]").retries(2).retry_delay(0s);
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({d});  // not passed through dag::check: the engine checks it
  const auto key = eng.create_run("unchecked", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  CHECK(s.tis(*key)["flaky"].try_number == 3);
  CHECK(s.db->tries(key->dag_id, key->run_id, "flaky").size() == 3);
}

TEST_CASE("Engine.RefusesInvalidDagsListingEveryProblem") {
  sandbox s;
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  dag::definition good{"good"};
  good.bash("t", "true");
  eng.set_dags({good});
  dag::definition bad{"bad"};
  bad.add_task("a", "bsh");
  bad.bash("b", "true").retries(-1);
  try {
    eng.set_dags({good, bad});
    FAIL("an invalid DAG was accepted");
  } catch (const dag::definition_error& e) {
    const std::string what = e.what();
    CHECK(what.find("unknown operator 'bsh'") != std::string::npos);
    CHECK(what.find("retries: must be at least 0") != std::string::npos);
  }
  CHECK(eng.find_dag("good"));  // nothing changed
  CHECK_FALSE(eng.find_dag("bad"));
}

TEST_CASE("Engine.SharedDefinitionsAreScheduledAsTheyAreAndAReloadLeavesAReaderTheOldOnes") {
  sandbox s;
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  const auto version = [&](const std::string& command, bool second_task) {
    dag::definition d{"shared"};
    d.bash("a", command);
    if (second_task) d.bash("b", "true");
    return std::make_shared<const dag::definition>(s.checked(std::move(d)));
  };
  const dag::shared_definition first = version("echo one", false);
  eng.set_dags({first});
  // The engine schedules and publishes the very definition it was given: no copy.
  const auto before = eng.definitions();
  REQUIRE(before->size() == 1);
  CHECK(before->front() == first);
  const dag::scheduled_dag* scheduled = eng.find_dag("shared");
  REQUIRE(scheduled);
  CHECK(scheduled->def == first);
  const auto key = eng.create_run("shared", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);

  // The same definition again (a reload that kept its file): its scheduled form stays.
  eng.set_dags({first});
  CHECK(eng.find_dag("shared") == scheduled);

  // A new version (the file changed): published and scheduled, while a reader that took the DAGs
  // before (a request of the HTTP face) still sees the old version whole.
  const dag::shared_definition second = version("echo two", true);
  eng.set_dags({second});
  const auto after = eng.definitions();
  REQUIRE(after->size() == 1);
  CHECK(after->front() == second);
  REQUIRE(eng.find_dag("shared"));
  CHECK(eng.find_dag("shared")->def == second);
  REQUIRE(before->size() == 1);
  CHECK(before->front()->all_tasks().size() == 1);
  CHECK(before->front()->find("a")->fields.at("bash_command").text == "echo one");
  CHECK_FALSE(before->front()->find("b"));
  // The run follows the new version: its new task runs too.
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  CHECK(s.tis(*key).size() == 2);

  // An unchecked shared definition is checked as a copy: the caller's stays as it was.
  dag::definition raw{"raw"};
  raw.bash("flaky", "true").retries(3);
  const auto unchecked = std::make_shared<const dag::definition>(raw);
  eng.set_dags({unchecked, second});
  CHECK_FALSE(unchecked->checked());
  REQUIRE(eng.find_dag("raw"));
  CHECK(eng.find_dag("raw")->def != unchecked);
  CHECK(eng.find_dag("raw")->def->checked());
  CHECK(eng.find_dag("raw")->def->find("flaky")->settings.retry.retries == 3);
  CHECK(eng.find_dag("shared")->def == second);
}

TEST_CASE("Engine.SetDagsOfAnEmptyBracedListSchedulesNoDag") {
  sandbox s;
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  dag::definition d{"one"};
  d.bash("a", "true");
  eng.set_dags({std::move(d)});
  REQUIRE(eng.find_dag("one"));
  eng.set_dags({});  // compiles: one overload takes an empty list
  CHECK_FALSE(eng.find_dag("one"));
  CHECK(eng.definitions()->empty());
}

namespace {

// A program's own executor: one thread of its own runs each try's operator in this process and
// reports its end (`reports` times: the queue hands an end out again when the scheduler's pass
// that took it could not be written); nothing of dagrun's executors is used.
class own_executor final : public dag::executor {
public:
  explicit own_executor(int reports = 1, std::set<std::string> refused = {}) : reports_(reports), refused_(std::move(refused)) {}
  std::atomic<int> ran{0};
  std::atomic<int> reported{0};  ///< ends reported, repeats included
  ~own_executor() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
  }
  void submit(dag::task_request request) override {
    if (refused_.contains(request.context.task_id)) throw std::runtime_error("no room for " + request.context.task_id);
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(request));
    }
    changed_.notify_all();
  }
  void cancel_all() override {}
  void drain() override {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return queue_.empty() && !busy_; });
  }

private:
  void work() {
    for (;;) {
      dag::task_request r;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        r = std::move(queue_.front());
        queue_.pop_front();
        busy_ = true;
      }
      dag::task_event e;
      e.dag_id = r.context.dag_id;
      e.run_id = r.context.run_id;
      e.task_id = r.context.task_id;
      e.try_number = r.context.try_number;
      e.started = now();
      e.result = r.op->run(*r.definition, r.context);
      e.ended = now();
      ++ran;
      for (int i = 0; i < reports_; ++i) {
        report(e);
        ++reported;
      }
      {
        std::lock_guard lock(mutex_);
        busy_ = false;
      }
      changed_.notify_all();
    }
  }

  const int reports_;
  const std::set<std::string> refused_;  // tasks whose tries submit refuses, throwing
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<dag::task_request> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  std::jthread thread_{[this] { work(); }};  // last: starts once the rest is ready, joins first
};

}  // namespace

TEST_CASE("Engine.RunsTriesOnAProgramsOwnExecutor") {
  sandbox s;
  std::vector<std::string> order;  // written by the executor's one thread only
  dag::definition d{"own"};
  auto a = d.callable("a", [&](dag::task_context& ctx) {
    order.push_back(ctx.task_id);
    return dag::operator_result::success("from a");
  });
  auto b = d.callable("b", [&](dag::task_context& ctx) {
    order.push_back(ctx.task_id);
    return dag::operator_result::success();
  });
  a >> b;
  auto own = std::make_unique<own_executor>();
  own_executor& used = *own;
  dag::engine eng(*s.db, s.operators, s.clock, s.options(), std::move(own));
  eng.set_dags({d});
  const auto key = eng.create_run("own", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  CHECK(used.ran == 2);
  CHECK(order == std::vector<std::string>{"a", "b"});
  CHECK(s.db->xcom(key->dag_id, key->run_id, "a") == "from a");
  // An executor serves one engine.
  CHECK_THROWS_AS(used.connect([](dag::task_event) {}, [] { return dag::timestamp{}; }), dag::usage_error);
}

TEST_CASE("Engine.ATryTheExecutorRefusesFailsAndThePassesOtherStartsRun") {
  // A program's own executor throws from submit for one try of a pass that starts three: that try
  // fails with the executor's reason (and is retried as any failed try), the other two run.
  sandbox s;
  dag::definition d{"refusing"};
  d.callable("a", [](dag::task_context&) { return dag::operator_result::success(); });
  d.callable("b", [](dag::task_context&) { return dag::operator_result::success(); }).retries(1).retry_delay(0s);
  d.callable("c", [](dag::task_context&) { return dag::operator_result::success(); });
  auto own = std::make_unique<own_executor>(1, std::set<std::string>{"b"});
  own_executor& used = *own;
  dag::engine eng(*s.db, s.operators, s.clock, s.options(), std::move(own));
  eng.set_dags({d});
  const auto key = eng.create_run("refusing", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  // Stepped until the run ends, within a deadline: a refused try no one ends would hang
  // run_to_completion instead of failing this test.
  REQUIRE(eventually([&] {
    eng.step();
    const auto run = s.db->find_run("refusing", key->run_id);
    return run && run->state == dag::run_state::failed;
  }));
  CHECK(used.ran == 2);
  auto tis = s.tis(*key);
  CHECK(tis["a"].state == task_state::success);
  CHECK(tis["c"].state == task_state::success);
  CHECK(tis["b"].state == task_state::failed);
  CHECK(tis["b"].try_number == 2);  // retried, and refused again
  const auto tries = s.db->tries("refusing", key->run_id, "b");
  REQUIRE(tries.size() == 2);
  for (const auto& t : tries) CHECK(t.message == "the executor refused the try: no room for b");
}

TEST_CASE("Engine.AnEndReportedTwiceInOnePassIsRecordedOnce") {
  // The queue hands an end out again when the scheduler's pass that took it could not be written
  // (the database crashed), so one pass may take the same end twice. It is recorded once: the
  // repeat must not make the store refuse the first (the try would stay running with its end
  // acknowledged, and be taken for lost later).
  sandbox s;
  dag::definition d{"twice"};
  auto a = d.callable("a", [](dag::task_context&) { return dag::operator_result::success("1"); });
  auto b = d.callable("b", [](dag::task_context&) { return dag::operator_result::success(); });
  a >> b;
  auto own = std::make_unique<own_executor>(2);
  own_executor& used = *own;
  dag::engine eng(*s.db, s.operators, s.clock, s.options(), std::move(own));
  eng.set_dags({d});
  const auto key = eng.create_run("twice", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  eng.step();  // a starts
  REQUIRE(eventually([&] { return used.reported == 2; }));
  eng.step();  // takes both of a's ends at once
  REQUIRE(s.tis(*key)["a"].state == task_state::success);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  CHECK(used.ran == 2);
  CHECK(s.db->tries("twice", key->run_id, "a").size() == 1);
  CHECK(s.db->tries("twice", key->run_id, "b").size() == 1);
  CHECK(s.tis(*key)["b"].try_number == 1);
}

TEST_CASE("Engine.DefaultsOpenTheStoreAtItsUrlWithTheBuiltInOperators") {
  sandbox s;
  dag::engine_options options = s.options();
  options.store_url = "sqlite:" + (s.dir / "own.db").string();
  dag::engine eng(options);
  dag::definition d{"defaults"};
  d.bash("t", "echo {{ ds }}");
  eng.set_dags({d});
  const auto key = eng.create_run("defaults", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  CHECK(eng.store().xcom(key->dag_id, key->run_id, "t") == "2024-01-01");
  CHECK(dag::open_store(options.store_url)->find_run("defaults", key->run_id));
}

namespace {

// A worked example of the docs (examples/flow/), loaded as `dagrun` loads it.
dag::definition flow_example(const dag::operator_catalog& operators, const std::string& name) {
  auto loaded = dag::load_yaml_file(std::filesystem::path(DAG_SOURCE_DIR) / "examples" / "flow" / name, operators);
  for (const auto& p : loaded.problems) FAIL_CHECK(p.what());
  REQUIRE(loaded.dag);
  return std::move(*loaded.dag);
}

// Runs the example once with `conf`; returns each task's state by id.
std::map<std::string, std::string> run_example(sandbox& s, const std::string& name, const std::string& conf,
                                               dag::run_type type = dag::run_type::manual,
                                               const std::string& logical_date = "2024-01-01") {
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  dag::definition d = flow_example(s.operators, name);
  const std::string id = d.id();
  eng.set_dags({std::move(d)});
  auto key = eng.create_run(id, type, dag::parse_time(logical_date), conf);
  REQUIRE(key);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  std::map<std::string, std::string> states;
  for (const auto& [task_id, ti] : s.tis(*key)) states[task_id] = std::string(dag::to_string(ti.state));
  return states;
}

}  // namespace

TEST_CASE("Engine.TemplateFilesAreReadAndRendered") {
  // The example of docs/yaml.md "Template files": sql and bash_command name files.
  sandbox s;
  auto loaded = dag::load_yaml_file(std::filesystem::path(DAG_SOURCE_DIR) / "examples" / "templates" / "daily_report.yaml",
                                    s.operators);
  for (const auto& p : loaded.problems) FAIL_CHECK(p.what());
  REQUIRE(loaded.dag);
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({std::move(*loaded.dag)});
  auto key = eng.create_run("daily_report", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  CHECK(s.db->xcom(key->dag_id, key->run_id, "count") == "[[3]]");
  CHECK(s.db->xcom(key->dag_id, key->run_id, "report") == "daily 2024-01-01: [[3]]");
}

TEST_CASE("Engine.BranchRunsOneOfThreePathsAndTheJoin") {
  struct row {
    std::string conf;
    std::map<std::string, std::string> states;
  };
  const std::vector<row> table{
      {"{}",
       {{"pick", "success"}, {"quick", "success"}, {"full_extract", "skipped"}, {"full_load", "skipped"},
        {"repair", "skipped"}, {"report", "success"}}},
      {R"({"path": "full_extract"})",
       {{"pick", "success"}, {"quick", "skipped"}, {"full_extract", "success"}, {"full_load", "success"},
        {"repair", "skipped"}, {"report", "success"}}},
      {R"({"path": ["quick", "repair"]})",
       {{"pick", "success"}, {"quick", "success"}, {"full_extract", "skipped"}, {"full_load", "skipped"},
        {"repair", "success"}, {"report", "success"}}},
  };
  for (const auto& r : table) {
    CAPTURE(r.conf);
    sandbox s;
    CHECK(run_example(s, "branching.yaml", r.conf) == r.states);
  }
}

TEST_CASE("Engine.ThePoolsExampleRunsInItsPool") {
  sandbox s;
  s.db->set_pool({"warehouse", 2, ""});
  CHECK(run_example(s, "pools.yaml", "{}") ==
        std::map<std::string, std::string>{
            {"load_orders", "success"}, {"load_customers", "success"}, {"rebuild_index", "success"}, {"notify", "success"}});
  const auto runs = s.db->runs({});
  REQUIRE(runs.size() == 1);
  auto tis = s.tis({runs[0].dag_id, runs[0].run_id});
  CHECK(tis["load_orders"].pool == "warehouse");
  CHECK(tis["rebuild_index"].pool_slots == 2);
  CHECK(tis["notify"].pool == "default_pool");
}

TEST_CASE("Engine.ATaskInstanceKeepsTheQueueAndTheExecutorOfItsLatestTry") {
  sandbox s;
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  dag::definition d{"routed"};
  d.bash("fast", "true").queue("fast_lane");
  d.bash("plain", "true");
  REQUIRE(dag::check(d, s.operators).empty());
  eng.set_dags({d});
  auto key = eng.create_run("routed", dag::run_type::manual, dag::parse_time("2024-01-01"), "{}");
  REQUIRE(key);
  CHECK(s.tis(*key)["fast"].queue.empty());  // no try yet
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  auto tis = s.tis(*key);
  CHECK(tis["fast"].queue == "fast_lane");
  CHECK(tis["plain"].queue == "default");  // Airflow's default queue
  CHECK(tis["fast"].executor == "LocalExecutor");
}

TEST_CASE("Engine.TheRunTimeoutExampleStopsItsSleepingTask" * doctest::timeout(60)) {
  sandbox s;
  dag::system_clock wall;
  dag::engine eng(*s.db, s.operators, wall, s.options());
  eng.set_dags({flow_example(s.operators, "run_timeout.yaml")});
  auto key = eng.create_run("bounded_run", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  const auto began = std::chrono::steady_clock::now();
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::failed);
  CHECK(std::chrono::steady_clock::now() - began < 20s);
  auto tis = s.tis(*key);
  CHECK(tis["slow_extract"].state == task_state::skipped);
  CHECK(tis["report"].try_number == 0);
}

TEST_CASE("Engine.BranchNamingAnUnknownTaskFailsWithTheReason") {
  sandbox s;
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({flow_example(s.operators, "branching.yaml")});
  auto key = eng.create_run("choose_a_path", dag::run_type::manual, dag::parse_time("2024-01-01"), R"({"path": "quik"})");
  REQUIRE(key);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::failed);
  auto tis = s.tis(*key);
  CHECK(tis["pick"].state == task_state::failed);
  CHECK(tis["pick"].message == "branch: the XCom names no task of the DAG: 'quik'");
  CHECK(tis["report"].state == task_state::upstream_failed);
  CHECK_FALSE(s.db->xcom(key->dag_id, key->run_id, "pick"));  // a failed try pushes nothing
}

TEST_CASE("Engine.ShortCircuitSkipsTheDirectDownstreamAndCleanupStillRuns") {
  sandbox s;
  CHECK(run_example(s, "short_circuit.yaml", "{}") ==
        std::map<std::string, std::string>{{"any_new_files", "success"}, {"process", "success"}, {"cleanup", "success"}});
  sandbox none;
  CHECK(run_example(none, "short_circuit.yaml", R"({"files": "0"})") ==
        std::map<std::string, std::string>{{"any_new_files", "success"}, {"process", "skipped"}, {"cleanup", "success"}});
}

TEST_CASE("Engine.ShortCircuitIgnoringTriggerRulesSkipsEverythingDownstream") {
  sandbox s;
  dag::definition d{"gate_all"};
  auto gate = d.bash("gate", "echo false").short_circuit();
  auto work = d.bash("work", "true");
  auto cleanup = d.bash("cleanup", "true").trigger(dag::trigger_rule::all_done);
  gate >> work >> cleanup;
  auto key = s.run(std::move(d), dag::run_state::success);
  auto tis = s.tis(key);
  CHECK(tis["gate"].state == task_state::success);
  CHECK(tis["work"].state == task_state::skipped);
  CHECK(tis["cleanup"].state == task_state::skipped);
  CHECK(tis["cleanup"].try_number == 0);
}

TEST_CASE("Engine.LatestOnlySkipsEveryDayOfABackfillButRunsTheLatest") {
  sandbox s;
  s.clock.at = dag::parse_time("2024-06-01T06:00:00Z");
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({flow_example(s.operators, "latest_only.yaml")});
  std::vector<dag::run_key> keys;
  for (const char* day : {"2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"}) {
    auto key = eng.create_run("daily_with_notification", dag::run_type::backfill, dag::parse_time(day));
    REQUIRE(key);
    keys.push_back(*key);
  }
  // The run of 2024-05-31: its successor's interval [06-01, 06-02) holds now.
  auto latest = eng.create_run("daily_with_notification", dag::run_type::scheduled, dag::parse_time("2024-05-31"));
  REQUIRE(latest);
  keys.push_back(*latest);
  for (auto state : eng.run_to_completion(keys)) CHECK(state == dag::run_state::success);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    CAPTURE(keys[i].run_id);
    auto tis = s.tis(keys[i]);
    CHECK(tis["compute"].state == task_state::success);
    CHECK(tis["latest_only"].state == task_state::success);
    CHECK(tis["notify"].state == (i + 1 < keys.size() ? task_state::skipped : task_state::success));
  }
}

TEST_CASE("Engine.DependsOnPastInABackfillWaitsForTheDayBeforeAndAFailedDayBlocksTheNext" * doctest::timeout(60)) {
  sandbox s;
  // `check` fails on 01-03 only; `load` depends on its own previous instance.
  dag::definition d{"daily_chain"};
  d.schedule("@daily").start_date(dag::parse_time("2024-01-01"));
  d.bash("check", "[ {{ ds }} != 2024-01-03 ]") >> d.bash("load", "sleep 0.2").depends_on_past();
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(std::move(d))});
  std::vector<dag::run_key> keys;
  for (const char* day : {"2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"})
    keys.push_back(*eng.create_run("daily_chain", dag::run_type::backfill, dag::parse_time(day)));
  const auto states = eng.run_to_completion(keys);
  CHECK(states == std::vector<dag::run_state>{dag::run_state::success, dag::run_state::success, dag::run_state::failed,
                                              dag::run_state::failed, dag::run_state::failed});
  // Each day's load started after the day before's had ended.
  CHECK(*s.tis(keys[1])["load"].start_date >= *s.tis(keys[0])["load"].end_date);
  CHECK(s.tis(keys[2])["load"].state == task_state::upstream_failed);
  // 01-04's check ran, its load never: 01-03's load did not succeed; 01-05 waits on 01-04's.
  for (std::size_t day : {3u, 4u}) {
    auto tis = s.tis(keys[day]);
    CHECK(tis["check"].state == task_state::success);
    CHECK(tis["load"].state == task_state::none);
    CHECK(tis["load"].try_number == 0);
    CHECK(tis["load"].message == "waits for the previous run (depends_on_past), which has ended");
  }
}

TEST_CASE("Engine.DependsOnPastOfAMappedTaskWaitsForEveryInstanceOfThePreviousRunInTheStore" * doctest::timeout(60)) {
  sandbox s;
  dag::definition d{"daily_fan"};
  d.schedule("@daily").start_date(dag::parse_time("2024-01-01"));
  // Map index 1 fails on 01-01 only; map index 0 always succeeds.
  d.bash("each", "unused").expand("bash_command", {"true", "[ {{ ds }} != 2024-01-01 ]"}).depends_on_past();
  const dag::definition checked = s.checked(std::move(d));
  {
    dag::engine eng(*s.db, s.operators, s.clock, s.options());
    eng.set_dags({checked});
    const auto first = eng.create_run("daily_fan", dag::run_type::backfill, dag::parse_time("2024-01-01"));
    REQUIRE(first);
    CHECK(eng.run_to_completion({*first}).front() == dag::run_state::failed);
  }
  // Another scheduler reads the previous run from the store: its failed map index 1 holds the
  // whole task back, though map index 0 succeeded.
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({checked});
  const auto second = eng.create_run("daily_fan", dag::run_type::backfill, dag::parse_time("2024-01-02"));
  REQUIRE(second);
  CHECK(eng.run_to_completion({*second}).front() == dag::run_state::failed);
  const auto tis = s.db->task_instances("daily_fan", second->run_id);
  REQUIRE(tis.size() == 1);
  CHECK(tis[0].map_index == -1);
  CHECK(tis[0].state == task_state::none);
  CHECK(tis[0].message == "waits for the previous run (depends_on_past), which has ended");
}

TEST_CASE("Engine.NestedTaskGroupsRunInGroupOrder") {
  sandbox s;
  dag::definition d = flow_example(s.operators, "groups.yaml");
  CHECK(d.find("extract.orders")->settings.retry.retries == 2);
  CHECK(d.find("transform.join")->settings.retry.retries == 0);
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({std::move(d)});
  auto key = eng.create_run("grouped_etl", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  auto tis = s.tis(*key);
  const std::vector<std::string> ids{"start", "extract.orders", "extract.customers", "transform.clean.dedupe",
                                     "transform.clean.validate", "transform.join", "publish.upload"};
  for (const auto& id : ids) CHECK(tis[id].state == task_state::success);
  // Each group starts after the one before it ended.
  auto ended = [&](const std::string& id) { return *tis[id].end_date; };
  auto started = [&](const std::string& id) { return *tis[id].start_date; };
  CHECK(started("extract.orders") >= ended("start"));
  CHECK(started("transform.clean.dedupe") >= std::max(ended("extract.orders"), ended("extract.customers")));
  CHECK(started("transform.join") >= ended("transform.clean.validate"));
  CHECK(started("publish.upload") >= ended("transform.join"));
}

TEST_CASE("Engine.MaxActiveTisPerDagIsNeverExceededAcrossRuns" * doctest::timeout(60)) {
  sandbox s;
  // Each try holds a lock directory while it works: a second try at the same time cannot take it.
  const auto lock = s.dir / "lock";
  dag::definition d{"one_at_a_time"};
  d.bash("load", "mkdir " + lock.string() + " || exit 3; sleep 0.2; rmdir " + lock.string()).max_active_tis_per_dag(1);
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(std::move(d))});
  std::vector<dag::run_key> keys;
  for (const char* day : {"2024-01-01", "2024-01-02", "2024-01-03"})
    keys.push_back(*eng.create_run("one_at_a_time", dag::run_type::manual, dag::parse_time(day)));
  for (auto state : eng.run_to_completion(keys)) CHECK(state == dag::run_state::success);
}

TEST_CASE("Engine.APoolOfTwoSharedByTwoDagsIsNeverExceeded" * doctest::timeout(90)) {
  sandbox s;
  s.db->set_pool({"pair", 2, ""});
  // Each try counts itself in and out under a lock and keeps the highest count it saw.
  const auto lock = (s.dir / "count.lock").string(), count = (s.dir / "count").string(), peak = (s.dir / "peak").string();
  const std::string in = "flock " + lock + " -c 'n=$(( $(cat " + count + " 2>/dev/null || echo 0) + 1 )); echo $n > " + count +
                         "; [ $n -gt $(cat " + peak + " 2>/dev/null || echo 0) ] && echo $n > " + peak + "; true'";
  const std::string out = "flock " + lock + " -c 'echo $(( $(cat " + count + ") - 1 )) > " + count + "'";
  std::vector<dag::definition> dags;
  for (const char* id : {"orders", "customers"}) {
    dag::definition d{id};
    for (const char* task : {"a", "b", "c"}) d.bash(task, in + " && sleep 1 && " + out).pool("pair");
    dags.push_back(s.checked(std::move(d)));
  }
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags(std::move(dags));
  std::vector<dag::run_key> keys;
  for (const char* id : {"orders", "customers"}) keys.push_back(*eng.create_run(id, dag::run_type::manual, dag::parse_time("2024-01-01")));
  for (auto state : eng.run_to_completion(keys)) CHECK(state == dag::run_state::success);
  CHECK(s.read(peak) == "2\n");  // two at once, never three
  for (const auto& key : keys)
    for (const auto& [id, ti] : s.tis(key)) {
      CHECK(ti.pool == "pair");
      CHECK(ti.pool_slots == 1);
    }
  CHECK(s.db->find_pool("pair")->occupied_slots() == 0);
}

TEST_CASE("Engine.APoolAnotherProcessFillsAfterTheEngineCountedItIsNotOverfilled" * doctest::timeout(60)) {
  // The engine keeps its pools' open slots between passes (it reads them once, then counts its
  // own claims and ends); another process's tries are not in that count.
  sandbox s;
  s.db->set_pool({"pair", 2, ""});
  auto noop = [](dag::task_context&) { return dag::operator_result::success(); };
  dag::definition d{"mine"};
  d.callable("gate", noop) >> dag::tasks{d.callable("y", noop).pool("pair"), d.callable("z", noop).pool("pair")};
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(std::move(d))});
  const auto key = eng.create_run("mine", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  eng.step();  // starts gate; pair counted open: 2

  // Another process (a store object of its own) runs two tries in pair meanwhile.
  auto other = dag::open_store("sqlite:" + (s.dir / "dagrun.db").string());
  dag::definition t{"theirs"};
  t.callable("p", noop).pool("pair");
  t.callable("q", noop).pool("pair");
  const dag::scheduled_dag theirs(s.checked(std::move(t)));
  const auto their_run = dag::create_run_record(*other, theirs, dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(their_run);
  dag::change_set claim;
  for (const char* task : {"p", "q"}) {
    dag::task_instance_record ti;
    ti.dag_id = "theirs";
    ti.run_id = their_run->run_id;
    ti.task_id = task;
    ti.state = task_state::running;
    ti.try_number = 1;
    ti.pool = "pair";
    claim.task_instances.push_back({task_state::none, 0, ti});
  }
  REQUIRE(other->apply(claim).applied);
  REQUIRE(s.db->find_pool("pair")->occupied_slots() == 2);

  // gate's end lets y and z go: the engine's count says two open slots, the store refuses both
  // claims, and the engine holds them, in passes after, until the pool has room.
  REQUIRE(eventually([&] {
    eng.step();
    return s.tis(*key)["gate"].state == task_state::success;
  }));
  for (int i = 0; i < 3; ++i) eng.step();
  for (const char* task : {"y", "z"}) {
    CHECK(s.tis(*key)[task].try_number == 0);
    CHECK(s.tis(*key)[task].state != task_state::running);
  }
  CHECK(s.db->find_pool("pair")->occupied_slots() == 2);

  for (auto& u : claim.task_instances) {
    u.expected = task_state::running;
    u.expected_try = 1;
    u.record.state = task_state::success;
  }
  REQUIRE(other->apply(claim).applied);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  CHECK(s.tis(*key)["y"].state == task_state::success);
  CHECK(s.db->find_pool("pair")->occupied_slots() == 0);
}

TEST_CASE("Engine.AnEndIsRecordedWhenTheRetryItsPassClaimsIsRefusedForItsPool" * doctest::timeout(60)) {
  // A try fails and its retry is due at once: the pass that records the end claims the retry too.
  // Another process has meanwhile filled the pool (here: shrunk it under a try of its own), which
  // the engine's own count of the pool cannot know, so the store refuses the claim. The end must
  // still be written: the instance is up for retry, not left `running` with nothing running it.
  sandbox s;
  s.db->set_pool({"pair", 2, ""});
  dag::definition d{"mine"};
  d.callable("a", [](dag::task_context& c) {
     return c.try_number == 1 ? dag::operator_result::failed("first try fails") : dag::operator_result::success();
   }).pool("pair").retries(1).retry_delay(0s);
  auto owned = std::make_unique<holding_executor>();
  holding_executor& ex = *owned;
  dag::engine eng(*s.db, s.operators, s.clock, s.options(), std::move(owned));
  eng.set_dags({s.checked(std::move(d))});
  const auto key = eng.create_run("mine", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  eng.step();  // a's first try is handed over; the engine counts one slot of pair open
  REQUIRE(ex.held() == 1);

  auto other = dag::open_store("sqlite:" + (s.dir / "dagrun.db").string());
  dag::definition t{"theirs"};
  t.callable("p", [](dag::task_context&) { return dag::operator_result::success(); }).pool("pair");
  const dag::scheduled_dag theirs(s.checked(std::move(t)));
  const auto their_run = dag::create_run_record(*other, theirs, dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(their_run);
  dag::change_set claim;
  dag::task_instance_record p;
  p.dag_id = "theirs";
  p.run_id = their_run->run_id;
  p.task_id = "p";
  p.state = task_state::running;
  p.try_number = 1;
  p.pool = "pair";
  claim.task_instances.push_back({task_state::none, 0, p});
  REQUIRE(other->apply(claim).applied);
  other->set_pool({"pair", 1, ""});  // a and p hold two slots of one: a's end leaves none open

  ex.deliver(ex.run(0));
  eng.step();  // records a's end, and claims its retry: refused
  auto a = s.tis(*key)["a"];
  CHECK(a.state == task_state::up_for_retry);
  CHECK(a.try_number == 1);
  CHECK(a.message.find("first try fails") != std::string::npos);
  for (int i = 0; i < 3; ++i) eng.step();
  a = s.tis(*key)["a"];
  CHECK(a.state == task_state::scheduled);  // its retry is due, and waits for a slot
  CHECK(a.try_number == 1);
  CHECK(ex.held() == 1);
  CHECK(s.db->find_pool("pair")->occupied_slots() == 1);

  claim.task_instances.front().expected = task_state::running;
  claim.task_instances.front().expected_try = 1;
  claim.task_instances.front().record.state = task_state::success;
  REQUIRE(other->apply(claim).applied);
  REQUIRE(eventually([&] {
    eng.step();
    return ex.held() == 2;
  }));
  ex.deliver(ex.run(1));
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  a = s.tis(*key)["a"];
  CHECK(a.state == task_state::success);
  CHECK(a.try_number == 2);
  const auto tries = s.db->tries("mine", key->run_id, "a");
  REQUIRE(tries.size() == 2);
  CHECK(tries[0].state == task_state::up_for_retry);
  CHECK(tries[1].state == task_state::success);
}

TEST_CASE("Engine.APoolIsCountedAcrossPassesWithoutOverfillingIt" * doctest::timeout(60)) {
  // Many short tries through a pool of two, over many passes: the engine's own count of the pool
  // (not read again while it has room) admits at most two at once, and frees their slots.
  sandbox s;
  s.db->set_pool({"pair", 2, ""});
  std::atomic<int> now{0}, peak{0};
  auto counted = [&](dag::task_context&) {
    const int n = ++now;
    int seen = peak.load();
    while (n > seen && !peak.compare_exchange_weak(seen, n)) {
    }
    // Held until a second try runs beside it (or a while has passed: the last one may be alone),
    // so the pool is really full while the engine decides what else to start.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (now.load() < 2 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    --now;
    return dag::operator_result::success();
  };
  dag::definition d{"many"};
  for (int i = 0; i < 40; ++i) d.callable("t" + std::to_string(i), counted).pool("pair");
  auto key = s.run(std::move(d), dag::run_state::success);
  CHECK(peak.load() == 2);  // both slots used at once, never a third
  CHECK(s.db->find_pool("pair")->occupied_slots() == 0);
  for (const auto& [id, ti] : s.tis(key)) CHECK(ti.state == task_state::success);
}

TEST_CASE("Engine.ATaskTakingMoreSlotsThanAreOpenWaitsForThem" * doctest::timeout(60)) {
  sandbox s;
  s.db->set_pool({"three", 3, ""});
  const auto lock = s.dir / "lock";
  // `big` takes all three slots: it never runs beside `small`s, which take one each.
  dag::definition d{"weighted"};
  const std::string hold = "mkdir " + lock.string() + " 2>/dev/null || exit 3; sleep 0.3; rmdir " + lock.string();
  d.bash("big", hold).pool("three", 3);
  d.bash("small1", "mkdir " + lock.string() + "/s1 2>/dev/null; sleep 0.3; true").pool("three");
  auto key = s.run(std::move(d), dag::run_state::success);
  CHECK(s.tis(key)["big"].pool_slots == 3);
}

TEST_CASE("Engine.ATaskInAMissingPoolWaitsAndIsNamedInAWarning" * doctest::timeout(60)) {
  sandbox s;
  dag::definition d{"nowhere"};
  d.bash("a", "true").pool("missing");
  std::mutex warnings_mutex;
  std::vector<std::string> warnings;
  auto o = s.options();
  o.warn = [&](const std::string& line) {
    std::lock_guard lock(warnings_mutex);
    warnings.push_back(line);
  };
  dag::engine eng(*s.db, s.operators, s.clock, o);
  eng.set_dags({s.checked(std::move(d))});
  {
    std::lock_guard lock(warnings_mutex);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("pool 'missing' does not exist") != std::string::npos);
  }
  auto key = eng.create_run("nowhere", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  eng.step();
  CHECK(s.tis(*key)["a"].try_number == 0);  // not started
  s.db->set_pool({"missing", 1, ""});
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
}

TEST_CASE("Engine.DagrunTimeoutFailsTheRunAndStopsItsRunningTry" * doctest::timeout(60)) {
  sandbox s;
  dag::system_clock wall;  // the timeout is measured on a clock that moves
  dag::definition d{"slow"};
  d.dagrun_timeout(std::chrono::seconds(1));
  d.bash("sleepy", "sleep 60") >> d.bash("after", "true");
  dag::engine eng(*s.db, s.operators, wall, s.options());
  eng.set_dags({s.checked(std::move(d))});
  auto key = eng.create_run("slow", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  const auto began = std::chrono::steady_clock::now();
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::failed);
  CHECK(std::chrono::steady_clock::now() - began < 20s);  // not the 60s of the task
  auto tis = s.tis(*key);
  CHECK(tis["sleepy"].state == task_state::skipped);
  CHECK(tis["sleepy"].message == "the run exceeded its dagrun_timeout");
  CHECK(tis["after"].state == task_state::skipped);
  CHECK(tis["after"].try_number == 0);  // never ran
  const auto tries = s.db->tries(key->dag_id, key->run_id, "sleepy");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0].state == task_state::skipped);
  CHECK(eng.running() == 0);
}

TEST_CASE("Engine.BranchDayOfWeekFollowsTheLogicalDatesWeekday") {
  // 2024-01-01 was a Monday, 2024-01-06 a Saturday.
  for (const auto& [day, weekend, weekday] : {std::tuple{"2024-01-01", task_state::skipped, task_state::success},
                                              std::tuple{"2024-01-06", task_state::success, task_state::skipped}}) {
    CAPTURE(day);
    sandbox s;
    dag::definition d{"by_weekday"};
    auto pick = d.add_task("pick", "branch_day_of_week")
                    .field("use_task_logical_date", "true")
                    .branch({"weekend_report"}, {"daily_report"});
    pick.get().fields["week_day"].items = {"Saturday", "sunday"};
    pick >> dag::tasks{d.bash("weekend_report", "true"), d.bash("daily_report", "true")};
    dag::engine eng(*s.db, s.operators, s.clock, s.options());
    eng.set_dags({s.checked(std::move(d))});
    auto key = eng.create_run("by_weekday", dag::run_type::manual, dag::parse_time(day));
    REQUIRE(key);
    CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
    auto tis = s.tis(*key);
    CHECK(s.db->xcom(key->dag_id, key->run_id, "pick") == (weekend == task_state::success ? "true" : "false"));
    CHECK(tis["weekend_report"].state == weekend);
    CHECK(tis["daily_report"].state == weekday);
  }
}

namespace {

// Every instance of `task_id` in the run, by map index.
std::vector<dag::task_instance_record> instances_of(sandbox& s, const dag::run_key& k, const std::string& task_id) {
  std::vector<dag::task_instance_record> out;
  for (auto& ti : s.db->task_instances(k.dag_id, k.run_id))
    if (ti.task_id == task_id) out.push_back(ti);
  return out;
}

// The mean of the scheduler loop's passes so far, in microseconds (from the engine's metrics).
double mean_loop_us(dag::engine& eng) {
  const std::string text = eng.metrics().text();
  auto number = [&](const std::string& name) {
    const auto at = text.find("\n" + name + " ");
    REQUIRE(at != std::string::npos);
    return std::stod(text.substr(at + name.size() + 2));
  };
  return number("dagrun_scheduler_loop_duration_seconds_sum") / number("dagrun_scheduler_loop_duration_seconds_count") * 1e6;
}

}  // namespace

TEST_CASE("Engine.MappingOverAnUpstreamXComRunsOneInstanceEachAndPullsTheirResultsAsAList") {
  sandbox s;
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({flow_example(s.operators, "mapping.yaml")});
  auto key = eng.create_run("count_each_file", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  const auto each = instances_of(s, *key, "count_lines");
  REQUIRE(each.size() == 3);
  for (int k = 0; k < 3; ++k) {
    CHECK(each[static_cast<std::size_t>(k)].map_index == k);
    CHECK(each[static_cast<std::size_t>(k)].state == task_state::success);
    // Each instance logs on its own, under map_index=K as Airflow lays logs out.
    CHECK(each[static_cast<std::size_t>(k)].log_path.find("/map_index=" + std::to_string(k) + "/attempt=1.log") != std::string::npos);
  }
  CHECK(s.db->xcom(key->dag_id, key->run_id, "count_lines") == "[5,5,5]");
  CHECK(s.db->xcom(key->dag_id, key->run_id, "total") == "[5,5,5]");
}

TEST_CASE("Engine.MappingOverALiteralListCrossProductAndZippedKwargs") {
  sandbox s;
  dag::definition d{"literal_maps"};
  auto one = d.bash("one", "unused").expand("bash_command", {"echo a", "echo b", "echo {{ ti.map_index }}"});
  auto cross = d.bash("cross", "echo $X$Y").expand("env", {R"({"X": "1"})", R"({"X": "2"})"}).expand("cwd", {"/", "/tmp", "/usr"});
  d.bash("zipped", "unused").expand_kwargs({{{"bash_command", "echo first"}, {"cwd", "/"}},
                                                          {{"bash_command", "echo second"}, {"cwd", "/tmp"}}});
  one >> cross;
  auto key = s.run(std::move(d), dag::run_state::success);
  CHECK(s.db->xcom(key.dag_id, key.run_id, "one") == R"(["a","b",2])");
  CHECK(instances_of(s, key, "cross").size() == 6);  // 2 × 3, the first field varying slowest
  CHECK(s.db->xcom(key.dag_id, key.run_id, "cross") == "[1,1,1,2,2,2]");
  CHECK(s.db->xcom(key.dag_id, key.run_id, "zipped") == R"(["first","second"])");
}

TEST_CASE("Engine.MappedValuesFromAnXComAreDataNotTemplates") {
  sandbox s;
  dag::definition d{"xcom_data"};
  // The upstream prints template syntax (its own command spells the braces through $o, so that it
  // is no template itself). Airflow hands XCom values to mapped instances as they are: only
  // literal expand values are rendered. Rendered, the first would print the run id and the
  // second would fail to render.
  auto list = d.bash("list", R"(o='{'; echo "[\"echo $o$o run_id }}\", \"echo $o$o nope\"]")");
  auto each = d.bash("each", "unused").expand_xcom("bash_command", "list");
  list >> each;
  auto key = s.run(std::move(d), dag::run_state::success);
  CHECK(s.db->xcom(key.dag_id, key.run_id, "each") == R"(["{{ run_id }}","{{ nope"])");
}

TEST_CASE("Engine.AnEmptyListSkipsTheMappedTaskAndItsDownstream") {
  sandbox s;
  dag::definition d{"empty_map"};
  auto list = d.bash("list", "echo '[]'");
  auto each = d.bash("each", "unused").expand_xcom("bash_command", "list");
  auto after = d.bash("after", "true");
  auto always = d.bash("always", "true").trigger(dag::trigger_rule::all_done);
  list >> each >> dag::tasks{after, always};
  auto key = s.run(std::move(d), dag::run_state::success);
  auto tis = s.tis(key);
  CHECK(tis["each"].state == task_state::skipped);
  CHECK(tis["each"].map_index == -1);
  CHECK(tis["each"].message == "mapped over an empty list: no instances");
  CHECK(tis["after"].state == task_state::skipped);
  CHECK(tis["always"].state == task_state::success);
}

TEST_CASE("Engine.AFailedMappedInstanceIsRetriedAlone") {
  sandbox s;
  dag::definition d{"retry_one"};
  const std::string marker = (s.dir / "tried").string();
  // Instance 1 fails its first try (it leaves a marker), then succeeds.
  d.bash("each", "unused")
      .expand("bash_command", {"echo ok0", "if [ -e " + marker + " ]; then echo ok1; else touch " + marker + "; exit 1; fi",
                               "echo ok2"})
      .retries(1)
      .retry_delay(0s);
  auto key = s.run(std::move(d), dag::run_state::success);
  const auto each = instances_of(s, key, "each");
  REQUIRE(each.size() == 3);
  CHECK(each[0].try_number == 1);
  CHECK(each[1].try_number == 2);
  CHECK(each[2].try_number == 1);
  CHECK(s.db->tries(key.dag_id, key.run_id, "each", 1).size() == 2);
  CHECK(s.db->tries(key.dag_id, key.run_id, "each", 1).front().state == task_state::up_for_retry);
  CHECK(s.db->xcom(key.dag_id, key.run_id, "each") == R"(["ok0","ok1","ok2"])");
}

TEST_CASE("Engine.MoreInstancesThanMaxMapLengthFailTheTaskClearly") {
  sandbox s;
  dag::definition d{"too_many"};
  auto list = d.bash("list", "echo '[\"true\", \"true\", \"true\"]'");
  auto each = d.bash("each", "unused").expand_xcom("bash_command", "list").max_map_length(2);
  auto after = d.bash("after", "true");
  list >> each >> after;
  auto key = s.run(std::move(d), dag::run_state::failed);
  auto tis = s.tis(key);
  CHECK(tis["each"].state == task_state::failed);
  CHECK(tis["each"].message == "expand: 3 instances exceed max_map_length (2)");
  CHECK(tis["after"].state == task_state::upstream_failed);
  sandbox bad;
  dag::definition not_a_list{"not_a_list"};
  auto l = not_a_list.bash("list", "echo nope");
  auto e = not_a_list.bash("each", "unused").expand_xcom("bash_command", "list");
  l >> e;
  auto k = bad.run(std::move(not_a_list), dag::run_state::failed);
  CHECK(bad.tis(k)["each"].message == "expand: the XCom 'return_value' of task 'list' is not a JSON list: 'nope'");
}

TEST_CASE("Engine.AMappedValueThatIsNoObjectFailsItsInstanceForAMappingField") {
  // bash's env takes a JSON object of its entries: an element that is none would run the
  // instance with no environment at all, unseen. It fails that instance, saying why; the others run.
  sandbox s;
  dag::definition d{"env_map"};
  auto list = d.bash("list", R"(echo '[{"X": "a"}, 1, "b c", null]')");
  auto each = d.bash("each", "echo \"[$X]\"").expand_xcom("env", "list");
  list >> each;
  auto key = s.run(std::move(d), dag::run_state::failed);
  const auto instances = instances_of(s, key, "each");
  REQUIRE(instances.size() == 4);
  CHECK(instances[0].state == task_state::success);
  CHECK(instances[3].state == task_state::success);  // null: no entries, as Airflow's env=None
  CHECK(instances[1].state == task_state::failed);
  CHECK(instances[1].message == "template error: expand: env of map index 1 must be a JSON object of its entries, got 1");
  CHECK(instances[2].state == task_state::failed);
  CHECK(instances[2].message == "template error: expand: env of map index 2 must be a JSON object of its entries, got 'b c'");
}

TEST_CASE("Engine.MappingAThousandInstancesOverAnXCom" * doctest::timeout(300)) {
  // max_active_tis_per_dag bounds the instances running at once; the loop's mean pass time with
  // 1,000 instances is reported next to a plain DAG's (no timed assertion: machines differ).
  sandbox s;
  auto options = s.options();
  dag::metrics_registry metrics;
  options.metrics = &metrics;
  dag::engine eng(*s.db, s.operators, s.clock, options);
  dag::definition d{"thousand"};
  auto list = d.bash("list", R"(echo "[$(seq -f '{"N": "%g"}' -s, 1 1000)]")");
  auto each = d.bash("each", "echo $N").expand_xcom("env", "list").max_active_tis_per_dag(2);
  auto sum = d.bash("sum", "echo $(( $(echo '{{ ti.xcom_pull(task_ids=\"each\") }}' | tr -d '[]' | tr , +) ))");
  list >> each >> sum;
  eng.set_dags({s.checked(std::move(d))});
  auto key = eng.create_run("thousand", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  CHECK(instances_of(s, *key, "each").size() == 1000);
  CHECK(s.db->xcom(key->dag_id, key->run_id, "sum") == "500500");
  const double mapped = mean_loop_us(eng);

  sandbox plain_box;
  auto plain_options = plain_box.options();
  dag::metrics_registry plain_metrics;
  plain_options.metrics = &plain_metrics;
  dag::engine plain(*plain_box.db, plain_box.operators, plain_box.clock, plain_options);
  dag::definition p{"plain"};
  auto first = p.bash("first", "true");
  for (int i = 0; i < 20; ++i) first >> p.bash("t" + std::to_string(i), "true");
  plain.set_dags({plain_box.checked(std::move(p))});
  auto plain_key = plain.create_run("plain", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(plain_key);
  CHECK(plain.run_to_completion({*plain_key}).front() == dag::run_state::success);
  MESSAGE("scheduler loop, mean pass: " << mapped << " us mapping 1,000 instances; " << mean_loop_us(plain)
                                        << " us for a plain 21-task DAG");
}

TEST_CASE("Engine.ARunItsFirstPassFinishesIsToldByTheNextPassNotBeforeCreateRunsReturns") {
  // A run is written with its first pass; a run that gives up there (its task waits on a failed
  // previous run) ends before its creator has its key: the loop's next pass tells of it.
  sandbox s;
  dag::definition d("dop");
  d.schedule("@daily").start_date("2024-01-01");
  d.callable("a", [](dag::task_context&) { return dag::operator_result::failed("no"); }).depends_on_past();
  std::vector<std::pair<dag::run_key, std::optional<dag::run_state>>> ended;
  dag::engine_options options = s.options();
  options.run_ended = [&](const dag::run_key& k, std::optional<dag::run_state> state) { ended.emplace_back(k, state); };
  dag::engine eng(*s.db, s.operators, s.clock, options);
  eng.set_dags({s.checked(d)});
  const auto first = eng.create_runs("dop", dag::run_type::backfill, {dag::parse_time("2024-01-01")});
  REQUIRE(first[0]);
  CHECK(eng.run_to_completion({*first[0]}) == std::vector<dag::run_state>{dag::run_state::failed});
  REQUIRE(ended.size() == 1);
  const auto second = eng.create_runs("dop", dag::run_type::backfill, {dag::parse_time("2024-01-02")});
  REQUIRE(second[0]);
  CHECK(s.db->find_run("dop", second[0]->run_id)->state == dag::run_state::failed);  // written so
  CHECK(ended.size() == 1);  // not told yet
  eng.step();
  REQUIRE(ended.size() == 2);
  CHECK(ended[1].first == *second[0]);
  CHECK(ended[1].second == dag::run_state::failed);
  eng.step();
  CHECK(ended.size() == 2);  // once
}

TEST_CASE("Engine.TheTriesAPassStartedRunWhenThePassFailsAfterItsCommit") {
  // One slot: the pass that records the first run's end (and ends that run) starts the second
  // run's try. Telling of the first run's end throws, after the commit: the try it started is
  // in the store as started, and must run all the same.
  sandbox s;
  dag::definition d("handed");
  d.schedule("@daily").start_date("2024-01-01");
  std::atomic<int> ran{0};
  d.callable("x", [&](dag::task_context&) {
    ++ran;
    return dag::operator_result::success();
  });
  std::optional<dag::run_key> first;
  int throws = 0;
  dag::engine_options options = s.options();
  options.parallelism = 1;
  options.run_ended = [&](const dag::run_key& k, std::optional<dag::run_state>) {
    if (first && k == *first && throws == 0) {
      ++throws;
      throw std::runtime_error("the callback failed");
    }
  };
  dag::engine eng(*s.db, s.operators, s.clock, options);
  eng.set_dags({s.checked(d)});
  const auto keys = eng.create_runs("handed", dag::run_type::backfill, {dag::parse_time("2024-01-01"), dag::parse_time("2024-01-02")});
  REQUIRE(keys.size() == 2);
  REQUIRE(keys[0]);
  REQUIRE(keys[1]);
  first = *keys[0];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  const auto both_ended = [&] {
    for (const auto& k : keys)
      if (s.db->find_run("handed", k->run_id)->state != dag::run_state::success) return false;
    return true;
  };
  while (!both_ended() && std::chrono::steady_clock::now() < deadline) {
    try {
      eng.run_until([&] { return both_ended() || std::chrono::steady_clock::now() >= deadline; });
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()) == "the callback failed");
    }
  }
  CHECK(throws == 1);
  CHECK(s.tis(*keys[1]).at("x").state == task_state::success);
  CHECK(s.tis(*keys[1]).at("x").try_number == 1);
  CHECK(s.db->find_run("handed", keys[1]->run_id)->state == dag::run_state::success);
  CHECK(ran == 2);  // once a run
}

TEST_CASE("Engine.ALostRunWhoseReadBackFailsIsReadAgainByTheNextPass") {
  // Another writer marks a task after the engine made it ready and before the pass that claims it:
  // the claim loses its compare-and-set, and the engine reads the run back from the store. That
  // read fails once (a database going away right after the commit). An engine that does not adopt
  // the store's runs (`run`, `backfill`, an embedding program) must still hold the run and read
  // it again, not forget it: no end of it is on its way to bring it back.
  sandbox s;
  struct reads_that_fail final : dag::test_support::forwarding_store {
    using forwarding_store::forwarding_store;
    int armed = 0;  // reads left to fail
    int failed = 0;
    void fail_if_armed() {
      if (armed > 0) {
        --armed;
        ++failed;
        throw std::runtime_error("the database went away");
      }
    }
    std::optional<dag::run_record> find_run(const std::string& dag_id, const std::string& run_id) override {
      fail_if_armed();
      return forwarding_store::find_run(dag_id, run_id);
    }
    std::vector<dag::task_instance_record> task_instances(const std::string& dag_id, const std::string& run_id) override {
      fail_if_armed();
      return forwarding_store::task_instances(dag_id, run_id);
    }
  } db(*s.db);
  std::atomic<int> ran{0};
  dag::definition d("reread");
  d.callable("a", [&](dag::task_context&) {
    ++ran;
    return dag::operator_result::success();
  }) >> d.callable("b", [&](dag::task_context&) {
    ++ran;
    return dag::operator_result::success();
  });
  const dag::definition checked = s.checked(d);
  std::vector<std::string> warnings;
  dag::engine_options options = s.options();
  options.warn = [&](const std::string& line) { warnings.push_back(line); };
  dag::engine eng(db, s.operators, s.clock, options);
  eng.set_dags({checked});
  const auto key = eng.create_run("reread", dag::run_type::manual, dag::parse_time("2024-01-01"));
  REQUIRE(key);
  REQUIRE(s.tis(*key).at("a").state == task_state::scheduled);  // the first pass made it ready
  const auto other = dag::open_store("sqlite:" + (s.dir / "dagrun.db").string());  // another process's
  dag::mark_selection m;
  m.dag_id = "reread";
  m.run_id = key->run_id;
  m.task_ids = {"a"};
  dag::mark_task_instances(*other, m, checked, std::chrono::time_point_cast<std::chrono::microseconds>(s.clock.now()));
  db.armed = 2;  // the read-back (the pass fails), then the next pass's (the run waits, said once)
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  const auto ended = [&] { return dag::is_finished(s.db->find_run("reread", key->run_id)->state); };
  while (!ended() && std::chrono::steady_clock::now() < deadline) {
    try {
      eng.run_until([&] { return ended() || std::chrono::steady_clock::now() >= deadline; });
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()) == "the database went away");
    }
  }
  CHECK(db.failed == 2);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] == "cannot read run '" + key->run_id + "' of DAG 'reread' from the store (the database went away); it "
                      "waits and is read again next pass");
  CHECK(s.db->find_run("reread", key->run_id)->state == dag::run_state::success);
  CHECK(s.tis(*key).at("a").state == task_state::success);
  CHECK(s.tis(*key).at("b").state == task_state::success);
  CHECK(ran == 1);  // b; a was marked
  CHECK(eng.state_of(*key) == dag::run_state::success);
}

TEST_CASE("Engine.CreateRunsWritesABatchAndSaysWhichDatesTookAndEachRunsEnd") {
  sandbox s;
  dag::definition d("batch");
  d.schedule("@daily").start_date("2024-01-01");
  auto ok = [](dag::task_context&) { return dag::operator_result::success(); };
  auto fails = [](dag::task_context& c) {
    return c.logical_date == dag::parse_time("2024-01-02") ? dag::operator_result::failed("no") : dag::operator_result::success();
  };
  d.callable("a", ok) >> d.callable("b", fails);
  // A date a run holds already is not created again.
  dag::create_run_record(*s.db, dag::scheduled_dag(s.checked(d)), dag::run_type::scheduled, dag::parse_time("2024-01-03"));
  std::map<dag::run_key, std::optional<dag::run_state>> ended;  // written on the loop's thread only
  dag::engine_options options = s.options();
  options.run_ended = [&](const dag::run_key& k, std::optional<dag::run_state> state) { ended[k] = state; };
  dag::engine eng(*s.db, s.operators, s.clock, options);
  eng.set_dags({s.checked(d)});
  const std::vector<dag::time_point> dates = {dag::parse_time("2024-01-01"), dag::parse_time("2024-01-02"),
                                              dag::parse_time("2024-01-03")};
  const auto keys = eng.create_runs("batch", dag::run_type::backfill, dates);
  REQUIRE(keys.size() == 3);
  REQUIRE(keys[0]);
  REQUIRE(keys[1]);
  CHECK_FALSE(keys[2]);
  CHECK(keys[0]->run_id == "backfill__2024-01-01T00:00:00+00:00");
  // Written as create_run writes one: the run with its data interval and its first pass, which
  // starts it and makes its first task ready but starts no try (the loop's first pass does).
  const auto run = s.db->find_run("batch", keys[1]->run_id);
  REQUIRE(run);
  CHECK(run->state == dag::run_state::running);
  CHECK(run->start_date);
  CHECK(run->interval.start == dag::parse_time("2024-01-02"));
  CHECK(run->interval.end == dag::parse_time("2024-01-03"));
  CHECK(s.tis(*keys[1]).at("a").state == task_state::scheduled);
  CHECK(s.tis(*keys[1]).at("a").try_number == 0);
  CHECK(s.tis(*keys[1]).at("b").state == task_state::none);
  // The run whose date another run held is not tracked, nor that other run changed.
  for (const auto& ti : s.db->task_instances("batch", "scheduled__2024-01-03T00:00:00+00:00")) CHECK(ti.state == task_state::none);
  CHECK(s.db->find_run("batch", "scheduled__2024-01-03T00:00:00+00:00")->state == dag::run_state::queued);
  // Tracked as written (nothing read back), they run to their ends like any run.
  const auto states = eng.run_to_completion({*keys[0], *keys[1]});
  CHECK(states == std::vector<dag::run_state>{dag::run_state::success, dag::run_state::failed});
  CHECK(s.tis(*keys[0]).at("b").state == task_state::success);
  CHECK(s.tis(*keys[1]).at("b").state == task_state::failed);
  REQUIRE(ended.size() == 2);
  CHECK(ended.at(*keys[0]) == dag::run_state::success);
  CHECK(ended.at(*keys[1]) == dag::run_state::failed);
  // A date given twice makes one run.
  const auto twice = eng.create_runs("batch", dag::run_type::backfill, {dag::parse_time("2024-01-05"), dag::parse_time("2024-01-05")});
  REQUIRE(twice.size() == 2);
  REQUIRE(twice[0]);
  CHECK_FALSE(twice[1]);
  CHECK(eng.run_to_completion({*twice[0]}) == std::vector<dag::run_state>{dag::run_state::success});
}
