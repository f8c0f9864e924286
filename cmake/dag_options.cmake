# Warnings and sanitizers for dagrun's own targets only (never global flags).
function(dag_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wconversion -Wsign-conversion)
  if(DAG_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  # GCC 12 at -O2/-O3 reports std::string appends as overlapping memcpy (GCC bug 105329): noise.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
endfunction()

if(DAG_FUZZ)
  # Coverage for libFuzzer plus ASan and UBSan on everything built here (the fuzz targets add
  # libFuzzer's main when they link).
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(DAG_SANITIZE)
  # Applied to everything built here so that instrumented and plain code never mix in one binary.
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# The allocator of dagrun's own programs (dagrun, the benchmarks): gperftools' tcmalloc. Tries
# are made on the engine's thread and freed on the executor's, and glibc's malloc serialises such
# frees on its arena's lock: 100,000 in-process tries ran 1.22x faster built with tcmalloc
# (docs/benchmarks.md, fifth round). libdag itself links no allocator: a program that embeds it
# keeps its own. Off under the sanitizers, which replace malloc themselves, and not looked for
# when no program of dagrun's is built (a libdag-only build needs no gperftools).
set(dag_use_tcmalloc ${DAG_TCMALLOC})
if(NOT DAG_BUILD_RUNNER AND NOT DAG_BUILD_BENCHMARKS)
  set(dag_use_tcmalloc OFF)
endif()
if(dag_use_tcmalloc AND (DAG_SANITIZE OR DAG_FUZZ))
  message(STATUS "DAG_TCMALLOC: the sanitizers bring their own malloc; dagrun's programs use it")
  set(dag_use_tcmalloc OFF)
endif()
if(dag_use_tcmalloc)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(dag_tcmalloc IMPORTED_TARGET libtcmalloc_minimal)
  if(NOT dag_tcmalloc_FOUND)
    message(FATAL_ERROR "DAG_TCMALLOC is ON but pkg-config found no libtcmalloc_minimal: install "
                        "libgoogle-perftools-dev (scripts/install-deps.sh does), or configure with -DDAG_TCMALLOC=OFF "
                        "for glibc's malloc")
  endif()
endif()

# Links `target`, a program of dagrun's, with the allocator chosen above (`dagrun version` names
# the one a process runs with).
function(dag_program_allocator target)
  if(dag_use_tcmalloc)
    target_link_libraries(${target} PRIVATE PkgConfig::dag_tcmalloc)
    # tcmalloc's heap grows on memory marked for transparent huge pages (the file says why).
    target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/runner/huge_page_heap.cpp)
  endif()
endfunction()
