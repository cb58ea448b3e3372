# tests.cmake - ctest cases of the ipcproof command (included by stress.cmake).
#
# Each case runs ipcproof through check.cmake, which checks the exit status and the violation
# kinds in the --json report. The harness.* cases prove the checker itself with a plugin that
# plants one fault at a time; the example.* cases run `ipcproof validate` on the example plugins
# (exit 1 with the right kind for the broken ones, 0 for the correct ones); builtin.* validate
# each built-in protocol. Budgets are small: the whole set must stay within a few minutes on two
# loaded cores, under the sanitizers too.

set(_ipcp_check ${CMAKE_CURRENT_SOURCE_DIR}/tests/check.cmake)
set(_ipcp_out ${CMAKE_CURRENT_BINARY_DIR}/test-reports)
file(MAKE_DIRECTORY ${_ipcp_out})
set(_ipcp_tsan_build OFF)
if(IPCP_SANITIZERS MATCHES "thread")
  set(_ipcp_tsan_build ON)
endif()
# The thread-mode cases of validate use this very binary when it is a TSan build, and no TSan
# build otherwise (a stale one from another build directory would make results depend on it).
set(_ipcp_env ${IPCP_TEST_ENV} "IPCPROOF_TSAN_BIN=" "IPCPROOF_FAULTS_LIB=")

# ipcp_stress_test(NAME <name> RC <0|1|2> [KINDS <k|k>] [NO_JSON] [DETAIL <regex>] [NOTE <regex>]
#                  [STDERR <regex>] [NOT_STDERR <regex>] [RESULT <r>] [JSON_EQ <a.b=v|...>]
#                  [JSON_GE <a.b=n|...>] [JSON_LE <a.b=n|...>]
#                  [MAX_SECONDS <n>] [GONE_PIDFILE <path>] [ENV <k=v>...]
#                  ARGS <args...>)
function(ipcp_stress_test)
  cmake_parse_arguments(T "NO_JSON"
    "NAME;RC;KINDS;TIMEOUT;DETAIL;NOTE;STDERR;NOT_STDERR;RESULT;JSON_EQ;JSON_GE;JSON_LE;MAX_SECONDS;GONE_PIDFILE"
    "ARGS;ENV" ${ARGN})
  list(JOIN T_ARGS "|" args)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set(no_json 0)
  if(T_NO_JSON)
    set(no_json 1)
  endif()
  add_test(NAME ${T_NAME}
    COMMAND ${CMAKE_COMMAND} -DIPCPROOF=$<TARGET_FILE:ipcproof_cli> "-DARGS=${args}"
            -DJSON=${_ipcp_out}/${T_NAME}.json -DEXPECT_RC=${T_RC} "-DEXPECT_KINDS=${T_KINDS}"
            -DNO_JSON=${no_json} "-DEXPECT_DETAIL=${T_DETAIL}" "-DEXPECT_NOTE=${T_NOTE}" "-DEXPECT_STDERR=${T_STDERR}"
            "-DNOT_STDERR=${T_NOT_STDERR}" -DRESULT=${T_RESULT} "-DJSON_EQ=${T_JSON_EQ}"
            "-DJSON_GE=${T_JSON_GE}" "-DJSON_LE=${T_JSON_LE}"
            -DMAX_SECONDS=${T_MAX_SECONDS} -DGONE_PIDFILE=${T_GONE_PIDFILE} -P ${_ipcp_check})
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} ENVIRONMENT
                       "${_ipcp_env};${T_ENV}")
endfunction()

set(H $<TARGET_FILE:fixture_harness>)

# --- the checker, one planted fault at a time ------------------------------------------------
ipcp_stress_test(NAME stress.harness.channel_ok RC 0
  ARGS stress --plugin ${H} --kind channel --messages 3000)
ipcp_stress_test(NAME stress.harness.channel_ok_threads RC 0
  ARGS stress --plugin ${H} --kind channel --mode thread --messages 3000)
ipcp_stress_test(NAME stress.harness.channel_ok_faults RC 0
  ARGS stress --plugin ${H} --kind channel --messages 3000 --max-size 8192
       --fault signals,short-io --fault-rate 0.1)
ipcp_stress_test(NAME stress.harness.lock_ok RC 0
  ARGS stress --plugin ${H} --kind lock --workers 4 --messages 3000)
ipcp_stress_test(NAME stress.harness.lock_ok_kill RC 0
  ARGS stress --plugin ${H} --kind lock --workers 4 --messages 3000 --fault kill)
ipcp_stress_test(NAME stress.harness.loss RC 1 KINDS loss
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=drop)
ipcp_stress_test(NAME stress.harness.duplicate RC 1 KINDS duplicate
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=dup)
# a consumer that never ends: the case deadline says it kept moving (it once read as if stuck,
# "in recv() for -0.0 s")
ipcp_stress_test(NAME stress.harness.dup_forever RC 1 KINDS "duplicate|deadlock"
  DETAIL "case deadline of [0-9.]+ s passed with the endpoints still making progress"
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=dupforever)
ipcp_stress_test(NAME stress.harness.reorder RC 1 KINDS reorder
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=reorder)
ipcp_stress_test(NAME stress.harness.crash RC 1 KINDS crash
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=crash)
ipcp_stress_test(NAME stress.harness.crash_threads RC 1 KINDS crash
  ARGS stress --plugin ${H} --kind channel --mode thread --messages 2000 --opt bug=crash)
ipcp_stress_test(NAME stress.harness.deadlock RC 1 KINDS deadlock
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=hang --stall 2)
ipcp_stress_test(NAME stress.harness.error RC 1 KINDS error
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=error)
ipcp_stress_test(NAME stress.harness.open_error RC 1 KINDS error
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=openfail)
ipcp_stress_test(NAME stress.harness.leak RC 1 KINDS leak
  ARGS stress --plugin ${H} --kind channel --messages 500 --opt bug=leak)
ipcp_stress_test(NAME stress.harness.lock_liar RC 1 KINDS error
  ARGS stress --plugin ${H} --kind lock --workers 3 --messages 2000 --opt bug=liar)
# a robust lock left unrecoverable after a death fails (ENOTRECOVERABLE is its failure, not a
# consequence of the kill to forgive), with the kill fault and at crash points
ipcp_stress_test(NAME stress.harness.lock_inconsistent RC 1 KINDS error
  DETAIL "ENOTRECOVERABLE.*after a holder died: a lock that claims IPCP_LOCK_ROBUST"
  ARGS stress --plugin ${H} --kind lock --workers 3 --messages 2000 --fault kill --seed 1
  --opt bug=inconsistent)
if(IPCP_HAVE_SCHED) # crash points need the scheduler runtime (not in sanitizer builds)
  ipcp_stress_test(NAME stress.harness.lock_inconsistent_crash_points RC 1 KINDS error
    DETAIL "ENOTRECOVERABLE.*after a holder died"
    ARGS stress --plugin ${H} --kind lock --workers 3 --crash-points --opt bug=inconsistent)
endif()
ipcp_stress_test(NAME stress.harness.lock_hides_death RC 1 KINDS error
  ARGS stress --plugin ${H} --kind lock --workers 3 --messages 2000 --fault kill --opt bug=hide)
# a stall that starts right after the kill fault says so (the user's first question)
ipcp_stress_test(NAME stress.harness.lock_swallows_death RC 1 KINDS deadlock
  DETAIL "no progress for 2.0 s, starting [0-9.]+ s after worker [0-9] was killed inside the critical section .kill fault.: a peer's death the protocol did not recover from"
  ARGS stress --plugin ${H} --kind lock --workers 3 --messages 2000 --fault kill --seed 1
  --stall 2 --opt bug=swallow)
ipcp_stress_test(NAME stress.harness.create_fails RC 2 STDERR "setup error: .*create"
  ARGS stress --plugin ${H} --kind channel --opt bug=create)
ipcp_stress_test(NAME stress.harness.bad_abi RC 2
  ARGS stress --plugin $<TARGET_FILE:fixture_badabi>)
ipcp_stress_test(NAME stress.harness.missing_plugin RC 2 STDERR "setup error: cannot load plugin"
  ARGS stress --plugin ${_ipcp_out}/no-such-plugin.so)
ipcp_stress_test(NAME stress.harness.bad_flag RC 2 NO_JSON
  ARGS stress --plugin ${H} --no-such-flag)
ipcp_stress_test(NAME stress.harness.kill_needs_processes RC 2 NO_JSON STDERR "--fault kill needs"
  ARGS stress --plugin ${H} --mode thread --fault kill)

# --- checks without blind spots -------------------------------------------------------------
ipcp_stress_test(NAME stress.harness.duplicate_of_last RC 1 KINDS duplicate DETAIL "seq 1999 "
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=duplast)
ipcp_stress_test(NAME stress.harness.send_time_covered RC 1 KINDS torn DETAIL "checksum"
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=sendtime)
ipcp_stress_test(NAME stress.harness.unknown_errno RC 1 KINDS error DETAIL "-12345"
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=weirderr)
ipcp_stress_test(NAME stress.harness.starvation RC 1 KINDS starvation
  ARGS stress --plugin ${H} --kind channel --duration 1 --opt bug=stall,after=500)
# back-pressure is not starvation: a deep unix datagram buffer and a slow consumer make a
# producer's send() time out for a few hundred ms while the consumer keeps receiving
foreach(seed 12 13 14 15)
  ipcp_stress_test(NAME stress.backpressure_not_starvation_${seed} RC 0
    ARGS stress --plugin $<TARGET_FILE:fixture_deep_dgram> --producers 2 --consumers 1
    --duration 0.43 --max-size 4096 --consumer-delay 200 --seed ${seed})
endforeach()
ipcp_stress_test(NAME stress.harness.shortio_na RC 0 RESULT n/a
  ARGS stress --proto ring --messages 2000 --fault short-io)

# --- a plugin must not be able to hang, kill or fake the supervisor ---------------------------
# Each ends with a verdict, a JSON report and nothing left running, within a fixed time.
foreach(how exit crash hang)
  set(kind crash)
  if(how STREQUAL "hang")
    set(kind deadlock)
  endif()
  ipcp_stress_test(NAME stress.hostile.constructor_${how} RC 1 KINDS ${kind} MAX_SECONDS 20
    DETAIL "constructors" ENV IPCP_HARNESS_CTOR=${how}
    ARGS stress --plugin ${H} --kind channel --messages 500 --setup-timeout 2)
  ipcp_stress_test(NAME stress.hostile.create_${how} RC 1 KINDS ${kind} MAX_SECONDS 20
    DETAIL "create\\(\\)" ARGS stress --plugin ${H} --kind channel --messages 500
    --setup-timeout 2 --opt bug=create-${how})
endforeach()
ipcp_stress_test(NAME stress.hostile.destroy_crash RC 1 KINDS crash MAX_SECONDS 20
  DETAIL "destroy\\(\\)" ARGS stress --plugin ${H} --kind channel --messages 500
  --opt bug=destroy-crash)
ipcp_stress_test(NAME stress.hostile.destroy_hang RC 1 KINDS deadlock MAX_SECONDS 20
  DETAIL "destroy\\(\\)" ARGS stress --plugin ${H} --kind channel --messages 500
  --setup-timeout 2 --opt bug=destroy-hang)
ipcp_stress_test(NAME stress.hostile.daemon RC 1 KINDS leak DETAIL "harness-daemon"
  GONE_PIDFILE ${_ipcp_out}/daemon.pid MAX_SECONDS 30
  ARGS stress --plugin ${H} --kind channel --messages 500
  --opt bug=daemon,file=${_ipcp_out}/daemon.pid)
ipcp_stress_test(NAME stress.hostile.host_dies RC 1 KINDS crash DETAIL "protocol host"
  ARGS stress --plugin ${H} --kind channel --duration 1 --opt bug=thread)
ipcp_stress_test(NAME stress.hostile.overrun RC 1 KINDS crash DETAIL "consumer 0"
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=overrun)
ipcp_stress_test(NAME stress.hostile.exit0_in_recv RC 1 KINDS crash DETAIL "exit\\(\\)"
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=exit-recv)
ipcp_stress_test(NAME stress.hostile.exit3_in_recv RC 1 KINDS crash DETAIL "exit\\(\\)"
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=exit3-recv)
ipcp_stress_test(NAME stress.hostile.exit0_in_send RC 1 KINDS crash DETAIL "exit\\(\\)"
  ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=exit-send)
ipcp_stress_test(NAME stress.hostile.exit0_in_thread RC 1 KINDS crash DETAIL "exit\\(\\)"
  ARGS stress --plugin ${H} --kind channel --mode thread --messages 2000 --opt bug=exit-recv)
# 3000 sends of 64 KiB each to stdout: the run passes, and its report stays small
ipcp_stress_test(NAME stress.hostile.stdout_flood RC 0 MAX_SECONDS 60
  ARGS stress --plugin ${H} --kind channel --messages 3000 --opt bug=flood)

# --- the small ones ---------------------------------------------------------------------------
ipcp_stress_test(NAME stress.cli.bad_seed RC 2 NO_JSON STDERR "--seed: 'garbage' is not"
  ARGS stress --plugin ${H} --seed garbage)
ipcp_stress_test(NAME stress.cli.usage_error_names_option RC 2 NO_JSON
  STDERR "--workers: '0' is not a whole number" NOT_STDERR "rerun"
  ARGS stress --plugin ${H} --workers 0)
ipcp_stress_test(NAME stress.cli.json_unwritable RC 2 NO_JSON STDERR "--json: cannot write"
  ARGS stress --plugin ${H} --json ${_ipcp_out}/no-such-dir/r.json)
ipcp_stress_test(NAME stress.cli.decimal RC 0 JSON_EQ config.workers=10
  ARGS stress --plugin ${H} --kind lock --workers 010 --messages 100)
# a plugin built with gcc's TSan (it needs libtsan.so) is refused before anything runs
add_test(NAME stress.cli.gcc_tsan_refused COMMAND bash -c
  "gcc -shared -fPIC -fsanitize=thread -I${PROJECT_SOURCE_DIR}/core/include -o \"$0/gcc-tsan.so\" \"$1\" -lpthread && ! \"$2\" stress --plugin \"$0/gcc-tsan.so\" 2>\"$0/gcc-tsan.err\"; rc=$?; cat \"$0/gcc-tsan.err\"; grep -q \"gcc's -fsanitize=thread\" \"$0/gcc-tsan.err\""
  ${_ipcp_out} ${CMAKE_CURRENT_SOURCE_DIR}/plugins/examples/good_pipe.c $<TARGET_FILE:ipcproof_cli>)
set_tests_properties(stress.cli.gcc_tsan_refused PROPERTIES ENVIRONMENT "${_ipcp_env}")
ipcp_stress_test(NAME stress.cli.watchdog_honoured RC 1 KINDS deadlock DETAIL "deadline of 3.0 s"
  MAX_SECONDS 15 ARGS stress --plugin ${H} --kind channel --messages 2000 --opt bug=hang
  --watchdog 3 --stall 60)

# --- the example plugins through `ipcproof validate` -----------------------------------------
set(_ipcp_budget --budget 10 --seed 1)
foreach(good good_pipe good_ring good_robust_mutex good_asm_spinlock)
  ipcp_stress_test(NAME stress.example.${good} RC 0
    ARGS validate --plugin $<TARGET_FILE:plugin_${good}> ${_ipcp_budget})
endforeach()
# records of PIPE_BUF bytes, refusing bigger messages: validate runs the cases that are not about
# sizes with smaller messages (halved until create() takes them), and short-io has nothing to
# cut (a read of a whole atomic record is never short: POSIX), which once failed it with -EIO
ipcp_stress_test(NAME stress.example.good_pipe_records RC 0
  JSON_EQ "cases.3.name=sizes above PIPE_BUF|cases.3.result=n/a|cases.5.name=slow consumer (max 2048 B)|cases.5.result=pass"
  ARGS validate --plugin $<TARGET_FILE:plugin_good_pipe_records> ${_ipcp_budget})
ipcp_stress_test(NAME stress.fault_short_io.whole_records_na RC 0 RESULT n/a
  ARGS stress --plugin $<TARGET_FILE:plugin_good_pipe_records> --producers 2 --consumers 2
  --max-size 1024 --messages 20000 --fault short-io --fault-rate 0.5)
# a blocking send() after poll() said writable, with a handler without SA_RESTART installed and
# EINTR treated as fatal, is right: a socket send with that much room does not sleep, and
# short-io (which once injected EINTR into any blocking socket write) must leave it alone
ipcp_stress_test(NAME stress.fault_short_io.send_with_room_na RC 0 RESULT n/a
  ARGS stress --plugin $<TARGET_FILE:fixture_poll_send> --max-size 1024 --messages 20000
  --fault short-io --fault-rate 0.5)
# the time each endpoint waited for a CPU is measured (the starvation check's excuse for an
# overloaded machine): squeezed onto one CPU beside a busy loop, it is seconds
add_test(NAME stress.cpu_wait_measured
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/scripts/cpu_wait.sh $<TARGET_FILE:ipcproof_cli>
          $<TARGET_FILE:plugin_good_pipe_records> ${_ipcp_out})
set_tests_properties(stress.cpu_wait_measured PROPERTIES TIMEOUT 120 ENVIRONMENT "${_ipcp_env}")
ipcp_stress_test(NAME stress.example.broken_pipe_bigwrites RC 1 KINDS torn
  ARGS validate --plugin $<TARGET_FILE:plugin_broken_pipe_bigwrites> ${_ipcp_budget})
ipcp_stress_test(NAME stress.example.broken_ring_early_publish RC 1 KINDS torn
  ARGS validate --plugin $<TARGET_FILE:plugin_broken_ring_early_publish> ${_ipcp_budget})
ipcp_stress_test(NAME stress.example.broken_eintr_success RC 1 KINDS loss|torn
  ARGS validate --plugin $<TARGET_FILE:plugin_broken_eintr_success> ${_ipcp_budget})
ipcp_stress_test(NAME stress.example.broken_two_tokens RC 1 KINDS exclusion
  ARGS validate --plugin $<TARGET_FILE:plugin_broken_two_tokens> ${_ipcp_budget})
ipcp_stress_test(NAME stress.example.broken_robust_lie RC 1 KINDS deadlock
  ARGS validate --plugin $<TARGET_FILE:plugin_broken_robust_lie> ${_ipcp_budget})
if(_ipcp_tsan_build)
  # Only ThreadSanitizer finds this one; here ipcproof and the plugin are both TSan builds.
  ipcp_stress_test(NAME stress.example.broken_ring_relaxed RC 1 KINDS race
    ARGS validate --plugin $<TARGET_FILE:plugin_broken_ring_relaxed> ${_ipcp_budget})
  # the race's top frames are in the JSON, not "see the output above"
  ipcp_stress_test(NAME stress.example.race_frames RC 1 KINDS race DETAIL "ThreadSanitizer: data race at"
    ARGS stress --plugin $<TARGET_FILE:plugin_broken_ring_relaxed> --mode thread --messages 20000)
endif()
if(_ipcp_tsan_build AND CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  add_test(NAME stress.plain_plugin_in_tsan
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/scripts/plain_plugin_in_tsan.sh
            $<TARGET_FILE:ipcproof_cli>
            ${CMAKE_CURRENT_SOURCE_DIR}/plugins/examples/good_asm_spinlock.c
            ${PROJECT_SOURCE_DIR}/core/include)
  set_tests_properties(stress.plain_plugin_in_tsan PROPERTIES TIMEOUT 300
    ENVIRONMENT "${_ipcp_env}")
  # good_asm_spinlock without its TSan annotations: TSan cannot see inline assembly and reports
  # the critical sections the lock orders as a race (docs/plugins.md, section 5).
  ipcp_stress_test(NAME stress.example.good_asm_spinlock_unannotated RC 1 KINDS race
    ARGS validate --plugin $<TARGET_FILE:plugin_good_asm_spinlock> --opt annotate=0 ${_ipcp_budget})
  # the race is on the harness's own counter: the detail says what that means and what to do
  ipcp_stress_test(NAME stress.example.good_asm_spinlock_unannotated_detail RC 1 KINDS race
    DETAIL "on ipcproof's critical-section counter.*__tsan_release/__tsan_acquire"
    ARGS stress --plugin $<TARGET_FILE:plugin_good_asm_spinlock> --kind lock --mode thread
    --workers 2 --messages 20000 --opt annotate=0 --seed 1)
  # correct locks ordered only by calls the TSan runtime does not see by itself (sem_clockwait,
  # the clock/timed mutex and rwlock calls, POSIX mq, SysV semaphores and queues): tsanwrap.c tells
  # it, so thread mode finds no race (it did before, each a false `race`)
  foreach(how semclock clocklock timedlock rwclock mq sysv sysvmsg)
    ipcp_stress_test(NAME stress.tsan_kernel_sync_${how} RC 0 JSON_GE "stats.acquisitions=6000"
      ARGS stress --plugin $<TARGET_FILE:fixture_kernel_sync> --kind lock --mode thread
      --workers 3 --messages 2000 --opt how=${how} --seed 1)
  endforeach()
endif()

# --- the built-in protocols ------------------------------------------------------------------
# One line per protocol of stress/protos/protos.def (by its --proto name).
file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/protos/protos.def _ipcp_proto_lines
     REGEX "^IPCP_PROTO_(CHANNEL|LOCK)\\(")
add_test(NAME stress.list COMMAND ipcproof_cli list) # also checks protos.def against the ops
add_test(NAME stress.cli.help
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/scripts/help.sh $<TARGET_FILE:ipcproof_cli>)
foreach(line IN LISTS _ipcp_proto_lines)
  if(line MATCHES "^IPCP_PROTO_(CHANNEL|LOCK)\\([A-Za-z0-9_]+, *([a-z0-9-]+)\\)")
    ipcp_stress_test(NAME stress.builtin.${CMAKE_MATCH_2} RC 0
      ARGS validate --proto ${CMAKE_MATCH_2} ${_ipcp_budget})
  endif()
endforeach()

# sysv-msg beyond validate's battery: chunked sizes around msgmax (8192 in the run's private IPC
# namespace), several producers and consumers per process and per thread, a peer SIGKILLed while
# the other side waits in a full or an empty queue (an error, not a hang)
ipcp_stress_test(NAME stress.sysv_msg.process RC 0 JSON_GE "stats.messages_received=12000"
  ARGS stress --proto sysv-msg --producers 4 --consumers 2 --min-size 8100 --max-size 24600
  --messages 3000 --seed 1)
ipcp_stress_test(NAME stress.sysv_msg.threads RC 0 JSON_GE "stats.messages_received=12000"
  ARGS stress --proto sysv-msg --mode thread --producers 4 --consumers 2 --max-size 16384
  --messages 3000 --seed 1)
ipcp_stress_test(NAME stress.sysv_msg.kill_send_blocked RC 0 MAX_SECONDS 60
  ARGS stress --proto sysv-msg --producers 2 --consumers 1 --consumer-delay 300 --max-size 9000
  --fault kill --kill-point send-blocked --seed 1)
ipcp_stress_test(NAME stress.sysv_msg.kill_recv_blocked RC 0 MAX_SECONDS 60
  ARGS stress --proto sysv-msg --producers 1 --consumers 2 --producer-delay 300
  --fault kill --kill-point recv-blocked --seed 1)
ipcp_stress_test(NAME stress.sysv_msg.small_queue RC 0
  ARGS stress --proto sysv-msg --producers 3 --consumers 1 --capacity 300 --max-size 2000
  --messages 2000 --seed 1)
# --- ring-sysv: the ring over a System V segment (ipcp_ring_create_sysv / attach_sysv) -----------
# Each process-mode endpoint attaches the segment by id (the pair's second attach marks it removed);
# chunked sizes up to 3 rings; thread mode on one mapping; a peer SIGKILLed while the other side
# waits on a full or an empty ring (an error, not a hang); leaks are looked for as for every run.
ipcp_stress_test(NAME stress.ring_sysv.process RC 0 JSON_GE "stats.messages_received=20000"
  ARGS stress --proto ring-sysv --capacity 4096 --max-size 12288 --messages 20000 --seed 1)
ipcp_stress_test(NAME stress.ring_sysv.threads RC 0 JSON_GE "stats.messages_received=20000"
  ARGS stress --proto ring-sysv --mode thread --capacity 4096 --max-size 12288 --messages 20000
  --seed 1)
ipcp_stress_test(NAME stress.ring_sysv.kill_send_blocked RC 0 MAX_SECONDS 60
  ARGS stress --proto ring-sysv --consumer-delay 300 --capacity 1024 --max-size 3000
  --fault kill --kill-point send-blocked --seed 1)
ipcp_stress_test(NAME stress.ring_sysv.kill_anywhere RC 0 MAX_SECONDS 60
  ARGS stress --proto ring-sysv --capacity 1024 --max-size 3000 --fault kill --seed 1)
# --- mq-chan: POSIX mq as a data channel (messages in chunks of mq_msgsize, core/src/mqchan.c) ---
# Sizes up to 5 chunks, several producers (chunks of producers interleave), thread mode, SIGKILL of
# an endpoint anywhere, of a producer blocked half-way through a message on a full queue and of
# the consumer blocked on the empty one (the producer is told, IPCP_E_PEERDEAD); the
# reordering variant (mq-chan-prio) with 4 producers; geometries create() must refuse.
set(_ipcp_mqc --proto mq-chan --max-size 40000 --messages 3000 --seed 1)
ipcp_stress_test(NAME stress.mqchan.process RC 0 JSON_EQ "result=pass" ARGS stress ${_ipcp_mqc})
ipcp_stress_test(NAME stress.mqchan.threads RC 0 ARGS stress ${_ipcp_mqc} --mode thread --producers 2)
ipcp_stress_test(NAME stress.mqchan.producers RC 0 ARGS stress ${_ipcp_mqc} --producers 4)
ipcp_stress_test(NAME stress.mqchan.two_consumers_one_chunk RC 0
  ARGS stress --proto mq-chan --producers 2 --consumers 2 --max-size 8160 --messages 3000 --seed 1)
ipcp_stress_test(NAME stress.mqchan.kill RC 0 ARGS stress ${_ipcp_mqc} --producers 2 --fault kill)
ipcp_stress_test(NAME stress.mqchan.kill_blocked RC 0 ARGS stress ${_ipcp_mqc}
  --producers 2 --fault kill --kill-point send-blocked --consumer-delay 100)
# the only consumer SIGKILLed while it waits on the empty queue: the producer fills the queue (seed
# 1: 12 more messages after the stop, the queue holds 10) and its blocked send() says the receiver
# died within a wait slice, not a timeout to retry
ipcp_stress_test(NAME stress.mqchan.kill_recv_blocked RC 0 MAX_SECONDS 60
  NOTE "producer 0: send.. returned IPCP_E_PEERDEAD after the kill fault"
  ARGS stress --proto mq-chan --producers 1 --consumers 1 --producer-delay 300
  --fault kill --kill-point recv-blocked --seed 1)
ipcp_stress_test(NAME stress.mqchan.prio_producers RC 0
  ARGS stress --proto mq-chan-prio --producers 4 --max-size 40000 --messages 3000 --seed 1)
# 68-byte chunks through a queue of 3: up to 30 chunks a message, interleaved by 2 producers
ipcp_stress_test(NAME stress.mqchan.small_msgsize RC 0
  ARGS stress --proto mq-chan --producers 2 --max-size 2000 --messages 3000 --seed 1
  --opt msgsize=100,maxmsg=3)
ipcp_stress_test(NAME stress.mqchan.chunked_two_consumers_refused RC 2 JSON_EQ "create_errno=22"
  ARGS stress --proto mq-chan --consumers 2 --max-size 8161 --messages 100)
# the handoff without its checksum (IPCP_HANDOFF_NO_CHECKSUM): READYs say so, none refused
ipcp_stress_test(NAME stress.handoff.no_checksum RC 0 JSON_GE "stats.messages_received=20000"
  ARGS stress --proto mq-handoff --opt checksum=0 --messages 20000 --seed 1)
ipcp_stress_test(NAME stress.mqchan.msgsize_above_limit_refused RC 2 JSON_EQ "create_errno=4110"
  ARGS stress --proto mq-chan --opt msgsize=1048577 --messages 100)

# --- condvar-queue: robust mutex + condvar bounded queue in shm (core/src/cvq.c) ---------------
# Several producers and consumers per process and per thread, two slots (every put and get waits),
# an endpoint SIGKILLed anywhere (holding the mutex: EOWNERDEAD and the repair) and while blocked on
# a full or an empty queue (a dead waiter: the others neither hang nor lose a message); a slot
# size above the limit refused.
set(_ipcp_cvq --proto condvar-queue --messages 3000 --seed 1)
ipcp_stress_test(NAME stress.cvq.process RC 0 JSON_GE "stats.messages_received=6000"
  ARGS stress ${_ipcp_cvq} --producers 2 --consumers 2)
ipcp_stress_test(NAME stress.cvq.threads RC 0 JSON_GE "stats.messages_received=12000"
  ARGS stress ${_ipcp_cvq} --mode thread --producers 4 --consumers 3)
ipcp_stress_test(NAME stress.cvq.two_slots RC 0 JSON_GE "stats.messages_received=9000"
  ARGS stress ${_ipcp_cvq} --producers 3 --consumers 2 --capacity 1)
ipcp_stress_test(NAME stress.cvq.kill RC 0 ARGS stress ${_ipcp_cvq} --producers 2 --consumers 2
  --fault kill)
ipcp_stress_test(NAME stress.cvq.kill_send_blocked RC 0 MAX_SECONDS 60
  ARGS stress ${_ipcp_cvq} --producers 3 --consumers 1 --consumer-delay 300 --capacity 4096
  --fault kill --kill-point send-blocked)
ipcp_stress_test(NAME stress.cvq.kill_recv_blocked RC 0 MAX_SECONDS 60
  ARGS stress ${_ipcp_cvq} --producers 1 --consumers 3 --producer-delay 300
  --fault kill --kill-point recv-blocked)
ipcp_stress_test(NAME stress.cvq.slot_above_limit_refused RC 2 JSON_EQ "create_errno=90"
  ARGS stress --proto condvar-queue --max-size 16777217 --messages 10)

# --- SARIF: validate's violations for code scanning, located in the plugin's source ------------
add_test(NAME stress.sarif.validate_plugin_src
  COMMAND sh -c "\"$0\" validate --plugin-src \"$1\" --budget 8 --seed 1 --sarif \"$2\" >/dev/null; rc=$?; [ $rc = 1 ] || { echo \"validate exit $rc, expected 1\"; exit 1; }; python3 \"$3\" \"$2\" torn broken_pipe_bigwrites.c"
          $<TARGET_FILE:ipcproof_cli> ${CMAKE_CURRENT_SOURCE_DIR}/plugins/examples/broken_pipe_bigwrites.c
          ${_ipcp_out}/validate_plugin_src.sarif ${CMAKE_CURRENT_SOURCE_DIR}/tests/scripts/sarif_check.py)
set_tests_properties(stress.sarif.validate_plugin_src PROPERTIES TIMEOUT 300 ENVIRONMENT "${_ipcp_env}")
# a race of the sched cases (their happens-before detector) is located in the plugin's source
if(IPCP_HAVE_SCHED)
  add_test(NAME stress.sarif.validate_sched_race
    COMMAND sh -c "\"$0\" validate --plugin-src \"$1\" --budget 8 --seed 1 --sarif \"$2\" >/dev/null; rc=$?; [ $rc = 1 ] || { echo \"validate exit $rc, expected 1\"; exit 1; }; python3 \"$3\" \"$2\" race broken_ring_relaxed.c"
            $<TARGET_FILE:ipcproof_cli> ${CMAKE_CURRENT_SOURCE_DIR}/plugins/examples/broken_ring_relaxed.c
            ${_ipcp_out}/validate_sched_race.sarif ${CMAKE_CURRENT_SOURCE_DIR}/tests/scripts/sarif_check.py)
  set_tests_properties(stress.sarif.validate_sched_race PROPERTIES TIMEOUT 300
    ENVIRONMENT "${_ipcp_env};IPCPROOF_TSAN_BIN=")
endif()
ipcp_stress_test(NAME stress.sarif.bad_path RC 2 NO_JSON STDERR "--sarif: cannot write"
  ARGS validate --proto ring --sarif /nonexistent/dir/x.sarif)

# --- the GitHub Action's script, as a runner runs it (ci/action.sh, action.yml) --------------------
add_test(NAME stress.action
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/scripts/action_test.sh $<TARGET_FILE:ipcproof_cli>
          ${PROJECT_SOURCE_DIR})
set_tests_properties(stress.action PROPERTIES TIMEOUT 300 ENVIRONMENT "${_ipcp_env}")

# --- the .deb: built with CPack, unpacked, used from there (stress/package.cmake) -----------------
# A consumer of the unpacked library is built in plain flavours only (sanitizer and coverage
# flags would have to be repeated by the consumer, as for core.install_consumer).
if(NOT IPCP_SANITIZERS AND NOT IPCP_COVERAGE AND IPCP_FUZZ_ENGINE STREQUAL "replay")
  set(_ipcp_pkg_consumer ${PROJECT_SOURCE_DIR}/core/tests/install)
else()
  set(_ipcp_pkg_consumer "")
endif()
add_test(NAME stress.package
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/scripts/package_test.sh ${CMAKE_BINARY_DIR}
          "${_ipcp_pkg_consumer}" ${CMAKE_C_COMPILER})
set_tests_properties(stress.package PROPERTIES TIMEOUT 300 ENVIRONMENT "${_ipcp_env}" LABELS install)

# --- --fault stop: one endpoint SIGSTOPped 50..500 ms; a correct protocol only waits --------------
ipcp_stress_test(NAME stress.fault_stop.channel RC 0 NOTE "stop fault: .* stopped for [0-9]+ ms"
  ARGS stress --proto frame-pipe --producers 2 --messages 30000 --fault stop --seed 6)
ipcp_stress_test(NAME stress.fault_stop.lock RC 0
  NOTE "stop fault: worker [0-9] stopped for [0-9]+ ms in critical section"
  ARGS stress --proto robust-mutex --workers 4 --messages 3000 --fault stop --seed 6)
ipcp_stress_test(NAME stress.fault_stop.thread_mode_refused RC 2 NO_JSON
  STDERR "--fault stop needs --mode process" ARGS stress --proto ring --mode thread --fault stop)

# --- verification cost: verified and unverified rate of one transport in one run ------------------
ipcp_stress_test(NAME stress.overhead RC 0
  ARGS stress --proto frame-pipe --messages 20000 --overhead)

# --- interruption and parallel runs ------------------------------------------------------------
add_test(NAME stress.interrupt
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/scripts/interrupt.sh $<TARGET_FILE:ipcproof_cli> ${H})
add_test(NAME stress.parallel_runs
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/scripts/parallel.sh $<TARGET_FILE:ipcproof_cli>)
set_tests_properties(stress.interrupt stress.parallel_runs PROPERTIES TIMEOUT 300
  ENVIRONMENT "${_ipcp_env}")

# a consumer killed while waiting: the other one does not wait ST_DRAIN_MS (2 s of 50 ms receive
# timeouts, ~40 retries) for a message the dead one took with it; a 0.2 s run retries <= 4 times.
# Whether the victim had a message in hand when it died depends on timing: six seeds.
foreach(seed RANGE 1 6)
  ipcp_stress_test(NAME stress.kill.consumer_not_waited_for_${seed} RC 0
    JSON_LE "stats.endpoints.1.retries=10|stats.endpoints.2.retries=10"
    NOTE "loss not checked: a consumer died"
    ARGS stress --plugin $<TARGET_FILE:plugin_good_pipe> --producers 1 --consumers 2
    --producer-delay 300 --fault kill --kill-point recv-blocked --duration 0.2 --seed ${seed})
endforeach()

# a lock that excludes processes only (POSIX record locks), declared so: passes between
# processes, n/a in thread mode (stress/tests/blocking_locks.c; sched mode: sched.cmake)
foreach(how fcntl lockf)
  ipcp_stress_test(NAME stress.processes_only_${how} RC 0 ENV IPCP_FIXTURE_PROCESSES=1
    JSON_GE "stats.acquisitions=3000"
    ARGS stress --plugin $<TARGET_FILE:fixture_blocking_locks> --kind lock --workers 3
    --messages 1000 --opt how=${how} --seed 1)
endforeach()
ipcp_stress_test(NAME stress.processes_only_thread_na RC 0 RESULT n/a ENV IPCP_FIXTURE_PROCESSES=1
  DETAIL "declares IPCP_LOCK_PROCESSES.*thread mode"
  ARGS stress --plugin $<TARGET_FILE:fixture_blocking_locks> --kind lock --mode thread
  --workers 3 --messages 1000 --opt how=fcntl --seed 1)

# a producer's close() that loses its last partial batch of 8 (harness bug=lastbatch) is loss;
# validate finds it: its message caps are odd multiples of a prime, and after the clock stops a
# run each producer sends a few more messages (from the seed), so its runs do not end on a batch
# boundary (one clock-ended run still does 1 time in 8; validate's many cases do not all miss)
ipcp_stress_test(NAME stress.harness.last_batch_lost RC 1 KINDS loss
  ARGS stress --plugin ${H} --kind channel --messages 1003 --seed 1 --opt bug=lastbatch)
ipcp_stress_test(NAME stress.harness.last_batch_lost_validate RC 1 KINDS loss
  ARGS validate --plugin ${H} --kind channel --budget 5 --seed 1 --opt bug=lastbatch)

# --- validate on hostile plugins: a verdict and a report within the budget and a fixed margin ----
foreach(how exit crash hang)
  set(kind crash)
  if(how STREQUAL "hang")
    set(kind deadlock)
  endif()
  ipcp_stress_test(NAME stress.validate_hostile.constructor_${how} RC 1 KINDS ${kind}
    MAX_SECONDS 25 ENV IPCP_HARNESS_CTOR=${how}
    ARGS validate --plugin ${H} --kind channel --budget 5 --seed 1)
  ipcp_stress_test(NAME stress.validate_hostile.create_${how} RC 1 KINDS ${kind} MAX_SECONDS 25
    ARGS validate --plugin ${H} --kind channel --budget 5 --seed 1 --opt bug=create-${how})
endforeach()
foreach(bug destroy-crash destroy-hang overrun exit-recv flood daemon)
  set(rc 1)
  set(kinds crash)
  if(bug STREQUAL "destroy-hang")
    set(kinds deadlock)
  elseif(bug STREQUAL "flood")
    set(rc 0)
  elseif(bug STREQUAL "daemon")
    set(kinds leak)
  endif()
  ipcp_stress_test(NAME stress.validate_hostile.${bug} RC ${rc} KINDS ${kinds} MAX_SECONDS 25
    ARGS validate --plugin ${H} --kind channel --budget 5 --seed 1 --opt bug=${bug})
endforeach()
# a channel that stops delivering after 100 messages: starvation, never PASS (after 100, not
# 500: every case's share of the budget carries that many even in the TSan build)
ipcp_stress_test(NAME stress.validate_hostile.stall RC 1 KINDS starvation|deadlock MAX_SECONDS 40
  ARGS validate --plugin ${H} --kind channel --budget 10 --seed 1 --opt bug=stall,after=100)
# the budget is spent: more rounds with new seeds until it is used
ipcp_stress_test(NAME stress.validate.spends_budget RC 0 JSON_EQ "result=pass"
  JSON_GE "runs=10|seconds=8"
  ARGS validate --plugin ${H} --kind lock --budget 12 --seed 1)

# --- validate --plugin-src: C++ with --cflags, and a source that does not compile ----------------
ipcp_stress_test(NAME stress.validate.cpp_plugin_src RC 0 JSON_EQ "options=|protocol=example-cpp-ticket-lock"
  ARGS validate --plugin-src ${CMAKE_CURRENT_SOURCE_DIR}/plugins/examples/good_cpp_ticket_lock.cpp
  --cflags -std=c++17 --budget 8 --seed 1)
ipcp_stress_test(NAME stress.validate.build_fails RC 2 STDERR "building .*syntax_error.c failed"
  ARGS validate --plugin-src ${CMAKE_CURRENT_SOURCE_DIR}/tests/sources/syntax_error.c --budget 5)
ipcp_stress_test(NAME stress.validate.options_recorded RC 0 JSON_EQ "options=after=100"
  ARGS validate --plugin ${H} --kind lock --opt after=100 --budget 3 --seed 2)

# ctest labels for the tests of this file.
ipcp_label_tests(stress)
