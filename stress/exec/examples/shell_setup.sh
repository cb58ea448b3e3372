#!/bin/sh
# The shell pair: one producer `cat`s its stdin into a FIFO, one consumer `cat`s the FIFO to its
# stdout. ipcproof's framing passes through unchanged. One writer and one reader only: other
# counts are declined (exit 77), so validate runs its cases 1:1.
[ "$IPCPROOF_PRODUCERS:$IPCPROOF_CONSUMERS" = 1:1 ] || exit 77
exec mkfifo -m 600 "/tmp/ipcproof-exec-$IPCPROOF_RUN_ID.fifo"
