# CPack: `cpack -G DEB` in the build directory makes certfleet_<version>_<arch>.deb. Its Depends
# are computed by dpkg-shlibdeps (dpkg-dev) from the binaries; the maintainer scripts in
# packaging/debian create the `certfleet` system user and the state directory, install the unit
# disabled, and remove everything on purge.
set(CPACK_PACKAGE_NAME certfleet)
set(CPACK_PACKAGE_VENDOR certfleet)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "certfleet maintainers <certfleet@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "certificate-based trust between a manager and a fleet of backup servers")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Install with DESTDIR and the real prefix, so cmake/install_service.cmake sees /usr.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# useradd and userdel (passwd) in the maintainer scripts, on top of the shared libraries.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# The service only: the headers, libraries and CMake package for embedding (cmake/embedding.cmake,
# component `development`) stay out of the .deb.
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};certfleet;Unspecified;/")
include(CPack)
