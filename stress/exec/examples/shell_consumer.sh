#!/bin/sh
# Copies what arrives through the FIFO to stdout until the producer closes it, then waits for
# ipcproof to close stdin, as the contract asks.
cat "/tmp/ipcproof-exec-$IPCPROOF_RUN_ID.fifo" || exit
exec cat > /dev/null
