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
