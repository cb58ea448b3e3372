# package.cmake - CPack: a .deb and a .tar.gz of ipcproof (included by stress/CMakeLists.txt, so
# only a top-level build packages). `cpack -G DEB` (or TGZ) in the build directory after the
# build. The packages hold: ipcproof and, when IPCP_TSAN_TWIN names one, its ThreadSanitizer twin
# as ipcproof-tsan (found by `validate` next to ipcproof); the interposer and scheduler libraries;
# libipcproof, static and shared (core/CMakeLists.txt), its headers, pkg-config and CMake
# package files; the man page, bash completion, the docs and the examples.
set(IPCP_TSAN_TWIN "" CACHE FILEPATH
    "an ipcproof built with the tsan preset, packaged as ipcproof-tsan (empty: none)")
if(IPCP_TSAN_TWIN)
  install(PROGRAMS ${IPCP_TSAN_TWIN} DESTINATION ${CMAKE_INSTALL_BINDIR} RENAME ipcproof-tsan)
endif()
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/ipcproof.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/ipcproof.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME ipcproof)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/plugins/examples/
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/plugins)
install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/exec/examples/
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/exec USE_SOURCE_PERMISSIONS)

set(CPACK_PACKAGE_NAME ipcproof)
set(CPACK_PACKAGE_VENDOR "ipcproof")
set(CPACK_PACKAGE_CONTACT "ipcproof developers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "proof that an inter-process communication protocol holds: stress, faults, schedules")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR "DEB;TGZ")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES OFF) # the symbolizer reads ipcproof's own frames
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6, libjansson4, libxxhash0")
# validate --plugin-src compiles plugins; programs as endpoints are often Python
# (and libxxhash-dev: linking the static libipcproof, and pkg-config's view of ipcproof.pc)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "clang-14, libclang-rt-14-dev, gcc, python3, libxxhash-dev")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "ipcproof runs a protocol (a plugin, a built-in, or your own programs) through stress\n cases, fault injection and controlled schedules, and says what broke: loss, duplicates,\n reordering, torn messages, exclusion, deadlock, crashes, races and leaks.")
include(CPack)
