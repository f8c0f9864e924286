// Alerts end to end: the engine tells notifiers (a real SMTP sink, a real webhook receiver, a
// command) when tasks fail, retry or succeed and when runs end; a failing notifier fails nothing.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <dag/engine/engine.hpp>
#include <dag/model/operations.hpp>
#include <dag/http/server.hpp>
#include <dag/load/check.hpp>
#include <dag/load/yaml_loader.hpp>
#include <dag/operators/builtin.hpp>

#include "support/engine_sandbox.hpp"
#include "support/eventually.hpp"
#include "support/forwarding_store.hpp"
#include "support/held_write_lock.hpp"
#include "support/smtp_sink.hpp"

using namespace std::chrono_literals;
using dag_test::eventually;

namespace {

struct fixed_clock final : dag::clock {
  dag::time_point now() const override { return dag::parse_time("2024-06-01T00:00:00Z"); }
};

// A webhook receiver that keeps the JSON documents it was sent.
struct receiver {
  std::mutex m;
  std::vector<nlohmann::json> docs;
  dag::http_server server{"127.0.0.1", 0, [this](const dag::http_request& r) {
                            std::lock_guard lock(m);
                            docs.push_back(nlohmann::json::parse(r.body, nullptr, false));
                            return dag::http_response{200, "text/plain", "ok"};
                          }};
  std::vector<nlohmann::json> received() {
    std::lock_guard lock(m);
    return docs;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server.port()) + "/hook"; }
};

struct sandbox {
  std::filesystem::path dir;
  std::unique_ptr<dag::store> db;
  dag::operator_catalog operators = dag::builtin_operators();
  fixed_clock clock;
  dag::metrics_registry metrics;
  std::mutex warn_mutex;
  std::vector<std::string> warnings;  // guarded by warn_mutex: written on the alert thread
  sandbox() {
    static int n = 0;
    dir = std::filesystem::temp_directory_path() / ("dagrun-alerts-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    db = dag::open_store("sqlite:" + (dir / "dagrun.db").string());
  }
  ~sandbox() { std::filesystem::remove_all(dir); }
  dag::engine_options options() {
    dag::engine_options o;
    o.parallelism = 2;
    o.log_folder = dir / "logs";
    o.metrics = &metrics;
    o.base_url = "http://dagrun.local";
    o.warn = [this](const std::string& line) {
      std::lock_guard lock(warn_mutex);
      warnings.push_back(line);
    };
    return o;
  }
  // Runs `d` once; the engine (and so its alert thread, which sends what is queued) ends with it.
  dag::run_state run(dag::definition d) {
    dag::engine eng(*db, operators, clock, options());
    const std::string id = d.id();
    for (const auto& p : dag::check(d, operators)) FAIL_CHECK(p.what());
    eng.set_dags({std::move(d)});
    auto key = eng.create_run(id, dag::run_type::manual, dag::parse_time("2024-01-01"));
    REQUIRE(key);
    return eng.run_to_completion({*key}).front();
  }
  std::vector<std::string> warned() {
    std::lock_guard lock(warn_mutex);
    return warnings;
  }
};

dag::notifier_spec webhook(const std::string& url) { return {"webhook", {{"url", url}}, 0}; }

// A task that runs until released (or stopped): a try still running when its SLA passes.
struct held_task {
  std::mutex m;
  std::condition_variable_any cv;
  bool released = false;  // guarded by m
  std::function<dag::operator_result(dag::task_context&)> body() {
    return [this](dag::task_context& ctx) {
      std::unique_lock lock(m);
      cv.wait(lock, ctx.stop, [&] { return released; });
      return dag::operator_result::success();
    };
  }
  void release() {
    {
      std::lock_guard lock(m);
      released = true;
    }
    cv.notify_all();
  }
};

// DAG `nightly`, daily from 2024-05-01, whose task `slow` runs as `slow` says, with an SLA of an
// hour whose misses `hook` is told of.
dag::definition nightly(held_task& slow, const receiver& hook) {
  dag::definition d{"nightly"};
  d.schedule("@daily").start_date("2024-05-01");
  d.callable("slow", slow.body()).sla(1h).on_sla_miss({webhook(hook.url())});
  return d;
}

// A run of `nightly` missing its SLA, run by an engine that neither creates nor adopts runs: the
// parts a test of a refused pass needs.
struct sla_case {
  receiver hook;
  sandbox s;  // the clock says 2024-06-01T00:00
  held_task slow;
  dag::definition d = nightly(slow, hook);
  dag::engine_options o;
  sla_case() {
    for (const auto& p : dag::check(d, s.operators)) FAIL_CHECK(p.what());
    o = s.options();
    o.create_scheduled_runs = false;
    o.adopt_store_runs = false;
  }
  std::size_t recorded() {  // the misses' records
    dag::event_filter misses;
    misses.event = "sla_miss";
    return s.db->events(misses).size();
  }
};

}  // namespace

TEST_CASE("Alerts.RetryAndFailureReachTheWebhookAndEmail" * doctest::timeout(60)) {
  receiver hook;
  dag_test::smtp_sink smtp;
  sandbox s;
  s.db->set_connection(dag::parse_connection_uri("mail", "smtp://127.0.0.1:" + std::to_string(smtp.port()) + "?starttls=false"));
  dag::definition d{"etl"};
  dag::task_options defaults;
  defaults.on_retry = std::vector{webhook(hook.url())};
  defaults.on_failure = std::vector{webhook(hook.url()), dag::notifier_spec{"email", {{"to", "ops@example.com"}, {"conn_id", "mail"}}, 0}};
  d.default_args(defaults);
  d.bash("load", "exit 3").retries(1).retry_delay(0s);
  d.on_run_failure({webhook(hook.url())});
  CHECK(s.run(std::move(d)) == dag::run_state::failed);
  const auto docs = hook.received();
  REQUIRE(docs.size() == 3);
  CHECK(docs[0]["event"] == "retry");
  CHECK(docs[0]["try_number"] == 1);
  CHECK(docs[0]["state"] == "up_for_retry");
  CHECK(docs[0]["error"] == "exit status 3");
  CHECK(docs[0]["log_url"] == "http://dagrun.local/dags/etl/runs/manual__2024-01-01T00%3A00%3A00%2B00%3A00/tasks/load/logs/1");
  CHECK(docs[1]["event"] == "failure");
  CHECK(docs[1]["try_number"] == 2);
  CHECK(docs[2]["event"] == "run_failure");
  CHECK(docs[2]["task_id"] == "");
  const auto mails = smtp.mails();
  REQUIRE(mails.size() == 1);
  CHECK(mails[0].to == std::vector<std::string>{"ops@example.com"});
  CHECK(mails[0].data.find("Subject: dagrun alert: task etl.load [failed]") != std::string::npos);
  CHECK(mails[0].data.find("Log: http://dagrun.local/dags/etl/runs/manual__2024-01-01T00%3A00%3A00%2B00%3A00/tasks/load/logs/2") !=
        std::string::npos);
  CHECK(s.metrics.text().find("dagrun_notifications_total{type=\"webhook\",result=\"sent\"} 3") != std::string::npos);
}

TEST_CASE("Alerts.APassTheStoreRefusedSendsNothingAndTheOneItTakesSendsEachOnce" * doctest::timeout(90)) {
  // The pass that records the failed try is refused (another connection holds the store's write
  // lock): the failure and the run's end it decided are not sent, nor counted. The pass that
  // records them once the store is back sends and counts each once.
  receiver hook;
  sandbox s;
  std::atomic<int> tries{0};
  dag::definition d{"etl"};
  dag::task_options defaults;
  defaults.on_failure = std::vector{webhook(hook.url())};
  d.default_args(defaults);
  d.callable("load", [&tries](dag::task_context&) {
    ++tries;
    return dag::operator_result::failed("boom");
  });
  d.on_run_failure({webhook(hook.url())});
  for (const auto& p : dag::check(d, s.operators)) FAIL_CHECK(p.what());
  {
    dag::engine eng(*s.db, s.operators, s.clock, s.options());
    eng.set_dags({std::move(d)});
    const auto key = eng.create_run("etl", dag::run_type::manual, dag::parse_time("2024-01-01"));
    REQUIRE(key);
    eng.step();  // load starts
    REQUIRE(eventually([&] { return tries == 1; }));
    dag_test::held_write_lock writer(s.dir / "dagrun.db");
    REQUIRE(dag_test::a_pass_fails(eng));  // the pass with load's end could not be written
    writer.release();
    CHECK(eng.run_to_completion({*key}).front() == dag::run_state::failed);
  }  // the engine's alert thread sends what is queued before it ends
  const auto docs = hook.received();
  REQUIRE(docs.size() == 2);
  CHECK(docs[0]["event"] == "failure");
  CHECK(docs[1]["event"] == "run_failure");
  CHECK(tries == 1);
  const std::string metrics = s.metrics.text();
  CHECK(metrics.find(R"(dagrun_task_instance_finished_total{dag_id="etl",task_id="load",state="failed"} 1)" "\n") != std::string::npos);
  CHECK(metrics.find(R"(dagrun_task_duration_seconds_count{dag_id="etl",task_id="load"} 1)" "\n") != std::string::npos);
  CHECK(metrics.find(R"(dagrun_dag_run_finished_total{dag_id="etl",state="failed"} 1)" "\n") != std::string::npos);
  CHECK(metrics.find(R"(dagrun_dag_run_duration_seconds_count{dag_id="etl",state="failed"} 1)" "\n") != std::string::npos);
}

TEST_CASE("Alerts.EmailOnFailureMailsTheEmailAddressesThroughDagrunSmtp" * doctest::timeout(60)) {
  dag_test::smtp_sink smtp;
  sandbox s;
  ::setenv("DAGRUN_SMTP_HOST", "127.0.0.1", 1);
  ::setenv("DAGRUN_SMTP_PORT", std::to_string(smtp.port()).c_str(), 1);
  ::setenv("DAGRUN_SMTP_STARTTLS", "false", 1);
  dag::definition d{"mailed"};
  dag::task_options defaults;
  defaults.email = std::vector<std::string>{"a@example.com", "b@example.com"};
  defaults.email_on_failure = true;
  d.default_args(defaults);
  d.bash("boom", "exit 1");
  d.bash("fine", "true");
  CHECK(s.run(std::move(d)) == dag::run_state::failed);
  ::unsetenv("DAGRUN_SMTP_HOST");
  ::unsetenv("DAGRUN_SMTP_PORT");
  ::unsetenv("DAGRUN_SMTP_STARTTLS");
  const auto mails = smtp.mails();
  REQUIRE(mails.size() == 1);  // only the failed task; success sends nothing
  CHECK(mails[0].to == std::vector<std::string>{"a@example.com", "b@example.com"});
  CHECK(mails[0].data.find("Task: boom") != std::string::npos);
}

TEST_CASE("Alerts.AFailingNotifierFailsNothingAndIsCounted" * doctest::timeout(60)) {
  unsigned short closed = 0;
  {
    receiver gone;
    closed = gone.server.port();
  }
  const auto marker = std::filesystem::temp_directory_path() / ("dagrun-alert-cmd-" + std::to_string(::getpid()));
  std::filesystem::remove(marker);
  sandbox s;
  dag::definition d{"ok"};
  d.bash("work", "true").on_success({webhook("http://127.0.0.1:" + std::to_string(closed) + "/hook"),
                                      dag::notifier_spec{"command", {{"command", "echo $DAGRUN_ALERT $DAGRUN_TASK_ID > " + marker.string()}}, 0}});
  d.on_run_success({dag::notifier_spec{"email", {{"to", "x@example.com"}, {"conn_id", "nowhere"}}, 0}});
  CHECK(s.run(std::move(d)) == dag::run_state::success);
  const auto warned = s.warned();
  REQUIRE(warned.size() == 2);
  CHECK(warned[0].starts_with("alert success of ok.work (manual__2024-01-01T00:00:00+00:00): webhook notifier failed: webhook: Couldn't connect"));
  CHECK(warned[1] == "alert run_success of ok (manual__2024-01-01T00:00:00+00:00): email notifier failed: connection 'nowhere' is not defined");
  const std::string metrics = s.metrics.text();
  CHECK(metrics.find("dagrun_notifications_total{type=\"webhook\",result=\"failed\"} 1") != std::string::npos);
  CHECK(metrics.find("dagrun_notifications_total{type=\"command\",result=\"sent\"} 1") != std::string::npos);
  std::ifstream in(marker);
  std::string line;
  std::getline(in, line);
  CHECK(line == "success work");
  std::filesystem::remove(marker);
}

TEST_CASE("Alerts.NotifiersAreCheckedAtLoadTime") {
  const auto catalog = dag::builtin_operators();
  auto problems = [&](const std::string& text) {
    std::vector<std::string> out;
    for (const auto& p : dag::load_yaml_text(text, "dags/a.yaml", catalog).problems) out.push_back(p.what());
    return out;
  };
  const std::string good =
      "dag_id: a\non_run_failure:\n  - type: webhook\n    url: https://hooks.example/x\n"
      "default_args:\n  on_failure:\n    - type: email\n      to: [a@example.com, b@example.com]\n"
      "tasks:\n  - task_id: t\n    operator: bash\n    bash_command: 'true'\n    on_retry:\n      type: command\n      command: echo retry\n";
  CHECK(problems(good).empty());
  auto loaded = dag::load_yaml_text(good, "dags/a.yaml", catalog);
  REQUIRE(loaded.dag);
  const auto& t = loaded.dag->all_tasks().front();
  REQUIRE(t.settings.on_failure.size() == 1);
  CHECK(t.settings.on_failure[0].settings.at("to") == "a@example.com,b@example.com");
  CHECK(t.settings.on_retry.at(0).type == "command");
  CHECK(problems("dag_id: a\ntasks:\n  - task_id: t\n    operator: bash\n    bash_command: 'true'\n    on_failure:\n      - type: pager\n") ==
        std::vector<std::string>{"dags/a.yaml:7: task 't': on_failure: notifier type 'pager' is not one of email, webhook, command"});
  CHECK(problems("dag_id: a\non_run_success:\n  - type: webhook\n    endpoint: x\ntasks:\n  - task_id: t\n    operator: bash\n    bash_command: 'true'\n") ==
        std::vector<std::string>{"dags/a.yaml:3: on_run_success: notifier 'webhook' needs url or conn_id"});
  CHECK(problems("dag_id: a\ntasks:\n  - task_id: t\n    operator: bash\n    bash_command: 'true'\n    on_success: [{type: command, cmd: x}]\n") ==
        std::vector<std::string>{"dags/a.yaml:6: task 't': on_success: notifier 'command': unknown setting 'cmd'"});
}

TEST_CASE("Alerts.SlaMissIsRecordedOnceCountedAndSentToOnSlaMiss" * doctest::timeout(60)) {
  receiver hook;
  sandbox s;  // the clock says 2024-06-01T00:00
  held_task slow;
  // The run of 2024-05-30 covers [05-30, 05-31): `slow` was due by 05-31T01:00 and is still running.
  dag::definition d = nightly(slow, hook);
  d.bash("later", "true").sla(std::chrono::hours(24 * 30)).on_sla_miss({webhook(hook.url())});  // due 06-30: no miss
  for (const auto& p : dag::check(d, s.operators)) FAIL_CHECK(p.what());
  dag::engine_options o;
  o.log_folder = s.dir / "logs";
  o.metrics = &s.metrics;
  o.create_scheduled_runs = false;
  o.adopt_store_runs = false;
  dag::event_filter misses;
  misses.event = "sla_miss";
  dag::run_key key;
  {
    dag::engine eng(*s.db, s.operators, s.clock, o);
    eng.set_dags({d});
    key = *eng.create_run("nightly", dag::run_type::scheduled, dag::parse_time("2024-05-30"));
    // Several passes while `slow` runs: the miss is recorded in the first and never again.
    int passes = 0;
    eng.run_until([&] { return ++passes == 5; });
    REQUIRE(eventually([&] { return hook.received().size() == 1; }));
  }  // the engine goes away with `slow` still running (as in a crash): its try stays `running` in the store
  auto recorded = s.db->events(misses);
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].task_id == "slow");
  CHECK(recorded[0].run_id == key.run_id);
  CHECK(recorded[0].owner == "scheduler");
  CHECK(recorded[0].extra == R"({"sla":"1h","deadline":"2024-05-31T01:00:00+00:00"})");
  const auto doc = hook.received().front();
  CHECK(doc["event"] == "sla_miss");
  CHECK(doc["task_id"] == "slow");
  CHECK(doc["error"] == "missed its sla of 1h: not succeeded by 2024-05-31T01:00:00+00:00 (state running)");
  CHECK(s.metrics.text().find("dagrun_sla_misses_total{dag_id=\"nightly\",task_id=\"slow\"} 1") != std::string::npos);

  // A scheduler started later finds the miss in the store: nothing is recorded or sent twice.
  dag::metrics_registry fresh;
  o.metrics = &fresh;
  {
    dag::engine eng(*s.db, s.operators, s.clock, o);
    eng.set_dags({d});
    eng.track_run(key);
    eng.step();
  }
  CHECK(s.db->events(misses).size() == 1);
  CHECK(hook.received().size() == 1);
  CHECK(fresh.text().find("dagrun_sla_misses_total{") == std::string::npos);
  slow.release();
}

TEST_CASE("Alerts.AnSlaMissAPassCouldNotWriteIsRecordedCountedAndSentOnceByTheNext" * doctest::timeout(90)) {
  // The pass that finds the miss is refused by the store (another connection holds its write
  // lock): nothing of it is recorded, counted or sent, and the pass after it does all three, once.
  sla_case c;
  {
    dag::engine eng(*c.s.db, c.s.operators, c.s.clock, c.o);
    eng.set_dags({c.d});
    REQUIRE(eng.create_run("nightly", dag::run_type::scheduled, dag::parse_time("2024-05-30")));
    dag_test::held_write_lock writer(c.s.dir / "dagrun.db");
    CHECK_THROWS(eng.step());  // slow's start and the miss: refused
    writer.release();
    CHECK(c.recorded() == 0);
    eng.step();
    CHECK(c.recorded() == 1);
    eng.step();
    c.slow.release();
  }
  CHECK(c.recorded() == 1);
  const auto docs = c.hook.received();
  REQUIRE(docs.size() == 1);
  CHECK(docs[0]["event"] == "sla_miss");
  CHECK(c.s.metrics.text().find("dagrun_sla_misses_total{dag_id=\"nightly\",task_id=\"slow\"} 1") != std::string::npos);
}

TEST_CASE("Alerts.AnSlaMissWhoseLookInTheStoreFailedIsRecordedByTheNextPass" * doctest::timeout(90)) {
  // The look for a miss an earlier scheduler recorded fails (the database went away): the pass
  // fails, and the next one records the miss and sends it, once.
  struct events_that_fail_once final : dag::test_support::forwarding_store {
    using forwarding_store::forwarding_store;
    bool failed = false;
    std::vector<dag::event_record> events(const dag::event_filter& filter) override {
      if (filter.event == "sla_miss" && !std::exchange(failed, true)) throw std::runtime_error("the database went away");
      return forwarding_store::events(filter);
    }
  };
  sla_case c;
  events_that_fail_once store(*c.s.db);
  {
    dag::engine eng(store, c.s.operators, c.s.clock, c.o);
    eng.set_dags({c.d});
    REQUIRE(eng.create_run("nightly", dag::run_type::scheduled, dag::parse_time("2024-05-30")));
    CHECK_THROWS(eng.step());
    REQUIRE(store.failed);
    eng.step();
    CHECK(c.recorded() == 1);
    eng.step();
    c.slow.release();
  }
  CHECK(c.recorded() == 1);
  CHECK(c.hook.received().size() == 1);
}

TEST_CASE("Alerts.AnSlaMissOfARunThatComesBackAfterItEndedIsNotRecordedAgain" * doctest::timeout(90)) {
  // The engine forgets the misses of a run it let go of (it would keep one per late task for its
  // life); a run that comes back (its late task cleared) finds its miss in the store instead.
  sla_case c;
  {
    dag::engine eng(*c.s.db, c.s.operators, c.s.clock, c.o);
    eng.set_dags({c.d});
    const auto key = eng.create_run("nightly", dag::run_type::scheduled, dag::parse_time("2024-05-30"));
    REQUIRE(key);
    eng.step();
    CHECK(c.recorded() == 1);
    c.slow.release();
    CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
    dag::clear_selection which;
    which.dag_id = "nightly";
    which.run_id = key->run_id;
    REQUIRE(dag::clear_task_instances(*c.s.db, which).size() == 1);
    eng.track_run(*key);
    CHECK(eng.run_to_completion({*key}).front() == dag::run_state::success);
  }
  CHECK(c.recorded() == 1);
  CHECK(c.hook.received().size() == 1);
  CHECK(c.s.metrics.text().find("dagrun_sla_misses_total{dag_id=\"nightly\",task_id=\"slow\"} 1") != std::string::npos);
}

TEST_CASE("Alerts.AMappedTaskMissesItsSlaWhileAnyOfItsInstancesHasNotSucceeded" * doctest::timeout(60)) {
  // One miss per task and run (Airflow's SlaMiss has no map index): the task is late while any
  // instance is, even when map index 0 is done.
  dag_test::engine_sandbox s("sla-mapped");
  s.clock.set(dag::parse_time("2024-05-31T00:30:00Z"));  // before the deadline, 05-31T01:00
  dag::definition d{"nightly_fan"};
  d.schedule("@daily").start_date("2024-05-01");
  d.bash("fan", "unused").expand("bash_command", {"true", "sleep 60"}).sla(1h);
  dag::engine eng(*s.db, s.operators, s.clock, s.options());
  eng.set_dags({s.checked(std::move(d))});
  const auto key = eng.create_run("nightly_fan", dag::run_type::scheduled, dag::parse_time("2024-05-30"));
  REQUIRE(key);
  const auto states = [&] {
    std::map<int, dag::task_state> out;
    for (const auto& ti : s.db->task_instances(key->dag_id, key->run_id)) out[ti.map_index] = ti.state;
    return out;
  };
  eng.run_until([&] {
    return states() == std::map<int, dag::task_state>{{0, dag::task_state::success}, {1, dag::task_state::running}};
  });
  dag::event_filter misses;
  misses.event = "sla_miss";
  CHECK(s.db->events(misses).empty());
  // Past the deadline, map index 1 still runs: the task missed its sla, once.
  s.clock.set(dag::parse_time("2024-05-31T02:00:00Z"));
  eng.step();
  eng.step();
  const auto recorded = s.db->events(misses);
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].task_id == "fan");
  CHECK(recorded[0].run_id == key->run_id);
  // An instance's alert links its own log.
  CHECK(dag::try_log_path("d", "r", "fan", 2, 1) == "/dags/d/runs/r/tasks/fan/logs/2?map_index=1");
}

TEST_CASE("Alerts.SlaAndOnSlaMissLoadFromYamlAndDefaultArgs") {
  const auto catalog = dag::builtin_operators();
  const std::string text = "dag_id: nightly\nschedule: '@daily'\nstart_date: 2024-01-01\n"
                           "default_args:\n  sla: 2h\n  on_sla_miss:\n    - type: command\n      command: echo missed\n"
                           "tasks:\n  - task_id: a\n    operator: bash\n    bash_command: 'true'\n"
                           "  - task_id: b\n    operator: bash\n    bash_command: 'true'\n    sla: 30m\n";
  auto loaded = dag::load_yaml_text(text, "dags/nightly.yaml", catalog);
  REQUIRE(loaded.problems.empty());
  REQUIRE(loaded.dag);
  const dag::definition& d = *loaded.dag;  // checked: default_args applied
  CHECK(d.find("a")->settings.sla == std::chrono::hours(2));
  CHECK(d.find("b")->settings.sla == std::chrono::minutes(30));
  REQUIRE(d.find("b")->settings.on_sla_miss.size() == 1);
  CHECK(d.find("b")->settings.on_sla_miss[0].type == "command");

  auto bad = dag::load_yaml_text("dag_id: t\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: 'true'\n"
                                 "    sla: soon\n    on_sla_miss:\n      - type: pager\n",
                                 "dags/t.yaml", catalog);
  REQUIRE_FALSE(bad.problems.empty());
  CHECK(std::string(bad.problems[0].what()).starts_with("dags/t.yaml:6: task 'a': sla: invalid duration 'soon'"));
}
