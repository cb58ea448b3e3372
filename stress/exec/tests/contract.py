#!/usr/bin/env python3
"""contract.py - a producer, consumer, setup and teardown in one program, for the ctests of the
exec endpoint contract (stress/exec/tests.cmake). A correct pair over a FIFO (one producer, one
consumer, records below PIPE_BUF) unless IPCPROOF_OPT_BUG names one way to break the contract:

  consumer-garbage    writes a record whose length is absurd          -> error (framing)
  consumer-truncated  ends its stdout inside a record                 -> error (truncated)
  consumer-print      prints a debug line to stdout                    -> error (text)
  consumer-dup        reports one message twice                       -> duplicate
  consumer-noexit     never exits after stdin ends, ignores SIGTERM   -> error (did not exit)
  consumer-segv       dies of SIGSEGV half way                        -> crash
  consumer-impatient  takes 0.25 s without a message for a dead producer and exits 4
                      (with --fault stop: the producer was only paused) -> error
  producer-early      exits 0 after 5 messages                        -> error (exited early)
  producer-status     sends everything, then exits 3                  -> error (status 3)
  producer-daemon     leaves a process running (double fork, setsid)  -> leak
  producer-hang       stops reading its stdin                         -> deadlock

and, as a lock contender (IPCPROOF_ROLE=worker, an fcntl lock on a file):

  worker-garbage      writes "got it" instead of "acquired"           -> error
  worker-silent       never writes "released"                         -> error
  worker-exit         exits 0 after 5 acquisitions                    -> error (exited early)
  worker-in-turn      (correct) after its stdin ends, worker i exits 1 s after worker i - 1 did,
                      as workers that each wait for a resource the one before still holds -> pass
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from ipcproof_exec import env, read_exact, read_records, write_record  # noqa: E402

role, bug = env("ROLE"), env("OPT_BUG", "")
path = "/tmp/ipcproof-exec-%s.fifo" % env("RUN_ID")

if role == "setup":
    os.mkfifo(path, 0o600)
elif role == "teardown":
    os.unlink(path)
    if os.path.exists(path + ".lock"):
        os.unlink(path + ".lock")
    for i in range(int(env("WORKERS", "0"))):
        if os.path.exists("%s.exited.%d" % (path, i)):
            os.unlink("%s.exited.%d" % (path, i))
elif role == "producer":
    fifo = os.open(path, os.O_WRONLY)
    for n, msg in enumerate(read_records()):
        if bug == "producer-early" and n == 5:
            sys.exit(0)
        if bug == "producer-hang" and n == 5:
            time.sleep(3600)
        if bug == "producer-daemon" and n == 5 and os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.closerange(0, 1024)
                time.sleep(3600)
            os._exit(0)
        os.write(fifo, len(msg).to_bytes(4, "little") + msg)  # < PIPE_BUF: one piece
    sys.exit(3 if bug == "producer-status" else 0)
elif role == "consumer":
    import select

    fifo = os.open(path, os.O_RDWR)
    if bug == "consumer-noexit":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    n, stdin_open = 0, True
    while True:
        wait = 0.25 if bug == "consumer-impatient" and n > 0 else 1.0
        ready = select.select([fifo, 0], [], [], wait)[0] if stdin_open else []
        if stdin_open and not ready and wait < 1.0:
            sys.stderr.write("contract.py: no message for 0.25 s: the producer must be dead\n")
            sys.exit(4)
        if 0 in ready and not os.read(0, 4096):
            stdin_open = False
        if fifo not in ready and not (not stdin_open and select.select([fifo], [], [], 0)[0]):
            if stdin_open:
                continue
            break
        size = int.from_bytes(read_exact(fifo, 4), "little")
        msg = read_exact(fifo, size)
        n += 1
        if bug == "consumer-print" and n == 10:
            os.write(1, b"got message 10\n")
        if bug == "consumer-garbage" and n == 10:
            os.write(1, b"\xff\xff\xff\xff garbage")
        if bug == "consumer-truncated" and n == 10:
            os.write(1, len(msg).to_bytes(4, "little") + msg[:3])
            sys.exit(0)
        if bug == "consumer-segv" and n == 10:
            os.kill(os.getpid(), signal.SIGSEGV)
        write_record(msg)
        if bug == "consumer-dup" and n == 10:
            write_record(msg)
    if bug == "consumer-noexit":
        while True:
            time.sleep(3600)
elif role == "worker":
    import fcntl

    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    stdin = os.fdopen(0, "rb", buffering=0)
    n = 0
    while True:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        n += 1
        os.write(1, b"got it\n" if bug == "worker-garbage" and n == 5 else b"acquired\n")
        go_on = stdin.readline()
        fcntl.lockf(fd, fcntl.LOCK_UN)
        if not go_on or (bug == "worker-exit" and n == 5):
            break
        if not (bug == "worker-silent" and n == 5):
            os.write(1, b"released\n")
    if bug == "worker-in-turn":
        i = int(env("INDEX"))
        while i > 0 and not os.path.exists("%s.exited.%d" % (path, i - 1)):
            time.sleep(0.01)
        time.sleep(1.0)
        open("%s.exited.%d" % (path, i), "w").close()
else:
    sys.exit("contract.py: unknown IPCPROOF_ROLE %r" % role)
