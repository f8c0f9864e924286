// Where a try's log file lives (dag/core/log_file.hpp): the engine's layout, and how the store
// recognises a path in it.
#include <dag/core/log_file.hpp>

#include <doctest/doctest.h>

#include <string>

namespace {

constexpr auto npos = std::string_view::npos;

}  // namespace

TEST_CASE("LogFile.FollowsAirflowsLayoutUnderTheFolder") {
  CHECK(dag::log_file_of("/var/log/dagrun", "etl", "manual__2024-01-01T00:00:00+00:00", "load", -1, 2) ==
        "/var/log/dagrun/dag_id=etl/run_id=manual__2024-01-01T00:00:00+00:00/task_id=load/attempt=2.log");
  // A folder given with its '/' gets no second one; a mapped task's instance has its map index.
  CHECK(dag::log_file_of("logs/", "etl", "r", "load", 0, 1) == "logs/dag_id=etl/run_id=r/task_id=load/map_index=0/attempt=1.log");
  CHECK(dag::log_file_of("", "etl", "r", "load", 12, 3) == "dag_id=etl/run_id=r/task_id=load/map_index=12/attempt=3.log");
}

TEST_CASE("LogFile.ThePathOfATryInTheLayoutGivesItsFolder") {
  const std::string path = dag::log_file_of("/var/log/dagrun", "etl", "r", "load", -1, 2);
  REQUIRE(dag::log_folder_length(path, "etl", "r", "load", -1, 2) == std::string("/var/log/dagrun/").size());
  // The folder and the layout's part make the path again.
  const std::string folder = path.substr(0, dag::log_folder_length(path, "etl", "r", "load", -1, 2));
  CHECK(dag::log_file_of(folder, "etl", "r", "load", -1, 2) == path);
  const std::string mapped = dag::log_file_of("/l", "etl", "r", "load", 7, 1);
  CHECK(dag::log_folder_length(mapped, "etl", "r", "load", 7, 1) == 3);
  CHECK(dag::log_folder_length(dag::log_file_of("/", "etl", "r", "load", -1, 1), "etl", "r", "load", -1, 1) == 1);
}

TEST_CASE("LogFile.AnyOtherPathIsNotInTheLayout") {
  const std::string path = dag::log_file_of("/var/log/dagrun", "etl", "r", "load", -1, 2);
  // Of another try, instance, task, run or DAG.
  CHECK(dag::log_folder_length(path, "etl", "r", "load", -1, 1) == npos);
  CHECK(dag::log_folder_length(path, "etl", "r", "load", -1, 12) == npos);
  CHECK(dag::log_folder_length(path, "etl", "r", "load", 0, 2) == npos);
  CHECK(dag::log_folder_length(path, "etl", "r", "oad", -1, 2) == npos);
  CHECK(dag::log_folder_length(path, "etl", "x/r", "load", -1, 2) == npos);
  CHECK(dag::log_folder_length(path, "tl", "r", "load", -1, 2) == npos);
  CHECK(dag::log_folder_length(dag::log_file_of("/l", "etl", "r", "load", 7, 1), "etl", "r", "load", -1, 1) == npos);
  // With no folder (nothing to keep), or a path of another shape.
  CHECK(dag::log_folder_length(dag::log_file_of("", "etl", "r", "load", -1, 2), "etl", "r", "load", -1, 2) == npos);
  CHECK(dag::log_folder_length("/var/log/dagrun/load.log", "etl", "r", "load", -1, 2) == npos);
  CHECK(dag::log_folder_length("", "etl", "r", "load", -1, 2) == npos);
  CHECK(dag::log_folder_length("/x/adag_id=etl/run_id=r/task_id=load/attempt=2.log", "etl", "r", "load", -1, 2) == npos);
}
