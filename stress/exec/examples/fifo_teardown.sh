#!/bin/sh
# Removes what the Python FIFO pair created.
exec rm -f "/tmp/ipcproof-exec-$IPCPROOF_RUN_ID.fifo"
