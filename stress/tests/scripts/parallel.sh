#!/usr/bin/env bash
# parallel.sh IPCPROOF - runs at the same time, outside the sandbox (as a user without
# privileges would), never see each other's objects as their own leak: 2, then 4 at once, of
# protocols that create shared memory, message queues, semaphores and FIFOs.
set -u
ipcproof=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
protos=(ring frame-fifo mq-handoff posix-sem sysv-sem robust-mutex mq-token ring)
for n in 2 4; do
  pids=()
  for ((i = 0; i < n; i++)); do
    p=${protos[$(( (i + n) % ${#protos[@]} ))]}
    "$ipcproof" stress --proto "$p" --no-sandbox --duration 1.5 --seed $i \
      --json "$work/$n-$i.json" >"$work/$n-$i.out" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < n; i++)); do
    if ! wait "${pids[$i]}"; then
      cat "$work/$n-$i.out"
      echo "FAIL: run $i of $n at once failed"
      exit 1
    fi
  done
  echo "ok: $n runs at once, none failed"
done
