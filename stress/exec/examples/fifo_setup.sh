#!/bin/sh
# Creates the FIFO of the Python FIFO pair (fifo_producer.py, fifo_consumer.py). A FIFO has one
# reader here: other consumer counts are declined (exit 77), and validate runs those cases 1:1.
[ "$IPCPROOF_CONSUMERS" = 1 ] || exit 77
exec mkfifo -m 600 "/tmp/ipcproof-exec-$IPCPROOF_RUN_ID.fifo"
