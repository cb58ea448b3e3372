#!/usr/bin/env bash
# sched_replay.sh IPCPROOF PLUGIN.so [SEARCH ARGS] - a failing schedule, run again from its rerun
# line, is the same run: the same violations with the same counts and a byte-identical trace.
# SEARCH ARGS: of the search that finds it (default: --schedules 200 --seed 5).
# EXPECT_OP=OP (environment): the trace must show that operation (e.g. signal).
set -u
ipcproof=$1 plugin=$2
shift 2
search=("$@")
[ ${#search[@]} -gt 0 ] || search=(--schedules 200 --seed 5)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$ipcproof" stress --plugin "$plugin" --mode sched "${search[@]}" \
  --json "$work/search.json" >"$work/search.out" 2>&1
[ $? -eq 1 ] || { cat "$work/search.out"; fail "the search found nothing"; }
repro=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['repro'])" "$work/search.json")
echo "replaying: $repro"
case "$repro" in *"--schedule "*) ;; *) fail "the rerun line does not name the schedule";; esac
args=${repro#ipcproof stress }
for i in 1 2; do
  # shellcheck disable=SC2086
  "$ipcproof" stress $args --json "$work/r$i.json" >"$work/r$i.out" 2>&1
  [ $? -eq 1 ] || { cat "$work/r$i.out"; fail "replay $i did not fail"; }
done
extract() { # the violations and the trace of a report, as text
  python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
print(json.dumps([(v['kind'], v['count'], v['detail']) for v in d['violations']]))
print(d['sched']['trace_hash'])
print('\n'.join(d['sched']['trace']))" "$1"
}
extract "$work/search.json" >"$work/t0"
extract "$work/r1.json" >"$work/t1"
extract "$work/r2.json" >"$work/t2"
cmp "$work/t1" "$work/t2" || { diff "$work/t1" "$work/t2" | head; fail "two replays differ"; }
cmp "$work/t0" "$work/t1" || { diff "$work/t0" "$work/t1" | head; fail "the replay differs from the search"; }
echo "ok: $(wc -l <"$work/t1") lines identical in the search and two replays"
if [ -n "${EXPECT_OP:-}" ]; then
  grep -Eq "^step [0-9]+ +.{12} ${EXPECT_OP} " "$work/t1" || fail "the trace shows no ${EXPECT_OP}"
  echo "ok: the trace shows: $(grep -E "^step [0-9]+ +.{12} ${EXPECT_OP} " "$work/t1" | tail -1)"
fi
# ipcproof replay REPORT: the same schedule, and it says so
"$ipcproof" replay "$work/search.json" >"$work/replay.out" 2>&1
rc=$?
cat "$work/replay.out" | tail -3
[ $rc -eq 1 ] || fail "ipcproof replay: exit status $rc, expected 1 (reproduced)"
grep -q "reproduced: the same interleaving" "$work/replay.out" || fail "replay did not say reproduced"
echo "ok: ipcproof replay reproduced the schedule"
