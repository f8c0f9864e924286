# Debian packages through CPack: `cmake --build BUILD --target package` (or `cpack -G DEB` in the
# build tree) makes two:
#   dagrun      the binary, the systemd units, the settings template and the docs; its postinst
#               creates the dagrun user, /var/lib/dagrun and /etc/dagrun/dagrun.env.
#   dagrun-dev  libdag's headers, static libraries and CMake package (find_package(dag)).
# Every install() rule without a COMPONENT belongs to dev (CMAKE_INSTALL_DEFAULT_COMPONENT_NAME in
# the top-level CMakeLists); the runtime files say COMPONENT runtime.
include(GNUInstallDirs)

# The units as shipped name /usr/local/bin/dagrun (a `cmake --install` with the default prefix);
# installed, they name the binary where this install puts it. CMAKE_INSTALL_PREFIX is read when the
# install runs, so CPack's /usr is what a package gets.
foreach(unit dagrun-scheduler.service dagrun-worker@.service)
  install(CODE "
    file(READ \"${PROJECT_SOURCE_DIR}/deploy/systemd/${unit}\" unit_text)
    string(REPLACE \"/usr/local/bin/dagrun\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/dagrun\" unit_text \"\${unit_text}\")
    file(WRITE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/${unit}\" \"\${unit_text}\")
    message(STATUS \"Installing: \$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/${unit}\")"
    COMPONENT runtime)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/deploy/dagrun.env.example DESTINATION ${CMAKE_INSTALL_DATADIR}/dagrun
        COMPONENT runtime)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs COMPONENT runtime)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/deploy COMPONENT runtime
        PATTERN debian EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME dagrun)
set(CPACK_PACKAGE_VENDOR dagrun)
set(CPACK_PACKAGE_CONTACT "dagrun maintainers <dagrun@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "DAG scheduler and runner compatible with Airflow's model, in one binary")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME dagrun)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION admin)
# The shared libraries dagrun links (libpq, libyaml-cpp, libcurl, ...) become Depends.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "adduser, bash, tzdata")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/deploy/debian/postinst)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME dagrun-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# What find_package(dag) finds its dependencies with (cmake/dagConfig.cmake.in).
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "cmake, pkg-config, g++ (>= 4:12), libboost-dev (>= 1.74), libboost-program-options-dev, libsqlitecpp-dev, libsqlite3-dev, libpqxx-dev, libyaml-cpp-dev, libspdlog-dev, libfmt-dev, nlohmann-json3-dev, libhowardhinnant-date-dev, libssl-dev, libcurl4-openssl-dev")
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION "dagrun: scheduler, workers, CLI, REST API and web UI")
set(CPACK_COMPONENT_DEV_DESCRIPTION "libdag: headers, static libraries and CMake package for embedding dagrun")
include(CPack)
