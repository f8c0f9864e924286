// The `dagrun` binary as a user runs it, on input it must survive: bytes that are not UTF-8,
// numbers and date ranges out of bounds, and signals during long loops.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <dag/exec/child_process.hpp>

#include "support/eventually.hpp"

using namespace std::chrono_literals;

namespace {

const std::string replacement = "\xEF\xBF\xBD";  // U+FFFD

struct cli_sandbox {
  std::filesystem::path dir;
  cli_sandbox() {
    static int n = 0;
    dir = std::filesystem::temp_directory_path() / ("dagrun-cli-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "dags");
  }
  ~cli_sandbox() { std::filesystem::remove_all(dir); }

  void write(const std::filesystem::path& name, const std::string& text) const { std::ofstream(dir / name, std::ios::binary) << text; }

  struct outcome {
    int exit_code;
    std::string out;  ///< stdout
    std::string err;  ///< stderr
  };
  // Runs `dagrun ARGS` with this sandbox's folders to its end.
  outcome dagrun(const std::string& args) const {
    dag::process_spec p;
    p.command = std::string(DAGRUN_BINARY) + " " + args + flags() + " >" + (dir / "out").string() + " 2>" + (dir / "err").string();
    const int code = dag::child_process::start(p).wait().exit_code;
    return {code, read(dir / "out"), read(dir / "err")};
  }
  dag::child_process start(const std::string& args) const {
    dag::process_spec p;
    p.command = "exec " + std::string(DAGRUN_BINARY) + " " + args + flags() + " >" + (dir / "out").string() + " 2>" +
                (dir / "err").string();
    return dag::child_process::start(p);
  }
  std::string flags() const {
    return " --dags " + (dir / "dags").string() + " --db sqlite:" + (dir / "dagrun.db").string() + " --logs " +
           (dir / "logs").string();
  }
  static std::string read(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
};

}  // namespace

TEST_CASE("CliBinary.VersionNamesTheAllocatorTheBinaryRunsWith" * doctest::timeout(60)) {
  cli_sandbox s;
  const auto r = s.dagrun("version");
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.starts_with("dagrun "));
#if DAG_TEST_TCMALLOC
  // Built with DAG_TCMALLOC (the default): the binary's malloc is tcmalloc's, asked at run time.
  CHECK(r.out.find("\nallocator: tcmalloc ") != std::string::npos);
#else
  CHECK(r.out.find("\nallocator: not tcmalloc") != std::string::npos);
#endif
}

TEST_CASE("CliBinary.VersionSaysWhetherTheHeapGrowsOnHugePages" * doctest::timeout(60)) {
  cli_sandbox s;
  const auto version = [&](std::map<std::string, std::string> env) {
    dag::process_spec p;
    p.command = std::string(DAGRUN_BINARY) + " version";
    p.environment = std::move(env);
    p.log_file = s.dir / "version.out";
    std::filesystem::remove(p.log_file);
    REQUIRE(dag::child_process::start(p).wait().exit_code == 0);
    std::ifstream in(p.log_file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
#if DAG_TEST_TCMALLOC
  std::ifstream setting_file("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string setting;
  std::getline(setting_file, setting);
  const bool kernel_makes_them = !setting.empty() && setting.find("[never]") == std::string::npos;
  // tcmalloc's heap grows on memory marked for huge pages, unless the environment says no.
  const std::string on = version({{"DAGRUN_HUGE_PAGES", "1"}});  // whatever the test's own environment says
  if (kernel_makes_them)
    CHECK(on.find("\nheap: on transparent huge pages (the kernel's setting: ") != std::string::npos);
  else
    CHECK(on.find("\nheap: marked for transparent huge pages, which this kernel does not make") != std::string::npos);
#else
  CHECK(version({{"DAGRUN_HUGE_PAGES", "1"}}).find("\nheap: the allocator's own pages\n") != std::string::npos);
#endif
  CHECK(version({{"DAGRUN_HUGE_PAGES", "0"}}).find("\nheap: the allocator's own pages\n") != std::string::npos);
}

TEST_CASE("CliBinary.JsonListingsReplaceBytesThatAreNotUtf8" * doctest::timeout(120)) {
  cli_sandbox s;
  // A description in Latin-1, and a task whose SQL error message holds a stray byte.
  s.write("dags/latin.yaml", "dag_id: latin\ndescription: \"caf\xe9\"\ntags: [\"t\xff\"]\ntasks:\n"
                             "  - task_id: t\n    operator: sqlite\n    database: ':memory:'\n    sql: \"SELECT \xff\"\n");
  s.write("dags/broken.yaml", "dag_id: broken\ntasks:\n  - task_id: \"b\xfe\"\n    operator: nosuch\xff\n");
  s.write("value", "v\xff");
  s.write("uri", "postgresql://u\xfe:p@h/d\xff");
  // What is set by hand is refused instead (a store would not hold it as given): exit 2, named.
  const auto variable = s.dagrun("variables set v \"$(cat " + (s.dir / "value").string() + ")\"");
  CHECK(variable.exit_code == 2);
  CHECK(variable.err.find("variable 'v': value: must be UTF-8 text") != std::string::npos);
  const auto connection = s.dagrun("connections add c --uri \"$(cat " + (s.dir / "uri").string() + ")\"");
  CHECK(connection.exit_code == 2);
  CHECK(connection.err.find("connection 'c': login: must be UTF-8 text") != std::string::npos);
  CHECK(s.dagrun("run latin --date 2024-01-01").exit_code == 1);

  const std::string run_id = "manual__2024-01-01T00:00:00+00:00";
  for (const std::string& command : std::vector<std::string>{"dags list", "dags show latin", "variables list", "connections list", "runs list latin",
                                    "tasks list latin " + run_id, "validate"}) {
    CAPTURE(command);
    const auto r = s.dagrun(command + " --json");
    CHECK(r.exit_code != 134);  // abort
    CHECK((r.exit_code == 0 || (command == "validate" && r.exit_code == 2)));
    const auto parsed = nlohmann::json::parse(r.out, nullptr, false);
    CHECK_FALSE(parsed.is_discarded());
    if (command != "runs list latin" && command != "variables list" && command != "connections list")
      CHECK(r.out.find(replacement) != std::string::npos);
  }
}

TEST_CASE("CliBinary.NumericFlagsOutOfBoundsAreRefusedNamingTheFlag" * doctest::timeout(60)) {
  cli_sandbox s;
  s.write("dags/h.yaml", "dag_id: h\nschedule: '@hourly'\nstart_date: 2024-01-01\ntasks:\n  - task_id: t\n    operator: bash\n    bash_command: 'true'\n");
  const std::vector<std::pair<std::string, std::string>> cases{
      {"run h --parallelism 100000000", "--parallelism"},
      {"run h --parallelism 0", "--parallelism"},
      {"backfill h --start 2024-01-01 --end 2024-01-02 --parallelism 5000", "--parallelism"},
      {"schedule --parallelism 2000000000 --listen none", "--parallelism"},
      {"schedule --grace -1 --listen none", "--grace"},
      {"schedule --lease-ms 0 --listen none", "--lease-ms"},
      {"db clean --older-than 2000000000", "--older-than"},
      {"dags next h -n 2000000000", "-n"}};
  for (const auto& [args, flag] : cases) {
    CAPTURE(args);
    const auto r = s.dagrun(args);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(flag + ": must be between") != std::string::npos);
  }
}

TEST_CASE("CliBinary.DateRangesEndingBeforeTheyStartAreRefused" * doctest::timeout(60)) {
  cli_sandbox s;
  s.write("dags/h.yaml", "dag_id: h\nschedule: '@hourly'\nstart_date: 2024-01-01\ntasks:\n  - task_id: t\n    operator: bash\n    bash_command: 'true'\n");
  for (const std::string& command : {std::string("tasks clear h"), std::string("backfill h"), std::string("backfill h --dry-run")}) {
    CAPTURE(command);
    const auto r = s.dagrun(command + " --start 2024-02-01 --end 2024-01-01");
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--end 2024-01-01T00:00:00+00:00 is before --start 2024-02-01T00:00:00+00:00") != std::string::npos);
  }
}

TEST_CASE("CliBinary.BackfillOverMillenniaIsBoundedAndItsDryRunStreamsAndStopsOnSignals" * doctest::timeout(120)) {
  cli_sandbox s;
  s.write("dags/h.yaml", "dag_id: h\nschedule: '@hourly'\nstart_date: 0001-01-01\ntasks:\n  - task_id: t\n    operator: bash\n    bash_command: 'true'\n");
  // A real backfill refuses a range this long before creating anything.
  const auto refused = s.dagrun("backfill h --start 0001-01-01 --end 9999-12-31");
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("holds more than 100000 logical dates") != std::string::npos);
  // The dry run prints as it goes (87 million lines would take minutes), and each signal ends it.
  for (const int sig : {SIGTERM, SIGINT}) {
    CAPTURE(sig);
    auto p = s.start("backfill h --start 0001-01-01 --end 9999-12-31 --dry-run");
    REQUIRE(dag_test::eventually([&] { return std::filesystem::exists(s.dir / "out") && std::filesystem::file_size(s.dir / "out") > 1000; }));
    const auto signalled = std::chrono::steady_clock::now();
    ::kill(p.pid(), sig);
    const auto r = p.wait();
    CHECK(std::chrono::steady_clock::now() - signalled < 10s);
    CHECK(r.exit_code == 1);
    CHECK(cli_sandbox::read(s.dir / "err").find("backfill interrupted") != std::string::npos);
    std::filesystem::remove(s.dir / "out");
  }
}
