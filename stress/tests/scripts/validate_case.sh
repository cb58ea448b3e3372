#!/usr/bin/env bash
# validate_case.sh IPCPROOF CASE RESULT [VALIDATE ARGS] - `ipcproof validate ARGS` reports the
# battery case whose name starts with CASE with RESULT (pass, fail, error, n/a).
set -u
ipcproof=$1 name=$2 want=$3
shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$ipcproof" validate "$@" --json "$work/v.json" >"$work/out" 2>&1
rc=$?
[ -s "$work/v.json" ] || { cat "$work/out"; echo "FAIL: no report (exit $rc)"; exit 1; }
got=$(python3 - "$work/v.json" "$name" <<'PY'
import json, sys
cases = [c for c in json.load(open(sys.argv[1]))["cases"] if c["name"].startswith(sys.argv[2])]
print(cases[0]["result"] if len(cases) == 1 else "missing-or-ambiguous(%d)" % len(cases))
PY
)
grep -F "$name" "$work/out" | head -3
[ "$got" = "$want" ] || { cat "$work/out"; echo "FAIL: case '$name' is $got, expected $want"; exit 1; }
echo "ok: case '$name' is $got"
