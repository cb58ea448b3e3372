# sanrep.cmake - unit tests of the sanitizer report parser (stress/sanrep.c), included by
# stress.cmake when BUILD_TESTING is on.
#
# stress.sanrep parses the real reports in tests/unit/data/sanrep/ (remade by regen.sh there), every
# prefix and suffix of them, several reports in one text and random bytes. The parser reads text
# cut at any offset, so the test is also built with AddressSanitizer + UBSan when this build has
# no sanitizer (stress.sanrep_asan): a read past the end of the text is then a failure.

set(_sanrep_data ${CMAKE_CURRENT_LIST_DIR}/unit/data/sanrep)

add_executable(sanrep_test ${CMAKE_CURRENT_LIST_DIR}/unit/sanrep_test.c
                           ${CMAKE_CURRENT_LIST_DIR}/../sanrep.c)
target_include_directories(sanrep_test PRIVATE ${CMAKE_CURRENT_LIST_DIR}/.. ${PROJECT_SOURCE_DIR}/core/common)
target_link_libraries(sanrep_test PRIVATE PkgConfig::CMOCKA)
add_test(NAME stress.sanrep COMMAND sanrep_test ${_sanrep_data})
set_tests_properties(stress.sanrep PROPERTIES TIMEOUT 300 ENVIRONMENT "${IPCP_TEST_ENV}")

if(NOT IPCP_SANITIZERS AND NOT IPCP_COVERAGE)
  include(CheckCSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=address,undefined")
  set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=address,undefined")
  check_c_source_compiles("int main(void) { return 0; }" IPCP_HAVE_ASAN_UBSAN)
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
  if(IPCP_HAVE_ASAN_UBSAN)
    add_executable(sanrep_test_asan ${CMAKE_CURRENT_LIST_DIR}/unit/sanrep_test.c
                                    ${CMAKE_CURRENT_LIST_DIR}/../sanrep.c)
    target_include_directories(sanrep_test_asan PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..
                                                         ${PROJECT_SOURCE_DIR}/core/common)
    target_compile_options(sanrep_test_asan PRIVATE -fsanitize=address,undefined
                           -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(sanrep_test_asan PRIVATE -fsanitize=address,undefined)
    target_link_libraries(sanrep_test_asan PRIVATE PkgConfig::CMOCKA)
    add_test(NAME stress.sanrep_asan COMMAND sanrep_test_asan ${_sanrep_data})
    set_tests_properties(stress.sanrep_asan PROPERTIES TIMEOUT 300
      ENVIRONMENT "${IPCP_TEST_ENV}")
  endif()
endif()

# ctest labels for the tests of this file.
ipcp_label_tests(unit)
