# Runs at install time (cmake --install, cpack): writes the systemd unit with the installed paths
# and the example configuration as <sysconfdir>/certfleet/certfleet.toml, which is /etc for the
# /usr prefix (the .deb) and <prefix>/etc otherwise. An existing configuration is kept.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(sysconfdir /etc)
else()
  set(sysconfdir ${CMAKE_INSTALL_PREFIX}/etc)
endif()
set(CMAKE_INSTALL_FULL_BINDIR ${CMAKE_INSTALL_PREFIX}/bin)
set(CERTFLEET_CONFIG_FILE ${sysconfdir}/certfleet/certfleet.toml)

set(unit_dir "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
message(STATUS "Installing: ${unit_dir}/certfleetd.service")
configure_file(${CERTFLEET_SOURCE_DIR}/config/certfleetd.service.in ${unit_dir}/certfleetd.service
               @ONLY)
file(CHMOD ${unit_dir}/certfleetd.service PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

set(config "$ENV{DESTDIR}${CERTFLEET_CONFIG_FILE}")
if(EXISTS ${config})
  message(STATUS "Up-to-date (kept): ${config}")
else()
  message(STATUS "Installing: ${config}")
  file(MAKE_DIRECTORY "$ENV{DESTDIR}${sysconfdir}/certfleet")
  file(COPY_FILE ${CERTFLEET_SOURCE_DIR}/config/certfleet.example.toml ${config})
  file(CHMOD ${config} PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
