// Domain operations (dag/model/operations.hpp) on a real SQLite file, with the engine taking up
// what they changed: clear with relatives, mark success/failed, trigger's conf checks.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <unistd.h>

#include <dag/operators/builtin.hpp>
#include <dag/core/error.hpp>
#include <dag/engine/engine.hpp>
#include <dag/load/check.hpp>
#include <dag/model/operations.hpp>

#include "support/eventually.hpp"

using dag::task_state;

namespace {

struct fixed_clock final : dag::clock {
  dag::time_point at = dag::parse_time("2024-06-01T00:00:00Z");
  dag::time_point now() const override { return at; }
};

// A store in a scratch folder and a DAG `ops`: a >> b >> c, and d on its own. b fails while
// `b_fails` is set.
struct sandbox {
  std::filesystem::path dir;
  std::unique_ptr<dag::store> db;
  dag::operator_catalog operators = dag::builtin_operators();
  fixed_clock clock;
  std::atomic<bool> b_fails{false};
  // Task id → tries run. Executor threads run independent tasks (a and d) at the same time, so
  // every count goes through count().
  std::map<std::string, int> runs_of;
  std::mutex runs_mutex;
  void count(const std::string& id) {
    std::lock_guard lock(runs_mutex);
    ++runs_of[id];
  }
  dag::definition dag{"ops"};

  sandbox() {
    static int n = 0;
    dir = std::filesystem::temp_directory_path() / ("dagrun-ops-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    db = dag::open_store("sqlite:" + (dir / "dagrun.db").string());
    auto ok = [this](const char* id) {
      return [this, id](dag::task_context&) {
        count(id);
        return dag::operator_result::success();
      };
    };
    auto a = dag.callable("a", ok("a"));
    auto b = dag.callable("b", [this](dag::task_context&) {
      count("b");
      return b_fails ? dag::operator_result::failed("b failed") : dag::operator_result::success();
    });
    auto c = dag.callable("c", ok("c"));
    dag.callable("d", ok("d"));
    a >> b >> c;
    const auto problems = dag::check(dag, operators);
    REQUIRE(problems.empty());
  }
  ~sandbox() { std::filesystem::remove_all(dir); }

  // Runs `key` (new or taken up again) to its end with a fresh engine, as a scheduler would.
  dag::run_state run(const std::optional<dag::run_key>& key = std::nullopt) {
    dag::engine_options o;
    o.log_folder = dir / "logs";
    o.create_scheduled_runs = false;
    o.adopt_store_runs = false;
    dag::engine eng(*db, operators, clock, o);
    eng.set_dags({dag});
    dag::run_key k;
    if (key) {
      k = *key;
      eng.track_run(k);
    } else {
      k = *eng.create_run("ops", dag::run_type::manual, dag::parse_time("2024-01-01"));
    }
    return eng.run_to_completion({k}).front();
  }
  std::map<std::string, task_state> states(const dag::run_key& k) {
    std::map<std::string, task_state> out;
    for (const auto& ti : db->task_instances(k.dag_id, k.run_id)) out[ti.task_id] = ti.state;
    return out;
  }
  static std::vector<std::string> task_ids(const std::vector<dag::task_instance_ref>& refs) {
    std::vector<std::string> out;
    for (const auto& r : refs) out.push_back(r.task_id);
    return out;
  }
};

const dag::run_key key{"ops", "manual__2024-01-01T00:00:00+00:00"};
using ids = std::vector<std::string>;

}  // namespace

TEST_CASE("Operations.ClearTakesDownstreamOrUpstreamFromTheGraph" * doctest::timeout(60)) {
  sandbox s;
  REQUIRE(s.run() == dag::run_state::success);
  dag::clear_selection which;
  which.dag_id = "ops";
  which.task_matches = [](const std::string& id) { return id == "b"; };
  which.downstream = true;
  which.dry_run = true;
  CHECK(sandbox::task_ids(dag::clear_task_instances(*s.db, which, &s.dag)) == ids{"b", "c"});
  CHECK(s.states(key).at("b") == task_state::success);  // a dry run changes nothing
  CHECK(s.db->find_run(key.dag_id, key.run_id)->state == dag::run_state::success);

  which.downstream = false;
  which.upstream = true;
  CHECK(sandbox::task_ids(dag::clear_task_instances(*s.db, which, &s.dag)) == ids{"a", "b"});
  which.dry_run = false;
  which.upstream = false;
  which.downstream = true;
  CHECK(sandbox::task_ids(dag::clear_task_instances(*s.db, which, &s.dag)) == ids{"b", "c"});
  CHECK(s.states(key) == std::map<std::string, task_state>{
                             {"a", task_state::success}, {"b", task_state::none}, {"c", task_state::none}, {"d", task_state::success}});
  CHECK(s.db->find_run(key.dag_id, key.run_id)->state == dag::run_state::queued);
  // The scheduler runs only what was cleared.
  CHECK(s.run(key) == dag::run_state::success);
  CHECK(s.runs_of == std::map<std::string, int>{{"a", 1}, {"b", 2}, {"c", 2}, {"d", 1}});

  // Relatives need the graph: without the DAG the request is refused, not narrowed.
  CHECK_THROWS_AS(dag::clear_task_instances(*s.db, which), dag::usage_error);
}

TEST_CASE("Operations.MarkSuccessLetsTheFailedRunGoOn" * doctest::timeout(60)) {
  sandbox s;
  s.b_fails = true;
  REQUIRE(s.run() == dag::run_state::failed);
  CHECK(s.states(key).at("c") == task_state::upstream_failed);

  dag::mark_selection which{"ops", key.run_id, {"b"}, task_state::success};
  which.dry_run = true;
  CHECK(sandbox::task_ids(dag::mark_task_instances(*s.db, which, s.dag, s.clock.precise_now())) == ids{"b"});
  CHECK(s.states(key).at("b") == task_state::failed);
  which.dry_run = false;
  CHECK(sandbox::task_ids(dag::mark_task_instances(*s.db, which, s.dag, s.clock.precise_now())) == ids{"b"});
  const auto tis = s.db->task_instances(key.dag_id, key.run_id);
  CHECK(tis[1].state == task_state::success);
  CHECK(tis[1].message == "marked success by hand");
  CHECK(tis[2].state == task_state::none);  // c was upstream_failed: it runs again (Airflow)
  CHECK(s.db->find_run(key.dag_id, key.run_id)->state == dag::run_state::queued);

  CHECK(s.run(key) == dag::run_state::success);
  CHECK(s.runs_of == std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}});  // b was not run again
  // Marking what already has the state changes nothing and leaves the run alone.
  CHECK(dag::mark_task_instances(*s.db, which, s.dag, s.clock.precise_now()).empty());
  CHECK(s.db->find_run(key.dag_id, key.run_id)->state == dag::run_state::success);
}

TEST_CASE("Operations.MarkFailedWithUpstreamEndsTheRunFailed" * doctest::timeout(60)) {
  sandbox s;
  REQUIRE(s.run() == dag::run_state::success);
  const auto ended = s.db->task_instances(key.dag_id, key.run_id);
  dag::mark_selection which{"ops", key.run_id, {"c"}, task_state::failed};
  which.upstream = true;
  const auto later = s.clock.precise_now() + std::chrono::hours(1);
  CHECK(sandbox::task_ids(dag::mark_task_instances(*s.db, which, s.dag, later)) == ids{"a", "b", "c"});
  // An instance that had ended keeps its end (and so its duration), as Airflow's set_state does.
  const auto marked = s.db->task_instances(key.dag_id, key.run_id);
  for (std::size_t i = 0; i < marked.size(); ++i) {
    REQUIRE(ended[i].end_date);
    CHECK(marked[i].end_date == ended[i].end_date);
  }
  CHECK(s.states(key) == std::map<std::string, task_state>{
                             {"a", task_state::failed}, {"b", task_state::failed}, {"c", task_state::failed}, {"d", task_state::success}});
  CHECK(s.run(key) == dag::run_state::failed);  // re-evaluated from its new states, nothing re-run
  CHECK(s.runs_of == std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}});
}

TEST_CASE("Operations.MarkRefusesUnknownTasksRunsAndStates") {
  sandbox s;
  REQUIRE(s.run() == dag::run_state::success);
  const auto now = s.clock.precise_now();
  CHECK_THROWS_WITH_AS(dag::mark_task_instances(*s.db, {"ops", key.run_id, {"bb"}}, s.dag, now),
                       "DAG 'ops' has no task 'bb' (did you mean 'b'?)", dag::usage_error);
  CHECK_THROWS_WITH_AS(dag::mark_task_instances(*s.db, {"ops", "nope", {"b"}}, s.dag, now), "DAG 'ops' has no run 'nope'",
                       dag::usage_error);
  CHECK_THROWS_AS(dag::mark_task_instances(*s.db, {"ops", key.run_id, {"b"}, task_state::running}, s.dag, now),
                  dag::usage_error);
  CHECK_THROWS_AS(dag::mark_task_instances(*s.db, {"ops", key.run_id, {}}, s.dag, now), dag::usage_error);
}

TEST_CASE("Operations.TriggerChecksConfAndRefusesDeepNesting") {
  sandbox s;
  const auto run = dag::trigger_run(*s.db, s.dag, dag::parse_time("2024-02-01"), R"({"k": [1, {"x": "]]"}]})");
  REQUIRE(run);
  CHECK(run->conf == R"({"k":[1,{"x":"]]"}]})");
  CHECK(s.db->find_run("ops", run->run_id)->state == dag::run_state::queued);
  CHECK_FALSE(dag::trigger_run(*s.db, s.dag, dag::parse_time("2024-02-01")));  // the same run id
  CHECK_THROWS_WITH_AS(dag::checked_conf("[1]"), "conf: expected a JSON object", dag::usage_error);
  CHECK_THROWS_WITH_AS(dag::checked_conf("{bad"),
                       "conf: not valid JSON: parse error at line 1, column 2: syntax error while parsing object key - "
                       "invalid literal; last read: '{b'; expected string literal",
                       dag::usage_error);
  CHECK_THROWS_WITH_AS(dag::checked_conf(R"({"a": 1e400})"), "conf: not valid JSON: number overflow parsing '1e400'",
                       dag::usage_error);
  // 100,000 levels would overflow a recursive parser's stack; the bound refuses them unparsed.
  const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  CHECK_THROWS_WITH_AS(dag::checked_conf(deep, "--conf"), "--conf: nested more than 64 levels deep", dag::usage_error);
  const std::string ok = "{\"a\":" + std::string(63, '[') + std::string(63, ']') + "}";
  CHECK_NOTHROW(dag::checked_conf(ok));
}

// Runs DAG `d`'s manual run of 2024-01-01 to its end on a thread of its own, with an engine on a
// connection of its own (as an embedding program serving the API does); its end goes to `final_state`.
std::jthread run_on_own_thread(sandbox& s, const dag::definition& d, std::optional<dag::run_state>& final_state) {
  return std::jthread([&s, &d, &final_state] {
    auto own = dag::open_store("sqlite:" + (s.dir / "dagrun.db").string());
    dag::engine_options o;
    o.log_folder = s.dir / "logs";
    o.create_scheduled_runs = false;
    o.adopt_store_runs = false;
    dag::engine eng(*own, s.operators, s.clock, o);
    eng.set_dags({d});
    const auto key = eng.create_run(d.id(), dag::run_type::manual, dag::parse_time("2024-01-01"));
    final_state = eng.run_to_completion({*key}).front();
  });
}

TEST_CASE("Operations.AnEngineTrackingTheRunTakesUpAClearMadeWhileItRuns" * doctest::timeout(60)) {
  // The engine runs the run on its own thread (as an embedding program serving the API does);
  // meanwhile another connection clears a finished task. The engine's write that would end the
  // run loses its compare-and-set; it must reload the run and run the cleared task again, not
  // drop the run as finished.
  sandbox s;
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  dag::definition d{"held"};
  d.callable("a", [&](dag::task_context&) {
    std::lock_guard lock(m);
    s.count("a");
    return dag::operator_result::success();
  });
  d.callable("b", [&](dag::task_context&) {
    std::unique_lock lock(m);
    s.count("b");
    cv.wait(lock, [&] { return release; });
    return dag::operator_result::success();
  });
  std::optional<dag::run_state> final_state;
  const dag::run_key held{"held", "manual__2024-01-01T00:00:00+00:00"};
  {
    std::jthread loop = run_on_own_thread(s, d, final_state);
    auto other = dag::open_store("sqlite:" + (s.dir / "dagrun.db").string());
    REQUIRE(dag_test::eventually([&] {
      const auto tis = other->task_instances(held.dag_id, held.run_id);
      return tis.size() == 2 && tis[0].state == task_state::success && tis[1].state == task_state::running;
    }));
    dag::clear_selection which;
    which.dag_id = "held";
    which.task_matches = [](const std::string& id) { return id == "a"; };
    REQUIRE(dag::clear_task_instances(*other, which, &d).size() == 1);
    {
      std::lock_guard lock(m);
      release = true;
    }
    cv.notify_all();
  }
  CHECK(final_state == dag::run_state::success);
  CHECK(s.runs_of.at("a") == 2);  // run again after the clear
  CHECK(s.runs_of.at("b") == 1);
  CHECK(s.db->find_run(held.dag_id, held.run_id)->state == dag::run_state::success);
}

TEST_CASE("Operations.TriggerChecksConfAgainstTypedParams") {
  sandbox s;
  s.dag.param("x", "world").param_schema("x", R"({"pattern": "^[a-z]+$"})");
  s.dag.param("n", "5").param_schema("n", R"({"type": "integer", "minimum": 1})");
  // The injection example of docs/concepts.md: a pattern on the param refuses the trigger.
  CHECK_THROWS_WITH_AS(dag::trigger_run(*s.db, s.dag, dag::parse_time("2024-02-01"), R"j({"x": "$(id > /tmp/pwned)"})j"),
                       "conf: param 'x': \"$(id > /tmp/pwned)\" does not match the pattern \"^[a-z]+$\"", dag::usage_error);
  CHECK_THROWS_WITH_AS(dag::trigger_run(*s.db, s.dag, dag::parse_time("2024-02-01"), R"({"n": 0})"),
                       "conf: param 'n': 0 is less than the minimum of 1", dag::usage_error);
  CHECK_THROWS_WITH_AS(dag::trigger_run(*s.db, s.dag, dag::parse_time("2024-02-01"), R"({"n": "7"})"),
                       "conf: param 'n': \"7\" is not of type integer", dag::usage_error);
  // Keys that are no param are the run's own; valid values pass.
  CHECK(dag::trigger_run(*s.db, s.dag, dag::parse_time("2024-02-01"), R"j({"x": "ok", "n": 7, "other": "$(anything)"})j"));
  SUBCASE("with conf_overrides_params off, conf never reaches params and is not checked against them") {
    s.dag.conf_overrides_params(false);
    CHECK(dag::trigger_run(*s.db, s.dag, dag::parse_time("2024-02-02"), R"j({"x": "$(id)"})j"));
  }
}

TEST_CASE("Operations.AClearOrMarkWhileATryRunsLeavesNoHalfOfTheEnginesPass" * doctest::timeout(60)) {
  // `boom` >> `after`. While boom's first try runs, another connection clears or marks it; then
  // the try fails. The engine's pass for that end would fail boom, mark `after` upstream_failed
  // and fail the run: boom's and the run's compare-and-set lose, and `after`'s must not win alone
  // (it was in `none` in the store too), or the run taken up again ends failed with `after` never
  // run. The engine writes a run's part of a pass whole or not at all.
  for (const bool mark : {false, true}) {
    CAPTURE(mark);
    sandbox s;
    std::mutex m;
    std::condition_variable cv;
    bool release = false;
    int boom_tries = 0;  // under m
    dag::definition d{"held"};
    d.callable("boom", [&](dag::task_context&) {
      std::unique_lock lock(m);
      s.count("boom");
      if (++boom_tries > 1) return dag::operator_result::success();  // a try after the clear
      cv.wait(lock, [&] { return release; });
      return dag::operator_result::failed("boom");
    }) >> d.callable("after", [&](dag::task_context&) {
      s.count("after");
      return dag::operator_result::success();
    });
    REQUIRE(dag::check(d, s.operators).empty());
    std::optional<dag::run_state> final_state;
    const dag::run_key held{"held", "manual__2024-01-01T00:00:00+00:00"};
    {
      std::jthread loop = run_on_own_thread(s, d, final_state);
      auto other = dag::open_store("sqlite:" + (s.dir / "dagrun.db").string());
      REQUIRE(dag_test::eventually([&] {
        for (const auto& ti : other->task_instances(held.dag_id, held.run_id))
          if (ti.task_id == "boom") return ti.state == task_state::running;
        return false;
      }));
      if (mark) {
        dag::mark_selection which{"held", held.run_id, {"boom"}, task_state::success};
        REQUIRE(dag::mark_task_instances(*other, which, d, s.clock.precise_now()).size() == 1);
      } else {
        dag::clear_selection which;
        which.dag_id = "held";
        which.task_matches = [](const std::string& id) { return id == "boom"; };
        REQUIRE(dag::clear_task_instances(*other, which, &d).size() == 1);
      }
      {
        std::lock_guard lock(m);
        release = true;
      }
      cv.notify_all();
    }
    CHECK(final_state == dag::run_state::success);
    CHECK(s.states({"held", held.run_id}) ==
          std::map<std::string, task_state>{{"after", task_state::success}, {"boom", task_state::success}});
    CHECK(s.runs_of == std::map<std::string, int>{{"after", 1}, {"boom", mark ? 1 : 2}});
  }
}

TEST_CASE("Operations.ClearReachesThePastOrFutureRunsOfTheNamedOne" * doctest::timeout(60)) {
  sandbox s;
  std::vector<std::string> ids_by_date;
  for (const char* date : {"2024-01-01", "2024-01-02", "2024-01-03"}) {
    const auto run = dag::trigger_run(*s.db, s.dag, dag::parse_time(date));
    REQUIRE(run);
    ids_by_date.push_back(run->run_id);
    REQUIRE(s.run(dag::run_key{"ops", run->run_id}) == dag::run_state::success);
  }
  const auto runs_in = [](const std::vector<dag::task_instance_ref>& refs) {
    std::vector<std::string> out;
    for (const auto& r : refs) out.push_back(r.run_id);
    return out;
  };
  dag::clear_selection which;
  which.dag_id = "ops";
  which.run_id = ids_by_date[1];
  which.task_matches = [](const std::string& id) { return id == "d"; };
  which.dry_run = true;
  CHECK(runs_in(dag::clear_task_instances(*s.db, which, &s.dag)) == ids{ids_by_date[1]});
  which.past = true;
  CHECK(runs_in(dag::clear_task_instances(*s.db, which, &s.dag)) == ids{ids_by_date[0], ids_by_date[1]});
  which.past = false;
  which.future = true;
  CHECK(runs_in(dag::clear_task_instances(*s.db, which, &s.dag)) == ids{ids_by_date[1], ids_by_date[2]});
  which.past = true;
  CHECK(runs_in(dag::clear_task_instances(*s.db, which, &s.dag)) == ids_by_date);
  which.logical_to = dag::parse_time("2024-01-02");  // given bounds still hold
  which.dry_run = false;
  CHECK(runs_in(dag::clear_task_instances(*s.db, which, &s.dag)) == ids{ids_by_date[0], ids_by_date[1]});
  CHECK(s.states({"ops", ids_by_date[0]}).at("d") == task_state::none);
  CHECK(s.states({"ops", ids_by_date[2]}).at("d") == task_state::success);
  CHECK(s.db->find_run("ops", ids_by_date[0])->state == dag::run_state::queued);
  CHECK(s.db->find_run("ops", ids_by_date[2])->state == dag::run_state::success);
  which.run_id.reset();
  CHECK_THROWS_WITH_AS(dag::clear_task_instances(*s.db, which, &s.dag),
                       "clearing past or future runs counts from a run: name the run", dag::usage_error);
  which.run_id = "nope";
  CHECK_THROWS_WITH_AS(dag::clear_task_instances(*s.db, which, &s.dag), "DAG 'ops' has no run 'nope'", dag::usage_error);
}

TEST_CASE("Operations.DeletingADagsHistoryWaitsForItsRunningRuns" * doctest::timeout(60)) {
  sandbox s;
  REQUIRE(s.run() == dag::run_state::success);
  const auto other = dag::trigger_run(*s.db, s.dag, dag::parse_time("2024-01-05"));
  REQUIRE(other);
  dag::change_set started;
  started.runs.push_back({"ops", other->run_id, dag::run_state::queued, dag::run_state::running, s.clock.precise_now(), std::nullopt});
  REQUIRE(s.db->apply(started).runs_updated.front());
  dag::run_filter all;
  all.dag_id = "ops";
  CHECK_THROWS_AS(dag::delete_dag_history(*s.db, "ops"), dag::conflict_error);
  CHECK(s.db->runs(all).size() == 2);
  dag::change_set ended;
  ended.runs.push_back({"ops", other->run_id, dag::run_state::running, dag::run_state::failed, std::nullopt, s.clock.precise_now()});
  REQUIRE(s.db->apply(ended).runs_updated.front());
  CHECK(dag::delete_dag_history(*s.db, "ops") == 2);
  CHECK(s.db->runs(all).empty());
  CHECK(s.db->task_instances("ops", key.run_id).empty());
}
