#!/usr/bin/env bash
# dfs_shards.sh IPCPROOF N STRESS ARGS - a dfs search split with --shard I/N over N jobs runs,
# between them, exactly the schedules of the whole search: each shard exhausts its part, and the
# parts' distinct schedules add up to the whole's.
set -u
ipcproof=$1 n=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['sched'][sys.argv[2]])" "$1" "$2"; }
"$ipcproof" stress "$@" --json "$work/all.json" >"$work/all.out" 2>&1 || { cat "$work/all.out"; fail "the whole search failed"; }
[ "$(field "$work/all.json" exhausted)" = True ] || fail "the whole search did not exhaust its tree"
whole=$(field "$work/all.json" distinct)
sum=0
for ((i = 0; i < n; i++)); do
  "$ipcproof" stress "$@" --shard "$i/$n" --json "$work/s$i.json" >"$work/s$i.out" 2>&1 ||
    { cat "$work/s$i.out"; fail "shard $i/$n failed"; }
  [ "$(field "$work/s$i.json" exhausted)" = True ] || fail "shard $i/$n did not exhaust its part"
  part=$(field "$work/s$i.json" distinct)
  echo "shard $i/$n: $part schedules"
  sum=$((sum + part))
done
[ "$sum" -eq "$whole" ] || fail "the shards ran $sum schedules between them, the whole search $whole"
echo "ok: $n shards, $sum schedules, as many as the whole search"
