# ctest script: install the build tree BUILD_DIR into a scratch prefix, build the project in
# SOURCE_DIR (examples/package) against it with find_package(dag), and run what it built: the
# installed dagrun on the DAG library, the own-main program, the embedding programs.
# With -DDEB=ON the prefix is made from the Debian packages instead (cmake/dag_package.cmake):
# scripts/package.sh builds dagrun and dagrun-dev, their fields and scripts are checked, both are unpacked
# into a scratch root, and, when this runs as root, dagrun is installed for real with dpkg -i
# (the postinst's user, folders and settings file checked) and purged again.
cmake_minimum_required(VERSION 3.20)
include(${CMAKE_CURRENT_LIST_DIR}/../expect.cmake)
require_vars(BUILD_DIR SOURCE_DIR SCRATCH GENERATOR)
file(REMOVE_RECURSE "${SCRATCH}")
set(prefix "${SCRATCH}/prefix")
set(build "${SCRATCH}/build")

if(DEB)
  # The same script the container image builds its package with.
  require_vars(REPO)
  expect_step(0 "dagrun_.*\\.deb generated" "${REPO}/scripts/package.sh" "${SCRATCH}/debs" "${BUILD_DIR}")
  file(GLOB runtime_deb "${SCRATCH}/debs/dagrun_*.deb")
  file(GLOB dev_deb "${SCRATCH}/debs/dagrun-dev_*.deb")
  if(NOT runtime_deb OR NOT dev_deb)
    message(FATAL_ERROR "cpack made no dagrun and dagrun-dev packages in ${SCRATCH}/debs")
  endif()
  # Depends come from the libraries the binary links (dpkg-shlibdeps), not from a hand-kept list.
  expect_step(0 "dagrun\n" dpkg-deb -f "${runtime_deb}" Package)
  expect_step(0 "adduser.*libpq5.*libyaml-cpp" dpkg-deb -f "${runtime_deb}" Depends)
  expect_step(0 "dagrun-dev\n" dpkg-deb -f "${dev_deb}" Package)
  expect_step(0 "libboost-dev.*libpqxx-dev" dpkg-deb -f "${dev_deb}" Depends)
  expect_step(0 "usr/bin/dagrun\n.*usr/lib/systemd/system/dagrun-scheduler.service.*usr/share/bash-completion/completions/dagrun.*usr/share/dagrun/dagrun.env.example.*usr/share/fish/vendor_completions.d/dagrun.fish.*usr/share/man/man1/dagrun.1.*usr/share/zsh/vendor-completions/_dagrun"
              dpkg-deb -c "${runtime_deb}")
  expect_step(0 "usr/include/dag/dag.hpp.*cmake/dag/dagConfig.cmake" dpkg-deb -c "${dev_deb}")
  set(root "${SCRATCH}/root")
  expect_step(0 "" dpkg-deb -x "${runtime_deb}" "${root}")
  expect_step(0 "" dpkg-deb -x "${dev_deb}" "${root}")
  expect_step(0 "" dpkg-deb -e "${runtime_deb}" "${SCRATCH}/control")
  expect_step(0 "" sh -n "${SCRATCH}/control/postinst")
  file(READ "${root}/usr/lib/systemd/system/dagrun-scheduler.service" unit)
  if(NOT unit MATCHES "ExecStart=/usr/bin/dagrun schedule")
    message(FATAL_ERROR "the packaged scheduler unit does not start /usr/bin/dagrun:\n${unit}")
  endif()
  set(prefix "${root}/usr")
  expect_step(0 "dagrun [0-9]+\\.[0-9]+" "${prefix}/bin/dagrun" --version)

  execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(uid STREQUAL "0")
    # One dpkg at a time on this machine, whichever build tree's test this is.
    set(locked flock /tmp/dagrun-dpkg-test.lock)
    expect_step(0 "" ${locked} dpkg -i "${runtime_deb}")
    expect_step(0 "dagrun [0-9]+" /usr/bin/dagrun --version)
    expect_step(0 "dagrun" getent passwd dagrun)
    expect_step(0 "600" stat -c %a /etc/dagrun/dagrun.env)
    expect_step(0 "dagrun" stat -c %U /var/lib/dagrun)
    expect_step(0 "" ${locked} dpkg --purge dagrun)
    if(EXISTS /usr/bin/dagrun)
      message(FATAL_ERROR "dpkg --purge dagrun left /usr/bin/dagrun")
    endif()
  endif()
else()
  expect_step(0 "" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
endif()
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
