#!/usr/bin/env bash
# plain_plugin_in_tsan.sh IPCPROOF-TSAN SOURCE.c INCLUDE-DIR - a plugin built without
# -fsanitize=thread, whose lock is inline assembly TSan cannot see, run by the TSan ipcproof in
# thread mode: TSan reports a race in the harness's counter, and it must never become a `race`
# verdict (a note says why), neither in stress nor in validate.
set -u
ipcproof=$1 src=$2 inc=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cc -shared -fPIC -O2 -I"$inc" "$src" -o "$work/plain.so" -lpthread || fail "cannot build $src"

"$ipcproof" stress --plugin "$work/plain.so" --kind lock --mode thread --workers 4 \
  --messages 20000 --opt annotate=0 --json "$work/s.json" >"$work/s.out" 2>&1
rc=$?
cat "$work/s.out"
[ $rc -eq 0 ] || fail "stress: exit status $rc, expected 0"
grep -q "not built with clang's -fsanitize=thread" "$work/s.json" ||
  echo "note: TSan reported nothing this time (the note appears only when it does)"

"$ipcproof" validate --plugin "$work/plain.so" --opt annotate=0 --budget 6 --seed 1 \
  --json "$work/v.json" >"$work/v.out" 2>&1
rc=$?
cat "$work/v.out"
[ $rc -eq 0 ] || fail "validate: exit status $rc, expected 0"
grep -q '"race"' "$work/v.json" && fail "validate reported a race for a plugin TSan cannot see"
echo "ok: no race verdict for a plugin that is not a TSan build"
