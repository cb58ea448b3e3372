#!/usr/bin/env python3
"""The one consumer of the FIFO that fifo_producer.py writes: reassembles each producer's chunks.

It opens the FIFO read-write, so it sees no end-of-file while producers come and go; ipcproof
closing its stdin is the signal that every producer has ended. Then it reads what is left in
the FIFO and exits.
"""
import os
import select
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ipcproof_exec import env, read_exact, write_record  # noqa: E402

CHUNK_HDR = struct.Struct("<IIII")
CHUNK_DATA = select.PIPE_BUF - CHUNK_HDR.size

unframed = env("OPT_UNFRAMED") == "1"
fifo = os.open("/tmp/ipcproof-exec-%s.fifo" % env("RUN_ID"), os.O_RDWR)
partial = {}  # producer index -> [seq, bytearray, total]


def take_one():
    """Reads one chunk (or unframed record) and reports every message it completes."""
    if unframed:
        (n,) = struct.unpack("<I", read_exact(fifo, 4))
        write_record(read_exact(fifo, n))
        return
    prod, seq, off, total = CHUNK_HDR.unpack(read_exact(fifo, CHUNK_HDR.size))
    data = read_exact(fifo, min(total - off, CHUNK_DATA))
    cur = partial.get(prod)
    if off == 0:
        cur = partial[prod] = [seq, bytearray(), total]  # a message begins (a dead one is gone)
    elif cur is None or cur[0] != seq or len(cur[1]) != off:
        sys.exit("fifo_consumer: producer %d seq %d: chunk at %d out of place" % (prod, seq, off))
    cur[1] += data
    if len(cur[1]) == total:
        del partial[prod]
        write_record(bytes(cur[1]))


stdin_open = True
while stdin_open:
    ready = select.select([fifo, 0], [], [], 1.0)[0]
    if fifo in ready:
        take_one()
    elif 0 in ready and not os.read(0, 4096):
        stdin_open = False  # every producer ended: what they wrote is in the FIFO
while select.select([fifo], [], [], 0)[0]:
    take_one()
