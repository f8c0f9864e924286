// The `dagrun` binary as a user runs it, on input it must survive: bytes that are not UTF-8,
// numbers and date ranges out of bounds, and signals during long loops.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>

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

TEST_CASE("CliBinary.JsonListingsReplaceBytesThatAreNotUtf8" * doctest::timeout(120)) {
  cli_sandbox s;
  // A description in Latin-1, and a task whose SQL error message holds a stray byte.
  s.write("dags/latin.yaml", "dag_id: latin\ndescription: \"caf\xe9\"\ntags: [\"t\xff\"]\ntasks:\n"
                             "  - task_id: t\n    operator: sqlite\n    database: ':memory:'\n    sql: \"SELECT \xff\"\n");
  s.write("dags/broken.yaml", "dag_id: broken\ntasks:\n  - task_id: \"b\xfe\"\n    operator: nosuch\xff\n");
  s.write("value", "v\xff");
  s.write("uri", "postgresql://u\xfe:p@h/d\xff");
  REQUIRE(s.dagrun("variables set \"$(cat " + (s.dir / "value").string() + ")x\" \"$(cat " + (s.dir / "value").string() + ")\"").exit_code == 0);
  REQUIRE(s.dagrun("connections add \"c$(cat " + (s.dir / "value").string() + ")\" --uri \"$(cat " + (s.dir / "uri").string() + ")\"").exit_code == 0);
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
    if (command != "runs list latin") CHECK(r.out.find(replacement) != std::string::npos);
  }
}
