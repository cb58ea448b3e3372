#!/bin/sh
# Removes the lock file of the Python lock workers.
exec rm -f "/tmp/ipcproof-exec-$IPCPROOF_RUN_ID.lock"
