# ctest driver: configure the FetchContent consumer of this source tree in a scratch directory
# (its CMakeLists.txt fails if ipcproof defines more than its library), build it, run its program
# and check that ctest in the consumer's tree sees the consumer's one test only.
foreach(v IPCPROOF_SOURCE_DIR SRC_DIR WORK_DIR C_COMPILER)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run.cmake needs -D${v}=")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC_DIR} -B ${WORK_DIR}
                -DCMAKE_C_COMPILER=${C_COMPILER} -DIPCPROOF_SOURCE_DIR=${IPCPROOF_SOURCE_DIR}
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the FetchContent consumer failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the FetchContent consumer failed: ${rc}")
endif()
execute_process(COMMAND ${WORK_DIR}/fetch_consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "fetch_consumer failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_CTEST_COMMAND} --test-dir ${WORK_DIR} -N
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(rc OR NOT out MATCHES "Total Tests: 1\n" OR NOT out MATCHES "fetch_consumer")
  message(FATAL_ERROR "the consumer's ctest should list its one test only:\n${out}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
