#!/usr/bin/env python3
"""A producer over a named FIFO shared by several producers and read by one consumer.

The kernel writes at most PIPE_BUF (4096) bytes to a FIFO in one piece; a longer write can be
split, and another producer's write can land in the middle of it. So every message goes out as
chunks of at most PIPE_BUF bytes, each one write() that the kernel never interleaves, with a
header saying whose message it is and where the chunk belongs:

    producer index, message seq, offset, total length   (4 x uint32, little-endian)

A producer that dies between two chunks leaves an incomplete message of its own, which the
consumer drops; nobody else's message is affected.

--opt unframed=1 is the broken version many people write first: a 4-byte length and the whole
message in one write(). Above PIPE_BUF, two producers' messages interleave and the consumer
reads torn messages (ipcproof says `torn`).
"""
import os
import select
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ipcproof_exec import env, read_records  # noqa: E402

CHUNK_HDR = struct.Struct("<IIII")
CHUNK_DATA = select.PIPE_BUF - CHUNK_HDR.size

me = int(env("INDEX"))
unframed = env("OPT_UNFRAMED") == "1"
fifo = os.open("/tmp/ipcproof-exec-%s.fifo" % env("RUN_ID"), os.O_WRONLY)


def write_all(data):
    view = memoryview(data)
    while view:
        view = view[os.write(fifo, view):]


for seq, msg in enumerate(read_records()):
    if unframed:
        write_all(struct.pack("<I", len(msg)) + msg)
        continue
    for off in range(0, max(len(msg), 1), CHUNK_DATA):
        part = msg[off:off + CHUNK_DATA]
        os.write(fifo, CHUNK_HDR.pack(me, seq, off, len(msg)) + part)  # <= PIPE_BUF: whole
os.close(fifo)
