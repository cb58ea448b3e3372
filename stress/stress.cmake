# stress.cmake - the ipcproof command, its short-io interposer, the example plugins and the
# ctest cases that prove the harness catches each bug class (included by stress/CMakeLists.txt).
#
# Built-in protocols are stress/protos/<name>.c, picked up by name, each registered by one line
# in stress/protos/protos.def.

file(GLOB IPCP_STRESS_PROTOS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/protos/*.c)
# `ipcproof bench`: stress/bench/, a driver, the pair runner, the raw baselines, one file a family.
file(GLOB IPCP_BENCH_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/bench/*.c)

# Where `validate` finds a ThreadSanitizer build of ipcproof for the thread-mode cases (the tsan
# preset's build dir by default; IPCPROOF_TSAN_BIN overrides it at run time).
set(IPCP_TSAN_BIN "${PROJECT_SOURCE_DIR}/build/tsan/stress/ipcproof" CACHE STRING
    "ipcproof built with -fsanitize=thread, used by `ipcproof validate` for thread-mode cases")

# Where `validate` finds a build without sanitizers for the sched cases (the default preset's).
set(IPCP_PLAIN_BIN "${PROJECT_SOURCE_DIR}/build/default/stress/ipcproof" CACHE STRING
    "ipcproof built without sanitizers, used by `ipcproof validate` for sched-mode cases")

file(RELATIVE_PATH _ipcp_bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})

# The executable is named ipcproof; the target has another name because the library is ipcproof.
add_executable(ipcproof_cli ${IPCP_STRESS_SOURCES} ${IPCP_STRESS_PROTOS} ${IPCP_BENCH_SOURCES}
                            ${CMAKE_CURRENT_SOURCE_DIR}/sched/schedfmt.c
                            ${PROJECT_SOURCE_DIR}/core/common/stats.c)
set_target_properties(ipcproof_cli PROPERTIES OUTPUT_NAME ipcproof)
target_include_directories(ipcproof_cli PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}
                                               ${PROJECT_SOURCE_DIR}/core/common)
target_link_libraries(ipcproof_cli PRIVATE ipcproof PkgConfig::XXHASH PkgConfig::JANSSON
                                           Threads::Threads ${CMAKE_DL_LIBS})
target_compile_definitions(ipcproof_cli PRIVATE
  IPCP_VERSION="${PROJECT_VERSION}"
  IPCP_BUILD_SANITIZERS="${IPCP_SANITIZERS}"
  IPCP_BUILD_CC="${CMAKE_C_COMPILER}"
  IPCP_TSAN_BIN_DEFAULT="${IPCP_TSAN_BIN}"
  IPCP_PLAIN_BIN_DEFAULT="${IPCP_PLAIN_BIN}"
  IPCP_INCLUDE_DIR_BUILD="${PROJECT_SOURCE_DIR}/core/include"
  IPCP_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  IPCP_INCLUDE_DIR_INSTALL="${CMAKE_INSTALL_FULL_INCLUDEDIR}"
  IPCP_BIN_TO_LIBDIR="${_ipcp_bin_to_lib}")
install(TARGETS ipcproof_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The TSan build tells ThreadSanitizer the ordering it cannot see (stress/tsanwrap.c): those
# definitions must be what a dlopen()ed plugin's calls resolve to.
if(IPCP_SANITIZERS MATCHES "thread")
  foreach(sym sem_clockwait pthread_mutex_clocklock pthread_mutex_timedlock
              pthread_rwlock_clockrdlock pthread_rwlock_clockwrlock mq_send mq_timedsend
              mq_receive mq_timedreceive semop semtimedop msgsnd msgrcv)
    target_link_options(ipcproof_cli PRIVATE "LINKER:--export-dynamic-symbol=${sym}")
  endforeach()
endif()

# libipcproof-faults.so: the LD_PRELOAD interposer of --fault short-io, kept next to ipcproof in
# the build tree and installed in the libdir. Never instrumented (no sanitizer, coverage or
# fuzzer flags): it is also preloaded into the user's programs (exec endpoints), which have no
# sanitizer runtime to resolve its callbacks; in an instrumented ipcproof it sits behind the
# sanitizer's interceptors, which is all it needs.
add_library(ipcproof_faults SHARED ${CMAKE_CURRENT_SOURCE_DIR}/faults/faults.c)
set_target_properties(ipcproof_faults PROPERTIES OUTPUT_NAME ipcproof-faults
  C_VISIBILITY_PRESET hidden NO_SONAME ON COMPILE_OPTIONS "-Wall;-Wextra;-g;-O2" LINK_OPTIONS "")
target_include_directories(ipcproof_faults PRIVATE ${PROJECT_SOURCE_DIR}/core/common)
target_link_libraries(ipcproof_faults PRIVATE ${CMAKE_DL_LIBS})
install(TARGETS ipcproof_faults LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
add_dependencies(ipcproof_cli ipcproof_faults)

# libipcproof-sched.so: the scheduler runtime of --mode sched, preloaded like the interposer
# above (stress/sched/schedapi.h). Not in sanitizer or coverage builds: their runtimes define
# the same callbacks and interceptors first, and a TSan build already is ThreadSanitizer.
if(NOT IPCP_SANITIZERS AND NOT IPCP_COVERAGE AND NOT IPCP_FUZZ_ENGINE STREQUAL "libfuzzer")
  add_library(ipcproof_sched SHARED ${CMAKE_CURRENT_SOURCE_DIR}/sched/schedrt.c
                                    ${CMAKE_CURRENT_SOURCE_DIR}/sched/tsancb.c
                                    ${CMAKE_CURRENT_SOURCE_DIR}/sched/hb.c
                                    ${CMAKE_CURRENT_SOURCE_DIR}/sched/crashpt.c
                                    ${CMAKE_CURRENT_SOURCE_DIR}/sched/places.c
                                    ${CMAKE_CURRENT_SOURCE_DIR}/sched/interpose.c
                                    ${CMAKE_CURRENT_SOURCE_DIR}/sched/interpose_ipc.c
                                    ${CMAKE_CURRENT_SOURCE_DIR}/sched/interpose_lock.c)
  set_target_properties(ipcproof_sched PROPERTIES OUTPUT_NAME ipcproof-sched
    C_VISIBILITY_PRESET hidden NO_SONAME ON)
  target_compile_options(ipcproof_sched PRIVATE -fno-builtin -O2)
  target_include_directories(ipcproof_sched PRIVATE ${PROJECT_SOURCE_DIR}/core/common)
  target_link_libraries(ipcproof_sched PRIVATE ${CMAKE_DL_LIBS} atomic rt)
  install(TARGETS ipcproof_sched LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  add_dependencies(ipcproof_cli ipcproof_sched)
  set(IPCP_HAVE_SCHED ON)
  # libipcproof-protos-sched.so: the built-in protocols over a copy of core/ compiled with the
  # -fsanitize=thread instrumentation only (its callbacks: the preloaded runtime above), loaded
  # for `--proto NAME --mode sched` and crash points (stress/sched/builtins.c).
  file(GLOB _ipcp_core_src CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/core/src/*.c)
  add_library(ipcproof_protos_sched MODULE ${_ipcp_core_src} ${IPCP_STRESS_PROTOS}
                                           ${CMAKE_CURRENT_SOURCE_DIR}/sched/builtins.c)
  set_target_properties(ipcproof_protos_sched PROPERTIES OUTPUT_NAME ipcproof-protos-sched
    PREFIX lib C_VISIBILITY_PRESET hidden NO_SONAME ON)
  target_include_directories(ipcproof_protos_sched PRIVATE ${PROJECT_SOURCE_DIR}/core/include
                                                           ${PROJECT_SOURCE_DIR}/core/src
                                                           ${PROJECT_SOURCE_DIR}/core/common)
  target_compile_options(ipcproof_protos_sched PRIVATE -fsanitize=thread)
  target_link_options(ipcproof_protos_sched PRIVATE
                      LINKER:--version-script=${CMAKE_CURRENT_SOURCE_DIR}/sched/builtins.map)
  set_target_properties(ipcproof_protos_sched PROPERTIES
                        LINK_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/sched/builtins.map)
  target_link_libraries(ipcproof_protos_sched PRIVATE PkgConfig::XXHASH Threads::Threads rt)
  install(TARGETS ipcproof_protos_sched LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  add_dependencies(ipcproof_cli ipcproof_protos_sched)
endif()

# Example plugins (stress/plugins/examples/<name>.c -> plugins/<name>.so). They include only
# <ipcproof/plugin.h>, exactly like a user's plugin.
file(GLOB IPCP_EXAMPLE_PLUGINS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/plugins/examples/*.c)
set(IPCP_PLUGIN_TARGETS)
foreach(src IN LISTS IPCP_EXAMPLE_PLUGINS)
  get_filename_component(name ${src} NAME_WE)
  add_library(plugin_${name} MODULE ${src})
  set_target_properties(plugin_${name} PROPERTIES PREFIX "" OUTPUT_NAME ${name}
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/plugins)
  target_include_directories(plugin_${name} PRIVATE ${PROJECT_SOURCE_DIR}/core/include)
  target_link_libraries(plugin_${name} PRIVATE Threads::Threads)
  list(APPEND IPCP_PLUGIN_TARGETS plugin_${name})
endforeach()

# Fixtures that test the harness itself (stress/tests/<name>.c -> fixture_<name>.so).
file(GLOB IPCP_STRESS_FIXTURES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/*.c)
foreach(src IN LISTS IPCP_STRESS_FIXTURES)
  get_filename_component(name ${src} NAME_WE)
  add_library(fixture_${name} MODULE ${src})
  set_target_properties(fixture_${name} PROPERTIES PREFIX "" OUTPUT_NAME fixture_${name}
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/plugins)
  target_include_directories(fixture_${name} PRIVATE ${PROJECT_SOURCE_DIR}/core/include)
  target_link_libraries(fixture_${name} PRIVATE Threads::Threads rt)
endforeach()

if(BUILD_TESTING)
  include(${CMAKE_CURRENT_SOURCE_DIR}/tests/tests.cmake)
  include(${CMAKE_CURRENT_SOURCE_DIR}/tests/exec.cmake)
  include(${CMAKE_CURRENT_SOURCE_DIR}/tests/unit.cmake)
  include(${CMAKE_CURRENT_SOURCE_DIR}/tests/sanrep.cmake)
  include(${CMAKE_CURRENT_SOURCE_DIR}/tests/sched.cmake)
endif()
include(${CMAKE_CURRENT_SOURCE_DIR}/bench/bench.cmake)
