// `dagrun schedule` as a real process: kill -9 and restart, SIGTERM drain, broken DAG files.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <dag/exec/child_process.hpp>
#include <dag/exec/orphan_processes.hpp>

#include "support/eventually.hpp"
#include "support/http_client.hpp"
#include <dag/store/store.hpp>

using namespace std::chrono_literals;

using dag_test::eventually;

namespace {

struct daemon_sandbox {
  std::filesystem::path dir;
  daemon_sandbox() {
    static int n = 0;
    dir = std::filesystem::temp_directory_path() / ("dagrun-daemon-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "dags");
  }
  ~daemon_sandbox() { std::filesystem::remove_all(dir); }

  std::string flags() const {
    return " --dags " + (dir / "dags").string() + " --db sqlite:" + (dir / "dagrun.db").string() + " --logs " +
           (dir / "logs").string();
  }
  void write_dag(const std::string& name, const std::string& text) const {
    const auto tmp = dir / (name + ".tmp");
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, dir / "dags" / name);  // atomic: the daemon never reads half a file
  }
  // Runs a dagrun command to its end; returns its exit status.
  int dagrun(const std::string& args) const {
    dag::process_spec p;
    p.command = std::string(DAGRUN_BINARY) + " " + args + flags();
    p.log_file = dir / "cli.log";
    return dag::child_process::start(p).wait().exit_code;
  }
  dag::child_process start_daemon(const std::string& extra = "") const {
    dag::process_spec p;
    // Port 0: any free port, so daemons of tests running at once do not collide.
    p.command = "exec " + std::string(DAGRUN_BINARY) + " schedule --parallelism 4 --listen 127.0.0.1:0" + extra + flags();
    p.log_file = dir / "daemon.log";
    return dag::child_process::start(p);
  }
  std::unique_ptr<dag::store> store() const { return dag::open_store("sqlite:" + (dir / "dagrun.db").string()); }
  std::string daemon_log() const {
    std::ifstream in(dir / "daemon.log");
    return {std::istreambuf_iterator<char>(in), {}};
  }
  // The port the daemon says it listens on (it was given port 0), once it says so.
  unsigned short http_port() const {
    unsigned short port = 0;
    REQUIRE(eventually([&] {
      const std::string log = daemon_log();
      const auto at = log.find("serving HTTP on 127.0.0.1:");
      if (at == std::string::npos) return false;
      port = static_cast<unsigned short>(std::stoi(log.substr(at + 26)));
      return true;
    }));
    return port;
  }
};

std::optional<dag::task_instance_record> instance(dag::store& s, const std::string& dag_id, const std::string& run_id,
                                                  const std::string& task_id) {
  for (auto& ti : s.task_instances(dag_id, run_id))
    if (ti.task_id == task_id) return ti;
  return std::nullopt;
}

const std::string run_id = "manual__2024-01-01T00:00:00+00:00";

}  // namespace

TEST_CASE("Daemon.KillNineMidTaskThenRestartRetriesTheLostTry" * doctest::timeout(120)) {
  daemon_sandbox s;
  // A temporary folder of its own: other tests' dagrun processes remove dead owners' XCom files too.
  const std::filesystem::path tmp = s.dir / "tmp";
  std::filesystem::create_directories(tmp);
  const char* const tmpdir_before = std::getenv("TMPDIR");
  const std::string kept_tmpdir = tmpdir_before ? tmpdir_before : "";
  ::setenv("TMPDIR", tmp.c_str(), 1);
  struct restore_tmpdir {
    bool had;
    std::string value;
    ~restore_tmpdir() { had ? ::setenv("TMPDIR", value.c_str(), 1) : ::unsetenv("TMPDIR"); }
  } restore{tmpdir_before != nullptr, kept_tmpdir};
  const auto pidfile = s.dir / "first_try.pid";
  s.write_dag("slow.yaml", "dag_id: slow\ntasks:\n  - task_id: a\n    operator: bash\n    retries: 1\n    retry_delay: 1s\n"
                           "    bash_command: 'if [ \"$DAGRUN_TRY_NUMBER\" = 1 ]; then echo k=v >> \"$DAGRUN_XCOM_FILE\"; echo $$ > " + pidfile.string() +
                           "; sleep 600; fi; echo finished'\n");
  REQUIRE(s.dagrun("trigger slow --date 2024-01-01") == 0);
  // The XCom folder of the first daemon (`dagrun-xcom-BOOT-NS-PID-…`, PID the daemon's), which its
  // killed try pushed into: not empty.
  pid_t first_daemon = 0;
  const auto xcom_files_of_first_daemon = [&] {
    int n = 0;
    const std::string owner = "-" + std::to_string(first_daemon) + "-";
    for (const auto& f : std::filesystem::directory_iterator(tmp)) {
      const std::string name = f.path().filename().string();
      if (name.starts_with("dagrun-xcom-") && name.find(owner) != std::string::npos) ++n;
    }
    return n;
  };
  {
    auto daemon = s.start_daemon();
    first_daemon = daemon.pid();
    REQUIRE(eventually([&] { return std::filesystem::exists(pidfile) && std::filesystem::file_size(pidfile) > 0; }));
    ::kill(daemon.pid(), SIGKILL);
    auto r = daemon.wait();
    CHECK(r.signal == SIGKILL);
  }
  CHECK(xcom_files_of_first_daemon() == 1);  // the killed daemon's, which nothing removed
  auto db = s.store();
  CHECK(instance(*db, "slow", run_id, "a")->state == dag::task_state::running);  // what the dead daemon left
  // The first try's shell outlived its daemon (it sleeps in its own process group).
  pid_t orphan = 0;
  std::ifstream(pidfile) >> orphan;
  REQUIRE(orphan > 0);
  CHECK(::kill(orphan, 0) == 0);

  auto daemon = s.start_daemon();
  // Recovery ends the orphan's whole group before the retry starts: nothing runs twice.
  // (It would sleep 10 minutes: gone within 30 s means it was ended.)
  CHECK(eventually([&] { return dag::process_ended(orphan); }, 30s));
  REQUIRE(eventually([&] {
    auto run = db->find_run("slow", run_id);
    return run && run->state == dag::run_state::success;
  }));
  auto ti = instance(*db, "slow", run_id, "a");
  CHECK(ti->try_number == 2);
  auto tries = db->tries("slow", run_id, "a");
  REQUIRE(tries.size() == 2);
  CHECK(tries[0].state == dag::task_state::up_for_retry);
  CHECK(tries[0].message.starts_with("executor lost"));
  CHECK(tries[1].state == dag::task_state::success);
  CHECK(xcom_files_of_first_daemon() == 0);  // the retry's process removed what the dead one left
  dag::run_filter all;
  all.dag_id = "slow";
  CHECK(db->runs(all).size() == 1);  // no duplicated run
  ::kill(daemon.pid(), SIGTERM);
  CHECK(daemon.wait().exit_code == 0);
}

TEST_CASE("Daemon.SigtermLetsRunningTasksFinish" * doctest::timeout(120)) {
  daemon_sandbox s;
  const auto started = s.dir / "started";
  const auto release = s.dir / "release";
  s.write_dag("drain.yaml", "dag_id: drain\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: 'touch " +
                                started.string() + "; while [ ! -e " + release.string() + " ]; do sleep 0.05; done; echo done'\n");
  REQUIRE(s.dagrun("trigger drain --date 2024-01-01") == 0);
  auto daemon = s.start_daemon();
  REQUIRE(eventually([&] { return std::filesystem::exists(started); }));
  ::kill(daemon.pid(), SIGTERM);
  REQUIRE(eventually([&] { return s.daemon_log().find("no new tries") != std::string::npos; }));
  std::ofstream(release) << "go";
  auto r = daemon.wait();
  CHECK(r.exit_code == 0);
  auto db = s.store();
  CHECK(instance(*db, "drain", run_id, "a")->state == dag::task_state::success);
  CHECK(db->find_run("drain", run_id)->state == dag::run_state::success);
}

TEST_CASE("Daemon.SigtermStopsTasksThatOutliveTheGracePeriod" * doctest::timeout(120)) {
  daemon_sandbox s;
  const auto started = s.dir / "started";
  s.write_dag("stuck.yaml", "dag_id: stuck\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: 'touch " +
                                started.string() + "; sleep 60'\n");
  REQUIRE(s.dagrun("trigger stuck --date 2024-01-01") == 0);
  auto daemon = s.start_daemon(" --grace 1");
  REQUIRE(eventually([&] { return std::filesystem::exists(started); }));
  ::kill(daemon.pid(), SIGTERM);
  CHECK(daemon.wait().exit_code == 0);
  auto db = s.store();
  auto ti = instance(*db, "stuck", run_id, "a");
  CHECK(ti->state == dag::task_state::failed);
  CHECK(ti->message.find("shutting down") != std::string::npos);
}

TEST_CASE("Daemon.BrokenDagBesideGoodOnesAndReloadOnChange" * doctest::timeout(120)) {
  daemon_sandbox s;
  s.write_dag("good.yaml", "dag_id: good\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: echo good\n");
  s.write_dag("later.yaml", "dag_id: later\ntasks:\n  - task_id: a\n    operator: bash\n    bash_comand: echo typo\n");
  REQUIRE(s.dagrun("trigger good --date 2024-01-01") == 0);
  auto daemon = s.start_daemon();
  auto db = s.store();
  REQUIRE(eventually([&] {
    auto run = db->find_run("good", run_id);
    return run && run->state == dag::run_state::success;
  }));
  auto errors = db->import_errors();
  REQUIRE(errors.size() == 2);  // the missing bash_command and the misspelt key
  CHECK(errors[1].message.find("later.yaml:5: task 'a': unknown field 'bash_comand'") != std::string::npos);

  // Fixing the file on disk is picked up without a restart.
  s.write_dag("later.yaml", "dag_id: later\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: echo fixed\n");
  REQUIRE(eventually([&] { return db->import_errors().empty(); }));
  REQUIRE(s.dagrun("trigger later --date 2024-01-01") == 0);
  REQUIRE(eventually([&] {
    auto run = db->find_run("later", run_id);
    return run && run->state == dag::run_state::success;
  }));
  ::kill(daemon.pid(), SIGTERM);
  CHECK(daemon.wait().exit_code == 0);
}

TEST_CASE("Daemon.AnEditedDagFileIsTheOnlyOneParsedAgain" * doctest::timeout(120)) {
  daemon_sandbox s;
  const auto dag_text = [](const std::string& id, const std::string& command) {
    return "dag_id: " + id + "\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: " + command + "\n";
  };
  for (const std::string id : {"one", "two", "three"}) s.write_dag(id + ".yaml", dag_text(id, "echo " + id));
  auto daemon = s.start_daemon();
  REQUIRE(eventually([&] { return s.daemon_log().find("scheduling 3 DAGs") != std::string::npos; }));
  s.write_dag("two.yaml", dag_text("two", "echo edited"));
  REQUIRE(eventually([&] { return s.daemon_log().find("reloaded DAGs: 3 loaded, 0 import errors (1 file read again)") != std::string::npos; }));
  // The edit counts: a run of it runs the new command.
  REQUIRE(s.dagrun("trigger two --date 2024-01-01") == 0);
  auto db = s.store();
  REQUIRE(eventually([&] {
    auto run = db->find_run("two", run_id);
    return run && run->state == dag::run_state::success;
  }));
  std::ifstream log(instance(*db, "two", run_id, "a")->log_path);
  CHECK(std::string(std::istreambuf_iterator<char>(log), {}).find("edited") != std::string::npos);
  ::kill(daemon.pid(), SIGTERM);
  CHECK(daemon.wait().exit_code == 0);
}

TEST_CASE("Daemon.ADagsFolderMadeAfterStartIsWatchedOnceItAppears" * doctest::timeout(120)) {
  // The daemon starts before its folder exists: it waits for it in the parent, then watches the
  // folder itself, so an edit inside it is told at once rather than at the next 10 s look.
  daemon_sandbox s;
  std::filesystem::remove_all(s.dir / "dags");
  auto daemon = s.start_daemon();
  REQUIRE(eventually([&] { return s.daemon_log().find("scheduling 0 DAGs") != std::string::npos; }));
  CHECK(s.daemon_log().find("watching DAGs folder") == std::string::npos);
  std::filesystem::create_directories(s.dir / "dags");
  REQUIRE(eventually([&] { return s.daemon_log().find("watching DAGs folder " + (s.dir / "dags").string()) != std::string::npos; }));
  s.write_dag("late.yaml", "dag_id: late\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: echo late\n");
  REQUIRE(eventually([&] { return s.daemon_log().find("reloaded DAGs: 1 loaded, 0 import errors") != std::string::npos; }));
  ::kill(daemon.pid(), SIGTERM);
  CHECK(daemon.wait().exit_code == 0);
}

TEST_CASE("Daemon.ServesHealthAndMetricsOverHttp" * doctest::timeout(120)) {
  daemon_sandbox s;
  s.write_dag("hello.yaml", "dag_id: hello\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: echo hi\n");
  REQUIRE(s.dagrun("trigger hello --date 2024-01-01") == 0);
  auto daemon = s.start_daemon();
  const unsigned short port = s.http_port();
  auto db = s.store();
  REQUIRE(eventually([&] {
    auto run = db->find_run("hello", run_id);
    return run && run->state == dag::run_state::success;
  }));
  auto health = dag_test::http_call(port, "GET", "/health");
  CHECK(health.status == 200);
  CHECK(health.body.find(R"("status":"healthy")") != std::string::npos);
  auto metrics = dag_test::http_call(port, "GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find(R"(dagrun_task_instance_finished_total{dag_id="hello",task_id="a",state="success"} 1)") !=
        std::string::npos);
  CHECK(metrics.body.find(R"(dagrun_dag_run_finished_total{dag_id="hello",state="success"} 1)") != std::string::npos);
  ::kill(daemon.pid(), SIGTERM);
  CHECK(daemon.wait().exit_code == 0);
}

TEST_CASE("Daemon.RefusesToListenBeyondLoopbackWithoutAToken") {
  daemon_sandbox s;
  dag::process_spec p;
  p.command = std::string(DAGRUN_BINARY) + " schedule --listen 0.0.0.0:0" + s.flags();
  p.environment = {{"DAGRUN_API_TOKEN", ""}};
  p.log_file = s.dir / "refused.log";
  CHECK(dag::child_process::start(p).wait().exit_code == 2);
  std::ifstream in(s.dir / "refused.log");
  const std::string log{std::istreambuf_iterator<char>(in), {}};
  CHECK(log.find("--listen 0.0.0.0:0: the API would accept changes from the network without a token") != std::string::npos);
}

TEST_CASE("Daemon.TriesEndingWhileTheirDagIsBrokenOrMissingAreRecordedAndTheRunWaits" * doctest::timeout(120)) {
  // A chain a → b → c whose tasks wait for a go file each. a ends while the DAG file is broken,
  // b while it is missing: both ends are recorded, the run waits (not failed, nothing started)
  // and carries on once the file is back.
  daemon_sandbox s;
  const std::string dir = s.dir.string();
  std::string dag = "dag_id: flaky\ntasks:\n";
  for (const std::string t : {"a", "b", "c"}) {
    dag += "  - task_id: " + t + "\n    operator: bash\n    bash_command: 'touch " + dir + "/$DAGRUN_TASK_ID.started; "
           "while [ ! -e " + dir + "/$DAGRUN_TASK_ID.go ]; do sleep 0.05; done'\n";
    if (t != "a") dag += std::string("    dependencies: [") + (t == "b" ? "a" : "b") + "]\n";
  }
  s.write_dag("flaky.yaml", dag);
  REQUIRE(s.dagrun("trigger flaky --date 2024-01-01") == 0);
  auto daemon = s.start_daemon();
  auto db = s.store();
  auto state = [&](const std::string& task) { return instance(*db, "flaky", run_id, task)->state; };
  auto reloads = [&] {
    const std::string log = s.daemon_log();
    std::size_t n = 0;
    for (auto at = log.find("reloaded DAGs"); at != std::string::npos; at = log.find("reloaded DAGs", at + 1)) ++n;
    return n;
  };
  auto waits = [&] {
    auto run = db->find_run("flaky", run_id);
    return run && run->state == dag::run_state::running;
  };

  REQUIRE(eventually([&] { return std::filesystem::exists(s.dir / "a.started"); }));
  s.write_dag("flaky.yaml", "dag_id: flaky\ntasks: [broken\n");
  REQUIRE(eventually([&] { return reloads() == 1; }));
  CHECK(db->import_errors().size() == 1);  // the broken file is shown
  std::ofstream(s.dir / "a.go").flush();
  REQUIRE(eventually([&] { return state("a") == dag::task_state::success; }));
  CHECK(waits());
  CHECK(state("b") == dag::task_state::none);

  s.write_dag("flaky.yaml", dag);
  REQUIRE(eventually([&] { return std::filesystem::exists(s.dir / "b.started"); }));
  std::filesystem::remove(s.dir / "dags" / "flaky.yaml");
  REQUIRE(eventually([&] { return reloads() == 3; }));
  std::ofstream(s.dir / "b.go").flush();
  REQUIRE(eventually([&] { return state("b") == dag::task_state::success; }));
  CHECK(waits());
  CHECK(state("c") == dag::task_state::none);

  s.write_dag("flaky.yaml", dag);
  std::ofstream(s.dir / "c.go").flush();
  REQUIRE(eventually([&] {
    auto run = db->find_run("flaky", run_id);
    return run && run->state == dag::run_state::success;
  }));
  for (const std::string t : {"a", "b", "c"}) CHECK(db->tries("flaky", run_id, t).size() == 1);
  ::kill(daemon.pid(), SIGTERM);
  CHECK(daemon.wait().exit_code == 0);
}

TEST_CASE("Daemon.ADagFileMovedAwayWhileItsTaskRunsIsAnImportErrorUntilItIsBack" * doctest::timeout(120)) {
  // `moved` runs a → b; its file is moved out of the folder while a runs. Meanwhile it is an
  // import error naming the file (the API, `dags list`), a's end is recorded, the run waits; once
  // the file is back the run completes, a having run once. `gone`, without unfinished runs, is
  // deleted too: it simply leaves the loaded DAGs, no import error.
  daemon_sandbox s;
  const std::string dir = s.dir.string();
  s.write_dag("moved.yaml", "dag_id: moved\ntasks:\n"
                            "  - task_id: a\n    operator: bash\n    bash_command: 'echo ran >> " + dir + "/a.ran; touch " + dir +
                                "/a.started; while [ ! -e " + dir + "/a.go ]; do sleep 0.05; done'\n"
                            "  - task_id: b\n    operator: bash\n    bash_command: 'echo ran >> " + dir + "/b.ran'\n"
                            "    dependencies: [a]\n");
  s.write_dag("gone.yaml", "dag_id: gone\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: 'true'\n");
  REQUIRE(s.dagrun("trigger moved --date 2024-01-01") == 0);
  auto daemon = s.start_daemon();
  const unsigned short port = s.http_port();
  auto db = s.store();
  auto state = [&](const std::string& task) { return instance(*db, "moved", run_id, task)->state; };
  auto import_errors = [&] { return dag_test::http_call(port, "GET", "/api/v1/importErrors").body; };
  auto listed = [&](const std::string& dag_id) {
    return dag_test::http_call(port, "GET", "/api/v1/dags").body.find("\"dag_id\":\"" + dag_id + "\"") != std::string::npos;
  };
  REQUIRE(eventually([&] { return std::filesystem::exists(s.dir / "a.started") && listed("gone"); }));

  const auto file = s.dir / "dags" / "moved.yaml";
  std::filesystem::rename(file, s.dir / "moved.yaml.away");
  std::filesystem::remove(s.dir / "dags" / "gone.yaml");
  std::string errors;
  REQUIRE(eventually([&] {
    errors = import_errors();
    return errors.find("file not found") != std::string::npos;
  }));
  CHECK(errors.find("\"filename\":\"" + file.string() + "\"") != std::string::npos);
  CHECK(errors.find("\"total_entries\":1") != std::string::npos);  // `gone` is no import error
  CHECK(errors.find("moved") != std::string::npos);
  REQUIRE(eventually([&] { return !listed("gone"); }));
  {
    // `dags list` tells too, though the folder no longer holds the file.
    dag::process_spec p;
    p.command = std::string(DAGRUN_BINARY) + " dags list" + s.flags();
    p.log_file = s.dir / "list.log";
    CHECK(dag::child_process::start(p).wait().exit_code == 0);
    std::ifstream in(p.log_file);
    const std::string out{std::istreambuf_iterator<char>(in), {}};
    CHECK(out.find("import error:") != std::string::npos);
    CHECK(out.find("no file defines DAG 'moved', which has unfinished runs") != std::string::npos);
  }

  std::ofstream(s.dir / "a.go").flush();
  REQUIRE(eventually([&] { return state("a") == dag::task_state::success; }));
  CHECK(state("b") == dag::task_state::none);  // the run waits
  CHECK(db->find_run("moved", run_id)->state == dag::run_state::running);

  std::filesystem::rename(s.dir / "moved.yaml.away", file);
  REQUIRE(eventually([&] {
    auto run = db->find_run("moved", run_id);
    return run && run->state == dag::run_state::success;
  }));
  REQUIRE(eventually([&] { return import_errors().find("\"total_entries\":0") != std::string::npos; }));
  CHECK(db->tries("moved", run_id, "a").size() == 1);
  std::ifstream ran(s.dir / "a.ran");
  int lines = 0;
  for (std::string line; std::getline(ran, line);) ++lines;
  CHECK(lines == 1);
  ::kill(daemon.pid(), SIGTERM);
  CHECK(daemon.wait().exit_code == 0);
}

TEST_CASE("Daemon.AFullDiskPausesNewTriesAndSaysSoUntilThereIsSpace" * doctest::timeout(120)) {
  daemon_sandbox s;
  const auto logs = s.dir / "logs";
  std::filesystem::create_directories(logs);
  auto sh = [&](const std::string& command) {
    dag::process_spec p;
    p.command = command;
    p.log_file = s.dir / "mount.log";
    return dag::child_process::start(p).wait().exit_code;
  };
  // A small disk of its own for the logs (root only; elsewhere there is nothing to fill safely).
  if (sh("mount -t tmpfs -o size=4m dagrun-test " + logs.string()) != 0) {
    MESSAGE("cannot mount a tmpfs here (not root?): skipped");
    return;
  }
  struct unmount {
    std::function<void()> run;
    ~unmount() { run(); }
  } guard{[&] { sh("umount " + logs.string()); }};
  auto free_bytes = [&] { return std::filesystem::space(logs).available; };
  {
    // Filled to half the limit below which the disk counts as full.
    std::ofstream filler(logs / "filler", std::ios::binary);
    const std::string chunk(64 * 1024, 'x');
    while (free_bytes() > 512 * 1024 && filler.write(chunk.data(), static_cast<std::streamsize>(chunk.size())))
      filler.flush();
  }
  s.write_dag("hello.yaml", "dag_id: hello\ntasks:\n  - task_id: a\n    operator: bash\n    bash_command: echo hi\n");
  REQUIRE(s.dagrun("trigger hello --date 2024-01-01") == 0);
  auto daemon = s.start_daemon();
  const unsigned short port = s.http_port();
  dag_test::http_reply health;
  REQUIRE(eventually([&] {
    health = dag_test::http_call(port, "GET", "/health");
    return health.body.find("disk_full") != std::string::npos;
  }));
  CHECK(health.status == 503);
  CHECK(health.body.find(R"("paused":["disk_full"])") != std::string::npos);
  CHECK(dag_test::http_call(port, "GET", "/metrics").body.find(R"(dagrun_scheduler_paused{reason="disk_full"} 1)") !=
        std::string::npos);
  auto db = s.store();
  CHECK(instance(*db, "hello", run_id, "a")->try_number == 0);  // nothing started meanwhile
  CHECK(::kill(daemon.pid(), 0) == 0);                           // and the daemon lives

  std::filesystem::remove(logs / "filler");
  REQUIRE(eventually([&] {
    auto run = db->find_run("hello", run_id);
    return run && run->state == dag::run_state::success;
  }));
  REQUIRE(eventually([&] { return dag_test::http_call(port, "GET", "/health").status == 200; }));
  ::kill(daemon.pid(), SIGTERM);
  CHECK(daemon.wait().exit_code == 0);
}

TEST_CASE("Daemon.TakesUpEveryRunClearedOrMarkedAfterItEndedOrWhileItRuns" * doctest::timeout(300)) {
  // A run cleared or marked goes back to queued in the store; the daemon must take it up each
  // time and carry on from the store's view, whenever the change lands relative to its passes
  // (after the run ended, or while a try runs). Changed through the real API.
  daemon_sandbox s;
  s.write_dag("flaky.yaml",
              "dag_id: flaky\ntasks:\n  - task_id: boom\n    operator: bash\n    bash_command: echo boom; exit 3\n"
              "  - task_id: after\n    operator: bash\n    bash_command: echo after\n    dependencies: [boom]\n");
  REQUIRE(s.dagrun("trigger flaky --date 2024-01-01") == 0);
  auto daemon = s.start_daemon();
  const unsigned short port = s.http_port();
  auto db = s.store();
  const std::string clear = R"({"dry_run": false, "only_failed": false, "include_downstream": true, "task_ids": ["boom"], "dag_run_id": ")" +
                            run_id + R"("})";
  constexpr int cycles = 12;
  for (int cycle = 1; cycle <= cycles; ++cycle) {
    CAPTURE(cycle);
    // Ended: failed, with `boom` at this cycle's try.
    REQUIRE(eventually([&] {
      auto run = db->find_run("flaky", run_id);
      auto boom = instance(*db, "flaky", run_id, "boom");
      return run && run->state == dag::run_state::failed && boom && boom->try_number == cycle;
    }, 30s));
    const auto reply = dag_test::http_call(port, "POST", "/api/v1/dags/flaky/clearTaskInstances", clear);
    REQUIRE(reply.status == 200);
    CHECK(reply.body.find("\"after\"") != std::string::npos);
  }
  // The last clear's try fails too; then a mark success lets `after` run and the run end green.
  REQUIRE(eventually([&] {
    auto run = db->find_run("flaky", run_id);
    auto boom = instance(*db, "flaky", run_id, "boom");
    return run && run->state == dag::run_state::failed && boom && boom->try_number == cycles + 1;
  }, 30s));
  const auto marked = dag_test::http_call(port, "PATCH", "/api/v1/dags/flaky/dagRuns/manual__2024-01-01T00%3A00%3A00%2B00%3A00/taskInstances/boom",
                                          R"({"new_state": "success", "dry_run": false})");
  REQUIRE(marked.status == 200);
  CHECK(eventually([&] {
    auto run = db->find_run("flaky", run_id);
    return run && run->state == dag::run_state::success;
  }, 30s));
  // Marked while its try runs: the try's end (a failure) must not fail `after` behind the mark.
  s.write_dag("gate.yaml", "dag_id: gate\nparams: {dir: " + s.dir.string() +
                               "}\ntasks:\n  - task_id: boom\n    operator: bash\n"
                               "    bash_command: while [ ! -e {{ params.dir }}/go-{{ ds }} ]; do sleep 0.02; done; exit 3\n"
                               "  - task_id: after\n    operator: bash\n    bash_command: echo after\n    dependencies: [boom]\n");
  REQUIRE(eventually([&] { return dag_test::http_call(port, "GET", "/api/v1/dags/gate").status == 200; }, 30s));
  for (int day = 1; day <= 4; ++day) {
    CAPTURE(day);
    const std::string date = "2024-02-0" + std::to_string(day);
    const std::string gate_run = "manual__" + date + "T00:00:00+00:00";
    const std::string in_path = "manual__" + date + "T00%3A00%3A00%2B00%3A00";
    REQUIRE(dag_test::http_call(port, "POST", "/api/v1/dags/gate/dagRuns", R"({"logical_date": ")" + date + R"(T00:00:00+00:00"})")
                .status == 200);
    REQUIRE(eventually([&] {
      auto boom = instance(*db, "gate", gate_run, "boom");
      return boom && boom->state == dag::task_state::running;
    }, 30s));
    REQUIRE(dag_test::http_call(port, "PATCH", "/api/v1/dags/gate/dagRuns/" + in_path + "/taskInstances/boom", R"({"new_state": "success", "dry_run": false})")
                .status == 200);
    std::ofstream(s.dir / ("go-" + date)) << "go";
    CHECK(eventually([&] {
      auto run = db->find_run("gate", gate_run);
      return run && run->state == dag::run_state::success;
    }, 30s));
    CHECK(instance(*db, "gate", gate_run, "after")->state == dag::task_state::success);
    CHECK(instance(*db, "gate", gate_run, "boom")->state == dag::task_state::success);
  }
  ::kill(daemon.pid(), SIGTERM);
  CHECK(daemon.wait().exit_code == 0);
}
