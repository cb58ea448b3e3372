#!/bin/bash
# A lock contender in shell (docs/exec.md, --exec-worker): flock(1) on the lock file that
# lock_teardown.sh removes. flock(1) is a program of its own, started at every acquisition and
# release: a worker that starts many short-lived programs, each of which the interposer of
# --fault signals must reach (and ipcproof must see reach). --opt helpers=N also runs
# /bin/true N times before each acquisition (a worker calling helper programs). --opt bug=timeout
# waits at most 50 ms for the lock and goes in anyway: right while every holder is quick, wrong
# the day one is slow (--fault stop stops a holder inside its critical section).
#   ipcproof validate --exec-worker ./flock_worker.sh --exec-teardown ./lock_teardown.sh --robust
f="/tmp/ipcproof-exec-$IPCPROOF_RUN_ID.lock"
helpers=${IPCPROOF_OPT_HELPERS:-0}
exec 9>>"$f"
while :; do
  for ((i = 0; i < helpers; i++)); do /bin/true; done
  if [ "$IPCPROOF_OPT_BUG" = timeout ]; then
    flock -w 0.05 9 || : # BUG: "we never wait long", and goes in anyway
  else
    flock 9 || exit 1
  fi
  echo acquired
  if ! read -r line; then
    flock -u 9
    echo released
    exit 0
  fi
  flock -u 9
  echo released
done
