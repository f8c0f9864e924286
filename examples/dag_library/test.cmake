# ctest script: a DAGs folder holding the shipped YAML DAGs and the C++ DAG library LIBRARY (the
# seed's model_training_pipeline in C++); validate it and run the C++ DAG with the real dagrun.
cmake_minimum_required(VERSION 3.20)
include(${CMAKE_CURRENT_LIST_DIR}/../expect.cmake)
require_vars(DAGRUN LIBRARY YAML_DAGS SCRATCH)
file(REMOVE_RECURSE "${SCRATCH}")
file(GLOB yaml_dags "${YAML_DAGS}/*.yaml")
file(COPY ${yaml_dags} "${LIBRARY}" DESTINATION "${SCRATCH}/dags")
list(LENGTH yaml_dags yaml_count)
math(EXPR dag_count "${yaml_count} + 1")

expect_step(0 "${dag_count} DAGs valid, 0 errors" "${DAGRUN}" validate "${SCRATCH}/dags")
set(common --dags "${SCRATCH}/dags" --db "sqlite:${SCRATCH}/dagrun.db" --logs "${SCRATCH}/logs")
expect_step(0 "\"dag_id\": \"model_training_pipeline_cpp\"" "${DAGRUN}" dags list --json ${common})
expect_step(0 "\"retries\": 1.*\"retry_delay\": \"5m\"" "${DAGRUN}" dags show model_training_pipeline_cpp --json ${common})
expect_step(0 "deploy_models +success.*run manual__2024-01-02T00:00:00\\+00:00: success"
            "${DAGRUN}" run model_training_pipeline_cpp --date 2024-01-02 ${common})
expect_logs("${SCRATCH}/logs"
            "extracting training data for 2024-01-02"
            "deploying models to production for 2024-01-02")
