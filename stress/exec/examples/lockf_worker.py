#!/usr/bin/env python3
"""A lock contender with fcntl.lockf on a shared lock file (correct, and robust: the kernel
releases a dead holder's lock).

The exec lock contract (docs/exec.md): acquire, write "acquired", read one line from stdin (ipcproof
holds the critical section open meanwhile), release, write "released", again; stdin's end means
stop.
"""
import fcntl
import os

path = "/tmp/ipcproof-exec-%s.lock" % os.environ["IPCPROOF_RUN_ID"]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
stdin = os.fdopen(0, "rb", buffering=0)
while True:
    fcntl.lockf(fd, fcntl.LOCK_EX)
    os.write(1, b"acquired\n")
    go_on = stdin.readline()  # empty: stdin ended, stop
    fcntl.lockf(fd, fcntl.LOCK_UN)
    if not go_on:
        break
    os.write(1, b"released\n")
