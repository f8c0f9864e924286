# ctest script: the program PROGRAM (examples/own_main) lists and runs its own C++ DAG through
# dagrun's command line, with an empty DAGs folder.
cmake_minimum_required(VERSION 3.20)
include(${CMAKE_CURRENT_LIST_DIR}/../expect.cmake)
require_vars(PROGRAM SCRATCH)
file(REMOVE_RECURSE "${SCRATCH}")
file(MAKE_DIRECTORY "${SCRATCH}/dags")
set(common --dags "${SCRATCH}/dags" --db "sqlite:${SCRATCH}/dagrun.db" --logs "${SCRATCH}/logs")

expect_step(0 "\"dag_id\": \"nightly_report\"" "${PROGRAM}" dags list --json ${common})
expect_step(0 "publish +success.*run manual__2024-01-02T00:00:00\\+00:00: success"
            "${PROGRAM}" run nightly_report --date 2024-01-02 ${common})
expect_logs("${SCRATCH}/logs" "42 orders on 2024-01-02" "publishing the report")
