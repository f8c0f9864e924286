// The embedded example (examples/embedded/main.cpp) as a real process: while its run waits for
// its input file, the program serves /health, the API and the UI of its engine; then the run ends.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <dag/exec/child_process.hpp>

#include "support/eventually.hpp"
#include "support/http_client.hpp"

using dag_test::eventually;
using json = nlohmann::json;

TEST_CASE("Embedding.ProgramServesHealthApiAndUiWhileItsRunGoesOn" * doctest::timeout(120)) {
  const auto dir = std::filesystem::temp_directory_path() / ("dagrun-embedding-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto input = dir / "input.csv";  // not there yet: the run waits for it
  // Its output goes straight to a file (child_process copies a pipe only while waited for).
  const auto log = dir / "out.log";
  dag::process_spec p;
  p.command = "exec " + std::string(EXAMPLE_EMBEDDED) + " " + input.string() + " >" + log.string() + " 2>&1";
  auto program = dag::child_process::start(p);
  auto output = [&] {
    std::ifstream in(log);
    return std::string{std::istreambuf_iterator<char>(in), {}};
  };

  unsigned short port = 0;
  REQUIRE(eventually([&] {
    const std::string out = output();
    const auto at = out.find("serving http://127.0.0.1:");
    if (at == std::string::npos) return false;
    port = static_cast<unsigned short>(std::stoi(out.substr(at + 25)));
    return true;
  }));
  const std::string runs = "/api/v1/dags/embedded_etl/dagRuns";
  // The run is going on, held in its first task.
  REQUIRE(eventually([&] {
    const auto r = dag_test::http_call(port, "GET", runs);
    return r.status == 200 && json::parse(r.body)["dag_runs"].size() == 1 &&
           json::parse(r.body)["dag_runs"][0]["state"] == "running";
  }));
  const auto health = dag_test::http_call(port, "GET", "/health");
  CHECK(health.status == 200);  // the engine's heartbeat, through the engine's own metrics
  CHECK(json::parse(health.body)["scheduler"]["status"] == "healthy");
  const auto dags = json::parse(dag_test::http_call(port, "GET", "/api/v1/dags").body);
  REQUIRE(dags["dags"].size() == 1);
  CHECK(dags["dags"][0]["dag_id"] == "embedded_etl");
  const auto ui = dag_test::http_call(port, "GET", "/dags/embedded_etl");
  CHECK(ui.status == 200);
  CHECK(ui.body.find("wait_for_input") != std::string::npos);
  CHECK(dag_test::http_call(port, "GET", "/metrics").body.find("dagrun_scheduler_heartbeat") != std::string::npos);

  std::ofstream(input) << "id\n1\n";
  CHECK(program.wait().exit_code == 0);
  CHECK(output().find("run manual__") != std::string::npos);
  CHECK(output().find(": success\n") != std::string::npos);
  std::filesystem::remove_all(dir);
}
