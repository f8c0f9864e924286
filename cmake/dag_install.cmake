# Installs libdag as a CMake package: find_package(dag) gives dag::dag.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/libdag/include/dag DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The operator headers install from operators/CMakeLists.txt, as <dag/operators/NAME.hpp>.
install(TARGETS ${DAG_EXPORTED_TARGETS} dag_builtin_operators EXPORT dag_targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT dag_targets NAMESPACE dag:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dag)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/dagConfig.cmake.in
  ${PROJECT_BINARY_DIR}/dagConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dag)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/dagConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/dagConfig.cmake ${PROJECT_BINARY_DIR}/dagConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/dagrun_dag_library.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dag)
