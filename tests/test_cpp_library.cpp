// C++ DAG libraries: loading them, and every way a library can be refused.
//
// The libraries this test loads are built from this same file by tests/CMakeLists.txt, with
// DAG_TEST_LIBRARY and DAG_TEST_BUILD_<KIND> (GOOD, CYCLE, THROWS, NO_ENTRY) defined; the ABI and
// layout mismatches are the good library with DAGRUN_DAG_LIBRARY_ABI / _LAYOUT overridden.
#include <dag/load/cpp_library.hpp>

#if defined(DAG_TEST_LIBRARY)

#include <chrono>

namespace {

#if defined(DAG_TEST_BUILD_GOOD)
std::vector<dag::definition> test_dags() {
  using namespace std::chrono_literals;
  dag::task_options defaults;
  defaults.retries = 3;
  defaults.retry_delay = 2min;
  dag::definition first{"cpp_library_first"};
  first.schedule("@daily").start_date("2024-01-01").catchup(false).default_args(defaults);
  auto hello = first.callable("hello", [](dag::task_context& ctx) {
    // try_environment is what a callable gives a process it starts: usable from a library, which
    // links dag::core and dag::schedule only.
    ctx.log("hello from the library (" + dag::try_environment(ctx).at("DAGRUN_DAG_ID") + ")");
    return dag::operator_result::success("from " + ctx.dag_id);
  });
  auto after = first.bash("after", "echo {{ ti.xcom_pull('hello') }}");
  hello >> after;

  dag::definition second{"cpp_library_second"};
  second.bash("only", "true");
  return {first, second};
}
#elif defined(DAG_TEST_BUILD_CYCLE)
std::vector<dag::definition> test_dags() {
  dag::definition d{"cpp_library_cycle"};
  auto a = d.bash("a", "true");
  auto b = d.bash("b", "true");
  a >> b >> a;
  return {d};
}
#elif defined(DAG_TEST_BUILD_THROWS)
std::vector<dag::definition> test_dags() {
  dag::definition d{"cpp_library_throws"};
  d.start_date("not a date");  // parse_time throws dag::usage_error
  return {d};
}
#endif

}  // namespace

#if !defined(DAG_TEST_BUILD_NO_ENTRY)
DAGRUN_DAGS(test_dags)
#endif

#else  // the test program

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <dag/operators/builtin.hpp>
#include <dag/load/dag_folder.hpp>

namespace fs = std::filesystem;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A fresh folder of this test's own, removed at the end of the case.
struct scratch_folder {
  fs::path path;
  explicit scratch_folder(const std::string& name)
      : path(fs::temp_directory_path() / ("dagrun-cpp-library-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~scratch_folder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// The one problem of loading `library`, as `what()` text.
std::string only_problem(const char* library) {
  const auto r = dag::load_dag_library(library, dag::builtin_operators());
  CHECK(r.dags.empty());
  REQUIRE(r.problems.size() == 1);
  return r.problems.front().what();
}

}  // namespace

TEST_CASE("CppLibrary.LoadsEveryDagOfABuiltLibrary") {
  const auto r = dag::load_dag_library(DAG_TEST_LIBRARY_GOOD, dag::builtin_operators());
  for (const auto& p : r.problems) INFO(p.what());
  REQUIRE(r.problems.empty());
  REQUIRE(r.dags.size() == 2);
  const dag::definition& first = r.dags[0];
  CHECK(first.id() == "cpp_library_first");
  CHECK(r.dags[1].id() == "cpp_library_second");
  CHECK(first.where().file == DAG_TEST_LIBRARY_GOOD);
  CHECK(first.schedule() == "@daily");
  CHECK(!first.catchup());

  // check() ran: default_args reached the tasks' effective settings.
  const dag::task* hello = first.find("hello");
  REQUIRE(hello != nullptr);
  CHECK(hello->settings.retry.retries == 3);
  CHECK(hello->settings.retry.retry_delay == std::chrono::minutes(2));
  REQUIRE(first.find("after") != nullptr);
  CHECK(first.find("after")->dependencies == std::vector<std::string>{"hello"});

  // The callable's body is the library's code, callable after loading.
  REQUIRE(hello->callable);
  dag::task_context ctx;
  ctx.dag_id = "cpp_library_first";
  std::string logged;
  ctx.log = [&](std::string_view line) { logged += line; };
  const dag::operator_result result = hello->callable(ctx);
  CHECK(result.outcome == dag::try_outcome::success);
  CHECK(result.xcom == std::optional<std::string>("from cpp_library_first"));
  CHECK(logged == "hello from the library (cpp_library_first)");
}

TEST_CASE("CppLibrary.LoadingTwiceGivesFreshDefinitions") {
  const auto operators = dag::builtin_operators();
  const auto a = dag::load_dag_library(DAG_TEST_LIBRARY_GOOD, operators);
  const auto b = dag::load_dag_library(DAG_TEST_LIBRARY_GOOD, operators);
  REQUIRE(a.dags.size() == 2);
  REQUIRE(b.dags.size() == 2);
  CHECK(b.dags[0].id() == a.dags[0].id());
}

TEST_CASE("CppLibrary.InvalidDagIsAProblemNamingTheLibrary") {
  const std::string problem = only_problem(DAG_TEST_LIBRARY_CYCLE);
  CHECK(contains(problem, std::string(DAG_TEST_LIBRARY_CYCLE) + ": "));
  CHECK(contains(problem, "cycle"));
}

TEST_CASE("CppLibrary.ExceptionWhileDefiningIsAProblem") {
  const std::string problem = only_problem(DAG_TEST_LIBRARY_THROWS);
  CHECK(contains(problem, DAG_TEST_LIBRARY_THROWS));
  CHECK(contains(problem, "threw while defining its DAGs"));
  CHECK(contains(problem, "not a date"));
}

TEST_CASE("CppLibrary.FileThatIsNoLibraryGivesDlerrorText") {
  scratch_folder dir("not-elf");
  const fs::path fake = dir.path / "x.so";
  std::ofstream(fake) << "not a shared object\n";
  const std::string problem = only_problem(fake.c_str());
  CHECK(contains(problem, fake.string() + ": cannot load DAG library: "));
  // dlerror's own words, which name the file too.
  CHECK((contains(problem, "invalid ELF header") || contains(problem, "file too short")));
}

TEST_CASE("CppLibrary.MissingFileIsAProblem") {
  const std::string problem = only_problem("/nonexistent/dagrun/missing.so");
  CHECK(contains(problem, "/nonexistent/dagrun/missing.so: cannot load DAG library: "));
  CHECK(contains(problem, "No such file"));
}

TEST_CASE("CppLibrary.LibraryWithoutEntryPointsIsRefused") {
  const std::string problem = only_problem(DAG_TEST_LIBRARY_NO_ENTRY);
  CHECK(contains(problem, DAG_TEST_LIBRARY_NO_ENTRY));
  CHECK(contains(problem, "not a dagrun DAG library: it does not export dagrun_abi_version, dagrun_abi_layout, dagrun_dags"));
  CHECK(contains(problem, "DAGRUN_DAGS(fn)"));
}

TEST_CASE("CppLibrary.AbiVersionMismatchIsRefused") {
  const std::string problem = only_problem(DAG_TEST_LIBRARY_OTHER_ABI);
  CHECK(contains(problem, DAG_TEST_LIBRARY_OTHER_ABI));
  CHECK(contains(problem, "built for ABI version 999, but this dagrun loads version " +
                              std::to_string(dag::cpp_library_abi_version) + ": rebuild it against this libdag"));
}

TEST_CASE("CppLibrary.RefusedLibraryIsUnloadedSoAFixedOneLoadsAtTheSamePath") {
  scratch_folder dir("replace");
  const fs::path path = dir.path / "pipeline.so";
  const auto operators = dag::builtin_operators();
  fs::copy_file(DAG_TEST_LIBRARY_OTHER_ABI, path);
  CHECK(dag::load_dag_library(path, operators).dags.empty());
  // Replaced by a new file (never overwritten in place), as docs/cpp.md asks.
  fs::remove(path);
  fs::copy_file(DAG_TEST_LIBRARY_GOOD, path);
  const auto fixed = dag::load_dag_library(path, operators);
  CHECK(fixed.problems.empty());
  CHECK(fixed.dags.size() == 2);
}

TEST_CASE("CppLibrary.LayoutMismatchIsRefused") {
  const std::string problem = only_problem(DAG_TEST_LIBRARY_OTHER_LAYOUT);
  CHECK(contains(problem, "types differ from this dagrun's"));
  CHECK(contains(problem, "rebuild it against this libdag"));
}

TEST_CASE("CppLibrary.DagsFolderLoadsLibrariesBesideYaml") {
  scratch_folder dir("folder");
  fs::copy_file(DAG_TEST_LIBRARY_GOOD, dir.path / "b_good.so");
  fs::copy_file(DAG_TEST_LIBRARY_CYCLE, dir.path / "c_cycle.so");
  // a.yaml sorts first, so the library's DAG of the same id is the duplicate.
  std::ofstream(dir.path / "a.yaml") << "dag_id: cpp_library_second\ntasks:\n  - task_id: t\n    operator: bash\n"
                                        "    bash_command: echo yaml\n";
  std::ofstream(dir.path / "notes.txt") << "ignored\n";

  const dag::dag_folder folder = dag::load_dag_folder(dir.path, dag::builtin_operators());
  REQUIRE(folder.dags.size() == 2);
  CHECK(folder.dags[0]->id() == "cpp_library_first");
  CHECK(folder.dags[0]->where().file == (dir.path / "b_good.so").string());
  CHECK(folder.dags[1]->id() == "cpp_library_second");
  CHECK(folder.dags[1]->where().file == (dir.path / "a.yaml").string());
  REQUIRE(folder.problems.size() == 2);
  CHECK(contains(folder.problems[0].what(), (dir.path / "b_good.so").string() + ": dag_id 'cpp_library_second' is "
                                                "already defined in " + (dir.path / "a.yaml").string()));
  CHECK(contains(folder.problems[1].what(), (dir.path / "c_cycle.so").string() + ": "));
}

TEST_CASE("CppLibrary.OneLibraryFileAsThePath") {
  const dag::dag_folder folder = dag::load_dag_folder(DAG_TEST_LIBRARY_GOOD, dag::builtin_operators());
  CHECK(folder.problems.empty());
  CHECK(folder.dags.size() == 2);
}

#endif
