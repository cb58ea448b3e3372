#!/usr/bin/env python3
"""A lock contender that checks whether a lock file exists before creating it (broken).

Between the check and the creation another worker can do the same check: both "hold" the lock.
ipcproof reports `exclusion`. (os.open with O_CREAT | O_EXCL would make check and creation one
atomic step; a holder that dies would still leave the file behind for ever: not robust.)
"""
import os
import time

path = "/tmp/ipcproof-exec-%s.lock" % os.environ["IPCPROOF_RUN_ID"]
stdin = os.fdopen(0, "rb", buffering=0)
while True:
    while os.path.exists(path):
        time.sleep(0.0001)
    open(path, "w").close()  # "mine now"
    os.write(1, b"acquired\n")
    go_on = stdin.readline()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # another "holder" removed it already
    if not go_on:
        break
    os.write(1, b"released\n")
