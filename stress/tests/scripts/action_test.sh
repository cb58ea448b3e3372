#!/usr/bin/env bash
# action_test.sh IPCPROOF SRC_DIR - runs the GitHub Action's script (ci/action.sh) as the runner
# would, with GitHub's variables set to scratch files: a broken program (exclusion) must give
# status 1, verdict fail, a step summary table naming the violation, a SARIF log and the report;
# a correct one status 0. Also checks that action.yml hands every input to the script through
# `env:` (never pasted into `run:`).
set -u
bin=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
run_action() { # NAME, then VAR=VALUE... for the inputs
  local name=$1
  shift
  mkdir -p "$tmp/$name"
  : >"$tmp/$name/output"
  : >"$tmp/$name/summary"
  env GITHUB_ACTION_PATH="$src" GITHUB_OUTPUT="$tmp/$name/output" \
    GITHUB_STEP_SUMMARY="$tmp/$name/summary" RUNNER_TEMP="$tmp/$name" IPCPROOF_BIN="$bin" \
    IPCP_IN_BUDGET=6 IPCP_IN_SEED=1 "$@" bash "$src/ci/action.sh" >"$tmp/$name/log" 2>&1
}
expect() { # FILE REGEX WHAT
  grep -Eq -- "$2" "$1" || { echo "FAIL: $3 (no /$2/ in $1):"; head -20 "$1"; fail=1; }
}
ex=$src/stress/exec/examples
run_action broken IPCP_IN_EXEC_WORKER="$ex/exists_worker.py" IPCP_IN_EXEC_TEARDOWN="$ex/lock_teardown.sh"
rc=$?
[ $rc = 0 ] || { echo "FAIL: ci/action.sh exit $rc (it must leave failing to action.yml)"; fail=1; }
expect "$tmp/broken/output" '^status=1$' "status output of a broken protocol"
expect "$tmp/broken/output" '^verdict=fail$' "verdict output"
expect "$tmp/broken/output" '^sarif=.*ipcproof.sarif$' "sarif output"
expect "$tmp/broken/summary" '^\| case \| mode \| result \| runs \| violations \|' "summary table"
expect "$tmp/broken/summary" 'exclusion' "summary naming the violation"
python3 "$src/stress/tests/scripts/sarif_check.py" "$tmp/broken/ipcproof-action/ipcproof.sarif" \
  exclusion exists_worker.py >/dev/null || { echo "FAIL: SARIF of the broken run"; fail=1; }
[ -s "$tmp/broken/ipcproof-action/report.json" ] || { echo "FAIL: no report.json"; fail=1; }
run_action good IPCP_IN_EXEC_WORKER="$ex/lockf_worker.py" IPCP_IN_EXEC_TEARDOWN="$ex/lock_teardown.sh" IPCP_IN_ROBUST=true
expect "$tmp/good/output" '^status=0$' "status output of a correct protocol"
expect "$tmp/good/summary" 'validate: pass' "summary verdict"
# every input reaches the script through env, and no input is expanded inside a run: script
for var in $(grep -o 'IPCP_IN_[A-Z_]*' "$src/ci/action.sh" | sort -u); do
  grep -Eq "^ +$var: \\\$\{\{ inputs\.[a-z-]+ \}\}" "$src/action.yml" ||
    { echo "FAIL: action.yml does not set $var from an input"; fail=1; }
done
if awk '/run: *\|/{r=1;next} r&&/^ *[a-z_-]+:/{r=0} r' "$src/action.yml" | grep -q 'inputs\.'; then
  echo "FAIL: an input is expanded inside a run: script of action.yml"
  fail=1
fi
[ $fail = 0 ] && echo "action: ok"
exit $fail
