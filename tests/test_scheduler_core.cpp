// The scheduler's pure decisions, driven by tables of states: no store, no clock, no threads.
#include <doctest/doctest.h>

#include <algorithm>

#include <dag/engine/scheduler_core.hpp>
#include <dag/load/check.hpp>

using namespace std::chrono_literals;
using dag::task_state;

namespace {

dag::timestamp at(int seconds) { return dag::timestamp{std::chrono::seconds(1'700'000'000 + seconds)}; }

dag::operator_catalog any_operator() {
  dag::operator_catalog c;
  c.add({"bash", {{"bash_command", dag::field_kind::text, true}}});
  c.add({"latest_only", {}, true, {}, dag::flow_rule::latest_only});
  return c;
}

// A run of `d` with every task instance in state none.
struct fixture {
  dag::scheduled_dag dag;
  dag::run_record run;
  std::vector<dag::task_instance_record> tis;
  dag::run_progress progress;

  explicit fixture(dag::definition d) : dag(prepare(std::move(d))) {
    run.dag_id = dag.def->id();
    run.run_id = "manual__x";
    for (const auto& t : dag.def->all_tasks()) {
      dag::task_instance_record ti;
      ti.dag_id = run.dag_id;
      ti.run_id = run.run_id;
      ti.task_id = t.id;
      tis.push_back(ti);
    }
  }
  static dag::definition prepare(dag::definition d) {
    auto problems = dag::check(d, any_operator());
    REQUIRE(problems.empty());
    return d;
  }
  dag::task_instance_record& ti(const std::string& id) { return tis[*dag.def->index_of(id)]; }
  dag::run_step step(int now = 0, int slots = 100) {
    dag::slot_budget b{slots, 0};
    return dag::step_run(dag, run, tis, progress, at(now), b);
  }
  // Finishes the running try of `id` with `outcome`.
  void finish(const std::string& id, dag::try_outcome outcome, int now = 0) {
    auto& t = *dag.def->find(id);
    dag::operator_result r;
    r.outcome = outcome;
    dag::finish_try(t, ti(id), r, at(now), at(now));
    dag::note_try_ended(dag, progress, *dag.def->index_of(id), ti(id).state);
  }
  // Ends the running try of `id` successfully with `xcom`, applying the task's flow rule.
  dag::try_end succeed(const std::string& id, std::optional<std::string> xcom, int now = 0) {
    return dag::end_try(dag, run, tis, progress, *dag.def->index_of(id), dag::operator_result::success(std::move(xcom)),
                        at(now), at(now));
  }
  // Runs passes, succeeding every started task without an XCom, until the run ends.
  void run_out(int now = 0) {
    for (int pass = 0; pass < 50 && !dag::is_finished(run.state); ++pass)
      for (std::size_t i : step(now).to_start) succeed(dag.def->all_tasks()[i].id, std::nullopt, now);
  }
  std::string state(const std::string& id) { return std::string(dag::to_string(ti(id).state)); }
};

std::vector<std::string> names(const fixture& f, const std::vector<std::size_t>& idx) {
  std::vector<std::string> out;
  for (auto i : idx) out.push_back(f.dag.def->all_tasks()[i].id);
  return out;
}

}  // namespace

TEST_CASE("SchedulerCore.RootsStartFirstAndRunStarts") {
  dag::definition d{"chain"};
  auto a = d.bash("a", "true");
  auto b = d.bash("b", "true");
  a >> b;
  fixture f(std::move(d));
  auto s = f.step();
  CHECK(s.new_run_state == dag::run_state::running);
  CHECK(names(f, s.to_start) == std::vector<std::string>{"a"});
  CHECK(f.ti("a").state == task_state::queued);
  CHECK(f.ti("a").try_number == 1);
  CHECK(f.ti("b").state == task_state::none);
  f.finish("a", dag::try_outcome::success);
  s = f.step();
  CHECK(names(f, s.to_start) == std::vector<std::string>{"b"});
  f.finish("b", dag::try_outcome::success);
  s = f.step();
  CHECK(s.new_run_state == dag::run_state::success);
  CHECK(f.run.state == dag::run_state::success);
}

TEST_CASE("SchedulerCore.APassSaysWhichInstancesItChangedTheStateOfAlone") {
  dag::definition d{"fan"};
  auto a = d.bash("a", "false").retries(1).retry_delay(30s);
  d.bash("b", "true");
  d.bash("c", "true");
  auto after = d.bash("after", "true");
  a >> after;
  fixture f(std::move(d));
  // One slot: a starts (more than its state changed), b and c wait scheduled, their state alone
  // changed (written so).
  const auto alone = [](const dag::run_step& s, const fixture& fx) {
    std::vector<std::string> out;
    for (const auto& c : s.changed)
      if (c.state_only) out.push_back(fx.dag.def->all_tasks()[c.index].id);
    std::sort(out.begin(), out.end());
    return out;
  };
  auto s = f.step(0, 1);
  REQUIRE(names(f, s.to_start) == std::vector<std::string>{"a"});
  CHECK(alone(s, f) == std::vector<std::string>{"b", "c"});
  // a fails with a retry to come; past its delay it is scheduled again, its state alone changed.
  f.finish("a", dag::try_outcome::failed);
  REQUIRE(f.ti("a").state == task_state::up_for_retry);
  s = f.step(1, 0);
  CHECK(alone(s, f).empty());
  s = f.step(40, 0);
  CHECK(f.ti("a").state == task_state::scheduled);
  CHECK(alone(s, f) == std::vector<std::string>{"a"});
  // Its last try fails: `after` becomes upstream_failed with an end date, more than its state.
  REQUIRE(names(f, f.step(41, 1).to_start) == std::vector<std::string>{"a"});
  f.finish("a", dag::try_outcome::failed, 41);
  s = f.step(42, 0);
  CHECK(f.ti("after").state == task_state::upstream_failed);
  const auto changed_after = std::find_if(s.changed.begin(), s.changed.end(), [&](const dag::task_change& c) {
    return c.index == *f.dag.def->index_of("after");
  });
  REQUIRE(changed_after != s.changed.end());
  CHECK_FALSE(changed_after->state_only);
}

TEST_CASE("SchedulerCore.DiamondWithFailingBranch") {
  // start >> {ok, bad} >> {join_all_success, join_all_done, join_one_failed}
  dag::definition d{"diamond"};
  auto start = d.bash("start", "true");
  auto ok = d.bash("ok", "true");
  auto bad = d.bash("bad", "false");
  auto j1 = d.bash("join_all_success", "true");
  auto j2 = d.bash("join_all_done", "true").trigger(dag::trigger_rule::all_done);
  auto j3 = d.bash("join_one_failed", "true").trigger(dag::trigger_rule::one_failed);
  auto after = d.bash("after_join", "true");
  start >> dag::tasks{ok, bad};
  dag::tasks{ok, bad} >> j1;
  dag::tasks{ok, bad} >> j2;
  dag::tasks{ok, bad} >> j3;
  j1 >> after;
  fixture f(std::move(d));
  f.step();
  f.finish("start", dag::try_outcome::success);
  f.step();
  f.finish("ok", dag::try_outcome::success);
  f.finish("bad", dag::try_outcome::failed);
  auto s = f.step();
  CHECK(f.ti("join_all_success").state == task_state::upstream_failed);
  CHECK(f.ti("after_join").state == task_state::upstream_failed);  // cascades in the same pass
  CHECK(f.ti("join_all_done").state == task_state::queued);
  CHECK(f.ti("join_one_failed").state == task_state::queued);
  f.finish("join_all_done", dag::try_outcome::success);
  f.finish("join_one_failed", dag::try_outcome::success);
  s = f.step();
  // A leaf is upstream_failed, so the run fails.
  CHECK(s.new_run_state == dag::run_state::failed);
}

TEST_CASE("SchedulerCore.SkipCascadesDownstream") {
  dag::definition d{"skips"};
  auto a = d.bash("a", "exit 99");
  auto b = d.bash("b", "true");
  auto c = d.bash("c", "true");
  auto always = d.bash("cleanup", "true").trigger(dag::trigger_rule::none_failed);
  a >> b >> c >> always;
  fixture f(std::move(d));
  f.step();
  f.finish("a", dag::try_outcome::skipped);
  auto s = f.step();
  CHECK(f.ti("b").state == task_state::skipped);
  CHECK(f.ti("c").state == task_state::skipped);
  CHECK(f.ti("cleanup").state == task_state::queued);  // none_failed runs after skips
  f.finish("cleanup", dag::try_outcome::success);
  s = f.step();
  CHECK(s.new_run_state == dag::run_state::success);
}

TEST_CASE("SchedulerCore.FailedTryRetriesAfterItsDelay") {
  dag::definition d{"retry"};
  d.bash("flaky", "false").retries(2).retry_delay(60s);
  fixture f(std::move(d));
  f.step(0);
  f.finish("flaky", dag::try_outcome::failed, 10);
  CHECK(f.ti("flaky").state == task_state::up_for_retry);
  REQUIRE(f.ti("flaky").retry_at);
  CHECK(*f.ti("flaky").retry_at == at(70));
  auto s = f.step(69);
  CHECK(s.to_start.empty());
  REQUIRE(s.wake_at);
  CHECK(*s.wake_at == std::chrono::time_point_cast<std::chrono::seconds>(at(70)));
  s = f.step(70);
  CHECK(s.to_start.size() == 1);
  CHECK(f.ti("flaky").try_number == 2);
  f.finish("flaky", dag::try_outcome::failed, 80);
  CHECK(f.ti("flaky").state == task_state::up_for_retry);
  f.step(140);
  CHECK(f.ti("flaky").try_number == 3);
  f.finish("flaky", dag::try_outcome::failed, 150);
  CHECK(f.ti("flaky").state == task_state::failed);  // 1 try + 2 retries used up
  s = f.step(150);
  CHECK(s.new_run_state == dag::run_state::failed);
}

TEST_CASE("SchedulerCore.AClearedTaskGetsItsRetriesBack") {
  dag::definition d{"cleared"};
  d.bash("flaky", "false").retries(1).retry_delay(0s);
  fixture f(std::move(d));
  // Tries 1 and 2 failed, then the task was cleared (`tasks clear` keeps the try number).
  f.ti("flaky").try_number = 2;
  f.ti("flaky").cleared_tries = 2;
  f.step(0);
  CHECK(f.ti("flaky").try_number == 3);
  f.finish("flaky", dag::try_outcome::failed, 1);
  CHECK(f.ti("flaky").state == task_state::up_for_retry);  // its one retry is back
  f.step(1);
  CHECK(f.ti("flaky").try_number == 4);
  f.finish("flaky", dag::try_outcome::failed, 2);
  CHECK(f.ti("flaky").state == task_state::failed);
}

TEST_CASE("SchedulerCore.ARescheduledTryFreesItsSlotAndRunsAgainUnderItsNumber") {
  dag::definition d{"sensing"};
  d.bash("sensor", "x").retries(1).priority_weight(10);
  d.bash("other", "x");
  fixture f(std::move(d));
  auto s = f.step(0, 1);
  CHECK(names(f, s.to_start) == std::vector<std::string>{"sensor"});  // first by priority
  dag::operator_result later = dag::operator_result::reschedule(60s, "rescheduled: next poke in 1m");
  auto rec = dag::finish_try(*f.dag.def->find("sensor"), f.ti("sensor"), later, at(0), at(2));
  dag::note_try_ended(f.dag, f.progress, *f.dag.def->index_of("sensor"), f.ti("sensor").state);
  CHECK(rec.state == task_state::up_for_reschedule);
  CHECK(rec.try_number == 1);
  CHECK(f.ti("sensor").retry_at == at(62));
  CHECK(f.ti("sensor").first_start_date == at(0));
  s = f.step(2, 1);  // the freed slot goes to the other task
  CHECK(names(f, s.to_start) == std::vector<std::string>{"other"});
  REQUIRE(s.wake_at);
  CHECK(*s.wake_at == std::chrono::time_point_cast<std::chrono::seconds>(at(62)));
  f.finish("other", dag::try_outcome::success, 3);
  s = f.step(61, 1);
  CHECK(s.to_start.empty());
  s = f.step(62, 1);
  CHECK(names(f, s.to_start) == std::vector<std::string>{"sensor"});
  CHECK(f.ti("sensor").try_number == 1);  // the same try
  // Its end is the try's end: the record spans both executions.
  rec = dag::finish_try(*f.dag.def->find("sensor"), f.ti("sensor"), dag::operator_result::success(), at(62), at(63));
  CHECK(rec.state == task_state::success);
  CHECK(rec.start_date == at(0));
  CHECK(rec.end_date == at(63));
  CHECK_FALSE(f.ti("sensor").first_start_date.has_value());
  dag::note_try_ended(f.dag, f.progress, *f.dag.def->index_of("sensor"), f.ti("sensor").state);
  CHECK(f.step(63).new_run_state == dag::run_state::success);
}

TEST_CASE("SchedulerCore.ARescheduledTryThatFailsIsRetriedAsANewTry") {
  dag::definition d{"sensing"};
  d.bash("sensor", "x").retries(1).retry_delay(0s);
  fixture f(std::move(d));
  f.step(0);
  dag::finish_try(*f.dag.def->find("sensor"), f.ti("sensor"), dag::operator_result::reschedule(10s), at(0), at(1));
  dag::note_try_ended(f.dag, f.progress, 0, f.ti("sensor").state);
  f.step(11);
  auto rec = dag::finish_try(*f.dag.def->find("sensor"), f.ti("sensor"), dag::operator_result::failed("boom"), at(11), at(12));
  dag::note_try_ended(f.dag, f.progress, 0, f.ti("sensor").state);
  CHECK(rec.try_number == 1);
  CHECK(rec.start_date == at(0));
  CHECK(f.ti("sensor").state == task_state::up_for_retry);
  f.step(12);
  CHECK(f.ti("sensor").try_number == 2);  // a retry is a new try
}

TEST_CASE("SchedulerCore.SuccessAfterRetryCompletesTheRun") {
  dag::definition d{"retry_ok"};
  d.bash("flaky", "x").retries(1).retry_delay(1s);
  fixture f(std::move(d));
  f.step(0);
  f.finish("flaky", dag::try_outcome::failed, 0);
  f.step(1);
  f.finish("flaky", dag::try_outcome::success, 2);
  auto s = f.step(2);
  CHECK(s.new_run_state == dag::run_state::success);
  CHECK(f.ti("flaky").try_number == 2);
}

TEST_CASE("SchedulerCore.SlotsAndMaxActiveTasksLimitStarts") {
  dag::definition d{"wide"};
  d.max_active_tasks(3);
  for (int i = 0; i < 10; ++i) d.bash("t" + std::to_string(i), "true");
  fixture f(std::move(d));
  auto s = f.step(0, 2);
  CHECK(s.to_start.size() == 2);  // global slots
  dag::slot_budget b{100, 2};
  s = dag::step_run(f.dag, f.run, f.tis, f.progress, at(0), b);
  CHECK(s.to_start.size() == 1);  // max_active_tasks 3 with 2 already running
  CHECK(b.dag_running == 3);
}

TEST_CASE("SchedulerCore.PriorityWeightOrdersReadyTasks") {
  dag::definition d{"prio"};
  d.bash("low", "true");
  auto high = d.bash("high", "true").priority_weight(10);
  auto mid = d.bash("mid", "true");
  auto child = d.bash("child", "true").priority_weight(3);
  mid >> child;  // mid's effective weight is 1 + 3 (Airflow's downstream weight rule)
  (void)high;
  fixture f(std::move(d));
  CHECK(f.dag.priority[*f.dag.def->index_of("mid")] == 4);
  auto s = f.step(0, 2);
  CHECK(names(f, s.to_start) == std::vector<std::string>{"high", "mid"});
}

TEST_CASE("SchedulerCore.LostTryIsAFailedTryThatRetries") {
  dag::definition d{"lost"};
  d.bash("a", "x").retries(1).retry_delay(30s);
  d.bash("b", "x");
  fixture f(std::move(d));
  f.step(0);
  f.ti("a").state = task_state::running;
  f.ti("b").state = task_state::running;
  auto ra = dag::lose_try(*f.dag.def->find("a"), f.ti("a"), "executor lost", at(5));
  auto rb = dag::lose_try(*f.dag.def->find("b"), f.ti("b"), "executor lost", at(5));
  CHECK(ra.state == task_state::up_for_retry);
  CHECK(ra.message == "executor lost");
  CHECK(f.ti("a").retry_at == at(35));
  CHECK(rb.state == task_state::failed);
}

TEST_CASE("SchedulerCore.FinishedRunIsLeftAlone") {
  dag::definition d{"done"};
  d.bash("a", "true");
  fixture f(std::move(d));
  f.run.state = dag::run_state::success;
  auto s = f.step();
  CHECK(s.to_start.empty());
  CHECK(s.changed.empty());
  CHECK_FALSE(s.new_run_state.has_value());
}

namespace {

// branch >> {a, b, c}; a >> a2; {a2, b, c} >> join (none_failed_min_one_success) >> end
dag::definition three_way_branch() {
  dag::definition d{"branching"};
  auto branch = d.bash("branch", "echo b").branch();
  auto a = d.bash("a", "true");
  auto a2 = d.bash("a2", "true");
  auto b = d.bash("b", "true");
  auto c = d.bash("c", "true");
  auto join = d.bash("join", "true").trigger(dag::trigger_rule::none_failed_min_one_success);
  auto end = d.bash("end", "true");
  branch >> dag::tasks{a, b, c};
  a >> a2;
  dag::tasks{a2, b, c} >> join;
  join >> end;
  return d;
}

}  // namespace

TEST_CASE("SchedulerCore.BranchFollowsTheTasksItsXComNames") {
  struct row {
    std::optional<std::string> xcom;
    std::string a, a2, b, c, join;
  };
  const std::vector<row> table{
      {"b", "skipped", "skipped", "success", "skipped", "success"},
      {"  a\n", "success", "success", "skipped", "skipped", "success"},
      {"\"c\"", "skipped", "skipped", "skipped", "success", "success"},
      {R"(["a", "c"])", "success", "success", "skipped", "success", "success"},
      // Nothing named: every path is skipped, and so is the join (all its upstream skipped).
      {std::nullopt, "skipped", "skipped", "skipped", "skipped", "skipped"},
      {"[]", "skipped", "skipped", "skipped", "skipped", "skipped"},
      {"null", "skipped", "skipped", "skipped", "skipped", "skipped"},
  };
  for (const auto& r : table) {
    CAPTURE(r.xcom.value_or("(none)"));
    fixture f(three_way_branch());
    f.step();
    auto ended = f.succeed("branch", r.xcom);
    CHECK(f.state("branch") == "success");
    f.run_out();
    CHECK(f.state("a") == r.a);
    CHECK(f.state("a2") == r.a2);
    CHECK(f.state("b") == r.b);
    CHECK(f.state("c") == r.c);
    CHECK(f.state("join") == r.join);
    CHECK(f.state("end") == r.join);
    CHECK(f.run.state == dag::run_state::success);
  }
}

TEST_CASE("SchedulerCore.BranchSkipsOnlyItsUnfollowedDirectDownstreamAtOnce") {
  fixture f(three_way_branch());
  f.step();
  auto ended = f.succeed("branch", "b");
  // The two skips are part of the branch's own end (one commit), with their states before.
  REQUIRE(ended.skipped.size() == 2);
  CHECK(names(f, {ended.skipped[0].index, ended.skipped[1].index}) == std::vector<std::string>{"a", "c"});
  CHECK(ended.skipped[0].before == task_state::none);
  CHECK(f.ti("a").message == "skipped by branch");
  // The next pass cascades the skip (a2 follows a) and starts b.
  auto s = f.step();
  CHECK(names(f, s.to_start) == std::vector<std::string>{"b"});
  CHECK(f.state("a2") == "skipped");
  CHECK(f.state("join") == "none");
}

TEST_CASE("SchedulerCore.BranchToAnEmptyPathKeepsTheJoin") {
  // Airflow's special case: branch >> join and branch >> t >> join; following t keeps join,
  // although join is a direct downstream task of the branch too.
  dag::definition d{"empty_path"};
  auto branch = d.bash("branch", "echo t").branch();
  auto t = d.bash("t", "true");
  auto join = d.bash("join", "true").trigger(dag::trigger_rule::none_failed_min_one_success);
  branch >> t >> join;
  branch >> join;
  fixture f(std::move(d));
  f.step();
  CHECK(f.succeed("branch", "t").skipped.empty());
  f.run_out();
  CHECK(f.state("t") == "success");
  CHECK(f.state("join") == "success");
}

TEST_CASE("SchedulerCore.BranchNamingNoTaskFailsTheTry") {
  struct row {
    std::string xcom, message;
  };
  const std::vector<row> table{
      {"nope", "branch: the XCom names no task of the DAG: 'nope'"},
      {R"(["b", "x", "y"])", "branch: the XCom names no task of the DAG: 'x', 'y'"},
      {R"({"b": 1})", "branch: the XCom must name a task id, a JSON list of task ids, or nothing; got '{\"b\": 1}'"},
      {"[1, 2]", "branch: the XCom must name a task id, a JSON list of task ids, or nothing; got '[1, 2]'"},
  };
  for (const auto& r : table) {
    CAPTURE(r.xcom);
    fixture f(three_way_branch());
    f.step();
    auto ended = f.succeed("branch", r.xcom);
    CHECK(ended.skipped.empty());
    CHECK(f.state("branch") == "failed");
    CHECK(f.ti("branch").message == r.message);
    CHECK(ended.record.state == task_state::failed);
    f.step();
    CHECK(f.state("a") == "upstream_failed");
    CHECK(f.state("join") == "upstream_failed");
  }
}

TEST_CASE("SchedulerCore.ConditionalBranchFollowsTheTrueOrFalseList") {
  struct row {
    std::string xcom, yes, no;
  };
  const std::vector<row> table{
      {"true", "success", "skipped"}, {"1", "success", "skipped"}, {"yes", "success", "skipped"},
      {"false", "skipped", "success"}, {"0", "skipped", "success"}, {"", "skipped", "success"},
  };
  for (const auto& r : table) {
    CAPTURE(r.xcom);
    dag::definition d{"conditional"};
    auto check = d.bash("check", "echo true").branch({"yes"}, {"no"});
    check >> dag::tasks{d.bash("yes", "true"), d.bash("no", "true")};
    fixture f(std::move(d));
    f.step();
    f.succeed("check", r.xcom);
    f.run_out();
    CHECK(f.state("yes") == r.yes);
    CHECK(f.state("no") == r.no);
  }
}

TEST_CASE("SchedulerCore.BranchToATaskGroupFollowsItsRoots") {
  dag::definition d{"groups"};
  auto branch = d.bash("branch", "echo load").branch();
  auto load = d.group("load");
  auto l1 = load.bash("first", "true");
  auto l2 = load.bash("second", "true");
  l1 >> l2;
  auto other = d.bash("other", "true");
  branch >> load;
  branch >> other;
  fixture f(std::move(d));
  f.step();
  auto ended = f.succeed("branch", "load");
  REQUIRE(ended.skipped.size() == 1);
  f.run_out();
  CHECK(f.state("load.first") == "success");
  CHECK(f.state("load.second") == "success");
  CHECK(f.state("other") == "skipped");
}

TEST_CASE("SchedulerCore.ShortCircuitSkipsDownstreamOnAFalsyXCom") {
  // gate >> direct >> later (all_done); a falsy XCom skips both unless trigger rules are respected,
  // in which case only `direct` is skipped and `later` (all_done) still runs.
  struct row {
    std::optional<std::string> xcom;
    bool ignore_rules;
    std::string direct, later;
  };
  const std::vector<row> table{
      {"true", true, "success", "success"},   {"some text", true, "success", "success"},
      {"false", true, "skipped", "skipped"},  {std::nullopt, true, "skipped", "skipped"},
      {"0", true, "skipped", "skipped"},      {"[]", true, "skipped", "skipped"},
      {"False", false, "skipped", "success"}, {"1", false, "success", "success"},
  };
  for (const auto& r : table) {
    CAPTURE(r.xcom.value_or("(none)"));
    CAPTURE(r.ignore_rules);
    dag::definition d{"short"};
    auto gate = d.bash("gate", "echo false").short_circuit(r.ignore_rules);
    auto direct = d.bash("direct", "true");
    auto later = d.bash("later", "true").trigger(dag::trigger_rule::all_done);
    gate >> direct >> later;
    fixture f(std::move(d));
    f.step();
    f.succeed("gate", r.xcom);
    CHECK(f.state("gate") == "success");
    f.run_out();
    CHECK(f.state("direct") == r.direct);
    CHECK(f.state("later") == r.later);
    CHECK(f.run.state == dag::run_state::success);
  }
}

TEST_CASE("SchedulerCore.LatestOnlySkipsDownstreamOutsideTheLatestRun") {
  // A daily DAG; `now` (seconds after at(0)) against runs of various intervals.
  struct row {
    dag::run_type type;
    std::string logical_date;
    std::string now;
    std::string downstream;
  };
  const std::vector<row> table{
      // The run of 2024-01-02 is the latest while its successor's interval holds now.
      {dag::run_type::scheduled, "2024-01-02", "2024-01-03T12:00:00Z", "success"},
      {dag::run_type::scheduled, "2024-01-02", "2024-01-04T00:00:00Z", "success"},  // right edge included
      {dag::run_type::scheduled, "2024-01-02", "2024-01-03T00:00:00Z", "skipped"},  // left edge excluded
      {dag::run_type::scheduled, "2024-01-01", "2024-01-03T12:00:00Z", "skipped"},  // caught up: older
      {dag::run_type::backfill, "2023-12-01", "2024-01-03T12:00:00Z", "skipped"},
      {dag::run_type::manual, "2023-12-01", "2024-01-03T12:00:00Z", "success"},  // triggered runs go on
  };
  for (const auto& r : table) {
    CAPTURE(r.logical_date);
    CAPTURE(r.now);
    dag::definition d{"latest"};
    d.schedule("@daily").start_date("2023-01-01");
    auto latest = d.latest_only("latest_only");
    auto work = d.bash("work", "true");
    auto always = d.bash("always", "true").trigger(dag::trigger_rule::all_done);
    latest >> work >> always;
    fixture f(std::move(d));
    f.run.type = r.type;
    f.run.interval = f.dag.times.run_at(dag::parse_time(r.logical_date))->interval;
    f.step();
    const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(dag::parse_time(r.now));
    dag::end_try(f.dag, f.run, f.tis, f.progress, 0, dag::operator_result::success(), now, now);
    f.run_out();
    CHECK(f.state("latest_only") == "success");
    CHECK(f.state("work") == r.downstream);
    CHECK(f.state("always") == "success");
  }
}

TEST_CASE("SchedulerCore.AFlowRuleOnlyActsOnASuccessfulTry") {
  dag::definition d{"failing_branch"};
  auto branch = d.bash("branch", "exit 1").branch();
  branch >> d.bash("a", "true");
  fixture f(std::move(d));
  f.step();
  f.finish("branch", dag::try_outcome::failed);
  f.step();
  CHECK(f.state("a") == "upstream_failed");
}

TEST_CASE("SchedulerCore.TaskGroupsBecomeDependenciesOnTheirRootsAndLeaves") {
  // start >> extract{a >> b, c} >> transform{inner{x}, y} >> end
  dag::definition d{"groups"};
  auto start = d.bash("start", "true");
  auto extract = d.group("extract");
  auto a = extract.bash("a", "true");
  auto b = extract.bash("b", "true");
  extract.bash("c", "true");
  a >> b;
  auto transform = d.group("transform");
  dag::task_options three_retries;
  three_retries.retries = 3;
  transform.default_args(three_retries);
  auto inner = transform.group("inner");
  inner.bash("x", "true").retries(1);
  auto y = transform.bash("y", "true");
  inner >> y;
  auto end = d.bash("end", "true");
  start >> extract;
  extract >> transform;
  transform >> end;
  fixture f(std::move(d));
  const auto& def = *f.dag.def;
  auto deps = [&](const std::string& id) { return def.find(id)->dependencies; };
  CHECK(deps("extract.a") == std::vector<std::string>{"start"});
  CHECK(deps("extract.b") == std::vector<std::string>{"extract.a"});
  CHECK(deps("extract.c") == std::vector<std::string>{"start"});
  CHECK(deps("transform.inner.x") == std::vector<std::string>{"extract.b", "extract.c"});
  CHECK(deps("transform.y") == std::vector<std::string>{"transform.inner.x"});
  CHECK(deps("end") == std::vector<std::string>{"transform.y"});
  // Group default_args sit between the task's own options and the DAG's.
  CHECK(def.find("transform.inner.x")->settings.retry.retries == 1);
  CHECK(def.find("transform.y")->settings.retry.retries == 3);
  CHECK(def.find("extract.a")->settings.retry.retries == 0);
  // Checking again (the engine does) changes nothing.
  dag::definition again = def;
  REQUIRE(dag::check(again, any_operator()).empty());
  CHECK(again.find("transform.inner.x")->dependencies == deps("transform.inner.x"));
  f.run_out();
  CHECK(f.run.state == dag::run_state::success);
}

TEST_CASE("SchedulerCore.WeightRuleDecidesHowPrioritiesAddUp") {
  // a >> b >> c, weights 1, 10, 100; the priority of b under each rule.
  struct row {
    dag::weight_rule rule;
    int a, b, c;
  };
  const std::vector<row> table{
      {dag::weight_rule::downstream, 111, 110, 100},
      {dag::weight_rule::upstream, 1, 11, 111},
      {dag::weight_rule::absolute, 1, 10, 100},
  };
  for (const auto& r : table) {
    dag::definition d{"weights"};
    dag::task_options o;
    o.weights = r.rule;
    d.default_args(o);
    auto a = d.bash("a", "true").priority_weight(1);
    auto b = d.bash("b", "true").priority_weight(10);
    auto c = d.bash("c", "true").priority_weight(100);
    a >> b >> c;
    fixture f(std::move(d));
    CHECK(f.dag.priority == std::vector<int>{r.a, r.b, r.c});
  }
  // A task's own rule wins over default_args.
  dag::definition d{"own"};
  auto a = d.bash("a", "true").weight(dag::weight_rule::absolute);
  a >> d.bash("b", "true").priority_weight(5);
  fixture f(std::move(d));
  CHECK(f.dag.priority == std::vector<int>{1, 5});
}

TEST_CASE("SchedulerCore.MaxActiveTisPerDagHoldsATaskOverAllRuns") {
  dag::definition d{"limited"};
  d.bash("load", "true").max_active_tis_per_dag(2);
  d.bash("free", "true");
  fixture first(d), second(d), third(d);
  // One budget carried from run to run, as the engine does in one pass.
  dag::slot_budget budget{100, 0};
  std::vector<std::string> started;
  for (auto* f : {&first, &second, &third}) {
    for (std::size_t i : dag::step_run(f->dag, f->run, f->tis, f->progress, at(0), budget).to_start)
      started.push_back(f->dag.def->all_tasks()[i].id);
  }
  CHECK(std::count(started.begin(), started.end(), "load") == 2);
  CHECK(std::count(started.begin(), started.end(), "free") == 3);
  CHECK(third.state("load") == "scheduled");
  // Once a `load` try ends, the held one starts on a later pass.
  first.succeed("load", std::nullopt);
  dag::slot_budget next{100, 0, {1, 0}};  // second's load still running
  CHECK(names(third, dag::step_run(third.dag, third.run, third.tis, third.progress, at(1), next).to_start) ==
        std::vector<std::string>{"load"});
}

TEST_CASE("SchedulerCore.APoolShortOfSlotsHoldsItsTasksAcrossRuns") {
  dag::definition d{"pooled"};
  d.bash("load", "true").pool("warehouse", 2);
  d.bash("check", "true").pool("warehouse");
  d.bash("free", "true");
  fixture first(d), second(d);
  // One budget carried from run to run, as the engine does in one pass: three open slots.
  dag::slot_budget budget{100, 0};
  budget.pool_open = std::map<std::string, int>{{"warehouse", 3}, {"default_pool", 128}};
  std::vector<std::string> started;
  for (auto* f : {&first, &second})
    for (std::size_t i : dag::step_run(f->dag, f->run, f->tis, f->progress, at(0), budget).to_start)
      started.push_back(f->dag.def->all_tasks()[i].id);
  // load (2) and check (1) of the first run fill the pool; the second run's wait, still ready.
  CHECK(std::count(started.begin(), started.end(), "load") == 1);
  CHECK(std::count(started.begin(), started.end(), "check") == 1);
  CHECK(std::count(started.begin(), started.end(), "free") == 2);
  CHECK(budget.pool_open->at("warehouse") == 0);
  CHECK(second.state("load") == "scheduled");
  CHECK(first.ti("load").pool == "warehouse");
  CHECK(first.ti("load").pool_slots == 2);
  CHECK(first.ti("free").pool == "default_pool");
  // One open slot is not enough for load's two, but is for check's one.
  dag::slot_budget later{100, 0};
  later.pool_open = std::map<std::string, int>{{"warehouse", 1}, {"default_pool", 128}};
  CHECK(names(second, dag::step_run(second.dag, second.run, second.tis, second.progress, at(1), later).to_start) ==
        std::vector<std::string>{"check"});
  // A pool that does not exist holds its tasks.
  dag::slot_budget gone{100, 0};
  gone.pool_open = std::map<std::string, int>{{"default_pool", 128}};
  CHECK(dag::step_run(second.dag, second.run, second.tis, second.progress, at(2), gone).to_start.empty());
}

TEST_CASE("SchedulerCore.ABacklogBehindFullPoolsStaysReadyAndStartsByPriorityOnceSlotsOpen") {
  dag::definition d{"backlog"};
  for (int i = 0; i < 50; ++i) d.bash("t" + std::to_string(i), "true").priority_weight(100 + i);
  d.bash("elsewhere", "true").pool("other").priority_weight(1);
  fixture f(std::move(d));
  // The default pool is full; the lowest-priority task's pool is not, and it starts all the same.
  dag::slot_budget budget{1000, 0};
  budget.pool_open = std::map<std::string, int>{{"default_pool", 0}, {"other", 1}};
  auto first = dag::step_run(f.dag, f.run, f.tis, f.progress, at(0), budget);
  CHECK(names(f, first.to_start) == std::vector<std::string>{"elsewhere"});
  CHECK(first.pool_short);
  // Every pool full: nothing starts, and the backlog stays ready.
  dag::slot_budget full{1000, 0};
  full.pool_open = std::map<std::string, int>{{"default_pool", 0}, {"other", 0}};
  CHECK(dag::step_run(f.dag, f.run, f.tis, f.progress, at(1), full).to_start.empty());
  for (int i = 0; i < 50; ++i) CHECK(f.state("t" + std::to_string(i)) == "scheduled");
  // Three slots open: the three of highest priority start.
  dag::slot_budget open{1000, 0};
  open.pool_open = std::map<std::string, int>{{"default_pool", 3}, {"other", 0}};
  auto later = names(f, dag::step_run(f.dag, f.run, f.tis, f.progress, at(2), open).to_start);
  std::sort(later.begin(), later.end());
  CHECK(later == std::vector<std::string>{"t47", "t48", "t49"});
}

TEST_CASE("SchedulerCore.DagrunTimeoutFailsTheRunAndSkipsWhatIsUnfinished") {
  dag::definition d{"slow"};
  d.dagrun_timeout(std::chrono::seconds(60));
  d.bash("a", "true") >> d.bash("b", "true");
  fixture f(std::move(d));
  auto first = f.step(0);
  CHECK(names(f, first.to_start) == std::vector<std::string>{"a"});
  CHECK(first.wake_at == std::chrono::floor<std::chrono::seconds>(at(60)));  // the deadline is a time to wake
  CHECK(f.step(59).new_run_state == std::nullopt);
  auto late = f.step(60);
  CHECK(late.new_run_state == dag::run_state::failed);
  CHECK(names(f, late.to_stop) == std::vector<std::string>{"a"});
  CHECK(f.state("a") == "skipped");
  CHECK(f.state("b") == "skipped");
  CHECK(f.ti("b").message == "the run exceeded its dagrun_timeout");
  CHECK(f.run.end_date == at(60));
}

TEST_CASE("SchedulerCore.DependsOnPastWaitsForThePreviousInstanceAndItsDownstream") {
  dag::definition d{"chain"};
  d.bash("a", "true").depends_on_past(true, true) >> d.bash("b", "true");
  d.bash("free", "true");
  fixture before(d), f(d);
  // No previous run: nothing waits.
  fixture first(d);
  CHECK(names(first, first.step().to_start) == std::vector<std::string>{"a", "free"});
  // The previous run's `a` has not ended: `a` waits in none; `free` does not depend on the past.
  dag::slot_budget budget{100, 0};
  dag::previous_run past{&before.tis, false, false};
  CHECK(names(f, dag::step_run(f.dag, f.run, f.tis, f.progress, at(0), budget, past).to_start) ==
        std::vector<std::string>{"free"});
  CHECK(f.state("a") == "none");
  // Its `a` succeeded but its `b` (downstream, wait_for_downstream) has not.
  before.ti("a").state = task_state::success;
  f.progress.dirty.push_back(*f.dag.def->index_of("a"));
  CHECK(dag::step_run(f.dag, f.run, f.tis, f.progress, at(1), budget, past).to_start.empty());
  before.ti("b").state = task_state::skipped;
  f.progress.dirty.push_back(*f.dag.def->index_of("a"));
  CHECK(names(f, dag::step_run(f.dag, f.run, f.tis, f.progress, at(2), budget, past).to_start) ==
        std::vector<std::string>{"a"});
}

TEST_CASE("SchedulerCore.DependsOnPastOfAMappedTaskWaitsForEveryInstanceOfThePreviousRun") {
  // Airflow's PrevDagrunDep counts every instance of the task in the previous run, whatever their
  // map indexes: here the previous run had two instances of `each`, and this one will have three.
  dag::definition d{"fan"};
  d.bash("each", "x").expand("bash_command", {"a", "b", "c"}).depends_on_past(true, true) >>
      d.bash("after", "x").expand("bash_command", {"p", "q"});
  fixture before(d), f(d);
  before.ti("each").map_index = 0;
  before.ti("each").state = task_state::success;
  before.ti("after").map_index = 0;
  before.ti("after").state = task_state::success;
  for (const char* task : {"each", "after"}) {
    dag::task_instance_record more = before.ti(task);
    more.map_index = 1;
    before.tis.push_back(more);
  }
  before.tis[2].state = task_state::failed;  // each's map index 1
  dag::slot_budget budget{100, 0};
  const dag::previous_run past{&before.tis, false, false};
  const std::size_t each = *f.dag.def->index_of("each");
  // Instance 0 of the previous run succeeded, instance 1 failed: the task waits, unexpanded.
  CHECK(dag::step_run(f.dag, f.run, f.tis, f.progress, at(0), budget, past).to_start.empty());
  CHECK(f.state("each") == "none");
  CHECK(f.ti("each").map_index == -1);
  // Every instance succeeded, but one of its downstream task's instances runs (wait_for_downstream).
  before.tis[2].state = task_state::success;
  before.tis[3].state = task_state::running;
  f.progress.dirty.push_back(each);
  CHECK(dag::step_run(f.dag, f.run, f.tis, f.progress, at(1), budget, past).to_start.empty());
  // Done: every instance starts, map index 2 too, which the previous run did not have.
  before.tis[3].state = task_state::skipped;
  f.progress.dirty.push_back(each);
  const auto started = dag::step_run(f.dag, f.run, f.tis, f.progress, at(2), budget, past).to_start;
  REQUIRE(started.size() == 3);
  for (std::size_t slot : started) CHECK(f.tis[slot].task_id == "each");
}

TEST_CASE("SchedulerCore.ARunBlockedByAnEndedPreviousRunFailsOnlyWhenAskedToGiveUp") {
  dag::definition d{"chain"};
  d.bash("a", "true").depends_on_past();
  fixture before(d), waits(d), gives_up(d);
  before.ti("a").state = task_state::failed;
  dag::slot_budget budget{100, 0};
  CHECK(dag::step_run(waits.dag, waits.run, waits.tis, waits.progress, at(0), budget, {&before.tis, true, false})
            .new_run_state == dag::run_state::running);
  CHECK(waits.run.state == dag::run_state::running);
  const auto s = dag::step_run(gives_up.dag, gives_up.run, gives_up.tis, gives_up.progress, at(0), budget, {&before.tis, true, true});
  CHECK(s.new_run_state == dag::run_state::failed);
  CHECK(gives_up.state("a") == "none");
  CHECK(gives_up.ti("a").message == "waits for the previous run (depends_on_past), which has ended");
}

TEST_CASE("SchedulerCore.AMappedTaskExpandsIntoSlotsAndItsDownstreamWaitsForEveryInstance") {
  dag::definition d{"mapped"};
  auto each = d.bash("each", "x").expand("bash_command", {"a", "b", "c"});
  auto after = d.bash("after", "x");
  each >> after;
  fixture f(std::move(d));
  auto s = f.step();
  CHECK(s.expanded == std::vector<std::size_t>{0});
  REQUIRE(f.tis.size() == 4);  // slot 0 is map index 0; slots 2 and 3 are 1 and 2
  CHECK(f.tis[0].map_index == 0);
  CHECK(f.tis[2].map_index == 1);
  CHECK(f.tis[3].map_index == 2);
  CHECK(s.to_start == std::vector<std::size_t>{0, 2, 3});
  CHECK(dag::task_of_slot(f.dag, f.tis, 3) == 0);
  // Two instances succeed: the downstream task still waits for the third.
  for (std::size_t slot : {std::size_t{0}, std::size_t{3}})
    dag::end_try(f.dag, f.run, f.tis, f.progress, slot, dag::operator_result::success(std::nullopt), at(0), at(0));
  CHECK(f.step().to_start.empty());
  CHECK(f.state("after") == "none");
  dag::end_try(f.dag, f.run, f.tis, f.progress, 2, dag::operator_result::success(std::nullopt), at(0), at(0));
  CHECK(f.step().to_start == std::vector<std::size_t>{1});
}

TEST_CASE("SchedulerCore.MaxActiveTisPerDagrunBoundsAMappedTasksInstancesInOneRun") {
  dag::definition d{"bounded"};
  d.bash("each", "x").expand("bash_command", {"a", "b", "c"}).max_active_tis_per_dagrun(2);
  fixture f(std::move(d));
  CHECK(f.step().to_start == std::vector<std::size_t>{0, 1});  // the third waits, still scheduled
  CHECK(f.tis[2].state == task_state::scheduled);
  CHECK(f.step().to_start.empty());
  dag::end_try(f.dag, f.run, f.tis, f.progress, 1, dag::operator_result::success(std::nullopt), at(0), at(0));
  CHECK(f.step().to_start == std::vector<std::size_t>{2});
}

TEST_CASE("SchedulerCore.AClearedMappedTaskExpandsAgainOverTheListItsUpstreamGivesNow") {
  // As Airflow revises a mapped task's map indexes: cleared with its upstream, whose list has
  // changed, it gets an instance per value again; those past the new length are `removed`.
  dag::definition d{"remapped"};
  auto list = d.bash("list", "x");
  auto each = d.bash("each", "x").expand_xcom("bash_command", "list");
  list >> each;
  fixture f(std::move(d));
  std::optional<std::string> pushed = "[1,2]";
  const dag::xcom_reader reader = [&](std::string_view, std::string_view) { return pushed; };
  const auto pass = [&] {
    dag::slot_budget b{100, 0};
    return dag::step_run(f.dag, f.run, f.tis, f.progress, at(0), b, {}, reader);
  };
  // Cleared as clear_task_instances does: back to none, each instance keeping its map index.
  const auto clear_all = [&] {
    for (auto& ti : f.tis) ti.state = task_state::none;
    f.run.state = dag::run_state::queued;
    f.progress = dag::run_progress{};
  };
  const auto each_instances = [&] {
    std::vector<std::pair<int, std::string>> out;
    for (const auto& ti : f.tis)
      if (ti.task_id == "each") out.emplace_back(ti.map_index, std::string(dag::to_string(ti.state)));
    std::sort(out.begin(), out.end());
    return out;
  };
  const auto run_out = [&] {
    for (int k = 0; k < 10 && !dag::is_finished(f.run.state); ++k)
      for (std::size_t slot : pass().to_start)
        dag::end_try(f.dag, f.run, f.tis, f.progress, slot, dag::operator_result::success(std::nullopt), at(0), at(0));
  };
  run_out();
  REQUIRE(f.run.state == dag::run_state::success);
  REQUIRE(each_instances().size() == 2);

  // The list grows: a third instance runs too (not only the two there were).
  clear_all();
  pushed = "[1,2,3]";
  run_out();
  CHECK(f.run.state == dag::run_state::success);
  CHECK(each_instances() == std::vector<std::pair<int, std::string>>{{0, "success"}, {1, "success"}, {2, "success"}});

  // It shrinks: the instances past it are removed, not failed, and the run succeeds.
  clear_all();
  pushed = "[1]";
  run_out();
  CHECK(f.run.state == dag::run_state::success);
  CHECK(each_instances() == std::vector<std::pair<int, std::string>>{{0, "success"}, {1, "removed"}, {2, "removed"}});
}

TEST_CASE("SchedulerCore.MappingEdgesEmptyTooManyAndUnreadableXCom") {
  dag::definition d{"edges"};
  auto list = d.bash("list", "x");
  auto each = d.bash("each", "x").expand_xcom("bash_command", "list").max_map_length(2);
  list >> each;
  struct row {
    std::optional<std::string> xcom;
    std::string state, message;
  };
  const std::vector<row> table{
      {"[]", "skipped", "mapped over an empty list: no instances"},
      {"[1,2,3]", "failed", "expand: 3 instances exceed max_map_length (2)"},
      {"{}", "failed", "expand: the XCom 'return_value' of task 'list' is not a JSON list: '{}'"},
      {std::nullopt, "failed", "expand: the XCom 'return_value' of task 'list' was not pushed"},
  };
  for (const auto& r : table) {
    CAPTURE(r.message);
    fixture f(d);
    f.step();
    f.succeed("list", r.xcom);
    dag::slot_budget b{100, 0};
    dag::step_run(f.dag, f.run, f.tis, f.progress, at(0), b, {}, [&](std::string_view, std::string_view) { return r.xcom; });
    CHECK(f.state("each") == r.state);
    CHECK(f.ti("each").message == r.message);
    CHECK(f.tis.size() == 2);
  }
}
