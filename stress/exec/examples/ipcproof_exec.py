"""ipcproof_exec.py - the exec endpoint contract (docs/exec.md) for Python programs.

A producer reads the messages it must send with read_records(sys.stdin) and exits 0 at the end;
a consumer writes each message it receives with write_record() and, once stdin_closed() says
ipcproof closed its stdin, writes what it still has and exits 0. Copy this file next to your own
programs, or read it as the contract in 40 lines.
"""
import os
import struct
import sys


def read_exact(fd, n):
    """n bytes from fd, or fewer at EOF."""
    parts, got = [], 0
    while got < n:
        b = os.read(fd, n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def read_records(fd=0):
    """Yields every message ipcproof writes to the producer's stdin (fd 0)."""
    while True:
        hdr = read_exact(fd, 4)
        if len(hdr) < 4:
            return  # stdin ended: every message was handed out
        (n,) = struct.unpack("<I", hdr)
        body = read_exact(fd, n)
        if len(body) < n:
            sys.exit("ipcproof_exec: stdin ended inside a message")
        yield body


def write_record(msg, fd=1):
    """Tells ipcproof that the consumer received msg (a whole message, as sent)."""
    data = struct.pack("<I", len(msg)) + msg
    while data:
        data = data[os.write(fd, data):]


def env(name, default=None):
    """IPCPROOF_<NAME>: ROLE, INDEX, PRODUCERS, CONSUMERS, RUN_ID, CAPACITY, MAX_SIZE, OPT_*."""
    return os.environ.get("IPCPROOF_" + name, default)
