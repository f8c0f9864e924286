# dagrun_add_dag_library(NAME source...): builds a C++ DAG library, NAME.so, for dagrun's DAGs
# folder. Its sources define their DAGs with DAGRUN_DAGS(fn) from <dag/load/cpp_library.hpp>.
#
# Works in dagrun's own tree and from the installed package (find_package(dag) includes this
# file). The result is a MODULE library (loaded with dlopen, never linked against) named NAME.so
# with no `lib` prefix; set LIBRARY_OUTPUT_DIRECTORY on the target to build it straight into a
# DAGs folder, and target_link_libraries(NAME PRIVATE ...) for whatever else the tasks use.
include_guard(GLOBAL)

function(dagrun_add_dag_library name)
  if(ARGC LESS 2)
    message(FATAL_ERROR "dagrun_add_dag_library(${name} ...): give at least one source file")
  endif()
  add_library(${name} MODULE ${ARGN})
  # dag::core is the header-only model (definition, task, operator_result); dag::schedule holds the
  # few compiled helpers the fluent API calls (parse_time behind start_date("2024-01-01"),
  # parse_duration). It is linked in statically so the library loads into any program, whether or
  # not that program exports libdag's symbols.
  target_link_libraries(${name} PRIVATE dag::core dag::schedule)
  # Only the DAGRUN_DAGS entry points are exported (hidden visibility, then a version script for
  # what the compiler still exports: std templates, the static dag::schedule), so two libraries,
  # or a library and dagrun, never resolve each other's inline functions or template instances.
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    SUFFIX ".so"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  if(NOT APPLE)
    set(exports "${CMAKE_CURRENT_BINARY_DIR}/${name}.exports")
    file(WRITE "${exports}" "{\n  global: dagrun_abi_version; dagrun_abi_layout; dagrun_dags;\n  local: *;\n};\n")
    target_link_options(${name} PRIVATE "LINKER:--version-script=${exports}")
    set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${exports}")
  endif()
  # In dagrun's own tree the project's warnings apply; a user's project keeps its own.
  if(COMMAND dag_target_options)
    dag_target_options(${name})
  endif()
endfunction()
