# Helpers for the examples' ctest scripts (cmake -P).

# expect_step(EXPECT MATCH command...): runs the command; fails the test unless it exits with
# EXPECT and its output (stdout and stderr) matches the regex MATCH ("": anything). Leaves the output in `step_output`.
function(expect_step expect match)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(REPLACE ";" " " shown "${ARGN}")
  if(NOT "${rc}" STREQUAL "${expect}")
    message(FATAL_ERROR "${shown}\nexpected exit ${expect}, got ${rc}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  if(NOT match STREQUAL "" AND NOT "${out}${err}" MATCHES "${match}")
    message(FATAL_ERROR "${shown}\noutput does not match '${match}'\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  message(STATUS "ok: ${shown}")
  set(step_output "${out}${err}" PARENT_SCOPE)
endfunction()

# expect_logs(FOLDER MATCH...): fails the test unless the try logs under FOLDER, read together,
# match every regex given.
function(expect_logs folder)
  file(GLOB_RECURSE logs "${folder}/*")
  set(all "")
  foreach(log IN LISTS logs)
    file(READ "${log}" text)
    string(APPEND all "${text}")
  endforeach()
  foreach(match IN LISTS ARGN)
    if(NOT all MATCHES "${match}")
      message(FATAL_ERROR "the logs under ${folder} do not match '${match}':\n${all}")
    endif()
  endforeach()
  message(STATUS "ok: logs match")
endfunction()

# require_vars(NAME...): fails unless each -DNAME=... was given.
macro(require_vars)
  foreach(var ${ARGN})
    if(NOT DEFINED ${var})
      message(FATAL_ERROR "${var} is not set")
    endif()
  endforeach()
endmacro()
