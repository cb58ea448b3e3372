# exec.cmake - ctest cases of black-box endpoints (--exec-producer/--exec-consumer, docs/exec.md):
# the example programs with their expected verdicts, and the contract, one way of breaking it at a
# time (stress/exec/tests/contract.py). Included by stress.cmake after tests.cmake, whose
# ipcp_stress_test() they use. The programs are Python 3 and /bin/sh.
set(_ipcp_ex ${CMAKE_CURRENT_SOURCE_DIR}/exec/examples)
set(_ipcp_fifo_pair --exec-producer ${_ipcp_ex}/fifo_producer.py
    --exec-consumer ${_ipcp_ex}/fifo_consumer.py --exec-setup ${_ipcp_ex}/fifo_setup.sh
    --exec-teardown ${_ipcp_ex}/fifo_teardown.sh --fifo)
set(_ipcp_shell_pair --exec-producer ${_ipcp_ex}/shell_producer.sh
    --exec-consumer ${_ipcp_ex}/shell_consumer.sh --exec-setup ${_ipcp_ex}/shell_setup.sh
    --exec-teardown ${_ipcp_ex}/fifo_teardown.sh --fifo)

# --- the examples ------------------------------------------------------------------------------
# the Python FIFO pair: chunks of at most PIPE_BUF, whole under every case validate runs
ipcp_stress_test(NAME stress.exec.example.fifo_pair RC 0
  JSON_EQ "exec.fifo=ON" JSON_GE "runs=8"
  ARGS validate ${_ipcp_fifo_pair} --budget 15 --seed 1)
# the same pair writing whole records: above PIPE_BUF, four producers' records interleave
ipcp_stress_test(NAME stress.exec.example.fifo_pair_unframed RC 1 KINDS torn
  ARGS stress ${_ipcp_fifo_pair} --opt unframed=1 --producers 4 --min-size 8192
       --max-size 65536 --messages 300 --seed 1)
ipcp_stress_test(NAME stress.exec.example.fifo_pair_kill RC 0
  ARGS stress ${_ipcp_fifo_pair} --producers 3 --max-size 16384 --messages 2000 --fault kill
       --kill-point send-blocked --consumer-delay 300 --seed 2)
# the shell pair (cat into a FIFO, cat out of it): one writer, one reader
ipcp_stress_test(NAME stress.exec.example.shell_pair RC 0
  ARGS stress ${_ipcp_shell_pair} --messages 20000 --max-size 65536 --seed 1)
ipcp_stress_test(NAME stress.exec.example.shell_pair_declines RC 2 DETAIL "EOPNOTSUPP|not supported"
  ARGS stress ${_ipcp_shell_pair} --producers 2 --messages 100 --seed 1)

# lock contenders: fcntl.lockf (correct and robust: a holder killed inside its critical section
# hands the lock on) and a check-then-create lock file (exclusion)
set(_ipcp_lockf --exec-worker ${_ipcp_ex}/lockf_worker.py --exec-teardown ${_ipcp_ex}/lock_teardown.sh)
ipcp_stress_test(NAME stress.exec.example.lockf_worker RC 0 JSON_EQ "exec.robust=ON"
  JSON_GE "runs=5" ARGS validate ${_ipcp_lockf} --robust --budget 10 --seed 1)
ipcp_stress_test(NAME stress.exec.example.lockf_worker_kill_holder RC 0
  ARGS stress ${_ipcp_lockf} --robust --workers 4 --messages 300 --fault kill --seed 1)
ipcp_stress_test(NAME stress.exec.example.exists_worker RC 1 KINDS exclusion
  ARGS stress --exec-worker ${_ipcp_ex}/exists_worker.py --exec-teardown ${_ipcp_ex}/lock_teardown.sh
       --workers 4 --messages 300 --seed 1)

# the C pair: slots in POSIX shm, semaphores as counters and as mutexes (the textbook version)
add_executable(exec_shm_sem_pair ${_ipcp_ex}/shm_sem_pair.c)
set(_ipcp_shmsem $<TARGET_FILE:exec_shm_sem_pair>)
ipcp_stress_test(NAME stress.exec.example.shm_sem_pair RC 0
  ARGS stress --exec-producer ${_ipcp_shmsem} --exec-consumer ${_ipcp_shmsem}
       --exec-setup ${_ipcp_shmsem} --exec-teardown ${_ipcp_shmsem} --fifo --producers 2
       --consumers 2 --messages 20000 --max-size 4096 --seed 1)

# --- short-io and signals in the programs (the interposer through LD_PRELOAD) -------------------
# the C FIFO pair: careful, or careless in a way only a fault shows (--opt bug=short: a short
# read taken for the whole message; bug=eintr: EINTR is fatal). Built without sanitizer or
# coverage flags (a static link takes none), and once statically linked: LD_PRELOAD cannot
# reach that one, so its faults are n/a, never a pass.
add_executable(exec_fifo_pair ${_ipcp_ex}/fifo_pair.c)
add_executable(exec_fifo_pair_static ${_ipcp_ex}/fifo_pair.c)
set_target_properties(exec_fifo_pair exec_fifo_pair_static PROPERTIES
  COMPILE_OPTIONS "-Wall;-Wextra;-g;-O2" LINK_OPTIONS "")
set_target_properties(exec_fifo_pair_static PROPERTIES POSITION_INDEPENDENT_CODE OFF)
target_link_options(exec_fifo_pair_static PRIVATE -static)
set(_ipcp_cfifo $<TARGET_FILE:exec_fifo_pair>)
set(_ipcp_cpair_fifo --exec-producer ${_ipcp_cfifo} --exec-consumer ${_ipcp_cfifo}
    --exec-setup ${_ipcp_cfifo} --exec-teardown ${_ipcp_cfifo} --fifo --max-size 1024
    --messages 5000 --seed 1)
# the careless reader is wrong for records above PIPE_BUF (written in pieces), right for smaller
# ones (an atomic write is read whole: POSIX), which short-io must not cut short
ipcp_stress_test(NAME stress.exec.faults.short_read_caught RC 1 KINDS torn
  DETAIL "checksum mismatch" ARGS stress ${_ipcp_cpair_fifo} --min-size 4097 --max-size 16384
  --opt bug=short --fault short-io)
# not failed, whether or not short-io found a call that would sleep (small records are never cut
# short; EINTR only where the reader would wait): pass, or n/a when nothing could be injected
ipcp_stress_test(NAME stress.exec.faults.short_read_small_records_pass RC 0 RESULT "pass|n/a"
  ARGS stress ${_ipcp_cpair_fifo} --opt bug=short --fault short-io --fault-rate 0.5)
ipcp_stress_test(NAME stress.exec.faults.short_read_unfaulted RC 0
  ARGS stress ${_ipcp_cpair_fifo} --opt bug=short)
ipcp_stress_test(NAME stress.exec.faults.eintr_caught RC 1 KINDS error
  DETAIL "'s program exited.*status [13]" ARGS stress ${_ipcp_cpair_fifo} --opt bug=eintr
  --fault signals)
# programs that end before the first look at /proc: the interposer's own count of the images it
# started in says it was there (a quick run was n/a 1 time in 4, and in the TSan build often).
# Records above PIPE_BUF: their reads can come back short whether or not the reader would sleep,
# so even a quick run has faults to count
foreach(seed 1 2 3 4)
  ipcp_stress_test(NAME stress.exec.faults.quick_programs_${seed} RC 0 RESULT pass
    ARGS stress ${_ipcp_cpair_fifo} --messages 50 --min-size 4097 --max-size 16384
         --fault short-io --fault-rate 0.5 --seed ${seed})
endforeach()
ipcp_stress_test(NAME stress.exec.faults.eintr_unfaulted RC 0
  ARGS stress ${_ipcp_cpair_fifo} --opt bug=eintr)
set(_ipcp_both "signal storm: [1-9][0-9]* SIGURGs taken.*short-io: [1-9][0-9]* short counts")
ipcp_stress_test(NAME stress.exec.faults.c_pair RC 0 NOTE "${_ipcp_both}"
  ARGS stress ${_ipcp_cpair_fifo} --fault short-io,signals --fault-rate 0.2)
# a reader that polls before each read() and treats EINTR from read() as fatal is right: a read
# that finds data does not sleep, and short-io interrupts only a call that would. Its reads never
# sleep and the writer never finds the pipe full: nothing to inject, n/a (not a false error)
ipcp_stress_test(NAME stress.exec.faults.poll_then_read_na RC 0 RESULT n/a
  NOTE "signal storm: [1-9][0-9]* SIGURGs taken"
  ARGS stress ${_ipcp_cpair_fifo} --opt poll=1 --fault short-io,signals --fault-rate 0.5)
# the correct Python example stands both faults; the shell pair stands short-io. Not signals:
# `cat FIFO` does not retry an open() that a signal interrupted ("cat: ...fifo: Interrupted
# system call"), which happens when a SIGURG lands while the consumer waits for the producer to
# open its end - a program that installs a handler without SA_RESTART must retry there, and the
# shell pair's consumer is plain cat (docs/exec.md)
ipcp_stress_test(NAME stress.exec.faults.fifo_pair RC 0 NOTE "${_ipcp_both}"
  ARGS stress ${_ipcp_fifo_pair} --producers 3 --messages 3000 --max-size 16384
       --fault short-io,signals --seed 1)
ipcp_stress_test(NAME stress.exec.faults.shell_pair RC 0
  NOTE "short-io: [1-9][0-9]* short counts"
  ARGS stress ${_ipcp_shell_pair} --messages 5000 --max-size 65536 --fault short-io --seed 1)
set(_ipcp_flock --exec-worker ${_ipcp_ex}/flock_worker.sh --exec-teardown ${_ipcp_ex}/lock_teardown.sh)
# a shell worker starts flock(1) twice per acquisition and /bin/true 3 times: programs that exit
# while they still load once filled the table of those in their grace time, and the next one was
# judged at once "without the interposer" (n/a every time with 4 workers)
foreach(seed 1 2 3)
  ipcp_stress_test(NAME stress.exec.faults.flock_worker_signals_${seed} RC 0 RESULT pass
    NOTE "signal storm: [1-9]"
    ARGS stress ${_ipcp_flock} --workers 4 --duration 1 --opt helpers=3 --fault signals
    --seed ${seed})
endforeach()
# a worker that waits 50 ms for the lock and goes in anyway passes while holders are quick; the
# stop fault stops a holder inside its critical section (it once struck in lock() or unlock()
# only, and validate passed this bug)
ipcp_stress_test(NAME stress.exec.faults.flock_timeout_stop_caught RC 1 KINDS exclusion
  NOTE "stop fault: worker [0-9] stopped for [0-9]+ ms in critical section"
  ARGS stress ${_ipcp_flock} --workers 3 --messages 300 --fault stop --opt bug=timeout --seed 2)
ipcp_stress_test(NAME stress.exec.faults.flock_stop_pass RC 0 RESULT pass
  NOTE "stop fault: worker [0-9] stopped for [0-9]+ ms in critical section"
  ARGS stress ${_ipcp_flock} --workers 3 --messages 300 --fault stop --seed 2)
ipcp_stress_test(NAME stress.exec.faults.lockf_worker RC 0 NOTE "signal storm: [1-9]"
  ARGS stress ${_ipcp_lockf} --workers 3 --messages 300 --fault signals --seed 1)
# shared memory and semaphores: signals interrupt sem_timedwait (which it retries); short-io has
# nothing to cut (stdin and stdout with ipcproof are never faulted), so it is n/a
set(_ipcp_shmsem_pair --exec-producer ${_ipcp_shmsem} --exec-consumer ${_ipcp_shmsem}
    --exec-setup ${_ipcp_shmsem} --exec-teardown ${_ipcp_shmsem} --fifo --producers 2
    --consumers 2 --messages 5000 --max-size 4096 --seed 1)
ipcp_stress_test(NAME stress.exec.faults.shm_sem_pair_signals RC 0 NOTE "signal storm: [1-9]"
  ARGS stress ${_ipcp_shmsem_pair} --fault signals)
ipcp_stress_test(NAME stress.exec.faults.shm_sem_pair_shortio_na RC 0 RESULT n/a
  NOTE "short-io: 0 short counts"
  JSON_EQ "not_applicable=--fault short-io injected nothing: the programs made no read, write, send or recv on a pipe, FIFO or socket of their own (their stdin and stdout with ipcproof are left alone) that the kernel could interrupt or cut short: shared memory or message queues?"
  ARGS stress ${_ipcp_shmsem_pair} --fault short-io)
# a static binary: n/a with the reason, for either fault, even with the careless code
set(_ipcp_sfifo $<TARGET_FILE:exec_fifo_pair_static>)
foreach(f short-io signals)
  ipcp_stress_test(NAME stress.exec.faults.static_${f}_na RC 0 RESULT n/a
    NOTE "--fault ${f} did not reach (producer|consumer) 0's program: pid [0-9]+ .*exec_fifo_pair_static. is statically linked"
    ARGS stress --exec-producer ${_ipcp_sfifo} --exec-consumer ${_ipcp_sfifo}
         --exec-setup ${_ipcp_sfifo} --exec-teardown ${_ipcp_sfifo} --fifo --max-size 1024
         --messages 2000 --seed 1 --opt bug=short --fault ${f})
endforeach()
# validate runs the fault cases on programs: the careless pair fails short-io, the static one
# makes both n/a
foreach(spec "short|fault short-io|fail|exec_fifo_pair" "none|fault signals|pass|exec_fifo_pair"
             "none|fault short-io|n/a|exec_fifo_pair_static"
             "none|fault signals|n/a|exec_fifo_pair_static")
  string(REPLACE "|" ";" spec "${spec}")
  list(GET spec 0 bug)
  list(GET spec 1 case)
  list(GET spec 2 want)
  list(GET spec 3 prog)
  string(REPLACE " " "_" cname "${case}")
  string(REPLACE "/" "" wname "${want}")
  add_test(NAME stress.exec.faults.validate_${prog}_${bug}_${cname}_${wname}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/scripts/validate_case.sh
            $<TARGET_FILE:ipcproof_cli> "${case}" ${want} --exec-producer $<TARGET_FILE:${prog}>
            --exec-consumer $<TARGET_FILE:${prog}> --exec-setup $<TARGET_FILE:${prog}>
            --exec-teardown $<TARGET_FILE:${prog}> --fifo --opt bug=${bug} --budget 5 --seed 1)
  set_tests_properties(stress.exec.faults.validate_${prog}_${bug}_${cname}_${wname}
    PROPERTIES TIMEOUT 300 ENVIRONMENT "${_ipcp_env}")
endforeach()

# --- the contract, broken one way at a time ----------------------------------------------------
set(_ipcp_contract ${CMAKE_CURRENT_SOURCE_DIR}/exec/tests/contract.py)
set(_ipcp_cpair --exec-producer ${_ipcp_contract} --exec-consumer ${_ipcp_contract}
    --exec-setup ${_ipcp_contract} --exec-teardown ${_ipcp_contract} --messages 300 --seed 1
    --stall 3)
ipcp_stress_test(NAME stress.exec.contract.ok RC 0 ARGS stress ${_ipcp_cpair})
foreach(spec
    "consumer-garbage|error|consumer 0's program wrote a malformed record"
    "consumer-truncated|error|consumer 0's program ended its stdout inside a record"
    "consumer-print|error|consumer 0's program wrote text to stdout .*print anything else to stderr"
    "consumer-dup|duplicate|delivered again"
    "consumer-noexit|error|consumer 0's program did not exit within"
    "consumer-segv|crash|consumer 0's program was killed by signal 11"
    "producer-early|error|producer 0's program exited .status 0. before ipcproof closed its stdin"
    "producer-status|error|producer 0's program exited with status 3"
    "producer-daemon|leak|python3"
    "producer-hang|deadlock|producer 0 .* in send")
  string(REPLACE "|" ";" spec "${spec}")
  list(GET spec 0 bug)
  list(GET spec 1 kind)
  list(GET spec 2 detail)
  ipcp_stress_test(NAME stress.exec.contract.${bug} RC 1 KINDS ${kind} DETAIL "${detail}"
    MAX_SECONDS 30 ARGS stress ${_ipcp_cpair} --opt bug=${bug})
endforeach()
set(_ipcp_wpair --exec-worker ${_ipcp_contract} --exec-setup ${_ipcp_contract}
    --exec-teardown ${_ipcp_contract} --workers 3 --messages 100 --seed 1 --stall 3)
ipcp_stress_test(NAME stress.exec.contract.worker_ok RC 0 ARGS stress ${_ipcp_wpair})
foreach(spec
    "worker-garbage|worker 0's program wrote a line other than .acquired."
    "worker-silent|worker 0's program wrote a line other than .released."
    "worker-exit|worker 0's program exited .status 0. before ipcproof closed its stdin")
  string(REPLACE "|" ";" spec "${spec}")
  list(GET spec 0 bug)
  list(GET spec 1 detail)
  ipcp_stress_test(NAME stress.exec.contract.${bug} RC 1 KINDS error DETAIL "${detail}"
    MAX_SECONDS 30 ARGS stress ${_ipcp_wpair} --opt bug=${bug})
endforeach()
# three workers leave one after the other, 1 s apart: the last one 3 s after its stdin ended,
# each within 2 s of the one before it; not one that "did not exit"
ipcp_stress_test(NAME stress.exec.contract.worker-in-turn RC 0
  ARGS stress ${_ipcp_wpair} --opt bug=worker-in-turn)
# --fault stop pauses the producer's program 404 ms (seed 6): a consumer that takes 0.25 s of
# silence for a dead producer gives up, which is its bug; without the fault it passes
ipcp_stress_test(NAME stress.exec.contract.consumer-impatient RC 1 KINDS error
  DETAIL "consumer 0's program exited with status 4" NOTE "stop fault: producer 0 stopped for 404 ms"
  ARGS stress ${_ipcp_cpair} --messages 3000 --seed 6 --fault stop --opt bug=consumer-impatient)
ipcp_stress_test(NAME stress.exec.contract.consumer-impatient_unstopped RC 0
  ARGS stress ${_ipcp_cpair} --messages 3000 --seed 6 --opt bug=consumer-impatient)
ipcp_stress_test(NAME stress.exec.example.fifo_pair_stop RC 0 NOTE "stop fault: .* stopped for"
  ARGS stress ${_ipcp_fifo_pair} --producers 3 --messages 3000 --fault stop --seed 6)
# a teardown that leaves the run's FIFO behind
ipcp_stress_test(NAME stress.exec.contract.teardown_leaks RC 1 KINDS leak DETAIL "ipcproof-exec-"
  ARGS stress --exec-producer ${_ipcp_contract} --exec-consumer ${_ipcp_contract}
       --exec-setup ${_ipcp_contract} --exec-teardown true --messages 100 --seed 1)
# a command that does not exist (the shell's status 127) or cannot be run (126) is a usage
# error named on stderr, exit 2, not a verdict about the protocol
ipcp_stress_test(NAME stress.exec.contract.not_found RC 2 NO_JSON
  STDERR "consumer 0's command could not be run: /bin/sh exited with status 127 .command not found"
  ARGS stress --exec-producer /nonexistent/producer --exec-consumer /nonexistent/consumer
       --messages 10 --seed 1)
ipcp_stress_test(NAME stress.exec.contract.not_executable RC 2 NO_JSON
  STDERR "command could not be run: /bin/sh exited with status 126 .found but not executable"
  ARGS stress --exec-producer ${CMAKE_CURRENT_SOURCE_DIR}/tests/exec.cmake
       --exec-consumer /bin/cat --messages 10 --seed 1)
# the rerun line replays the commands, quoted where the shell needs it
ipcp_stress_test(NAME stress.exec.contract.repro RC 1 KINDS duplicate
  JSON_EQ "repro=ipcproof stress --exec-producer ${_ipcp_contract} --exec-consumer 'python3 ${_ipcp_contract}' --exec-setup ${_ipcp_contract} --exec-teardown ${_ipcp_contract} --mode process --producers 1 --consumers 1 --messages 300 --min-size 64 --max-size 1024 --seed 1 --opt bug=consumer-dup --stall 3"
  ARGS stress --exec-producer ${_ipcp_contract} --exec-consumer "python3 ${_ipcp_contract}"
       --exec-setup ${_ipcp_contract} --exec-teardown ${_ipcp_contract} --messages 300 --seed 1
       --stall 3 --opt bug=consumer-dup)

# --- usage errors: exit 2, a message naming what is wrong --------------------------------------
ipcp_stress_test(NAME stress.exec.usage.consumer_missing RC 2 NO_JSON
  STDERR "--exec-consumer 'CMD' is missing" ARGS stress --exec-producer true)
ipcp_stress_test(NAME stress.exec.usage.with_proto RC 2 NO_JSON
  STDERR "replace --proto and --plugin" ARGS stress --proto ring --exec-producer true
  --exec-consumer true)
ipcp_stress_test(NAME stress.exec.usage.thread_mode RC 2 NO_JSON
  STDERR "only --mode process applies" ARGS stress --exec-producer true --exec-consumer true
  --mode thread)
ipcp_stress_test(NAME stress.exec.usage.faults_lib_missing RC 2 NO_JSON
  STDERR "--fault signals on exec endpoints preloads libipcproof-faults.so"
  ENV IPCPROOF_FAULTS_LIB=/nonexistent/libipcproof-faults.so
  ARGS stress --exec-producer true --exec-consumer true --fault signals)
ipcp_stress_test(NAME stress.exec.usage.worker_and_producer RC 2 NO_JSON
  STDERR "goes without --exec-producer" ARGS stress --exec-worker true --exec-producer true
  --exec-consumer true)
ipcp_stress_test(NAME stress.exec.usage.robust_alone RC 2 NO_JSON
  STDERR "--robust goes with --exec-worker" ARGS validate --robust --proto ring)
ipcp_stress_test(NAME stress.exec.usage.validate_half RC 2 NO_JSON
  STDERR "need both --exec-producer" ARGS validate --exec-consumer true)

# ctest labels for the tests of this file.
ipcp_label_tests(stress)
