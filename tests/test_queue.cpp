// The PostgreSQL queue: real schedulers and workers as processes, a real server.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <dag/exec/child_process.hpp>
#include <dag/exec/orphan_processes.hpp>
#include <dag/exec/queue_executor.hpp>
#include <dag/engine/engine.hpp>
#include <dag/operators/builtin.hpp>

#include "support/eventually.hpp"
#include "support/flaky_proxy.hpp"
#include "support/private_server.hpp"
#include <dag/core/error.hpp>
#include <dag/exec/task_queue.hpp>
#include <dag/store/store.hpp>

using namespace std::chrono_literals;

using dag_test::eventually;
using dag_test::private_server;

namespace {

std::string server_url() {
  const char* url = std::getenv("DAGRUN_TEST_POSTGRES_URL");
  if (!url || !*url)
    FAIL("DAGRUN_TEST_POSTGRES_URL is not set: start a server with scripts/test-postgres.sh start DIR PORT");
  return url;
}

// A database of its own on the test server, a DAGs folder and a logs folder; all removed after.
struct queue_sandbox {
  std::filesystem::path dir;
  std::string db_name;
  std::string server;
  std::string url;
  std::vector<dag::child_process> processes;

  queue_sandbox() : server(server_url()) {
    static int n = 0;
    db_name = "dagrun_q_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
    dir = std::filesystem::temp_directory_path() / db_name;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "dags");
    admin("DROP DATABASE IF EXISTS " + db_name);
    admin("CREATE DATABASE " + db_name);
    url = server.substr(0, server.rfind('/') + 1) + db_name;
  }
  ~queue_sandbox() {
    for (auto& p : processes)
      if (p.pid() > 0) ::kill(p.pid(), SIGKILL);
    processes.clear();
    if (std::getenv("DAGRUN_KEEP_TEST_FILES")) return;  // for a post-mortem
    admin("DROP DATABASE IF EXISTS " + db_name + " WITH (FORCE)");
    std::filesystem::remove_all(dir);
  }
  void admin(const std::string& sql) {
    pqxx::connection c(server);
    pqxx::nontransaction tx(c);
    tx.exec(sql);
  }
  std::string flags() const {
    return " --dags " + (dir / "dags").string() + " --db " + url + " --logs " + (dir / "logs").string();
  }
  void write_dag(const std::string& name, const std::string& text) const { std::ofstream(dir / "dags" / name) << text; }
  int dagrun(const std::string& args) const {
    dag::process_spec p;
    p.command = std::string(DAGRUN_BINARY) + " " + args + flags();
    p.log_file = dir / "cli.log";
    return dag::child_process::start(p).wait().exit_code;
  }
  dag::child_process& start(const std::string& args, const std::string& log, const std::string& environment = "") {
    dag::process_spec p;
    // Schedulers serve HTTP on any free port, so several at once do not collide.
    const std::string http = args.starts_with("schedule") ? " --listen 127.0.0.1:0" : "";
    p.command = environment + "exec " + std::string(DAGRUN_BINARY) + " " + args + http + flags();
    p.log_file = dir / log;
    processes.push_back(dag::child_process::start(p));
    return processes.back();
  }
  std::unique_ptr<dag::store> store() const { return dag::open_store(url); }
  std::vector<std::string> lines(const std::string& file) const {
    std::ifstream in(dir / file);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
};

/// Options of an engine a test steps itself: logs in the sandbox, no scheduled runs, no runs
/// adopted from the store.
dag::engine_options stepped_engine(const queue_sandbox& s) {
  dag::engine_options o;
  o.log_folder = s.dir / "logs";
  o.create_scheduled_runs = false;
  o.adopt_store_runs = false;
  return o;
}

bool run_finished(dag::store& s, const std::string& dag_id, const std::string& run_id, dag::run_state want) {
  auto run = s.find_run(dag_id, run_id);
  return run && run->state == want;
}

const std::string run_id = "manual__2024-01-01T00:00:00+00:00";

/// A try of task `task_id` in run `r` of DAG `d`, by the bash operator.
dag::queued_try bash_try(const std::string& task_id) {
  dag::queued_try t;
  t.dag_id = "d", t.run_id = "r", t.task_id = task_id, t.operator_name = "bash";
  return t;
}

/// A worker's report that claimed try `c` succeeded, handing its start back as workers do.
dag::queued_result succeeded(const dag::queued_try& c) {
  dag::queued_result r;
  r.id = c.id;
  r.lease_token = c.lease_token;
  r.result = dag::operator_result::success();
  r.instance_start = c.instance_start;
  return r;
}

/// As a worker and a scheduler would: claims the one try queued (of task `task_id`), reports it
/// done and takes its end; returns the end's row, for the scheduler's acknowledgement.
std::int64_t run_the_queued_try(dag::task_queue& q, const std::string& task_id) {
  auto claimed = q.claim({"default"}, 10, "w");
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].task_id == task_id);
  REQUIRE(q.complete({succeeded(claimed[0])}) == std::vector<bool>{true});
  auto taken = q.take_finished(10, 60s);
  REQUIRE(taken.size() == 1);
  return taken[0].item.id;
}

}  // namespace

TEST_CASE("Queue.TwoHundredTasksOverTwoWorkersRunOnceEach" * doctest::timeout(180)) {
  queue_sandbox s;
  std::string dag = "dag_id: wide\ntasks:\n";
  for (int i = 0; i < 200; ++i)
    dag += "  - task_id: t" + std::to_string(i) + "\n    operator: bash\n    bash_command: echo t" + std::to_string(i) +
           "-$DAGRUN_TRY_NUMBER >> " + (s.dir / "ran.txt").string() + "\n";
  s.write_dag("wide.yaml", dag);
  REQUIRE(s.dagrun("db migrate") == 0);
  REQUIRE(s.dagrun("trigger wide --date 2024-01-01") == 0);
  s.start("schedule --executor queue --parallelism 64", "scheduler.log");
  s.start("worker --concurrency 4", "worker1.log");
  s.start("worker --concurrency 4", "worker2.log");
  auto db = s.store();
  REQUIRE(eventually([&] { return run_finished(*db, "wide", run_id, dag::run_state::success); }));
  auto ran = s.lines("ran.txt");
  CHECK(ran.size() == 200);
  CHECK(std::set<std::string>(ran.begin(), ran.end()).size() == 200);
  for (const auto& ti : db->task_instances("wide", run_id)) CHECK(ti.try_number == 1);
  CHECK(dag::open_task_queue(s.url)->counts() == std::pair<std::int64_t, std::int64_t>{0, 0});  // cleaned
}

TEST_CASE("Queue.AMappedTasksInstancesRunOnceEachOnTheWorkers" * doctest::timeout(180)) {
  // Every instance of a mapped task has the same try number: the map index tells them apart in
  // the queue, in the worker and in the ends the scheduler collects.
  queue_sandbox s;
  const std::string ran = (s.dir / "ran.txt").string();
  s.write_dag("mapped.yaml", "dag_id: mapped\ntasks:\n  - task_id: list\n    operator: bash\n"
                             "    bash_command: >-\n      echo '[{\"X\": \"a\"}, {\"X\": \"b\"}, {\"X\": \"c\"}, {\"X\": \"d\"}, {\"X\": \"e\"}, {\"X\": \"f\"}]'\n"
                             "  - task_id: each\n    operator: bash\n    expand:\n      env: {xcom: list}\n"
                             "    bash_command: echo \"$DAGRUN_MAP_INDEX-$DAGRUN_TRY_NUMBER\" >> " + ran + "; echo $DAGRUN_MAP_INDEX\n"
                             "    dependencies: [list]\n");
  REQUIRE(s.dagrun("db migrate") == 0);
  REQUIRE(s.dagrun("trigger mapped --date 2024-01-01") == 0);
  s.start("schedule --executor queue --parallelism 8", "scheduler.log");
  s.start("worker --concurrency 2", "worker1.log");
  s.start("worker --concurrency 2", "worker2.log");
  auto db = s.store();
  REQUIRE(eventually([&] { return run_finished(*db, "mapped", run_id, dag::run_state::success); }));
  auto lines = s.lines("ran.txt");
  std::sort(lines.begin(), lines.end());
  CHECK(lines == std::vector<std::string>{"0-1", "1-1", "2-1", "3-1", "4-1", "5-1"});
  int instances = 0;
  for (const auto& ti : db->task_instances("mapped", run_id))
    if (ti.task_id == "each") {
      ++instances;
      CHECK(ti.state == dag::task_state::success);
      CHECK(ti.try_number == 1);
    }
  CHECK(instances == 6);
  CHECK(db->xcom("mapped", run_id, "each") == "[0,1,2,3,4,5]");  // each instance's own result
}

TEST_CASE("Queue.KilledWorkersTasksAreRequeuedAndFinishOnAnother" * doctest::timeout(180)) {
  queue_sandbox s;
  const auto pidfile = s.dir / "first.pid";
  s.write_dag("slow.yaml", "dag_id: slow\ntasks:\n  - task_id: a\n    operator: bash\n    retries: 1\n    retry_delay: 1s\n"
                           "    bash_command: 'if [ \"$DAGRUN_TRY_NUMBER\" = 1 ]; then echo $$ > " + pidfile.string() +
                           "; sleep 600; fi; echo second'\n");
  REQUIRE(s.dagrun("db migrate") == 0);
  REQUIRE(s.dagrun("trigger slow --date 2024-01-01") == 0);
  s.start("schedule --executor queue --lease-ms 2000", "scheduler.log");
  auto& first = s.start("worker --concurrency 1 --lease-ms 2000", "worker1.log");
  REQUIRE(eventually([&] { return std::filesystem::exists(pidfile) && std::filesystem::file_size(pidfile) > 0; }));
  ::kill(first.pid(), SIGKILL);
  pid_t orphan = 0;
  std::ifstream(pidfile) >> orphan;
  REQUIRE(orphan > 0);
  s.start("worker --concurrency 1 --lease-ms 2000", "worker2.log");
  // The new worker on this machine ends what the dead one left running (a 10-minute sleep).
  CHECK(eventually([&] { return dag::process_ended(orphan); }, 30s));
  auto db = s.store();
  REQUIRE(eventually([&] { return run_finished(*db, "slow", run_id, dag::run_state::success); }));
  auto tries = db->tries("slow", run_id, "a");
  REQUIRE(tries.size() == 2);
  CHECK(tries[0].state == dag::task_state::up_for_retry);
  CHECK(tries[0].message.find("worker lost") != std::string::npos);
  CHECK(tries[1].state == dag::task_state::success);
}

TEST_CASE("Queue.ATryClaimedAgainWhileItsWorkerRunsItRunsOnceAndTheWorkerStillStops" * doctest::timeout(180)) {
  // Should a claim ever be reported committed when it was not (before commit marks, a claim in
  // doubt in a database crash could be: pg_connection.hpp), the try is claimed again by the worker
  // already running it. The row put back in `queued` here is what the database holds then.
  queue_sandbox s;
  const auto runs = s.dir / "runs.txt";
  const auto go = s.dir / "go";
  s.write_dag("once.yaml", "dag_id: once\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: 'echo ran >> " +
                               runs.string() + "; while [ ! -e " + go.string() + " ]; do sleep 0.05; done'\n");
  REQUIRE(s.dagrun("db migrate") == 0);
  REQUIRE(s.dagrun("trigger once --date 2024-01-01") == 0);
  // Leases long enough that none runs out under load: this test is about the claim, not expiry.
  s.start("schedule --executor queue --lease-ms 30000", "scheduler.log");
  auto& worker = s.start("worker --concurrency 2 --lease-ms 30000", "worker.log");
  const auto ran = [&] {
    std::ifstream in(runs);
    int n = 0;
    for (std::string l; std::getline(in, l);) ++n;
    return n;
  };
  REQUIRE(eventually([&] { return ran() == 1; }));
  pqxx::connection c(s.url);
  const auto claimed_rows = [&] {
    pqxx::nontransaction tx(c);
    return tx.exec1("SELECT count(*) FROM dagrun_task_queue WHERE state = 'claimed'")[0].as<int>();
  };
  REQUIRE(claimed_rows() == 1);
  {
    pqxx::work tx(c);
    const auto put_back =
        tx.exec0("UPDATE dagrun_task_queue SET state = 'queued', lease_token = NULL, worker = NULL WHERE state = 'claimed'");
    REQUIRE(put_back.affected_rows() == 1);
    tx.commit();
  }
  // The worker, with a slot free, claims it again.
  REQUIRE(eventually([&] { return claimed_rows() == 1; }));
  std::ofstream(go) << "";
  auto db = s.store();
  REQUIRE(eventually([&] { return run_finished(*db, "once", run_id, dag::run_state::success); }));
  CHECK(ran() == 1);
  const auto tries = db->tries("once", run_id, "a");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0].state == dag::task_state::success);  // its result was taken under the newer lease
  // Nothing is left counted as running: the worker stops when asked (it waited for ever).
  ::kill(worker.pid(), SIGTERM);
  REQUIRE(eventually([&] { return dag::process_ended(worker.pid()); }, 30s));
  CHECK(worker.wait().exit_code == 0);
  s.processes.pop_back();  // reaped: its id is no longer its own to signal
  bool said = false;
  for (const auto& l : s.lines("worker.log")) said = said || l.find("again while running it") != std::string::npos;
  CHECK(said);
}

TEST_CASE("Queue.StaleWorkersLateResultIsRefused") {
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  dag::queued_try t;
  t.dag_id = "d";
  t.run_id = "r";
  t.task_id = "a";
  t.operator_name = "bash";
  q->enqueue({t, t});  // the same try twice (two schedulers): queued once
  CHECK(q->counts().first == 1);
  auto claimed = q->claim({"default"}, 10, "stale-worker");
  REQUIRE(claimed.size() == 1);
  CHECK(q->claim({"default"}, 10, "other").empty());
  auto lost = q->expire_leases(0ms);
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].outcome.result.message.find("worker lost") != std::string::npos);
  dag::queued_result late;
  late.id = claimed[0].id;
  late.lease_token = claimed[0].lease_token;
  late.result = dag::operator_result::success("late");
  CHECK(q->complete({late}) == std::vector<bool>{false});
  CHECK(q->take_finished(10, 60s).empty());
  CHECK(q->heartbeat({claimed[0].lease_token}) == std::vector<std::string>{claimed[0].lease_token});
}

TEST_CASE("Queue.ACompletionOfManyResultsFinishesEachCurrentLeaseAndRefusesTheStaleOnes") {
  // A batch larger than a worker's default slots: each current lease finishes its try with its
  // own result, and a stale token, wherever it is in the batch, changes nothing.
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  std::vector<dag::queued_try> tries;
  for (int i = 0; i < 70; ++i) tries.push_back(bash_try("t" + std::to_string(i)));
  q->enqueue(tries);
  const auto claimed = q->claim({"default"}, 100, "w");
  REQUIRE(claimed.size() == 70);
  std::vector<dag::queued_result> results;
  std::vector<bool> want;
  for (std::size_t i = 0; i < claimed.size(); ++i) {
    const auto& c = claimed[i];
    dag::queued_result r = succeeded(c);
    r.result = dag::operator_result::success("ended " + c.task_id);
    const bool stale = i == 3 || i == 66;
    if (stale) r.lease_token = "not-the-lease";
    results.push_back(r);
    want.push_back(!stale);
  }
  CHECK(q->complete(results) == want);
  const auto taken = q->take_finished(100, 60s);
  REQUIRE(taken.size() == 68);
  for (const auto& f : taken) CHECK(f.outcome.result.xcom == "ended " + f.item.task_id);
  CHECK(q->counts().second == 2);  // the two stale ones are still claimed
}

TEST_CASE("Queue.ARowTwiceInOneCompletionIsFinishedOnlyByItsCurrentLease") {
  // A batch naming one row twice, once with a stale token and once with the current one, in either
  // order: only the current token's result is accepted and recorded, the stale one refused.
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  q->enqueue({bash_try("a"), bash_try("b")});
  auto claimed = q->claim({"default"}, 10, "w");
  REQUIRE(claimed.size() == 2);
  std::sort(claimed.begin(), claimed.end(), [](const auto& x, const auto& y) { return x.task_id < y.task_id; });
  auto result = [&](const dag::queued_try& c, const std::string& token, const std::string& xcom) {
    dag::queued_result r = succeeded(c);
    r.lease_token = token;
    r.result = dag::operator_result::success(xcom);
    return r;
  };
  CHECK(q->complete({result(claimed[0], "stale", "from the stale worker"),
                     result(claimed[0], claimed[0].lease_token, "from the current worker"),
                     result(claimed[1], claimed[1].lease_token, "b's"),
                     result(claimed[1], "stale", "b's stale")}) == std::vector<bool>{false, true, true, false});
  auto taken = q->take_finished(10, 60s);
  REQUIRE(taken.size() == 2);
  std::sort(taken.begin(), taken.end(), [](const auto& x, const auto& y) { return x.item.task_id < y.item.task_id; });
  CHECK(taken[0].outcome.result.xcom == "from the current worker");
  CHECK(taken[1].outcome.result.xcom == "b's");
}

TEST_CASE("Queue.OneTryAloneAndTriesInABatchTravelAlike") {
  // One try, one end and one acknowledgement alone go by prepared statements over parameters,
  // more go as lists: the same text comes back either way, and each form keeps its rules (a try
  // queued twice has one row, a stale lease's end and a second end are refused, acknowledged ends
  // and their payloads are gone).
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  const std::string odd = "it's \\ \"quoted\" $1 ?1 \u00e9t\u00e9 \n\t; DROP TABLE x; --";
  const auto odd_try = [&](const std::string& task_id, int priority) {
    dag::queued_try t = bash_try(task_id);
    t.run_id = odd;
    t.queue = "default";
    t.priority = priority;
    t.map_index = 3;
    t.try_number = 2;
    t.fields["bash_command"] = "echo " + odd;
    t.params["p"] = odd;
    return t;
  };
  for (const std::size_t batch : {std::size_t{1}, std::size_t{3}}) {
    CAPTURE(batch);
    std::vector<dag::queued_try> tries;
    for (std::size_t i = 0; i < batch; ++i) tries.push_back(odd_try("t" + std::to_string(batch) + odd + std::to_string(i), 7));
    q->enqueue(tries);
    q->enqueue(tries);  // again (another scheduler's): no second row
    CHECK(q->counts().first == static_cast<std::int64_t>(batch));
    auto claimed = q->claim({"default"}, 10, "w");
    REQUIRE(claimed.size() == batch);
    std::sort(claimed.begin(), claimed.end(), [](const auto& x, const auto& y) { return x.task_id < y.task_id; });
    std::vector<dag::queued_result> ends;
    for (std::size_t i = 0; i < batch; ++i) {
      const auto& c = claimed[i];
      CHECK(c.task_id == tries[i].task_id);
      CHECK(c.run_id == odd);
      CHECK(c.map_index == 3);
      CHECK(c.try_number == 2);
      CHECK(c.priority == 7);
      CHECK(c.fields.at("bash_command") == "echo " + odd);
      CHECK(c.params.at("p") == odd);
      dag::queued_result r = succeeded(c);
      r.result = dag::operator_result::success(odd + c.task_id);
      ends.push_back(r);
    }
    // A stale lease's end alone is refused and changes nothing; the current ones are taken.
    dag::queued_result stale = ends.front();
    stale.lease_token = "not-the-lease";
    stale.result = dag::operator_result::success("stale");
    CHECK(q->complete({stale}) == std::vector<bool>{false});
    CHECK(q->complete(ends) == std::vector<bool>(batch, true));
    CHECK(q->complete({ends.front()}) == std::vector<bool>{false});  // ended already
    auto taken = q->take_finished(10, 60s);
    REQUIRE(taken.size() == batch);
    std::vector<std::int64_t> ids;
    for (const auto& f : taken) {
      CHECK(f.outcome.result.xcom == odd + f.item.task_id);
      CHECK(f.item.run_id == odd);
      ids.push_back(f.item.id);
    }
    q->acknowledge(ids);
    CHECK(q->pending_keys().empty());
  }
  pqxx::connection c(s.url);
  pqxx::work tx(c);
  CHECK(tx.exec1("SELECT count(*) FROM dagrun_task_queue_payload")[0].as<int>() == 0);
}

TEST_CASE("Queue.AClaimThatFindsNothingWritesNoCommitMarkAndATakeNever") {
  // Workers claim after every end and on every notice, mostly finding nothing: such a transaction
  // changed nothing, and its COMMIT need not wait for a mark written to disk. One that finds a
  // try still leaves its mark, for an in-doubt COMMIT to be settled by. A take leaves none even
  // when it takes an end: whether it committed does not matter (write_relaxed).
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);  // its first write (the table) leaves a mark
  pqxx::connection c(s.url);
  const auto marks = [&] {
    pqxx::nontransaction tx(c);
    return tx.exec1("SELECT count(*) * 1000 + COALESCE(sum(attempt), 0) FROM dagrun_commit_marks")[0].as<long>();
  };
  const long first = marks();
  CHECK(first > 0);
  for (int i = 0; i < 3; ++i) {
    CHECK(q->claim({"default"}, 10, "w").empty());
    CHECK(q->take_finished(10, 60s).empty());
    CHECK(q->expire_leases(0ms).empty());
    CHECK(q->heartbeat({"no-such-lease"}) == std::vector<std::string>{"no-such-lease"});
  }
  CHECK(marks() == first);
  q->enqueue({bash_try("a")});
  const long enqueued = marks();
  CHECK(enqueued == first + 1);
  const auto claimed = q->claim({"default"}, 10, "w");
  REQUIRE(claimed.size() == 1);
  CHECK(marks() == enqueued + 1);
  CHECK(q->heartbeat({claimed[0].lease_token}).empty());
  CHECK(marks() == enqueued + 2);
  REQUIRE(q->complete({succeeded(claimed[0])}) == std::vector<bool>{true});
  CHECK(marks() == enqueued + 3);
  REQUIRE(q->take_finished(10, 60s).size() == 1);
  CHECK(marks() == enqueued + 3);
}

TEST_CASE("Queue.AClaimWhoseCommitReplyIsLostIsRunAgainWhenItFoundNothingAndSettledWhenItFoundATry" * doctest::timeout(120)) {
  // A claim that found nothing wrote no mark: its COMMIT's lost reply leaves nothing to settle,
  // and it is run again on a new connection. One that claimed a try is settled by its mark: the
  // try comes back once, from the attempt that committed, and is not claimed again.
  queue_sandbox s;
  dag_test::flaky_proxy proxy(s.server);
  auto q = dag::open_task_queue(proxy.url(s.url));
  proxy.arm(dag_test::flaky_proxy::cut::reply_lost);
  CHECK(q->claim({"default"}, 10, "w").empty());
  CHECK(proxy.cuts() == 1);
  auto direct = dag::open_task_queue(s.url);
  direct->enqueue({bash_try("a")});
  proxy.arm(dag_test::flaky_proxy::cut::reply_lost);
  const auto claimed = q->claim({"default"}, 10, "w");
  CHECK(proxy.cuts() == 2);
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].task_id == "a");
  CHECK(direct->claim({"default"}, 10, "other").empty());
  CHECK(direct->counts().second == 1);
  REQUIRE(q->complete({succeeded(claimed[0])}) == std::vector<bool>{true});  // its lease is the one claimed
}

TEST_CASE("Queue.ATakeHandsItsEndsOnBeforeItCommitsAndOneWhoseCommitIsLostIsTakenAgain" * doctest::timeout(120)) {
  // A scheduler's step need not wait for its take's COMMIT: the ends are handed on as soon as
  // they are read, and an acknowledgement that comes before the take ends waits for it and
  // deletes the end. A take whose COMMIT reached the server holds its ends; one whose COMMIT
  // never arrived hands them out again, to the next take (which first ends the session left in
  // its transaction), as a repeat. Either way the end stays in the queue until acknowledged.
  queue_sandbox s;
  dag_test::flaky_proxy proxy(s.server);
  auto q = dag::open_task_queue(proxy.url(s.url));
  auto direct = dag::open_task_queue(s.url);
  pqxx::connection c(s.url);
  const auto taken_rows = [&] {
    pqxx::nontransaction tx(c);
    return tx.exec1("SELECT count(*) FROM dagrun_task_queue WHERE taken_at IS NOT NULL")[0].as<int>();
  };
  const auto end_one = [&](const std::string& task) {
    direct->enqueue({bash_try(task)});
    const auto claimed = direct->claim({"default"}, 10, "w");
    REQUIRE(claimed.size() == 1);
    REQUIRE(direct->complete({succeeded(claimed[0])}) == std::vector<bool>{true});
  };

  end_one("a");
  std::vector<std::string> handed;
  int taken_while_handed = -1;
  const auto taken = q->take_finished(10, 60s, [&](const std::vector<dag::finished_try>& ends) {
    for (const auto& f : ends) handed.push_back(f.item.task_id);
    taken_while_handed = taken_rows();
  });
  CHECK(handed == std::vector<std::string>{"a"});
  CHECK(taken_while_handed == 0);  // not committed yet when handed on
  REQUIRE(taken.size() == 1);
  CHECK(taken_rows() == 1);
  CHECK(q->take_finished(10, 60s).empty());
  q->acknowledge({taken[0].item.id});

  // The step that recorded an end acknowledges it while its take is still open (the collector
  // was slow to send the COMMIT): the acknowledgement waits for the take, then deletes the end.
  end_one("d");
  std::atomic<bool> acked{false};
  const auto lock_waiters = [&] {
    pqxx::nontransaction tx(c);
    return tx.exec1("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
                    "datname = current_database()")[0].as<int>();
  };
  {
    std::jthread ack;
    const auto d = q->take_finished(10, 60s, [&](const std::vector<dag::finished_try>& ends) {
      if (ends.size() != 1) return;
      ack = std::jthread([&, id = ends[0].item.id] {
        direct->acknowledge({id});
        acked = true;
      });
      // Until it waits for the take's row lock (or, deleting nothing, has finished already).
      CHECK(dag_test::eventually([&] { return acked || lock_waiters() > 0; }));
      CHECK_FALSE(acked);
    });
    REQUIRE(d.size() == 1);
  }
  CHECK(acked);
  CHECK(q->pending_keys().empty());

  // COMMIT reached the server and committed; its reply was lost: the end is returned all the same,
  // once, and it stays taken.
  end_one("b");
  proxy.arm(dag_test::flaky_proxy::cut::reply_lost);
  int calls = 0;
  const auto b = q->take_finished(10, 60s, [&](const auto&) { ++calls; });
  CHECK(proxy.cuts() == 1);
  CHECK(calls == 1);
  REQUIRE(b.size() == 1);
  CHECK(b[0].item.task_id == "b");
  CHECK(q->take_finished(10, 60s).empty());
  q->acknowledge({b[0].item.id});

  // COMMIT never arrived: the end is returned, and taken again by the next take.
  end_one("c");
  proxy.arm(dag_test::flaky_proxy::cut::never_arrives);
  const auto first = q->take_finished(10, 60s);
  CHECK(proxy.cuts() == 2);
  REQUIRE(first.size() == 1);
  CHECK(first[0].item.task_id == "c");
  const auto again = q->take_finished(10, 60s);
  REQUIRE(again.size() == 1);
  CHECK(again[0].item.id == first[0].item.id);
  CHECK(again[0].outcome.result.outcome == dag::try_outcome::success);
  CHECK(q->pending_keys() == std::set<dag::try_key>{{"d", "r", "c", -1, 1}});
  q->acknowledge({again[0].item.id});
  CHECK(q->pending_keys().empty());
}

TEST_CASE("Queue.EachTransactionOfAHandOffTakesTwoRoundTrips") {
  // A write's BEGIN goes to the server with its first statement, and its commit mark with its
  // COMMIT (pg_connection::write_joined): a claim and a completion are two round trips each,
  // where BEGIN, the statement, the mark and COMMIT were four; a claim that finds nothing is two
  // as well, and so is a take (its COMMIT carries no mark: pg_connection::write_relaxed). An enqueue is three: its tries (whose payloads may hold secrets) go by protocol
  // parameters, never in a statement's text; an acknowledgement sent with it rides with the BEGIN.
  queue_sandbox s;
  dag_test::flaky_proxy proxy(s.server);
  auto q = dag::open_task_queue(proxy.url(s.url));
  // Once through every statement first: a connection prepares each on its first use.
  q->enqueue({bash_try("warm")});
  q->enqueue({bash_try("a")}, {run_the_queued_try(*q, "warm")});
  CHECK(q->claim({"default"}, 10, "w").size() == 1);
  CHECK(q->claim({"default"}, 10, "w").empty());
  int last = proxy.round_trips();
  const auto trips = [&] {  // since the last call
    const int now = proxy.round_trips();
    return now - std::exchange(last, now);
  };
  q->enqueue({bash_try("b")});
  CHECK(trips() == 3);
  const auto claimed = q->claim({"default"}, 10, "w");
  CHECK(trips() == 2);
  REQUIRE(claimed.size() == 1);
  CHECK(q->claim({"default"}, 10, "w").empty());
  CHECK(trips() == 2);
  REQUIRE(q->complete({succeeded(claimed[0])}) == std::vector<bool>{true});
  CHECK(trips() == 2);
  const auto taken = q->take_finished(10, 60s);
  CHECK(trips() == 2);
  REQUIRE(taken.size() == 1);
  q->enqueue({bash_try("c")}, {taken[0].item.id});
  CHECK(trips() == 3);
  q->enqueue({}, {claimed[0].id});  // an acknowledgement alone (`b`'s row is gone already: no change)
  CHECK(trips() == 2);
  CHECK(q->pending_keys().size() == 2);  // `a` claimed, `c` queued; `b`'s end acknowledged
}

TEST_CASE("Queue.AChainsStepWrittenWithTheStoreTakesFiveRoundTrips") {
  // With the queue on the store's database (`schedule --executor queue`), a chain's step (a try
  // ends, the next task starts) also forgets the ended try's queue row (with the BEGIN) and
  // queues the next try (its payload by protocol parameters: a round trip of its own): five round
  // trips, the store's own four and the INSERT. The store's held-back delete of a row of the ended
  // try waits for the COMMIT's message all the same: the queue's INSERT touches no row it does,
  // so it need not go first, on its own.
  queue_sandbox s;
  dag_test::flaky_proxy proxy(s.server);
  const std::string url = proxy.url(s.url);
  auto store = dag::open_store(url);
  dag::queue_executor queue(url, 30s);
  dag::run_record run;
  run.dag_id = "etl", run.type = dag::run_type::manual, run.logical_date = dag::parse_time("2024-01-01");
  run.run_id = dag::make_run_id(run.type, run.logical_date);
  run.interval = {run.logical_date, run.logical_date};
  dag::change_set created;
  created.new_runs.emplace_back(run, std::vector<std::string>{"a", "b", "c"});
  REQUIRE(store->apply(created).runs_created == std::vector<bool>{true});
  const auto moving = [&](const std::string& task_id, dag::task_state expected, int expected_try, dag::task_state state) {
    dag::task_instance_update u;
    u.expected = expected, u.expected_try = expected_try;
    u.record.dag_id = run.dag_id, u.record.run_id = run.run_id, u.record.task_id = task_id;
    u.record.state = state, u.record.try_number = 1;
    return u;
  };
  const auto starts = [&](const std::string& task_id, dag::task_state expected) {
    dag::change_set c;
    c.task_instances = {moving(task_id, expected, expected == dag::task_state::none ? 0 : 1, dag::task_state::running)};
    return store->apply(c).task_instances_updated == std::vector<bool>{true};
  };
  // `ended` succeeds (with its try, as the engine writes an end) and `next` is claimed and queued.
  const auto step = [&](const std::string& ended, const std::string& next) {
    dag::change_set c;
    c.task_instances = {moving(ended, dag::task_state::running, 1, dag::task_state::success),
                        moving(next, dag::task_state::none, 0, dag::task_state::queued)};
    c.tries.push_back(dag::try_record_of(c.task_instances[0].record));
    dag::task_request start;
    start.context.dag_id = run.dag_id, start.context.run_id = run.run_id, start.context.task_id = next;
    start.context.try_number = 1;
    dag::task_event end;
    end.dag_id = run.dag_id, end.run_id = run.run_id, end.task_id = ended, end.try_number = 1;
    end.source = 1'000'000;  // a queue row that is gone: its DELETE is sent all the same
    c.attachment = queue.attachment_for({start}, std::span<const dag::task_event>(&end, 1));
    return store->apply(c).task_instances_updated;
  };
  REQUIRE(starts("a", dag::task_state::none));
  REQUIRE(step("a", "b") == std::vector<bool>{true, true});  // every statement prepared on this connection
  REQUIRE(starts("b", dag::task_state::queued));
  pqxx::connection c(s.url);
  const auto query = [&](const std::string& sql) {
    pqxx::nontransaction tx(c);
    return tx.exec1(sql)[0].as<std::string>();
  };
  // A row of b's try left behind (as a late end of an earlier poke leaves one): the step deletes it.
  query("INSERT INTO task_tries (dag_id, run_id, task_id, try_number, state) VALUES ('etl', '" + run.run_id +
        "', 'b', 1, 'running') RETURNING 1");
  const int before = proxy.round_trips();
  CHECK(step("b", "c") == std::vector<bool>{true, true});
  CHECK(proxy.round_trips() - before == 5);
  CHECK(query("SELECT count(*) FROM task_tries") == "0");
  CHECK(query("SELECT string_agg(task_id, ',' ORDER BY id) FROM dagrun_task_queue") == "b,c");
}

TEST_CASE("Queue.AWaitForANoticeEndsAtOnceWhenItsStopIsRequested") {
  // A worker told to stop (SIGTERM) while it waits for a queued try's notice stops waiting then,
  // not at the end of its wait: its results are confirmed and it exits at once.
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  pqxx::connection c(s.url);
  const auto listening = [&] {  // the waiter's session, idle after its LISTEN: in its wait
    pqxx::nontransaction tx(c);
    return tx.exec1("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle' "
                    "AND query LIKE 'LISTEN%'")[0].as<int>() == 1;
  };
  std::stop_source stop;
  std::atomic<int> answer = -1;
  const auto began = std::chrono::steady_clock::now();
  std::jthread waiter([&] { answer = q->wait("queued", std::chrono::seconds(60), stop.get_token()) ? 1 : 0; });
  REQUIRE(eventually(listening));
  stop.request_stop();
  waiter.join();
  CHECK(answer == 0);
  CHECK(std::chrono::steady_clock::now() - began < std::chrono::seconds(30));  // not the wait's 60 s
  CHECK_FALSE(q->wait("queued", std::chrono::seconds(60), stop.get_token()));  // asked after the request: at once
  // Without a stop, a notice still ends the wait.
  std::stop_source other;
  std::jthread notice([&] { dag::open_task_queue(s.url)->enqueue({bash_try("a")}); });
  CHECK(eventually([&] { return q->wait("queued", std::chrono::seconds(1), other.get_token()); }));
}

/// `task_id`'s try, to push to `worker`.
dag::queued_try pushed_try(const std::string& task_id, const std::string& worker) {
  dag::queued_try t = bash_try(task_id);
  t.worker = worker;
  return t;
}

TEST_CASE("Queue.ATryPushedToAWorkerTakingPushesIsClaimedForItAndWakesItAlone") {
  // A step that names a worker taking pushes writes the try claimed by it, with a lease: no other
  // worker can claim it, only its notice wakes that worker, and `pushed` hands it out, once.
  queue_sandbox s;
  auto w1 = dag::open_task_queue(s.url);
  auto w2 = dag::open_task_queue(s.url);
  auto scheduler = dag::open_task_queue(s.url);
  w1->accept_pushes("w1");
  CHECK(w1->pushed(10).empty());  // nothing yet (it asks once at first)
  CHECK_FALSE(w1->pushes_waiting());
  CHECK_FALSE(w2->wait("queued", 0ms));  // both listening from now on
  CHECK_FALSE(w1->wait("queued", 0ms));
  dag::queued_try a = pushed_try("a", "w1");
  a.fields["bash_command"] = "echo pushed";
  scheduler->enqueue({a});
  CHECK(w2->claim({"default"}, 10, "w2").empty());
  // The push's notice ends w1's wait, though no try was queued for anyone.
  REQUIRE(eventually([&] {
    w1->wait("queued", 1s);
    return w1->pushes_waiting();
  }));
  CHECK_FALSE(w2->wait("queued", 200ms));  // no notice for the other worker
  auto got = w1->pushed(10);
  REQUIRE(got.size() == 1);
  CHECK(got[0].task_id == "a");
  CHECK(got[0].worker == "w1");
  CHECK(got[0].fields.at("bash_command") == "echo pushed");  // with its payload
  CHECK_FALSE(got[0].lease_token.empty());
  CHECK_FALSE(w1->pushes_waiting());
  CHECK(w1->pushed(10).empty());  // handed out once
  // A worker with no free slot puts back what was pushed to it meanwhile, for anyone.
  scheduler->enqueue({pushed_try("b", "w1")});
  REQUIRE(eventually([&] {
    w1->wait("queued", 100ms);
    return w1->pushes_waiting();
  }));
  CHECK(w1->put_back_pushes() == 1);
  CHECK_FALSE(w1->pushes_waiting());
  CHECK(w1->put_back_pushes() == 0);
  auto b = w2->claim({"default"}, 10, "w2");
  REQUIRE(b.size() == 1);
  CHECK(b[0].task_id == "b");
  // A notice of a try put back, read only after it (its push committed before the put-back's
  // UPDATE, its notice came after the put-back's transaction), hands nothing out: w2 runs it.
  // Sent again here, as it was: the test listens on the worker's channel and keeps it.
  pqxx::connection c(s.url);
  const auto sql = [&](const std::string& text) {
    pqxx::nontransaction tx(c);
    return std::string(tx.exec1(text)[0].c_str());
  };
  const std::string channel = "dagrun_w_" + sql("SELECT hashtextextended('dagrun worker ' || 'w1', 0)::text");
  struct keeper : pqxx::notification_receiver {
    using pqxx::notification_receiver::notification_receiver;
    void operator()(const std::string& payload, int) override { kept.push_back(payload); }
    std::vector<std::string> kept;
  };
  pqxx::connection listener(s.url);
  keeper notices(listener, channel);
  scheduler->enqueue({pushed_try("b2", "w1")});
  REQUIRE(eventually([&] {
    listener.get_notifs();
    return !notices.kept.empty();
  }));
  REQUIRE(eventually([&] {
    w1->wait("queued", 100ms);
    return w1->pushes_waiting();
  }));
  CHECK(w1->put_back_pushes() == 1);
  sql("SELECT 'sent again' FROM pg_notify(" + c.quote(channel) + ", " + c.quote(notices.kept.front()) + ")");
  w1->wait("queued", 300ms);
  CHECK(w1->pushed(10).empty());
  // A notice carries the try, payload and all; one too long for a notice carries nothing, and the
  // worker reads it.
  dag::queued_try big = pushed_try("big", "w1");
  big.fields["bash_command"] = std::string(20000, 'x');
  scheduler->enqueue({big, pushed_try("small", "w1")});
  std::map<std::string, dag::queued_try> later;
  REQUIRE(eventually([&] {
    w1->wait("queued", 100ms);
    for (auto& t : w1->pushed(10)) later[t.task_id] = t;
    return later.size() == 2;
  }));
  CHECK(later["big"].fields.at("bash_command") == big.fields.at("bash_command"));
  CHECK(later["small"].operator_name == "bash");
  CHECK(later["small"].lease_token != later["big"].lease_token);
  // Its lease is as good as a claim's.
  CHECK(w1->complete({succeeded(got[0])}) == std::vector<bool>{true});
  auto taken = scheduler->take_finished(10, 60s);
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].item.worker == "w1");
}

TEST_CASE("Queue.ATryForAWorkerNotTakingPushesIsQueuedForAnyone") {
  // No session holds the lock of a worker that never took pushes, whose session ended, or that
  // stopped taking them: the try is queued as any other, in a batch as alone.
  queue_sandbox s;
  auto scheduler = dag::open_task_queue(s.url);
  auto w2 = dag::open_task_queue(s.url);
  scheduler->enqueue({pushed_try("a", "never")});
  {
    auto gone = dag::open_task_queue(s.url);
    gone->accept_pushes("gone");
  }  // its session ended with it
  // Once its server process has ended too, which lets go of its locks a moment after the client
  // closed the connection.
  pqxx::connection watch(s.url);
  REQUIRE(eventually([&] {
    pqxx::nontransaction tx(watch);
    return tx.exec("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                   "(SELECT oid FROM pg_database WHERE datname = current_database())")[0][0].as<int>() == 0;
  }));
  scheduler->enqueue({pushed_try("b", "gone"), pushed_try("c", "never"), bash_try("d")});
  auto stopped = dag::open_task_queue(s.url);
  stopped->accept_pushes("stopped");
  CHECK(stopped->refuse_pushes({}) == 0);
  scheduler->enqueue({pushed_try("e", "stopped")});
  auto claimed = w2->claim({"default"}, 10, "w2");
  std::set<std::string> tasks;
  for (const auto& t : claimed) tasks.insert(t.task_id);
  CHECK(tasks == std::set<std::string>{"a", "b", "c", "d", "e"});
  // Alive, in a batch: pushed, beside a try queued for anyone.
  auto w1 = dag::open_task_queue(s.url);
  w1->accept_pushes("w1");
  scheduler->enqueue({pushed_try("f", "w1"), bash_try("g")});
  claimed = w2->claim({"default"}, 10, "w2");
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].task_id == "g");
  REQUIRE(eventually([&] { return w1->pushed(10).size() == 1; }));
}

TEST_CASE("Queue.AWorkerThatStopsTakingPushesPutsBackThoseItNeverStartedOnceEveryStepThatFoundItTakingThemCommitted" *
          doctest::timeout(120)) {
  queue_sandbox s;
  auto w1 = dag::open_task_queue(s.url);
  auto w2 = dag::open_task_queue(s.url);
  auto scheduler = dag::open_task_queue(s.url);
  w1->accept_pushes("w1");
  scheduler->enqueue({pushed_try("a", "w1")});
  std::vector<dag::queued_try> started;
  REQUIRE(eventually([&] {
    for (auto& t : w1->pushed(10)) started.push_back(t);
    return started.size() == 1;
  }));
  scheduler->enqueue({pushed_try("b", "w1"), pushed_try("c", "w1")});
  REQUIRE(eventually([&] {
    for (auto& t : w1->pushed(1)) started.push_back(t);  // one handed out, not started
    return started.size() == 2;
  }));
  // A step that finds w1 taking pushes and has not committed yet: its INSERT waits, in a trigger,
  // for a lock this test holds.
  pqxx::connection c(s.url);
  {
    pqxx::work tx(c);
    tx.exec("CREATE FUNCTION hold_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM pg_advisory_xact_lock(4242); RETURN NEW; END $$");
    tx.exec("CREATE TRIGGER hold_insert BEFORE INSERT ON dagrun_task_queue FOR EACH ROW EXECUTE FUNCTION hold_insert()");
    tx.commit();
  }
  pqxx::connection holder(s.url);
  pqxx::work hold(holder);
  hold.exec("SELECT pg_advisory_xact_lock(4242)");
  std::jthread step([&] { dag::open_task_queue(s.url)->enqueue({pushed_try("d", "w1")}); });
  const auto waiting_for = [&](const std::string& query) {
    pqxx::nontransaction tx(c);
    return tx.exec1("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = "
                    "'Lock' AND query LIKE " + tx.quote(query))[0].as<int>() == 1;
  };
  REQUIRE(eventually([&] { return waiting_for("%INSERT INTO dagrun_task_queue%"); }));
  std::atomic<int> put_back = -1;
  std::jthread stopping([&] { put_back = w1->refuse_pushes({started[1].lease_token}); });
  REQUIRE(eventually([&] { return waiting_for("%pg_advisory_xact_lock(hashtextextended%"); }));  // waits for the step
  CHECK(put_back == -1);
  hold.commit();
  step.join();
  stopping.join();
  // b (handed out, not started), c (never handed out) and d (pushed by the step it waited for).
  CHECK(put_back == 3);
  auto claimed = w2->claim({"default"}, 10, "w2");
  std::set<std::string> tasks;
  for (const auto& t : claimed) tasks.insert(t.task_id);
  CHECK(tasks == std::set<std::string>{"b", "c", "d"});
  CHECK(w1->complete({succeeded(started[0])}) == std::vector<bool>{true});  // a, started, is still its
  // And no step pushes to it any more.
  scheduler->enqueue({pushed_try("e", "w1")});
  REQUIRE(w2->claim({"default"}, 10, "w2").size() == 1);
}

TEST_CASE("Queue.ASessionOfAWorkerThatBrokeAndLingersHoldingItsPushLockIsEnded" * doctest::timeout(120)) {
  // The server keeps a session whose client vanished until it notices (TCP keepalive): holding
  // the worker's lock, it would make steps push to the worker after it stopped. A worker's name is
  // its process's alone, so the worker ends any other session holding its lock alone.
  queue_sandbox s;
  pqxx::connection lingering(s.url);
  const int lingering_pid = lingering.backendpid();
  {
    pqxx::nontransaction tx(lingering);
    tx.exec("SELECT pg_advisory_lock(hashtextextended('dagrun worker ' || 'w9', 0))");
  }
  pqxx::connection c(s.url);
  const auto count = [&](const std::string& sql) {
    pqxx::nontransaction tx(c);
    return tx.exec1(sql)[0].as<int>();
  };
  auto w9 = dag::open_task_queue(s.url);
  w9->accept_pushes("w9");
  REQUIRE(eventually([&] {
    return count("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(lingering_pid)) == 0;
  }));
  // Taken at its next call, and from then on pushed to.
  const std::string held_by_another =
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' AND granted AND objid = "
      "(hashtextextended('dagrun worker ' || 'w9', 0) & 4294967295)::oid";
  REQUIRE(eventually([&] {
    w9->wait("queued", 10ms);
    return count(held_by_another) == 1;
  }));
  auto scheduler = dag::open_task_queue(s.url);
  scheduler->enqueue({pushed_try("a", "w9")});
  CHECK(scheduler->claim({"default"}, 10, "other").empty());
  REQUIRE(eventually([&] { return w9->pushed(10).size() == 1; }));
  // Stopped, it lets go, and no step pushes to it any more.
  CHECK(w9->refuse_pushes({}) == 0);
  CHECK(count(held_by_another) == 0);
  scheduler->enqueue({pushed_try("b", "w9")});
  CHECK(scheduler->claim({"default"}, 10, "other").size() == 1);
}

TEST_CASE("Queue.TheQueueExecutorPushesTheNextTryToTheWorkerThatEndedTheLast" * doctest::timeout(120)) {
  // a >> b, with the store on the queue's database: the step that records a's end, reported by a
  // worker taking pushes, writes b claimed by that worker; with a worker that does not, b is
  // queued for anyone. (The store's path, and the executor's own enqueue: variant 1.)
  for (const int variant : {0, 1, 2}) {
    CAPTURE(variant);
    queue_sandbox s;
    std::string queue_url = s.url;
    if (variant == 1) queue_url += "?options=-c%20search_path%3Dpublic";  // not the store's session: its own enqueue
    auto db = dag::open_store(s.url);
    const dag::operator_catalog operators = dag::builtin_operators();
    const dag::system_clock clock;
    const dag::engine_options o = stepped_engine(s);
    dag::engine eng(*db, operators, clock, o, std::make_unique<dag::queue_executor>(queue_url, 30s));
    dag::definition d{"two"};
    d.bash("a", "true") >> d.bash("b", "true");
    eng.set_dags({std::move(d)});
    REQUIRE(eng.create_run("two", dag::run_type::manual, dag::parse_time("2024-01-01")));
    auto w1 = dag::open_task_queue(s.url);
    const std::string name = variant == 2 ? "not-taking" : "w1";
    if (variant != 2) w1->accept_pushes(name);
    std::vector<dag::queued_try> a;
    REQUIRE(eventually([&] {
      eng.step();
      a = w1->claim({"default"}, 10, name);
      return a.size() == 1;
    }));
    REQUIRE(w1->complete({succeeded(a[0])}) == std::vector<bool>{true});
    pqxx::connection c(s.url);
    const auto state_of_b = [&] {
      pqxx::nontransaction tx(c);
      const auto r = tx.exec("SELECT state, coalesce(worker, '') FROM dagrun_task_queue WHERE task_id = 'b'");
      return r.empty() ? std::string() : std::string(r[0][0].c_str()) + " " + r[0][1].c_str();
    };
    REQUIRE(eventually([&] {
      eng.step();
      return !state_of_b().empty();
    }));
    std::vector<dag::queued_try> b;
    if (variant == 2) {
      CHECK(state_of_b() == "queued ");
      b = w1->claim({"default"}, 10, name);
    } else {
      CHECK(state_of_b() == "claimed w1");
      REQUIRE(eventually([&] {
        w1->wait("queued", 100ms);
        b = w1->pushed(10);
        return b.size() == 1;
      }));
    }
    REQUIRE(b.size() == 1);
    CHECK(b[0].task_id == "b");
    REQUIRE(w1->complete({succeeded(b[0])}) == std::vector<bool>{true});
    REQUIRE(eventually([&] {
      eng.step();
      return run_finished(*db, "two", "manual__2024-01-01T00:00:00+00:00", dag::run_state::success);
    }));
  }
}

TEST_CASE("Queue.AnEndsNoticeCarriesTheEndSoThatASchedulerHandsItOnWithoutATake") {
  queue_sandbox s;
  auto scheduler = dag::open_task_queue(s.url);
  auto worker = dag::open_task_queue(s.url);
  CHECK_FALSE(scheduler->wait("finished", 0ms));  // listening from now on
  dag::queued_try a = bash_try("a");
  a.map_index = 3;
  a.try_number = 2;
  dag::queued_try big = bash_try("big");
  worker->enqueue({a, big});
  auto claimed = worker->claim({"default"}, 10, "w");
  REQUIRE(claimed.size() == 2);
  std::sort(claimed.begin(), claimed.end(), [](const auto& x, const auto& y) { return x.task_id < y.task_id; });
  dag::queued_result done = succeeded(claimed[0]);
  done.result.xcom = "\"forty-two\"";
  done.pid = 1234;
  REQUIRE(worker->complete({done}) == std::vector<bool>{true});
  std::vector<dag::finished_try> ends;
  REQUIRE(eventually([&] {
    scheduler->wait("finished", 100ms);
    for (auto& e : scheduler->noticed_ends()) ends.push_back(e);
    return !ends.empty();
  }));
  REQUIRE(ends.size() == 1);
  CHECK(ends[0].item.id == claimed[0].id);
  CHECK(ends[0].item.task_id == "a");
  CHECK(ends[0].item.map_index == 3);
  CHECK(ends[0].item.try_number == 2);
  CHECK(ends[0].item.worker == "w");
  CHECK(ends[0].outcome.lease_token == claimed[0].lease_token);
  CHECK(ends[0].outcome.result.outcome == dag::try_outcome::success);
  CHECK(ends[0].outcome.result.xcom == done.result.xcom);
  CHECK(ends[0].outcome.pid == 1234);
  CHECK_FALSE(scheduler->ends_unnoticed());
  // Not taken: a take still finds it (and the collector skips what it handed on).
  REQUIRE(scheduler->take_finished(10, 60s).size() == 1);
  // An end too long for a notice comes without it: a take finds it.
  dag::queued_result long_one = succeeded(claimed[1]);
  long_one.result.xcom = "\"" + std::string(20000, 'x') + "\"";
  REQUIRE(worker->complete({long_one}) == std::vector<bool>{true});
  REQUIRE(eventually([&] {
    scheduler->wait("finished", 100ms);
    return scheduler->ends_unnoticed();
  }));
  CHECK(scheduler->noticed_ends().empty());
  auto taken = scheduler->take_finished(10, 60s);
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].outcome.result.xcom == long_one.result.xcom);
  CHECK_FALSE(scheduler->ends_unnoticed());
}

TEST_CASE("Queue.ATrysStartGoesToTheWorkerAndComesBackWithItsEnd") {
  // The scheduler's stamp of a try's start names the poke of a rescheduled sensor an end is of: it
  // travels with the try (payload), and the worker hands it back with the result.
  dag::task_request request;
  request.context.dag_id = "d", request.context.run_id = "r", request.context.task_id = "a";
  request.context.start_date = dag::timestamp{std::chrono::microseconds(1'700'000'000'123'456)};
  const dag::queued_try sent = dag::to_queued_try(request);
  CHECK(sent.instance_start == request.context.start_date);

  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  q->enqueue({sent, bash_try("b")});  // b: from a scheduler that set no start
  auto claimed = q->claim({"default"}, 10, "w");
  REQUIRE(claimed.size() == 2);
  std::sort(claimed.begin(), claimed.end(), [](const auto& x, const auto& y) { return x.task_id < y.task_id; });
  CHECK(claimed[0].instance_start == request.context.start_date);
  CHECK(dag::to_task_context(claimed[0]).start_date == request.context.start_date);
  CHECK(claimed[1].instance_start == dag::timestamp{});
  CHECK(q->complete({succeeded(claimed[0]), succeeded(claimed[1])}) == std::vector<bool>{true, true});
  auto taken = q->take_finished(10, 60s);
  REQUIRE(taken.size() == 2);
  std::sort(taken.begin(), taken.end(), [](const auto& x, const auto& y) { return x.item.task_id < y.item.task_id; });
  CHECK(taken[0].outcome.instance_start == request.context.start_date);
  CHECK(taken[1].outcome.instance_start == dag::timestamp{});  // not known: any poke
}

/// A queue executor on `s`'s queue that keeps the ends it reports, with one try of task `a` of run
/// `r` of DAG `d` sent, started at `start`; and a worker's side, which has claimed it.
struct executor_with_one_try {
  dag::queue_executor ex;
  std::mutex m;
  std::vector<dag::task_event> ends;
  dag::task_request request;
  std::unique_ptr<dag::task_queue> worker;
  dag::queued_try claimed;

  executor_with_one_try(const queue_sandbox& s, dag::timestamp start) : ex(s.url, 30s) {
    ex.connect([&](dag::task_event e) {
      std::lock_guard lock(m);
      ends.push_back(std::move(e));
    }, [] { return dag::timestamp{}; });
    request.context.dag_id = "d", request.context.run_id = "r", request.context.task_id = "a";
    request.context.start_date = start;
    ex.submit(request);
    ex.flush();
    worker = dag::open_task_queue(s.url);
    auto got = worker->claim({"default"}, 10, "w");
    REQUIRE(got.size() == 1);
    claimed = got.front();
  }
  std::size_t count() {
    std::lock_guard lock(m);
    return ends.size();
  }
};

TEST_CASE("Queue.TheQueueExecutorHandsItsEngineThePokeAnEndNames" * doctest::timeout(60)) {
  queue_sandbox s;
  executor_with_one_try e(s, dag::timestamp{std::chrono::microseconds(1'700'000'000'777'000)});
  CHECK(e.worker->complete({succeeded(e.claimed)}) == std::vector<bool>{true});
  REQUIRE(eventually([&] { return e.count() > 0; }));
  std::lock_guard lock(e.m);
  CHECK(e.ends.front().task_id == "a");
  CHECK(e.ends.front().instance_start == e.request.context.start_date);
}

TEST_CASE("Queue.AnEndWrittenAgainAfterACrashUndidItIsHandedOnAgainFromItsNotice" * doctest::timeout(60)) {
  // The executor hands its own ends on from their notices. A completion a crash of the server
  // undid (committed without waiting for the disk) is written again by its worker: its second
  // notice is handed on too (the engine acknowledges it as a repeat), not left for a lease.
  queue_sandbox s;
  executor_with_one_try e(s, {});
  REQUIRE(e.worker->complete({succeeded(e.claimed)}) == std::vector<bool>{true});
  REQUIRE(eventually([&] { return e.count() == 1; }));
  {  // what the crash does: the row is claimed again, as before the completion
    pqxx::connection c(s.url);
    pqxx::work tx(c);
    tx.exec("UPDATE dagrun_task_queue SET state = 'claimed', result = NULL, taken_at = NULL");
    tx.commit();
  }
  REQUIRE(e.worker->complete({succeeded(e.claimed)}) == std::vector<bool>{true});
  CHECK(eventually([&] { return e.count() == 2; }, 10s));  // not after the lease (30 s)
  std::lock_guard lock(e.m);
  CHECK(e.ends.back().source == e.claimed.id);
}

TEST_CASE("Queue.AnEndHandedOnFromItsNoticeIsNotHandedOnAgainByTheTakeThatFollows" * doctest::timeout(60)) {
  // The executor hands its own end on from its notice; its next take (every half second) returns
  // the same end, not yet acknowledged, and must skip it: the engine gets it once. Acknowledged,
  // it leaves the queue.
  queue_sandbox s;
  executor_with_one_try e(s, {});
  REQUIRE(e.worker->complete({succeeded(e.claimed)}) == std::vector<bool>{true});
  REQUIRE(eventually([&] { return e.count() == 1; }));
  pqxx::connection c(s.url);
  const auto query = [&](const std::string& sql) {
    pqxx::nontransaction tx(c);
    return tx.exec(sql)[0][0].as<int>();
  };
  // A take marks what it returns (and hands it on before it commits): once the mark shows, the
  // take has returned the end.
  REQUIRE(eventually([&] { return query("SELECT count(*) FROM dagrun_task_queue WHERE taken_at IS NOT NULL") == 1; }));
  CHECK(e.count() == 1);
  dag::task_event end;
  {
    std::lock_guard lock(e.m);
    end = e.ends.front();
  }
  CHECK(end.source == e.claimed.id);
  e.ex.recorded({end});
  e.ex.flush();
  CHECK(query("SELECT count(*) FROM dagrun_task_queue") == 0);
  CHECK(e.count() == 1);
}

/// Writes DAG `echo` (one bash task `a` running `true`) into `s` and migrates its database; the
/// try of `a` a scheduler would queue for a worker.
dag::queued_try echo_try(queue_sandbox& s) {
  s.write_dag("echo.yaml", "dag_id: echo\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: 'true'\n");
  REQUIRE(s.dagrun("db migrate") == 0);
  dag::queued_try t;
  t.dag_id = "echo", t.run_id = run_id, t.task_id = "a", t.operator_name = "bash";
  t.fields = {{"bash_command", "true"}};
  t.log_path = (s.dir / "logs" / "a.log").string();
  return t;
}

TEST_CASE("Queue.AWorkerHandsATrysStartBackWithItsResult" * doctest::timeout(120)) {
  queue_sandbox s;
  dag::queued_try t = echo_try(s);
  t.instance_start = dag::timestamp{std::chrono::microseconds(1'700'000'000'654'321)};
  dag::open_task_queue(s.url)->enqueue({t});
  s.start("worker --concurrency 1", "worker.log");
  pqxx::connection c(s.url);
  const auto result = [&] {
    pqxx::nontransaction tx(c);
    const auto r = tx.exec("SELECT result FROM dagrun_task_queue WHERE state = 'done'");
    return r.empty() ? std::string() : std::string(r[0][0].c_str());
  };
  REQUIRE(eventually([&] { return !result().empty(); }));
  const auto end = nlohmann::json::parse(result());
  CHECK(end.at("instance_start").get<std::int64_t>() == 1'700'000'000'654'321);
  CHECK(end.at("outcome").get<int>() == static_cast<int>(dag::try_outcome::success));
}

/// A worker (one slot, no heartbeat within a test) that ran echo_try in a database that commits
/// durably (the tests' server has synchronous_commit off), where a trigger notes each commit
/// mark's client, `synchronous_commit` and time in table `marks_seen`; made once the completion's
/// mark, the only one written with synchronous_commit off, is in.
struct worker_noting_marks {
  queue_sandbox s;
  pqxx::connection c{s.url};
  dag::child_process* worker = nullptr;

  worker_noting_marks() {
    s.admin("ALTER DATABASE " + s.db_name + " SET synchronous_commit = on");
    dag::open_task_queue(s.url)->enqueue({echo_try(s)});
    exec("CREATE TABLE marks_seen (client text, sync text, at timestamptz)");
    exec("CREATE FUNCTION note_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO marks_seen "
         "VALUES (NEW.client, current_setting('synchronous_commit'), clock_timestamp()); RETURN NEW; END $$");
    exec("CREATE TRIGGER note_mark AFTER INSERT OR UPDATE ON dagrun_commit_marks FOR EACH ROW EXECUTE FUNCTION note_mark()");
    worker = &s.start("worker --concurrency 1 --lease-ms 60000", "worker.log");
    REQUIRE(eventually([&] { return exec("SELECT count(*) FROM marks_seen WHERE sync = 'off'")[0][0].as<int>() == 1; }));
  }
  pqxx::result exec(const std::string& sql) {
    pqxx::nontransaction tx(c);
    return tx.exec(sql);
  }
};

/// Of each mark written with synchronous_commit off, a later one of the same client written with
/// it on: how many, and the shortest time between the two (seconds).
constexpr const char* confirmed_marks =
    "SELECT count(*), COALESCE(min(extract(epoch FROM o.at - d.at)), 0) FROM marks_seen d JOIN marks_seen o "
    "ON o.client = d.client AND o.sync = 'on' AND o.at > d.at WHERE d.sync = 'off'";

TEST_CASE("Queue.AWorkerConfirmsItsResultWithADurableCommitOnTheSessionItWasSentOn" * doctest::timeout(120)) {
  // The worker's completion waits for no disk; its reporter then makes a durable commit on the same
  // connection (the mark of each shows which is which: same client, synchronous_commit off, then on),
  // after its result has waited the 200 ms the server's WAL writer usually takes to flush it.
  worker_noting_marks w;
  CHECK(w.exec("SELECT count(*) FROM dagrun_task_queue WHERE state = 'done'")[0][0].as<int>() == 1);
  REQUIRE(eventually([&] { return w.exec(confirmed_marks)[0][0].as<int>() == 1; }));
  CHECK(w.exec(confirmed_marks)[0][1].as<double>() >= 0.2);  // not before the result has waited 200 ms
}

TEST_CASE("Queue.AWorkerThatStopsConfirmsItsResultsBeforeItExits" * doctest::timeout(120)) {
  // Stopped as soon as its completion is in (well within the 200 ms a result otherwise waits: a
  // stop ends the wait for a queued try's notice at once), a worker still makes the durable commit
  // that confirms it before it exits: a crash of the server after the worker is gone must not undo
  // a result no one holds any more.
  worker_noting_marks w;
  ::kill(w.worker->pid(), SIGTERM);
  REQUIRE(eventually([&] { return dag::process_ended(w.worker->pid()); }, 30s));
  CHECK(w.worker->wait().exit_code == 0);
  w.s.processes.pop_back();  // reaped: its id is no longer its own to signal
  CHECK(w.exec(confirmed_marks)[0][0].as<int>() == 1);
}

TEST_CASE("Queue.ATakenEndIsTakenAgainOnlyOnceStaleAndAnAcknowledgedOneNever") {
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  q->enqueue({bash_try("a"), bash_try("b")});
  auto claimed = q->claim({"default"}, 10, "w");
  REQUIRE(claimed.size() == 2);
  std::vector<dag::queued_result> ends;
  for (const auto& c : claimed) {
    dag::queued_result r;
    r.id = c.id;
    r.lease_token = c.lease_token;
    r.result = dag::operator_result::success("done " + c.task_id);
    ends.push_back(r);
  }
  CHECK(q->complete(ends) == std::vector<bool>{true, true});

  auto taken = q->take_finished(10, 60s);
  REQUIRE(taken.size() == 2);
  std::set<std::string> tasks;
  for (const auto& f : taken) {
    tasks.insert(f.item.task_id);
    CHECK(f.item.dag_id == "d");
    CHECK(f.item.run_id == "r");
    CHECK(f.item.try_number == 1);
    CHECK(f.item.map_index == -1);
    CHECK(f.item.worker == "w");
    CHECK(f.outcome.result.xcom == "done " + f.item.task_id);
  }
  CHECK(tasks == std::set<std::string>{"a", "b"});
  {
    // Taken in place: still `done`, with the time it was taken (see schema_sql).
    pqxx::connection c(s.url);
    pqxx::work tx(c);
    CHECK(tx.exec1("SELECT count(*) FROM dagrun_task_queue WHERE state = 'done' AND taken_at IS NOT NULL")[0].as<int>() == 2);
  }
  CHECK(q->take_finished(10, 60s).empty());  // taken, and its taker is not presumed dead yet
  CHECK(q->pending_keys().size() == 2);      // kept until acknowledged

  const auto id_of = [&](const std::string& task) {
    return std::find_if(taken.begin(), taken.end(), [&](const auto& f) { return f.item.task_id == task; })->item.id;
  };
  q->acknowledge({id_of("a")});
  // Stale at once: the end nobody acknowledged is taken again (its scheduler died), the other never.
  auto again = q->take_finished(10, 0ms);
  REQUIRE(again.size() == 1);
  CHECK(again[0].item.task_id == "b");
  CHECK(again[0].outcome.result.xcom == "done b");
  q->acknowledge({again[0].item.id});
  CHECK(q->take_finished(10, 0ms).empty());
  CHECK(q->pending_keys().empty());

  // A sensor's next poke has the same key. An acknowledgement of the earlier end that comes late
  // (its first send failed) leaves the later one, taken by another scheduler and not yet recorded.
  q->enqueue({bash_try("a")});
  auto poke = q->claim({"default"}, 10, "w");
  REQUIRE(poke.size() == 1);
  dag::queued_result second;
  second.id = poke[0].id;
  second.lease_token = poke[0].lease_token;
  second.result = dag::operator_result::success("second poke");
  CHECK(q->complete({second}) == std::vector<bool>{true});
  REQUIRE(q->take_finished(10, 60s).size() == 1);
  q->acknowledge({id_of("a")});
  CHECK(q->pending_keys() == std::set<dag::try_key>{{"d", "r", "a", -1, 1}});
  auto kept = q->take_finished(10, 0ms);
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].outcome.result.xcom == "second poke");
}

TEST_CASE("Queue.AStepAcknowledgesAnEndAndQueuesTheNextTryOfItsKeyInOneTransaction") {
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  q->enqueue({bash_try("sensor")});
  auto claimed = q->claim({"default"}, 10, "w");
  REQUIRE(claimed.size() == 1);
  dag::queued_result poke;
  poke.id = claimed[0].id;
  poke.lease_token = claimed[0].lease_token;
  poke.result = dag::operator_result::success();
  REQUIRE(q->complete({poke}) == std::vector<bool>{true});
  auto taken = q->take_finished(10, 60s);
  REQUIRE(taken.size() == 1);
  // A rescheduled sensor's next poke has the same key: the end goes first, so the poke is queued.
  q->enqueue({bash_try("sensor")}, {taken[0].item.id});
  CHECK(q->counts().first == 1);
  auto next = q->claim({"default"}, 10, "w");
  REQUIRE(next.size() == 1);
  CHECK(next[0].id != taken[0].item.id);
}

TEST_CASE("Queue.AStepsTriesAreQueuedInTheTransactionThatRecordsTheirStartsWhereTheStoreIsInTheQueuesDatabase" *
          doctest::timeout(120)) {
  // Two independent tasks start in one step. With the store and the queue on one database (as
  // `schedule --executor queue` has them), each try's row in the queue is written by the store's
  // transaction that claims its task instance (the row's xmin is the instance's), once. With the
  // queue named otherwise (another host name for the same server: variant 1) or reached with other
  // session options (variant 3), the store leaves them to the executor's own enqueue. And a try
  // whose key the queue holds already (another scheduler's copy) is left to that enqueue too
  // (variant 2). The ends the engine records are deleted from the queue by the transaction that
  // records them, ahead of the tries it queues, and by no transaction of the executor's own: so a
  // rescheduled sensor's next poke, which has its last poke's key, is queued by the store as well
  // (variant 4). A write that deadlocks once (injected) is run again whole, its deletes too
  // (variant 5).
  for (const int variant : {0, 1, 2, 3, 4, 5}) {
    CAPTURE(variant);
    queue_sandbox s;
    std::string queue_url = s.url;
    if (variant == 1) {
      const auto at = queue_url.find("@127.0.0.1:");
      REQUIRE(at != std::string::npos);
      queue_url.replace(at, 10, "@localhost");
      queue_url += "?hostaddr=127.0.0.1";
    } else if (variant == 3) {
      queue_url += "?options=-c%20search_path%3Dpublic";
    }
    auto db = dag::open_store(s.url);
    auto ex = std::make_unique<dag::queue_executor>(queue_url, 30s);
    const std::string run = "manual__2024-01-01T00:00:00+00:00";
    if (variant == 2) {  // `a`'s key is in the queue already
      dag::queued_try held = bash_try("a");
      held.dag_id = "two", held.run_id = run;
      dag::open_task_queue(s.url)->enqueue({held});
    }
    // Every row offered to the queue, counted before the unique key keeps or drops it.
    pqxx::connection c(s.url);
    {
      pqxx::work tx(c);
      tx.exec("CREATE TABLE offered (task_id TEXT)");
      tx.exec("CREATE FUNCTION note_offer() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
              "INSERT INTO offered VALUES (NEW.task_id); RETURN NEW; END $$");
      tx.exec("CREATE TRIGGER note_offer BEFORE INSERT ON dagrun_task_queue FOR EACH ROW EXECUTE FUNCTION note_offer()");
      // Every row deleted (an end acknowledged), with its transaction's id as a row's xmin shows it.
      tx.exec("CREATE TABLE forgotten (task_id TEXT, by_xid BIGINT)");
      tx.exec("CREATE FUNCTION note_forget() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
              "INSERT INTO forgotten VALUES (OLD.task_id, txid_current() % 4294967296); RETURN OLD; END $$");
      tx.exec("CREATE TRIGGER note_forget AFTER DELETE ON dagrun_task_queue FOR EACH ROW EXECUTE FUNCTION note_forget()");
      // Every DELETE statement, whether it deleted a row or not (an acknowledgement sent again).
      tx.exec("CREATE TABLE deletes (by_xid BIGINT)");
      tx.exec("CREATE FUNCTION note_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
              "INSERT INTO deletes VALUES (txid_current() % 4294967296); RETURN NULL; END $$");
      tx.exec("CREATE TRIGGER note_delete AFTER DELETE ON dagrun_task_queue FOR EACH STATEMENT EXECUTE FUNCTION note_delete()");
      if (variant == 5) {  // the first write of an end fails as a deadlock would (a sequence is not rolled back)
        tx.exec("CREATE SEQUENCE ends_written");
        tx.exec("CREATE FUNCTION deadlock_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.state = 'success' AND nextval('ends_written') = 1 THEN "
                "RAISE EXCEPTION 'injected deadlock' USING ERRCODE = '40P01'; END IF; RETURN NEW; END $$");
        tx.exec("CREATE TRIGGER deadlock_once BEFORE UPDATE ON task_instances FOR EACH ROW EXECUTE FUNCTION deadlock_once()");
      }
      tx.commit();
    }
    const dag::operator_catalog operators = dag::builtin_operators();
    const dag::system_clock clock;
    const dag::engine_options o = stepped_engine(s);
    dag::engine eng(*db, operators, clock, o, std::move(ex));
    dag::definition d{"two"};
    d.bash("a", "true");
    d.bash("b", "true");
    eng.set_dags({std::move(d)});
    REQUIRE(eng.create_run("two", dag::run_type::manual, dag::parse_time("2024-01-01")));
    const auto count = [&](const std::string& sql) {
      pqxx::nontransaction tx(c);
      return tx.exec1(sql)[0].as<int>();
    };
    REQUIRE(eventually([&] {
      eng.step();
      return eng.running() == 2;
    }));
    CHECK(count("SELECT count(*) FROM dagrun_task_queue") == 2);
    const int with_their_claims = count(
        "SELECT count(*) FROM dagrun_task_queue q JOIN task_instances t USING (dag_id, run_id, task_id, map_index, try_number) "
        "WHERE q.xmin = t.xmin");
    const int offers_of_a = count("SELECT count(*) FROM offered WHERE task_id = 'a'");
    const int offers_of_b = count("SELECT count(*) FROM offered WHERE task_id = 'b'");
    if (variant == 0 || variant == 4 || variant == 5) {
      CHECK(with_their_claims == 2);
      CHECK(offers_of_a == 1);
      CHECK(offers_of_b == 1);
    } else if (variant == 1 || variant == 3) {
      CHECK(with_their_claims == 0);
      CHECK(offers_of_a == 1);
      CHECK(offers_of_b == 1);
    } else if (variant == 2) {
      CHECK(with_their_claims == 1);  // b's
      CHECK(offers_of_a == 2);        // the store's, refused by the key, then the executor's own
      CHECK(offers_of_b == 1);
    }
    // As workers would: both end, and the engine records them (it waits for its tries on exit).
    auto q = dag::open_task_queue(s.url);
    auto claimed = q->claim({"default"}, 10, "w");
    REQUIRE(claimed.size() == 2);
    if (variant == 4) {
      // `a` is a sensor that pokes again at once (no delay after an end at time zero): its next
      // poke is queued under the same key, by the transaction that records the last poke's end
      // and forgets it.
      auto& a = claimed[0].task_id == "a" ? claimed[0] : claimed[1];
      dag::queued_result poked = succeeded(a);
      poked.result = dag::operator_result::reschedule(std::chrono::seconds(0), "not yet");
      REQUIRE(q->complete({poked}) == std::vector<bool>{true});
      REQUIRE(eventually([&] {
        eng.step();
        return count("SELECT count(*) FROM dagrun_task_queue WHERE task_id = 'a' AND state = 'queued'") == 1;
      }));
      CHECK(count("SELECT count(*) FROM offered WHERE task_id = 'a'") == 2);  // each poke once, by the store
      CHECK(count("SELECT count(*) FROM dagrun_task_queue q JOIN task_instances t USING (dag_id, run_id, task_id, "
                  "map_index, try_number) WHERE q.xmin = t.xmin AND task_id = 'a'") == 1);
      // The last poke's end went in that transaction, before the next poke took its key.
      CHECK(count("SELECT count(*) FROM forgotten f JOIN dagrun_task_queue q USING (task_id) "
                  "WHERE f.by_xid = q.xmin::text::bigint") == 1);
      const auto again = q->claim({"default"}, 10, "w");
      REQUIRE(again.size() == 1);
      a = again[0];
    }
    REQUIRE(q->complete({succeeded(claimed[0]), succeeded(claimed[1])}) == std::vector<bool>{true, true});
    REQUIRE(eventually([&] {
      eng.step();
      return eng.running() == 0 && count("SELECT count(*) FROM dagrun_task_queue") == 0;
    }));
    // Each end was forgotten once, by the transaction that recorded it (the instance's last write).
    const int forgotten = count("SELECT count(*) FROM forgotten");
    const int with_their_records = count(
        "SELECT count(*) FROM forgotten f JOIN task_instances t ON t.task_id = f.task_id "
        "WHERE f.by_xid = t.xmin::text::bigint");
    CHECK(forgotten == (variant == 4 ? 3 : 2));
    CHECK(with_their_records == (variant == 1 || variant == 3 ? 0 : 2));
    if (variant == 5) CHECK(count("SELECT last_value FROM ends_written") >= 3);  // it failed, then both ends were written
    // And no transaction deleted nothing: no acknowledgement was sent again after the store's.
    CHECK(count("SELECT count(*) FROM deletes d WHERE NOT EXISTS (SELECT 1 FROM forgotten f WHERE f.by_xid = d.by_xid)") == 0);
  }
}

TEST_CASE("Queue.ALostTrysEndNamesItsPoke") {
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  auto t = bash_try("sensor");
  t.instance_start = dag::timestamp{std::chrono::microseconds(1'700'000'000'123'456)};
  t.params["p"] = std::string("a\0b", 3);  // a run's param may hold a NUL: JSON's \u0000, which PostgreSQL's text cannot
  q->enqueue({t});
  REQUIRE(q->claim({"default"}, 1, "gone").size() == 1);
  auto lost = q->expire_leases(0ms);
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].outcome.result.message.find("worker lost") != std::string::npos);
  CHECK(lost[0].outcome.instance_start == t.instance_start);
  CHECK(lost[0].outcome.started == t.instance_start);  // its span runs from its start, not from when it was found lost
  CHECK(lost[0].outcome.ended > lost[0].outcome.started);
  // Taken again after its scheduler died: the stored end still names the poke.
  auto again = q->take_finished(10, 0ms);
  REQUIRE(again.size() == 1);
  CHECK(again[0].outcome.instance_start == t.instance_start);
}

TEST_CASE("Queue.AnEnqueueWhoseCommitStayedInDoubtIsSettledBeforeItsTriesAreSentAgain" * doctest::timeout(180)) {
  // A scheduler's enqueue loses its connection during COMMIT and the server stays out of reach for
  // the connection's whole retry budget (about 30 s): the enqueue fails without knowing whether it
  // committed, and the scheduler sends the same tries again with a later step. Had it committed,
  // the try may have been claimed, run, reported and recorded meanwhile, its end acknowledged by
  // that very step: sent again blindly, it would be queued and run a second time. One case whose
  // COMMIT reached the server and one whose COMMIT never did, side by side (one budget's wait).
  queue_sandbox s;
  const auto in_doubt = [&](dag::task_queue& q, const dag::queued_try& t) {
    std::string failed;
    try {
      q.enqueue({t});
    } catch (const dag::error& e) {
      failed = e.what();
    }
    return failed;
  };
  dag_test::flaky_proxy committed_proxy(s.server), lost_proxy(s.server);
  auto committed_q = dag::open_task_queue(committed_proxy.url(s.url));
  auto lost_q = dag::open_task_queue(lost_proxy.url(s.url));
  // (Each queue's constructor has written through its proxy, with a COMMIT the cuts must not take.)
  committed_proxy.arm(dag_test::flaky_proxy::cut::reply_lost_then_unreachable);
  lost_proxy.arm(dag_test::flaky_proxy::cut::never_arrives_then_unreachable);
  std::string committed_failure, lost_failure;
  std::thread other([&] { lost_failure = in_doubt(*lost_q, bash_try("b")); });
  committed_failure = in_doubt(*committed_q, bash_try("a"));
  other.join();
  CHECK(committed_proxy.cuts() == 1);
  CHECK(lost_proxy.cuts() == 1);
  CHECK_MESSAGE(committed_failure.find("still unknown") != std::string::npos, committed_failure);
  CHECK_MESSAGE(lost_failure.find("still unknown") != std::string::npos, lost_failure);

  // Meanwhile a worker ran the try that was queued, and a scheduler took its end.
  auto direct = dag::open_task_queue(s.url);
  const std::int64_t end_of_a = run_the_queued_try(*direct, "a");

  // The scheduler's next step: its end acknowledged, the unsent tries sent again, a new one too.
  committed_proxy.reopen();
  lost_proxy.reopen();
  committed_q->enqueue({bash_try("a"), bash_try("c")}, {end_of_a});
  lost_q->enqueue({bash_try("b")});
  std::multiset<std::string> queued;
  for (const auto& c : direct->claim({"default"}, 10, "w")) queued.insert(c.task_id);
  CHECK(queued == std::multiset<std::string>{"b", "c"});  // `a` ran once; `b`, never sent, is sent now
  CHECK(direct->pending_keys().size() == 2);
}

TEST_CASE("Queue.TriesAnEnqueueInDoubtQueuedAreLeftOutUntilAnEnqueueSucceeds" * doctest::timeout(180)) {
  // As above, and the enqueue that learns that the earlier one committed fails too (its own
  // COMMIT cut, the server out of reach again): the scheduler still holds both steps' tries, and
  // the earlier one's, run meanwhile, must stay left out of the enqueue after that.
  queue_sandbox s;
  dag_test::flaky_proxy proxy(s.server);
  auto q = dag::open_task_queue(proxy.url(s.url));
  const auto fails_in_doubt = [&](dag_test::flaky_proxy::cut how, const std::vector<dag::queued_try>& tries) {
    proxy.arm(how);
    try {
      q->enqueue(tries);
      FAIL("the enqueue went through a cut COMMIT");
    } catch (const dag::error& e) {
      const std::string what = e.what();
      CHECK_MESSAGE(what.find("still unknown") != std::string::npos, what);
    }
    proxy.reopen();
  };
  fails_in_doubt(dag_test::flaky_proxy::cut::reply_lost_then_unreachable, {bash_try("a")});  // committed
  // A write of another kind on the same connection settles the question first (and keeps the
  // answer for the enqueue), and makes its new connection's first COMMIT, which no cut may take.
  CHECK(q->heartbeat({"no such lease"}) == std::vector<std::string>{"no such lease"});
  fails_in_doubt(dag_test::flaky_proxy::cut::never_arrives_then_unreachable, {bash_try("a"), bash_try("c")});  // not
  CHECK(proxy.cuts() == 2);

  auto direct = dag::open_task_queue(s.url);
  const std::int64_t end_of_a = run_the_queued_try(*direct, "a");

  q->enqueue({bash_try("a"), bash_try("c")}, {end_of_a});
  std::multiset<std::string> queued;
  for (const auto& c : direct->claim({"default"}, 10, "w")) queued.insert(c.task_id);
  std::string seen;  // (doctest cannot print a set)
  for (const auto& t : queued) seen += t + " ";
  CAPTURE(seen);
  CHECK(queued == std::multiset<std::string>{"c"});
  // Once an enqueue went through, the caller holds none of those tries: nothing is left out.
  q->enqueue({bash_try("d")});
  CHECK(direct->claim({"default"}, 10, "w").size() == 1);
}

TEST_CASE("Queue.AFormat1QueueIsUpgradedItsTakenEndsTakenAgainOnceStaleAndAnOldTakeRefused") {
  queue_sandbox s;
  // The queue as format 1 made it, with a row in every state: ends marked taken by their state,
  // one an hour ago (its scheduler died) and one just now.
  {
    pqxx::connection c(s.url);
    pqxx::work tx(c);
    tx.exec("CREATE TABLE dagrun_task_queue (id BIGSERIAL PRIMARY KEY, dag_id TEXT NOT NULL, run_id TEXT NOT NULL, "
            "task_id TEXT NOT NULL, try_number INT NOT NULL, map_index INT NOT NULL DEFAULT -1, queue TEXT NOT NULL, "
            "priority INT NOT NULL, payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'queued', lease_token TEXT, "
            "worker TEXT, heartbeat_at TIMESTAMPTZ, result TEXT, enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now())");
    tx.exec("CREATE UNIQUE INDEX dagrun_task_queue_once ON dagrun_task_queue (dag_id, run_id, task_id, map_index, try_number)");
    tx.exec("CREATE INDEX dagrun_task_queue_ready ON dagrun_task_queue (queue, priority DESC, id) WHERE state = 'queued'");
    tx.exec("CREATE INDEX dagrun_task_queue_done ON dagrun_task_queue (id) WHERE state = 'done'");
    tx.exec("CREATE INDEX dagrun_task_queue_leases ON dagrun_task_queue (heartbeat_at) WHERE state = 'claimed'");
    tx.exec("CREATE INDEX dagrun_task_queue_taken ON dagrun_task_queue (heartbeat_at) WHERE state = 'taken'");
    tx.exec("CREATE TABLE dagrun_task_queue_format (format INT NOT NULL)");
    tx.exec("INSERT INTO dagrun_task_queue_format VALUES (1)");
    const std::string result =
        R"('{"outcome":0,"message":"m","exit_code":0,"started":0,"ended":0,"pid":0,"hostname":"h"}')";
    tx.exec("INSERT INTO dagrun_task_queue (dag_id, run_id, task_id, try_number, queue, priority, payload, state, "
            "lease_token, heartbeat_at, result) VALUES "
            "('d', 'r', 'queued', 1, 'default', 1, '{}', 'queued', NULL, NULL, NULL), "
            "('d', 'r', 'claimed', 1, 'default', 1, '{}', 'claimed', 'tok', now(), NULL), "
            "('d', 'r', 'done', 1, 'default', 1, '{}', 'done', 'tok', now(), " + result + "), "
            "('d', 'r', 'old', 1, 'default', 1, '{}', 'taken', 'tok', now() - interval '1 hour', " + result + "), "
            "('d', 'r', 'recent', 1, 'default', 1, '{}', 'taken', 'tok', now(), " + result + ")");
    tx.commit();
  }
  auto q = dag::open_task_queue(s.url);
  {
    pqxx::connection c(s.url);
    pqxx::work tx(c);
    CHECK(tx.exec1("SELECT format FROM dagrun_task_queue_format")[0].as<int>() == 3);
    CHECK(tx.exec1("SELECT to_regclass('dagrun_task_queue_taken') IS NULL")[0].as<bool>());
    std::map<std::string, std::string> states;
    for (const auto& row : tx.exec("SELECT task_id, state || CASE WHEN taken_at IS NULL THEN '' ELSE ' taken' END "
                                   "FROM dagrun_task_queue"))
      states[row[0].c_str()] = row[1].c_str();
    CHECK(states == std::map<std::string, std::string>{{"queued", "queued"},
                                                       {"claimed", "claimed"},
                                                       {"done", "done"},
                                                       {"old", "done taken"},
                                                       {"recent", "done taken"}});
  }
  // The end nobody took yet and the one taken an hour ago; the one taken just now is its taker's.
  std::set<std::string> taken;
  for (const auto& f : q->take_finished(10, 60s)) {
    taken.insert(f.item.task_id);
    CHECK(f.outcome.result.message == "m");
  }
  CHECK(taken == std::set<std::string>{"done", "old"});
  // A format-1 scheduler still running marks an end taken by its state: refused, loudly.
  pqxx::connection c(s.url);
  pqxx::work tx(c);
  CHECK_THROWS_AS(tx.exec("UPDATE dagrun_task_queue SET state = 'taken' WHERE task_id = 'recent'"), pqxx::check_violation);
}

TEST_CASE("Queue.AFormat2QueueHandsThePayloadsOfTriesNotYetEndedToTheirOwnTable") {
  queue_sandbox s;
  // The queue as format 2 made it, payloads in the rows: a try queued, one claimed by a worker that
  // died an hour ago (its payload names its poke), one a live worker holds, and an end not yet taken.
  const std::string payload =
      R"({"operator":"bash","fields":{"bash_command":"echo upgraded"},"environment":{"DAGRUN_X":"1"},"params":{},)"
      R"("log_path":"/tmp/l.log","logical_date":1700000000,"data_interval_start":0,"data_interval_end":0)";
  {
    pqxx::connection c(s.url);
    pqxx::work tx(c);
    tx.exec("CREATE TABLE dagrun_task_queue (id BIGSERIAL PRIMARY KEY, dag_id TEXT NOT NULL, run_id TEXT NOT NULL, "
            "task_id TEXT NOT NULL, try_number INT NOT NULL, map_index INT NOT NULL DEFAULT -1, queue TEXT NOT NULL, "
            "priority INT NOT NULL, payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'queued', lease_token TEXT, "
            "worker TEXT, heartbeat_at TIMESTAMPTZ, result TEXT, enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
            "taken_at TIMESTAMPTZ, CONSTRAINT dagrun_task_queue_not_taken CHECK (state <> 'taken'))");
    tx.exec("CREATE UNIQUE INDEX dagrun_task_queue_once ON dagrun_task_queue (dag_id, run_id, task_id, map_index, try_number)");
    tx.exec("CREATE INDEX dagrun_task_queue_ready ON dagrun_task_queue (queue, priority DESC, id) WHERE state = 'queued'");
    tx.exec("CREATE INDEX dagrun_task_queue_done ON dagrun_task_queue (id) WHERE state = 'done'");
    tx.exec("CREATE INDEX dagrun_task_queue_leases ON dagrun_task_queue (heartbeat_at) WHERE state = 'claimed'");
    tx.exec("CREATE TABLE dagrun_task_queue_format (format INT NOT NULL)");
    tx.exec("INSERT INTO dagrun_task_queue_format VALUES (2)");
    const std::string result =
        R"('{"outcome":0,"message":"m","exit_code":0,"started":0,"ended":0,"pid":0,"hostname":"h"}')";
    tx.exec("INSERT INTO dagrun_task_queue (dag_id, run_id, task_id, try_number, queue, priority, payload, state, "
            "lease_token, worker, heartbeat_at, result) VALUES "
            "('d', 'r', 'queued', 1, 'default', 1, " + tx.quote(payload + "}") + ", 'queued', NULL, NULL, NULL, NULL), "
            "('d', 'r', 'claimed', 1, 'default', 1, " + tx.quote(payload + R"(,"instance_start":1700000000123456})") +
            ", 'claimed', 'tok', 'gone', now() - interval '1 hour', NULL), "
            "('d', 'r', 'held', 1, 'default', 1, " + tx.quote(payload + "}") + ", 'claimed', 'tok2', 'old', now(), NULL), "
            "('d', 'r', 'done', 1, 'default', 1, " + tx.quote(payload + "}") + ", 'done', 'tok', 'w', now(), " + result + ")");
    tx.commit();
  }
  auto q = dag::open_task_queue(s.url);
  auto rows = [&](const std::string& sql) {
    pqxx::connection c(s.url);
    pqxx::work tx(c);
    return tx.exec1(sql)[0].as<std::int64_t>();
  };
  CHECK(rows("SELECT format FROM dagrun_task_queue_format") == 3);
  CHECK(rows("SELECT count(*) FROM pg_attribute WHERE attrelid = 'dagrun_task_queue'::regclass AND attname = 'payload' "
             "AND NOT attisdropped") == 0);
  CHECK(rows("SELECT count(*) FROM dagrun_task_queue_payload") == 3);  // the ended try's is not needed
  // A format-2 worker still running ends the try it holds as it did, leaving its payload.
  {
    pqxx::connection c(s.url);
    pqxx::work tx(c);
    const std::string result = R"({"outcome":0,"message":"old","exit_code":0,"started":0,"ended":0,"pid":0,"hostname":"h"})";
    CHECK(tx.exec("UPDATE dagrun_task_queue q SET state = 'done', result = v.result FROM (VALUES ((SELECT id FROM "
                  "dagrun_task_queue WHERE task_id = 'held'), 'tok2', " + tx.quote(result) + ")) AS v(id, token, result) "
                  "WHERE q.id = v.id AND q.lease_token = v.token AND q.state = 'claimed' RETURNING q.id").size() == 1);
    tx.commit();
  }
  CHECK(rows("SELECT count(*) FROM dagrun_task_queue_payload") == 3);
  // The lost try's end still names its poke, read from the payload handed over.
  const auto lost = q->expire_leases(0ms);
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].item.task_id == "claimed");
  CHECK(lost[0].outcome.instance_start == dag::timestamp{std::chrono::microseconds(1'700'000'000'123'456)});
  // The queued try reaches a worker whole.
  const auto claimed = q->claim({"default"}, 10, "w");
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].task_id == "queued");
  CHECK(claimed[0].operator_name == "bash");
  CHECK(claimed[0].fields == std::map<std::string, std::string>{{"bash_command", "echo upgraded"}});
  CHECK(claimed[0].environment.at("DAGRUN_X") == "1");
  CHECK(claimed[0].log_path == "/tmp/l.log");
  CHECK(q->complete({succeeded(claimed[0])}) == std::vector<bool>{true});
  // A payload lives until its try's end: only the one the old worker left is there.
  CHECK(rows("SELECT count(*) FROM dagrun_task_queue_payload") == 1);
  std::set<std::string> ended;
  std::vector<std::int64_t> ids;
  for (const auto& f : q->take_finished(10, 0ms)) ended.insert(f.item.task_id), ids.push_back(f.item.id);
  CHECK(ended == std::set<std::string>{"queued", "claimed", "held", "done"});
  q->acknowledge(ids);  // and its end's acknowledgement deletes that one too
  CHECK(rows("SELECT count(*) FROM dagrun_task_queue") == 0);
  CHECK(rows("SELECT count(*) FROM dagrun_task_queue_payload") == 0);
  // A format-2 worker's claim and a format-2 scheduler's enqueue name the column no longer there:
  // refused, loudly, and the try queued meanwhile stays queued.
  q->enqueue({bash_try("later")});
  pqxx::connection c(s.url);
  {
    pqxx::work tx(c);
    CHECK_THROWS_AS(tx.exec("WITH c AS (SELECT id FROM dagrun_task_queue WHERE state = 'queued' LIMIT 1 FOR UPDATE SKIP LOCKED) "
                            "UPDATE dagrun_task_queue q SET state = 'claimed', lease_token = 't', worker = 'old', "
                            "heartbeat_at = now() FROM c WHERE q.id = c.id RETURNING q.id, q.payload"),
                    pqxx::undefined_column);
  }
  {
    pqxx::work tx(c);
    CHECK_THROWS_AS(tx.exec("INSERT INTO dagrun_task_queue (dag_id, run_id, task_id, try_number, map_index, queue, priority, "
                            "payload) VALUES ('d', 'r', 'old', 1, -1, 'default', 1, '{}')"),
                    pqxx::undefined_column);
  }
  CHECK(q->counts() == std::pair<std::int64_t, std::int64_t>{1, 0});
}

TEST_CASE("Queue.ATryNamedTwiceIsQueuedOnceAsFirstNamedAndAnotherSchedulersCopyChangesNothing") {
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  auto first = bash_try("a");
  first.priority = 5;
  first.fields["bash_command"] = "echo first";
  auto second = bash_try("a");
  second.priority = 1;
  second.fields["bash_command"] = "echo second";
  q->enqueue({first, second, bash_try("b")});
  q->enqueue({second});  // another scheduler queues the same try
  auto claimed = q->claim({"default"}, 10, "w");
  REQUIRE(claimed.size() == 2);
  std::sort(claimed.begin(), claimed.end(), [](const auto& x, const auto& y) { return x.task_id < y.task_id; });
  CHECK(claimed[0].task_id == "a");
  CHECK(claimed[0].priority == 5);  // its priority is the first one's…
  CHECK(claimed[0].fields.at("bash_command") == "echo first");  // …and so is its payload
  pqxx::connection c(s.url);
  pqxx::work tx(c);
  CHECK(tx.exec1("SELECT count(*) FROM dagrun_task_queue_payload")[0].as<int>() == 2);
}

TEST_CASE("Queue.AnOlderQueueIsUpgradedOnceACurrentOneIsLeftAloneAndANewerOneRefused") {
  queue_sandbox s;
  // The queue table as a dagrun before mapped tasks made it: no map index, the old key, a try queued.
  {
    pqxx::connection c(s.url);
    pqxx::work tx(c);
    tx.exec("CREATE TABLE dagrun_task_queue (id BIGSERIAL PRIMARY KEY, dag_id TEXT NOT NULL, run_id TEXT NOT NULL, "
            "task_id TEXT NOT NULL, try_number INT NOT NULL, queue TEXT NOT NULL, priority INT NOT NULL, payload TEXT NOT NULL, "
            "state TEXT NOT NULL DEFAULT 'queued', lease_token TEXT, worker TEXT, heartbeat_at TIMESTAMPTZ, result TEXT, "
            "enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now(), UNIQUE (dag_id, run_id, task_id, try_number))");
    tx.exec("INSERT INTO dagrun_task_queue (dag_id, run_id, task_id, try_number, queue, priority, payload) "
            "VALUES ('d', 'r', 'each', 1, 'default', 1, '{}')");
    tx.commit();
  }
  auto q = dag::open_task_queue(s.url);
  // Upgraded: the old row is the unmapped instance's, and instances of the same task queue beside it.
  std::vector<dag::queued_try> mapped;
  for (int k = 0; k < 2; ++k) {
    mapped.push_back(bash_try("each"));
    mapped.back().map_index = k;
  }
  q->enqueue(mapped);
  CHECK(q->counts().first == 3);

  // A start that finds the queue current changes nothing, so it waits on nobody: here a
  // scheduler's enqueue still in flight (its lock on the table), which statements changing the
  // table would wait for (the lock timeout makes such a wait an error instead of a hang).
  {
    pqxx::connection c(s.url);
    pqxx::work in_flight(c);
    in_flight.exec("LOCK TABLE dagrun_task_queue IN ROW EXCLUSIVE MODE");
    std::unique_ptr<dag::task_queue> again;
    CHECK_NOTHROW(again = dag::open_task_queue(s.url + "?options=-c%20lock_timeout%3D2000"));
  }

  // A queue a newer dagrun changed is refused, saying so, before anything is read or written.
  {
    pqxx::connection c(s.url);
    pqxx::work tx(c);
    tx.exec("UPDATE dagrun_task_queue_format SET format = format + 1");
    tx.commit();
  }
  try {
    dag::open_task_queue(s.url);
    FAIL("a queue of a newer format was opened");
  } catch (const dag::error& e) {
    CHECK_MESSAGE(std::string(e.what()).find("is newer than this dagrun's") != std::string::npos, e.what());
    CHECK_MESSAGE(std::string(e.what()).find("upgraded together") != std::string::npos, e.what());
  }
}

TEST_CASE("Queue.UrlsMayUseEverySchemeSpellingAndLibpqParameters") {
  queue_sandbox s;
  const std::string rest = s.url.substr(s.url.find("://"));
  dag::open_task_queue("postgres" + rest)->enqueue({bash_try("a")});
  CHECK(dag::open_task_queue("postgresql+psycopg2" + rest)->counts().first == 1);
  // The store's URL reader is the queue's: libpq's query parameters work (here the database).
  const std::string by_parameter = s.server + (s.server.find('?') == std::string::npos ? "?" : "&") + "dbname=" + s.db_name;
  CHECK(dag::open_task_queue(by_parameter)->counts().first == 1);
}

TEST_CASE("Queue.ReconnectsAfterTheServerKillsItsSession") {
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  q->enqueue({bash_try("a")});
  const std::string sessions = " FROM pg_stat_activity WHERE datname = '" + s.db_name +
                               "' AND backend_type = 'client backend' AND pid <> pg_backend_pid()";
  const auto count = [&] {
    pqxx::connection c(s.server);
    pqxx::nontransaction tx(c);
    return tx.exec1("SELECT count(*)" + sessions)[0].as<int>();
  };
  REQUIRE(count() == 1);
  s.admin("SELECT pg_terminate_backend(pid)" + sessions);  // as an administrator or a failover would
  REQUIRE(eventually([&] { return count() == 0; }));
  const auto claimed = q->claim({"default"}, 10, "w");
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].task_id == "a");
  CHECK(count() == 1);  // still one connection per queue object
}

TEST_CASE("Queue.AResultIsCommittedWithoutWaitingForTheDiskKeptUntilADurableCommitAndWrittenAgainIfItsSessionEnds") {
  // A completion's COMMIT does not wait for the disk: a crash of the server may undo it. The queue
  // keeps the results until `confirm` has made a durable commit on their session, and writes again
  // those of a session that ended first (as a crash ends every session), whose loss is emulated
  // here by putting the row back as the crash would have left it.
  queue_sandbox s;
  s.admin("ALTER DATABASE " + s.db_name + " SET synchronous_commit = on");  // the tests' server has it off
  auto q = dag::open_task_queue(s.url);
  pqxx::connection c(s.url);
  const auto exec = [&](const std::string& sql) {
    pqxx::nontransaction tx(c);
    return tx.exec(sql);
  };
  exec("CREATE TABLE ended (id bigint, sync text)");
  exec("CREATE TABLE marked (sync text)");
  exec("CREATE FUNCTION note_end() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
       "INSERT INTO ended VALUES (NEW.id, current_setting('synchronous_commit')); RETURN NEW; END $$");
  exec("CREATE TRIGGER note_end AFTER UPDATE ON dagrun_task_queue FOR EACH ROW "
       "WHEN (OLD.state = 'claimed' AND NEW.state = 'done') EXECUTE FUNCTION note_end()");
  exec("CREATE SEQUENCE updates");  // UPDATE statements on the queue, whether they changed a row or not
  exec("CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
       "PERFORM nextval('updates'); RETURN NULL; END $$");
  exec("CREATE TRIGGER count_update AFTER UPDATE ON dagrun_task_queue FOR EACH STATEMENT EXECUTE FUNCTION count_update()");
  const auto updates = [&] { return exec("SELECT last_value - 1 + is_called::int FROM updates")[0][0].as<int>(); };
  exec("CREATE FUNCTION note_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
       "INSERT INTO marked VALUES (current_setting('synchronous_commit')); RETURN NEW; END $$");
  exec("CREATE TRIGGER note_mark AFTER INSERT OR UPDATE ON dagrun_commit_marks FOR EACH ROW EXECUTE FUNCTION note_mark()");
  const auto ends_of = [&](std::int64_t id) {
    std::vector<std::string> out;
    for (const auto& row : exec("SELECT sync FROM ended WHERE id = " + std::to_string(id))) out.push_back(row[0].c_str());
    return out;
  };
  const auto durable_marks = [&] { return exec("SELECT count(*) FROM marked WHERE sync = 'on'")[0][0].as<int>(); };
  const auto state_of = [&](std::int64_t id) {
    return std::string(exec("SELECT state FROM dagrun_task_queue WHERE id = " + std::to_string(id))[0][0].c_str());
  };
  const auto end_queue_sessions = [&] {  // as a crash, a restart or a failover would
    exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + s.db_name +
         "' AND application_name = 'dagrun-queue'");
    REQUIRE(eventually([&] {
      return exec("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + s.db_name +
                  "' AND application_name = 'dagrun-queue'")[0][0].as<int>() == 0;
    }));
  };

  q->enqueue({bash_try("a"), bash_try("b"), bash_try("c")});
  const auto claimed = q->claim({"default"}, 10, "w");
  REQUIRE(claimed.size() == 3);
  CHECK(q->unflushed() == 0);

  // Committed without waiting for the disk, kept until a durable commit confirms it.
  REQUIRE(q->complete({succeeded(claimed[0])}) == std::vector<bool>{true});
  CHECK(ends_of(claimed[0].id) == std::vector<std::string>{"off"});
  CHECK(q->unflushed() == 1);
  const int marks_before = durable_marks();
  q->confirm();
  CHECK(q->unflushed() == 0);
  CHECK(durable_marks() == marks_before + 1);  // the confirmation: a durable commit
  q->confirm();  // nothing to confirm: no transaction
  CHECK(durable_marks() == marks_before + 1);

  // Its session ends before it is confirmed, and the server has lost it: written again.
  REQUIRE(q->complete({succeeded(claimed[1])}) == std::vector<bool>{true});
  CHECK(q->unflushed() == 1);
  exec("UPDATE dagrun_task_queue SET state = 'claimed', result = NULL WHERE id = " + std::to_string(claimed[1].id));
  end_queue_sessions();
  q->confirm();
  CHECK(q->unflushed() == 0);
  CHECK(state_of(claimed[1].id) == "done");
  CHECK(ends_of(claimed[1].id) == std::vector<std::string>{"off", "off"});
  CHECK(exec("SELECT result IS NOT NULL FROM dagrun_task_queue WHERE id = " + std::to_string(claimed[1].id))[0][0].as<bool>());

  // Its session ends before it is confirmed, and the server kept it: written again, refused, no change.
  REQUIRE(q->complete({succeeded(claimed[2])}) == std::vector<bool>{true});
  end_queue_sessions();
  // The next call finds the session ended and writes it again: here the next completion (of a
  // result already in, refused), which writes it again once its own write has found out.
  const int updates_before = updates();
  CHECK(q->complete({succeeded(claimed[0])}) == std::vector<bool>{false});
  CHECK(updates() == updates_before + 2);  // that completion, then the one written again
  CHECK(ends_of(claimed[2].id) == std::vector<std::string>{"off"});
  CHECK(state_of(claimed[2].id) == "done");
  CHECK(q->unflushed() == 2);  // the one written again, and the refused one
  q->confirm();
  CHECK(q->unflushed() == 0);
  CHECK(updates() == updates_before + 2);  // nothing written a third time
  CHECK(q->take_finished(10, 60s).size() == 3);
}

TEST_CASE("Queue.RescheduledSensorGivesTheWorkerSlotBackAndFinishesAsOneTry" * doctest::timeout(180)) {
  queue_sandbox s;
  const auto flags = s.dir / "flags.db";
  SQLite::Database(flags.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE).exec("CREATE TABLE flags(ready INTEGER)");
  s.write_dag("sensing.yaml",
              "dag_id: sensing\ntasks:\n"
              "  - task_id: wait\n    operator: sql_sensor\n    conn_id: flags\n    mode: reschedule\n"
              "    poke_interval: 1s\n    timeout: 1h\n    priority_weight: 10\n"
              "    sql: SELECT count(*) FROM flags WHERE ready = 1\n"
              "  - task_id: other\n    operator: bash\n    bash_command: 'echo pass {{ conn.vault.password }}'\n");
  REQUIRE(s.dagrun("db migrate") == 0);
  REQUIRE(s.dagrun("trigger sensing --date 2024-01-01") == 0);
  const std::string conn = "DAGRUN_CONN_FLAGS=sqlite://" + flags.string() + " ";
  // The scheduler renders the password; the worker must still mask it in the try's log.
  s.start("schedule --executor queue", "scheduler.log", "DAGRUN_CONN_VAULT=postgresql://u:vault-pass-123@h/db ");
  // One slot: `other` can only run while the sensor waits between pokes without holding it.
  s.start("worker --concurrency 1", "worker.log", conn);
  auto db = s.store();
  auto state_of = [&](const std::string& task) {
    for (const auto& ti : db->task_instances("sensing", run_id))
      if (ti.task_id == task) return ti.state;
    return dag::task_state::none;
  };
  REQUIRE(eventually([&] { return state_of("other") == dag::task_state::success; }));
  CHECK_FALSE(dag::is_finished(state_of("wait")));
  REQUIRE(eventually([&] { return state_of("wait") == dag::task_state::up_for_reschedule; }));
  SQLite::Database(flags.string(), SQLite::OPEN_READWRITE).exec("INSERT INTO flags VALUES (1)");
  REQUIRE(eventually([&] { return run_finished(*db, "sensing", run_id, dag::run_state::success); }));
  const auto tries = db->tries("sensing", run_id, "wait");
  REQUIRE(tries.size() == 1);  // every poke was the one try
  CHECK(tries[0].try_number == 1);
  CHECK(tries[0].state == dag::task_state::success);
  std::ifstream log(tries[0].log_path);
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  CHECK(text.find(": not yet") != std::string::npos);
  CHECK(text.find("sensor condition met on poke after") != std::string::npos);
  for (const auto& ti : db->task_instances("sensing", run_id)) {
    if (ti.task_id != "other") continue;
    std::ifstream other_log(ti.log_path);
    CHECK(std::string((std::istreambuf_iterator<char>(other_log)), {}) == "pass ***\n");
  }
}

TEST_CASE("Queue.ClaimsRespectNamedQueuesAndPriority") {
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  std::vector<dag::queued_try> tries;
  for (int i = 0; i < 4; ++i) {
    dag::queued_try t;
    t.dag_id = "d";
    t.run_id = "r";
    t.task_id = "t" + std::to_string(i);
    t.queue = i == 3 ? "gpu" : "default";
    t.priority = i;
    t.operator_name = "bash";
    tries.push_back(t);
  }
  q->enqueue(tries);
  auto first = q->claim({"default"}, 2, "w");
  REQUIRE(first.size() == 2);
  CHECK(first[0].task_id == "t2");  // highest priority first
  CHECK(first[1].task_id == "t1");
  auto gpu = q->claim({"gpu"}, 5, "w");
  REQUIRE(gpu.size() == 1);
  CHECK(gpu[0].task_id == "t3");
}

TEST_CASE("Queue.QueuedTriesAndEndsWakeTheirWaitersAndABatchIsClaimedInItsOrder" * doctest::timeout(60)) {
  // The statements that queue and end tries raise the notices themselves (no NOTIFY of their
  // own), alone or in a batch; a batch of one priority is claimed in the order it was sent.
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  auto worker = dag::open_task_queue(s.url);
  auto collector = dag::open_task_queue(s.url);
  CHECK_FALSE(worker->wait("queued", 0ms));  // listening from now on
  CHECK_FALSE(collector->wait("finished", 0ms));
  q->enqueue({bash_try("t2"), bash_try("t0"), bash_try("t1")});
  CHECK(worker->wait("queued", 10s));
  std::vector<dag::queued_try> claimed;
  for (int i = 0; i < 3; ++i) {
    auto one = q->claim({"default"}, 1, "w");
    REQUIRE(one.size() == 1);
    claimed.push_back(one.front());
  }
  CHECK(claimed[0].task_id == "t2");
  CHECK(claimed[1].task_id == "t0");
  CHECK(claimed[2].task_id == "t1");
  q->enqueue({bash_try("t3")});
  CHECK(worker->wait("queued", 10s));
  q->enqueue({bash_try("t3")});  // queued already: no row made, no one woken
  CHECK_FALSE(worker->wait("queued", 200ms));
  CHECK(q->complete({succeeded(claimed[0])}) == std::vector<bool>{true});
  CHECK(collector->wait("finished", 10s));
  CHECK(q->complete({succeeded(claimed[1]), succeeded(claimed[2])}) == std::vector<bool>{true, true});
  CHECK(collector->wait("finished", 10s));
  CHECK(q->take_finished(10, 60s).size() == 3);
}

TEST_CASE("Queue.TextPostgresCannotHoldIsQueuedAsTheStoreHoldsItAloneOrInABatch") {
  // A NUL byte or one that starts no UTF-8 sequence becomes U+FFFD (pg_text), as in the store,
  // whether the try goes alone or in a batch: the server would refuse the raw bytes.
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  const std::string raw = std::string("r\0x", 3) + "\xff";
  const std::string held = "r\uFFFDx\uFFFD";
  for (const std::size_t batch : {std::size_t{1}, std::size_t{2}}) {
    CAPTURE(batch);
    std::vector<dag::queued_try> tries;
    for (std::size_t i = 0; i < batch; ++i) {
      tries.push_back(bash_try("t" + std::to_string(batch) + "_" + std::to_string(i)));
      tries.back().run_id = raw;
    }
    q->enqueue(tries);
    const auto claimed = q->claim({"default"}, 10, "w");
    REQUIRE(claimed.size() == batch);
    for (const auto& c : claimed) CHECK(c.run_id == held);
  }
}

TEST_CASE("Queue.TwoSchedulersOverACatchupCreateAndRunEverythingOnce" * doctest::timeout(180)) {
  queue_sandbox s;
  s.write_dag("daily.yaml", "dag_id: daily\nschedule: \"@daily\"\nstart_date: 2024-01-01\nend_date: 2024-01-20\n"
                            "max_active_runs: 40\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: echo {{ ds }}-a >> " +
                                (s.dir / "ran.txt").string() + "\n  - task_id: b\n    operator: bash\n    bash_command: echo {{ ds }}-b >> " +
                                (s.dir / "ran.txt").string() + "\n    dependencies: [a]\n");
  REQUIRE(s.dagrun("db migrate") == 0);
  s.start("schedule --executor queue", "scheduler1.log");
  s.start("schedule --executor queue", "scheduler2.log");
  s.start("worker --concurrency 4", "worker.log");
  auto db = s.store();
  dag::run_filter all;
  all.dag_id = "daily";
  REQUIRE(eventually([&] {
    auto runs = db->runs(all);
    return runs.size() == 20 && std::all_of(runs.begin(), runs.end(), [](auto& r) { return r.state == dag::run_state::success; });
  }));
  CHECK(db->runs(all).size() == 20);
  auto ran = s.lines("ran.txt");
  CHECK(ran.size() == 40);
  CHECK(std::set<std::string>(ran.begin(), ran.end()).size() == 40);
}

TEST_CASE("Queue.ALeaseExpiresOnlyOnceARestartedServerWasUpForItAndAWorkersLongestPause" * doctest::timeout(120)) {
  // After a restart a worker may notice the server back only at its next attempt to reach it, up
  // to 2 s (its longest pause between attempts) after the start, and renews from there: a server
  // up for a lease is not enough to judge a claim lost. (It was: a worker that paused that long had
  // its try failed as lost after an outage.)
  private_server server;
  queue_sandbox s;
  auto q = dag::open_task_queue(s.url);
  q->enqueue({bash_try("a")});
  REQUIRE(q->claim({"default"}, 10, "w").size() == 1);
  server.crash();
  server.start();
  pqxx::connection c(s.url);
  const auto up_ms = [&] {
    pqxx::nontransaction tx(c);
    return tx.exec1("SELECT extract(epoch FROM now() - pg_postmaster_start_time()) * 1000")[0].as<double>();
  };
  constexpr auto lease = 3000ms;
  REQUIRE(eventually([&] { return up_ms() > 3200; }, 30s));  // up for more than a lease
  const auto lost = q->expire_leases(lease);
  if (up_ms() < 4900) CHECK(lost.empty());  // and less than a lease and the pause
  else MESSAGE("the machine was too slow to look within the pause: not checked");
  REQUIRE(eventually([&] { return q->expire_leases(lease).size() == 1; }, 30s));  // then it is lost
  CHECK(up_ms() >= 5000);
}

TEST_CASE("Queue.PostgresRestartMidRunEveryProcessReconnects" * doctest::timeout(240)) {
  private_server server;
  queue_sandbox s;
  const auto marker = s.dir / "step3.started";
  std::string dag = "dag_id: chain\ntasks:\n";
  for (int i = 0; i < 6; ++i) {
    dag += "  - task_id: t" + std::to_string(i) + "\n    operator: bash\n";
    dag += i == 3 ? "    bash_command: 'touch " + marker.string() + "; sleep 3'\n" : "    bash_command: 'true'\n";
    if (i > 0) dag += "    dependencies: [t" + std::to_string(i - 1) + "]\n";
  }
  s.write_dag("chain.yaml", dag);
  REQUIRE(s.dagrun("db migrate") == 0);
  REQUIRE(s.dagrun("trigger chain --date 2024-01-01") == 0);
  s.start("schedule --executor queue", "scheduler.log");
  s.start("worker --concurrency 2", "worker.log");
  REQUIRE(eventually([&] { return std::filesystem::exists(marker); }));
  server.stop();
  server.start();
  auto db = s.store();
  REQUIRE(eventually([&] { return run_finished(*db, "chain", run_id, dag::run_state::success); }, 120s));
  for (const auto& ti : db->task_instances("chain", run_id)) CHECK(ti.state == dag::task_state::success);
}

TEST_CASE("Queue.DatabaseCrashesAndAnOutageLongerThanTheLeaseLoseNoResultAndRunNothingTwice" * doctest::timeout(300)) {
  // 20 runs of a three-task chain without retries over two workers; the server crashes twice
  // while tries run, and the second time stays down for more than twice the lease. Every try
  // must run once (each appends a line) and every run succeed: no result lost ("executor lost",
  // "worker lost"), none recorded twice, nothing run again.
  private_server server;
  queue_sandbox s;
  const std::string ran = (s.dir / "ran.txt").string();
  std::string dag = "dag_id: chain\nschedule: \"@daily\"\nstart_date: 2024-01-01\nend_date: 2024-01-20\n"
                    "max_active_runs: 20\ntasks:\n";
  for (const std::string t : {"a", "b", "c"}) {
    dag += "  - task_id: " + t + "\n    operator: bash\n    retries: 0\n"
           "    bash_command: 'echo {{ ds }}-" + t + "-$DAGRUN_TRY_NUMBER >> " + ran + "; sleep 0.4'\n";
    if (t != "a") dag += std::string("    dependencies: [") + (t == "b" ? "a" : "b") + "]\n";
  }
  s.write_dag("chain.yaml", dag);
  REQUIRE(s.dagrun("db migrate") == 0);
  const std::string lease = " --lease-ms 2000";
  s.start("schedule --executor queue" + lease, "scheduler.log");
  s.start("worker --concurrency 2" + lease, "worker1.log");
  s.start("worker --concurrency 2" + lease, "worker2.log");
  auto lines = [&] { return s.lines("ran.txt").size(); };

  REQUIRE(eventually([&] { return lines() >= 10; }));
  server.crash();
  server.start();
  REQUIRE(eventually([&] { return lines() >= 30; }));
  server.crash();
  // Down for longer than the lease (not a wait for anything: the outage is what is tested).
  std::this_thread::sleep_for(5s);
  server.start();

  auto db = s.store();
  dag::run_filter all;
  all.dag_id = "chain";
  const bool done = eventually([&] {
    auto runs = db->runs(all);
    return runs.size() == 20 && std::all_of(runs.begin(), runs.end(), [](auto& r) { return dag::is_finished(r.state); });
  }, 180s);
  REQUIRE(done);
  for (const auto& run : db->runs(all)) {
    CHECK_MESSAGE(run.state == dag::run_state::success, run.run_id);
    for (const auto& ti : db->task_instances("chain", run.run_id)) {
      CHECK_MESSAGE(ti.state == dag::task_state::success, run.run_id, " ", ti.task_id, ": ", ti.message);
      CHECK(ti.try_number == 1);
    }
  }
  auto executed = s.lines("ran.txt");
  CHECK(executed.size() == 60);
  CHECK(std::set<std::string>(executed.begin(), executed.end()).size() == 60);
}

TEST_CASE("Daemon.LocalTriesEndingDuringAnOutageAreSpooledAndRecordedOnceAfterARestart" * doctest::timeout(300)) {
  // The local executor: a try ends while PostgreSQL is down, and the scheduler is stopped before
  // the server is back. Its end, spooled to disk, is recorded by the next scheduler: the try
  // succeeded once, never "executor lost", and its task ran once (it appends a line each time).
  private_server server;
  queue_sandbox s;
  const std::string dir = s.dir.string();
  s.write_dag("held.yaml", "dag_id: held\ntasks:\n"
                           "  - task_id: a\n    operator: bash\n    retries: 2\n    retry_delay: 1s\n"
                           "    bash_command: 'echo ran >> " + dir + "/ran.txt; touch " + dir + "/a.started; "
                           "while [ ! -e " + dir + "/a.go ]; do sleep 0.05; done'\n"
                           "  - task_id: b\n    operator: bash\n    bash_command: 'echo ran >> " + dir + "/b.txt'\n"
                           "    dependencies: [a]\n");
  REQUIRE(s.dagrun("db migrate") == 0);
  REQUIRE(s.dagrun("trigger held --date 2024-01-01") == 0);
  const auto spool = s.dir / "logs" / ".unrecorded";
  auto spooled = [&] {
    std::size_t n = 0;
    std::error_code ec;
    for (std::filesystem::recursive_directory_iterator it(spool, ec), end; !ec && it != end; it.increment(ec))
      if (it->path().extension() == ".end") ++n;
    return n;
  };
  {
    dag::child_process& scheduler = s.start("schedule --parallelism 2", "scheduler1.log");
    REQUIRE(eventually([&] { return std::filesystem::exists(s.dir / "a.started"); }));
    server.stop();
    std::ofstream(s.dir / "a.go").flush();
    // The pass holding a's end fails once the store's retries give up (30 s): the end is spooled.
    CHECK(eventually([&] { return spooled() == 1; }, 90s));  // (not REQUIRE: the server must come back)
    ::kill(scheduler.pid(), SIGTERM);
    const auto stopped = scheduler.wait();
    CHECK(stopped.exit_code == 1);  // it could not record every end, and says so
    s.processes.pop_back();         // reaped: its id is no longer its own to signal
  }
  CHECK(spooled() == 1);
  server.start();
  s.start("schedule --parallelism 2", "scheduler2.log");
  auto db = s.store();
  REQUIRE(eventually([&] { return run_finished(*db, "held", run_id, dag::run_state::success); }, 60s));
  const auto tries = db->tries("held", run_id, "a");
  REQUIRE(tries.size() == 1);
  CHECK(tries[0].state == dag::task_state::success);
  CHECK(tries[0].message.find("lost") == std::string::npos);
  CHECK(s.lines("ran.txt").size() == 1);  // a ran once
  CHECK(s.lines("b.txt").size() == 1);
  CHECK(eventually([&] { return spooled() == 0; }));  // forgotten once recorded
}

TEST_CASE("Queue.AWorkerTheServerRefusesSaysSoAtOnceAndExitsNonZero" * doctest::timeout(60)) {
  // Refused for who it is (here an unknown role; a wrong password alike): no retrying for 30 s.
  queue_sandbox s;
  const std::string refused = "postgresql://no_such_role@" + s.url.substr(s.url.find('@') + 1);
  dag::process_spec p;
  p.command = std::string(DAGRUN_BINARY) + " worker --dags " + (s.dir / "dags").string() + " --db " + refused;
  p.log_file = s.dir / "worker.log";
  const auto began = std::chrono::steady_clock::now();
  const auto ended = dag::child_process::start(p).wait();
  CHECK(ended.exit_code != 0);
  CHECK(std::chrono::steady_clock::now() - began < 10s);
  const auto log = s.lines("worker.log");
  std::string text;
  for (const auto& l : log) text += l + "\n";
  CHECK(text.find("cannot connect") != std::string::npos);
  CHECK(text.find("role \"no_such_role\" does not exist") != std::string::npos);
}
