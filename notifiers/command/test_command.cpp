// The command notifier: a real bash command with the alert in its environment.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <dag/core/error.hpp>
#include <dag/notifiers/command.hpp>

TEST_CASE("CommandNotifier.RunsWithTheAlertInItsEnvironment" * doctest::timeout(30)) {
  const auto out = std::filesystem::temp_directory_path() / ("dagrun-command-notifier-" + std::to_string(::getpid()));
  const dag::alert a{"failure", "etl", "run-1", "load", 3, "failed", "exit status 3", "/logs/x", dag::parse_time("2024-01-01")};
  dag::notifiers::run_command("echo \"$DAGRUN_ALERT $DAGRUN_DAG_ID.$DAGRUN_TASK_ID try $DAGRUN_TRY_NUMBER $DAGRUN_STATE: $DAGRUN_ERROR $DAGRUN_LOG_URL\" > " + out.string(), a);
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  CHECK(line == "failure etl.load try 3 failed: exit status 3 /logs/x");
  std::filesystem::remove(out);
  CHECK_THROWS_WITH_AS(dag::notifiers::run_command("exit 4", a), "command: exit status 4", dag::error);
}
