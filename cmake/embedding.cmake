# Embedding: the public headers, the static libraries and a CMake package, so that a program built
# against an installed prefix writes
#   find_package(certfleet REQUIRED)
#   target_link_libraries(app PRIVATE certfleet::manager)         # the daemon core, in process
#   target_link_libraries(app PRIVATE certfleet::control_client)  # a running certfleetd's socket
# (examples/ is such a program). Installed as the `development` component; the .deb leaves it out
# (cmake/package.cmake).
include(CMakePackageConfigHelpers)
include(GNUInstallDirs)

set(certfleet_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/certfleet)
set(certfleet_include_dir ${CMAKE_INSTALL_INCLUDEDIR}/certfleet)

# Each library is exported as certfleet::<name without the prefix>; the manager facade
# (actors/manager.hpp) lives in certfleet_actors.
set(certfleet_exported certfleet_common certfleet_crypto certfleet_storage certfleet_config
                       certfleet_net certfleet_protocol certfleet_lifecycle certfleet_actors
                       certfleet_control_client
                       certfleet_caf certfleet_botan)
foreach(target ${certfleet_exported})
  string(REPLACE "certfleet_" "" name ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
endforeach()
set_target_properties(certfleet_actors PROPERTIES EXPORT_NAME manager)

install(TARGETS ${certfleet_exported} EXPORT certfleet-targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
        INCLUDES DESTINATION ${certfleet_include_dir})
# The headers keep their folders, so "actors/manager.hpp" is included as in this tree.
foreach(dir common crypto storage config net protocol actors control)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir} DESTINATION ${certfleet_include_dir}
          COMPONENT development FILES_MATCHING PATTERN "*.hpp")
endforeach()
install(EXPORT certfleet-targets NAMESPACE certfleet:: DESTINATION ${certfleet_cmake_dir}
        COMPONENT development)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/certfleet-config.cmake.in
                              ${PROJECT_BINARY_DIR}/certfleet-config.cmake
                              INSTALL_DESTINATION ${certfleet_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/certfleet-config-version.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/certfleet-config.cmake
              ${PROJECT_BINARY_DIR}/certfleet-config-version.cmake
        DESTINATION ${certfleet_cmake_dir} COMPONENT development)
