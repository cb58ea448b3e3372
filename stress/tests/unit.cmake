# unit.cmake - unit tests of stand-alone stress/ modules (included by stress/stress.cmake).
#
# stress/tests/unit/<name>_test.c is compiled with stress/<module>.c of the modules it tests and
# uses (not with the whole command) and linked with cmocka. The sources live in a subdirectory
# because every .c file of stress/tests/ is built as a plugin fixture. Some tests run compilers
# (cc, clang-14, gcc) as child processes and skip what needs one that is not installed.
if(NOT BUILD_TESTING)
  return()
endif()

get_filename_component(_ipcp_stress_dir ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)
get_filename_component(_ipcp_unit_include ${CMAKE_CURRENT_LIST_DIR}/../../core/include ABSOLUTE)
set(_ipcp_unit_dir ${CMAKE_CURRENT_LIST_DIR}/unit)
get_filename_component(_ipcp_common_dir ${CMAKE_CURRENT_LIST_DIR}/../../core/common ABSOLUTE)

# ipcp_stress_unit_test(<name> <module>...): executable stress_<name>_test, ctest stress.<name>
function(ipcp_stress_unit_test name)
  set(srcs ${_ipcp_unit_dir}/${name}_test.c ${_ipcp_unit_dir}/unitutil.c ${_ipcp_common_dir}/stats.c)
  foreach(m IN LISTS ARGN)
    list(APPEND srcs ${_ipcp_stress_dir}/${m}.c)
  endforeach()
  add_executable(stress_${name}_test ${srcs})
  target_include_directories(stress_${name}_test PRIVATE ${_ipcp_stress_dir} ${_ipcp_unit_dir}
                                                         ${_ipcp_unit_include} ${_ipcp_common_dir})
  target_compile_definitions(stress_${name}_test PRIVATE
                             IPCP_TEST_INCLUDE_DIR="${_ipcp_unit_include}")
  target_link_libraries(stress_${name}_test PRIVATE PkgConfig::CMOCKA ${CMAKE_DL_LIBS})
  add_test(NAME stress.${name} COMMAND stress_${name}_test)
  set_tests_properties(stress.${name} PROPERTIES TIMEOUT 300 ENVIRONMENT "${IPCP_TEST_ENV}")
endfunction()

ipcp_stress_unit_test(elfinfo elfinfo spawn)
ipcp_stress_unit_test(plugbuild plugbuild elfinfo spawn)
ipcp_stress_unit_test(checker checker report payload config spawn exec execfx buildinfo
                      sched/schedfmt)
target_link_libraries(stress_checker_test PRIVATE ipcproof PkgConfig::XXHASH PkgConfig::JANSSON)
ipcp_stress_unit_test(dfs dfs spawn)
ipcp_stress_unit_test(clean clean cli spawn)
target_link_libraries(stress_clean_test PRIVATE ipcproof)
ipcp_stress_unit_test(hb sched/hb spawn)
ipcp_stress_unit_test(stats spawn) # core/common/stats.c and splitmix.h

# ctest labels for the tests of this file.
ipcp_label_tests(unit)
