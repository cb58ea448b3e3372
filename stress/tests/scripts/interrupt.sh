#!/usr/bin/env bash
# interrupt.sh IPCPROOF HARNESS.so - killing validate or stress stops the running case, removes
# the temp directory (SIGTERM, SIGINT; after a SIGKILL of validate, its janitor child) and leaves
# no process behind (SIGKILL too, through the children's parent-death signal).
set -u
ipcproof=$1 harness=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# processes that carry our tag in their environment (everything validate and stress start)
tagged() {
  local n=0 p
  for p in /proc/[0-9]*; do
    grep -qs "IPCP_INTERRUPT_TAG=$tag" "$p/environ" 2>/dev/null && n=$((n + 1))
  done
  echo $n
}

wait_gone() { # pid seconds
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  return 1
}

for sig in TERM INT KILL; do
  for cmd in validate stress; do
    tag="$$-$sig-$cmd"
    mkdir -p "$work/$tag"
    if [ $cmd = validate ]; then
      args=(validate --plugin "$harness" --kind channel --budget 60 --opt bug=hang)
    else
      args=(stress --plugin "$harness" --kind channel --messages 100000 --opt bug=hang --stall 60)
    fi
    # a plugin whose recv() hangs: the case is stuck when the signal comes
    IPCP_INTERRUPT_TAG=$tag TMPDIR="$work/$tag" "$ipcproof" "${args[@]}" \
      >"$work/$tag.out" 2>&1 &
    pid=$!
    sleep 2
    [ "$(tagged)" -ge 3 ] || fail "$sig $cmd: the case was not running ($(tagged) processes)"
    kill -s "$sig" $pid
    wait_gone $pid 20 || fail "$sig $cmd: still running 20 s after SIG$sig"
    wait $pid
    rc=$?
    if [ $sig != KILL ] && [ $rc -ne 2 ]; then
      cat "$work/$tag.out"; fail "$sig $cmd: exit status $rc, expected 2"
    fi
    for ((i = 0; i < 100 && $(tagged) > 0; i++)); do sleep 0.05; done
    [ "$(tagged)" -eq 0 ] || fail "$sig $cmd: $(tagged) processes left running"
    if { [ $sig != KILL ] || [ $cmd = validate ]; } && [ -n "$(ls -A "$work/$tag")" ]; then
      ls -la "$work/$tag"; fail "$sig $cmd: the temp directory is not empty"
    fi
    echo "ok: SIG$sig to $cmd: status $rc, nothing left"
  done
done
