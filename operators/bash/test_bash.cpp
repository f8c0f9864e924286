// The bash operator: exit codes, environment, XCom, timeouts.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <dag/operators/bash.hpp>

using namespace std::chrono_literals;

namespace {
struct bash_try {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("dagrun-op-bash-" + std::to_string(::getpid()));
  dag::task_context ctx;
  std::vector<std::string> logged;
  bash_try() {
    std::filesystem::create_directories(dir);
    ctx.log_path = dir / "try.log";
    ctx.log = [this](std::string_view l) { logged.emplace_back(l); };
  }
  ~bash_try() { std::filesystem::remove_all(dir); }
  dag::operator_result run(const std::string& command) {
    ctx.fields["bash_command"] = command;
    return dag::operators::bash::run(dag::task{}, ctx);
  }
  std::string log() const {
    std::ifstream in(ctx.log_path);
    return {std::istreambuf_iterator<char>(in), {}};
  }
};
}  // namespace

TEST_CASE("BashOperator.ExitStatusDecidesTheOutcome") {
  bash_try t;
  CHECK(t.run("true").outcome == dag::try_outcome::success);
  auto failed = t.run("exit 4");
  CHECK(failed.outcome == dag::try_outcome::failed);
  CHECK(failed.exit_code == 4);
  CHECK(failed.message == "exit status 4");
  auto skipped = t.run("exit 99");
  CHECK(skipped.outcome == dag::try_outcome::skipped);
}

TEST_CASE("BashOperator.LastStdoutLineIsTheXCom") {
  bash_try t;
  auto r = t.run("echo first; echo oops >&2; echo last");
  CHECK(r.xcom == "last");
  CHECK(t.log().find("oops") != std::string::npos);
  CHECK(t.log().find("first") != std::string::npos);
}

TEST_CASE("BashOperator.EnvironmentAndExtraEnv") {
  bash_try t;
  // The DAGRUN_* variables come from the try's context, over what its `environment` adds: a
  // queue row an older scheduler wrote carries that scheduler's pid as the owner, which must not
  // reach the process (a worker would take it for an orphan of a dead owner).
  t.ctx.dag_id = "d";
  t.ctx.task_id = "t";
  t.ctx.try_number = 3;
  t.ctx.map_index = 2;
  t.ctx.environment = {{"DAGRUN_TASK_ID", "old"}, {"DAGRUN_OWNER_PID", "1"}, {"EXTRA", "x"}};
  t.ctx.fields["env.REGION"] = "eu";
  CHECK(t.run("echo $DAGRUN_DAG_ID-$DAGRUN_TRY_NUMBER-$DAGRUN_MAP_INDEX-$DAGRUN_TASK_ID-$EXTRA-$REGION").xcom ==
        "d-3-2-t-x-eu");
  CHECK(t.run("echo $DAGRUN_OWNER_PID").xcom == std::to_string(::getpid()));
  t.ctx.map_index = -1;  // not a mapped instance: no DAGRUN_MAP_INDEX
  CHECK(t.run("echo \"${DAGRUN_MAP_INDEX-unset}\"").xcom == "unset");
}

TEST_CASE("BashOperator.TimeoutFailsTheTry" * doctest::timeout(30)) {
  bash_try t;
  t.ctx.timeout = 200ms;
  auto r = t.run("sleep 20");
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message == "execution_timeout exceeded: process group killed");
  CHECK(t.logged.back() == "[dagrun] execution_timeout exceeded: process group killed");
}

TEST_CASE("BashOperator.KeyedXComsArePushedThroughTheXComFile") {
  bash_try t;
  auto r = t.run("echo rows=12 >> \"$DAGRUN_XCOM_FILE\"; echo 'path=/data/a b=c' >> \"$DAGRUN_XCOM_FILE\"; "
                 "echo rows=13 >> \"$DAGRUN_XCOM_FILE\"; echo done");
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK(r.xcom == "done");
  CHECK(r.keyed_xcoms == std::map<std::string, std::string>{{"path", "/data/a b=c"}, {"rows", "13"}});
  SUBCASE("return_value in the file replaces the last stdout line") {
    auto rv = t.run("echo return_value=from-file >> \"$DAGRUN_XCOM_FILE\"; echo stdout");
    CHECK(rv.xcom == "from-file");
    CHECK(rv.keyed_xcoms.empty());
  }
  SUBCASE("a line that is not KEY=VALUE fails the try, naming the line") {
    auto bad = t.run("echo 'no equals sign' >> \"$DAGRUN_XCOM_FILE\"");
    CHECK(bad.outcome == dag::try_outcome::failed);
    CHECK(bad.message == "bad line in $DAGRUN_XCOM_FILE (expected KEY=VALUE): no equals sign");
  }
  SUBCASE("each try gets its own file, removed afterwards") {
    auto first = t.run("echo $DAGRUN_XCOM_FILE");
    REQUIRE(first.xcom);
    CHECK_FALSE(std::filesystem::exists(*first.xcom));
    CHECK(t.run("echo $DAGRUN_XCOM_FILE").xcom != first.xcom);
  }
}

TEST_CASE("BashOperator.ASilentTryMakesNoFile") {
  bash_try t;
  t.ctx.log_path = t.dir / "task_id=a" / "attempt=1.log";
  auto r = t.run("test -e \"$DAGRUN_XCOM_FILE\" || true");
  CHECK(r.outcome == dag::try_outcome::success);
  CHECK_FALSE(std::filesystem::exists(t.dir / "task_id=a"));  // no log, no folder for it
  // The XCom file is made by the command's first push, not before.
  CHECK(t.run("test -e \"$DAGRUN_XCOM_FILE\" && echo exists || echo absent").xcom == "absent");
  CHECK(std::filesystem::exists(t.ctx.log_path));  // that one wrote a line
}

TEST_CASE("BashOperator.ALogThatCannotBeMadeFailsTheTry") {
  bash_try t;
  std::ofstream(t.dir / "plain-file") << "not a directory";
  t.ctx.log_path = t.dir / "plain-file" / "attempt=1.log";
  auto r = t.run("echo rows=1 >> \"$DAGRUN_XCOM_FILE\"; echo hello");
  CHECK(r.outcome == dag::try_outcome::failed);
  CHECK(r.message.find(t.ctx.log_path.string()) != std::string::npos);
  CHECK(r.message.ends_with("(the command succeeded)"));
  CHECK_FALSE(r.xcom);  // a failed try pushes nothing
  CHECK(r.keyed_xcoms.empty());
  CHECK(t.logged.back() == "[dagrun] " + r.message);
  // A command that writes nothing needs no log.
  CHECK(t.run("true").outcome == dag::try_outcome::success);
}

TEST_CASE("BashOperator.AnXComFolderNoLongerItsOwnIsNotUsed") {
  namespace fs = std::filesystem;
  bash_try t;
  const auto first = t.run("echo $DAGRUN_XCOM_FILE");
  REQUIRE(first.xcom);
  const fs::path folder = fs::path(*first.xcom).parent_path();
  CHECK((fs::status(folder).permissions() & fs::perms::all) == fs::perms::owner_all);
  // A cleaner of the temporary folder removes it, and someone makes one of the same name, open to all.
  fs::remove(folder);
  fs::create_directory(folder);
  fs::permissions(folder, fs::perms::all);
  auto r = t.run("echo rows=3 >> \"$DAGRUN_XCOM_FILE\"; echo $DAGRUN_XCOM_FILE");
  CHECK(r.keyed_xcoms == std::map<std::string, std::string>{{"rows", "3"}});
  REQUIRE(r.xcom);
  CHECK(fs::path(*r.xcom).parent_path() != folder);
  CHECK(fs::is_empty(folder));  // nothing of the try went there
  fs::remove(folder);
}
