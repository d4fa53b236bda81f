# Install rules: the three programs, the systemd unit (generated with the installed paths), the
# example configuration as <sysconfdir>/certfleet/certfleet.toml, man pages generated with help2man at build
# time, and bash completion. `cmake --install` and the .deb (cmake/package.cmake) use them.
include(GNUInstallDirs)

install(TARGETS certfleet certfleetd certfleet-agent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The unit and the configuration depend on the prefix given at install time (/usr for the .deb,
# whose configuration then goes to /etc), so cmake/install_service.cmake writes them then.
install(CODE "set(CERTFLEET_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")")
install(SCRIPT ${PROJECT_SOURCE_DIR}/cmake/install_service.cmake)
install(FILES ${PROJECT_SOURCE_DIR}/config/certfleet.example.toml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
foreach(program certfleet certfleetd certfleet-agent)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/bash-completion/${program}
          DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
endforeach()

find_program(HELP2MAN help2man)
set(man_default OFF)
if(HELP2MAN)
  set(man_default ON)
endif()
option(CERTFLEET_MAN_PAGES "Generate man pages with help2man (installed by scripts/install-deps.sh)"
       ${man_default})
if(CERTFLEET_MAN_PAGES)
  if(NOT HELP2MAN)
    message(FATAL_ERROR "CERTFLEET_MAN_PAGES needs help2man (apt-get install help2man)")
  endif()
  set(pages)
  foreach(entry "certfleet|1|manage certificate-based trust between a manager and its backup servers"
                "certfleetd|8|the certfleet manager daemon"
                "certfleet-agent|1|a certfleet backup-server endpoint or a simulated fleet of them")
    string(REPLACE "|" ";" entry "${entry}")
    list(GET entry 0 program)
    list(GET entry 1 section)
    list(GET entry 2 summary)
    set(page ${PROJECT_BINARY_DIR}/man/${program}.${section}.gz)
    add_custom_command(
      OUTPUT ${page}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
      COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section=${section} --name=${summary}
              --output=${PROJECT_BINARY_DIR}/man/${program}.${section} $<TARGET_FILE:${program}>
      COMMAND gzip -9nf ${PROJECT_BINARY_DIR}/man/${program}.${section}
      DEPENDS ${program}
      COMMENT "Generating the ${program}(${section}) man page"
      VERBATIM)
    list(APPEND pages ${page})
    install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(man_pages ALL DEPENDS ${pages})
endif()
