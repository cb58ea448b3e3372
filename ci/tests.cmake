# Tests of the nightly pipeline's parts: crash keys and verdict rows of ci/lib/nightly.py, its
# output directory rules, ci/report, its page in a real browser, the ClusterFuzzLite build
# script, and how the ci/ scripts run sanitizers without changing vm.mmap_rnd_bits. They do not
# depend on the build flavour, so they are registered in the plain flavour only (no sanitizer,
# no coverage, replay fuzz mains), each only when the tool it needs is installed (ci/deps
# installs python3, chromium and zip).
if(NOT BUILD_TESTING OR IPCP_SANITIZERS OR IPCP_COVERAGE OR NOT IPCP_FUZZ_ENGINE STREQUAL "replay")
  return()
endif()

set(IPCP_CI_DIR ${CMAKE_CURRENT_LIST_DIR})
set(IPCP_CI_FIXTURE ${IPCP_CI_DIR}/tests/fixtures/summary.json)
# Debian's python3 first: the scripts use the standard library only.
find_program(IPCP_PYTHON3 NAMES python3 HINTS /usr/bin)
find_program(IPCP_CHROMIUM NAMES chromium HINTS /usr/bin)
find_program(IPCP_CLANG14 NAMES clang-14)
find_program(IPCP_CLANGXX14 NAMES clang++-14)
find_program(IPCP_ZIP NAMES zip)
find_program(IPCP_LLVM_PROFDATA NAMES llvm-profdata-14 llvm-profdata)
find_program(IPCP_LLVM_COV NAMES llvm-cov-14 llvm-cov)

if(IPCP_PYTHON3)
  add_test(NAME ci.report.sections
           COMMAND ${IPCP_PYTHON3} ${IPCP_CI_DIR}/tests/report_test.py ${IPCP_CI_DIR}/report
                   ${IPCP_CI_FIXTURE})
  set_tests_properties(ci.report.sections PROPERTIES TIMEOUT 120 LABELS report)
  add_test(NAME ci.nightly.triage
           COMMAND ${IPCP_PYTHON3} ${IPCP_CI_DIR}/tests/nightly_test.py ${IPCP_CI_DIR}/lib/nightly.py
                   ${IPCP_CI_DIR}/tests/fixtures)
  set_tests_properties(ci.nightly.triage PROPERTIES TIMEOUT 120)
  # The nightly refuses an output directory it did not create and deletes only inside it.
  add_test(NAME ci.nightly.outdir
           COMMAND ${IPCP_PYTHON3} ${IPCP_CI_DIR}/tests/nightly_outdir_test.py ${IPCP_CI_DIR})
  set_tests_properties(ci.nightly.outdir PROPERTIES TIMEOUT 300)
  # Sanitizer runs under setarch -R on kernels with > 28 mmap bits; the sysctl is never written.
  add_test(NAME ci.aslr
           COMMAND ${IPCP_PYTHON3} ${IPCP_CI_DIR}/tests/aslr_test.py ${IPCP_CI_DIR})
  set_tests_properties(ci.aslr PROPERTIES TIMEOUT 120)
  # ci/coverage: the figures and the trend from fabricated input, then for real (a coverage build
  # of two targets in its own directory, a tiny --corpora).
  add_test(NAME ci.coverage.trend
           COMMAND ${IPCP_PYTHON3} ${IPCP_CI_DIR}/tests/coverage_test.py trend ${PROJECT_SOURCE_DIR})
  set_tests_properties(ci.coverage.trend PROPERTIES TIMEOUT 120)
  if(IPCP_CLANG14 AND IPCP_LLVM_PROFDATA AND IPCP_LLVM_COV)
    add_test(NAME ci.coverage.run
             COMMAND ${IPCP_PYTHON3} ${IPCP_CI_DIR}/tests/coverage_test.py run ${PROJECT_SOURCE_DIR}
                     ${PROJECT_BINARY_DIR}/ci-coverage-test)
    set_tests_properties(ci.coverage.run PROPERTIES TIMEOUT 1500)
  endif()
  if(IPCP_CHROMIUM)
    add_test(NAME ci.report.chromium
             COMMAND ${IPCP_PYTHON3} ${IPCP_CI_DIR}/tests/report_screenshot.py ${IPCP_CI_DIR}/report
                     ${IPCP_CI_FIXTURE} ${IPCP_CHROMIUM})
    set_tests_properties(ci.report.chromium PROPERTIES TIMEOUT 180 LABELS report)
  endif()
  if(IPCP_CLANG14 AND IPCP_CLANGXX14 AND IPCP_ZIP)
    # two builds of every target through CMake (a libFuzzer flag, a driver library)
    add_test(NAME ci.clusterfuzzlite.build
             COMMAND bash ${IPCP_CI_DIR}/tests/cflite_build.sh ${PROJECT_SOURCE_DIR})
    set_tests_properties(ci.clusterfuzzlite.build PROPERTIES TIMEOUT 900)
  endif()
endif()

# ctest labels: the report tests are `report` (above), the rest `ci`.
ipcp_label_tests(ci)
