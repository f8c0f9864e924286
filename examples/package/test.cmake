# ctest script: install the build tree BUILD_DIR into a scratch prefix, build the project in
# SOURCE_DIR (examples/package) against it with find_package(dag), and run what it built: the
# installed dagrun on the DAG library, the own-main program, the embedding programs.
cmake_minimum_required(VERSION 3.20)
include(${CMAKE_CURRENT_LIST_DIR}/../expect.cmake)
require_vars(BUILD_DIR SOURCE_DIR SCRATCH GENERATOR)
file(REMOVE_RECURSE "${SCRATCH}")
set(prefix "${SCRATCH}/prefix")
set(build "${SCRATCH}/build")

expect_step(0 "" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
expect_step(0 "" "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${build}" -G "${GENERATOR}" "-DCMAKE_PREFIX_PATH=${prefix}"
            "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}" "-DCMAKE_CXX_FLAGS=${FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${FLAGS}"
            "-DCMAKE_MODULE_LINKER_FLAGS=${FLAGS}")
expect_step(0 "" "${CMAKE_COMMAND}" --build "${build}")

# 1. The installed dagrun loads the DAG library built against the installed headers.
set(dagrun "${prefix}/bin/dagrun")
set(common --db "sqlite:${SCRATCH}/dagrun.db" --logs "${SCRATCH}/logs")
expect_step(0 "1 DAG valid, 0 errors" "${dagrun}" validate "${build}/dags")
expect_step(0 "deploy_models +success.*: success"
            "${dagrun}" run model_training_pipeline_cpp --date 2024-01-02 --dags "${build}/dags" ${common})

# 2. The own-main program, with an empty DAGs folder.
file(MAKE_DIRECTORY "${SCRATCH}/empty")
expect_step(0 "publish +success.*: success" "${build}/own_main" run nightly_report --date 2024-01-02
            --dags "${SCRATCH}/empty" ${common})

# 3. The embedding programs.
expect_step(0 "run manual__.*: success" "${build}/embedded")
expect_step(0 "run manual__.*: success" "${build}/embedded_background")
