# bench.cmake - ctest cases of `ipcproof bench` (included by stress.cmake, which picks up the
# sources of stress/bench/). The smoke run checks that every row is measured and the
# JSON is well formed; it is never a timed test.
if(BUILD_TESTING)
  add_test(NAME stress.bench_smoke
    COMMAND ${CMAKE_COMMAND} -DIPCPROOF=$<TARGET_FILE:ipcproof_cli> -DSCHED=${IPCP_HAVE_SCHED}
            -DJSON=${CMAKE_CURRENT_BINARY_DIR}/test-reports/bench_smoke.json
            -P ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_check.cmake)
  set_tests_properties(stress.bench_smoke PROPERTIES TIMEOUT 300 ENVIRONMENT "${IPCP_TEST_ENV}"
                       LABELS bench)
  # met / missed / noisy follow from each row's own repetitions (and the load)
  add_test(NAME stress.bench_verdicts
    COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/tests/scripts/bench_verdicts.py
            $<TARGET_FILE:ipcproof_cli>)
  set_tests_properties(stress.bench_verdicts PROPERTIES TIMEOUT 300
                       ENVIRONMENT "${IPCP_TEST_ENV}" LABELS bench)
endif()
