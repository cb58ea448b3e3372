#!/usr/bin/env bash
# sched_minimise.sh IPCPROOF MAX_PREEMPTIONS MAX_MESSAGES [SEARCH ARGS] - a failing schedule found
# by a search is reported minimised (to at most MAX_PREEMPTIONS preemptions and MAX_MESSAGES
# messages, from more), the same way twice (the minimiser is deterministic), and its report
# replays: `ipcproof replay` says reproduced.
set -u
ipcproof=$1 maxp=$2 maxm=$3
shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
for i in 1 2; do
  "$ipcproof" stress "$@" --json "$work/s$i.json" >"$work/s$i.out" 2>&1
  [ $? -eq 1 ] || { cat "$work/s$i.out"; fail "search $i found nothing"; }
done
summary() {
  python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
m = d['sched'].get('minimised')
if m is None:
    print('not-minimised'); sys.exit(0)
print(m['from_preemptions'], m['from_messages'], m['preemptions'], m['messages'])
print(d['repro'])
print(d['sched']['trace_hash'])
print(sorted(v['kind'] for v in d['violations']))" "$1"
}
summary "$work/s1.json" >"$work/m1"
summary "$work/s2.json" >"$work/m2"
grep -q "minimised from" "$work/s1.out" || { cat "$work/s1.out"; fail "the report does not say it was minimised"; }
read -r fp fm p m <"$work/m1" || fail "no minimisation in the report: $(cat "$work/m1")"
echo "minimised from $fp preemptions / $fm messages to $p / $m"
cmp "$work/m1" "$work/m2" || { diff "$work/m1" "$work/m2"; fail "two searches minimised differently"; }
[ "$p" -le "$maxp" ] || fail "$p preemptions left, expected at most $maxp"
[ "$m" -le "$maxm" ] || fail "$m messages left, expected at most $maxm"
[ "$p" -lt "$fp" ] || [ "$m" -lt "$fm" ] || fail "nothing became smaller"
sed -n 2p "$work/m1" | grep -q -- "--messages $m " || fail "the rerun line does not have the minimised messages"
"$ipcproof" replay "$work/s1.json" >"$work/replay.out" 2>&1
rc=$?
tail -2 "$work/replay.out"
[ $rc -eq 1 ] || fail "ipcproof replay: exit status $rc, expected 1 (reproduced)"
echo "ok: minimised the same way twice, and the minimised schedule replays"
