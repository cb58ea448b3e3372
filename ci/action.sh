#!/usr/bin/env bash
# ci/action.sh - the body of the GitHub Action (action.yml): build ipcproof and its TSan twin from
# the action's checkout (or use IPCPROOF_BIN), run `ipcproof validate` on the user's protocol, put
# the JSON report, the SARIF log and the output in one directory, write a table to the job's step
# summary and the results to the step's outputs. It exits 0 when validate ran (whatever it
# found): action.yml uploads what it made, then fails the job on violations.
#
# Inputs come from the environment only (action.yml maps `with:` to these; nothing a user typed
# is ever pasted into a script): IPCP_IN_PLUGIN_SRC, IPCP_IN_EXEC_PRODUCER, IPCP_IN_EXEC_CONSUMER,
# IPCP_IN_EXEC_WORKER, IPCP_IN_EXEC_SETUP, IPCP_IN_EXEC_TEARDOWN, IPCP_IN_FIFO, IPCP_IN_ROBUST,
# IPCP_IN_BUDGET, IPCP_IN_KIND, IPCP_IN_OPT, IPCP_IN_SEED. GitHub's: GITHUB_ACTION_PATH,
# GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP.
set -uo pipefail
src=${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/.." && pwd)}
out=${RUNNER_TEMP:-/tmp}/ipcproof-action
rm -rf "$out" && mkdir -p "$out"
fail() { echo "ipcproof action: $*" >&2; echo "status=2" >>"${GITHUB_OUTPUT:-/dev/null}"; exit 2; }

bin=${IPCPROOF_BIN:-}
if [ -z "$bin" ]; then
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then
    sudo bash "$src/ci/deps" build || fail "installing the build packages failed"
  else
    bash "$src/ci/deps" build || fail "installing the build packages failed"
  fi
  for p in default tsan; do
    (cd "$src" && cmake --preset "$p" >/dev/null && cmake --build --preset "$p" >/dev/null) ||
      fail "building the $p preset of ipcproof failed"
  done
  bin=$src/build/default/stress/ipcproof
  export IPCPROOF_TSAN_BIN=$src/build/tsan/stress/ipcproof
fi
[ -x "$bin" ] || fail "no ipcproof at $bin"

args=(validate --json "$out/report.json" --sarif "$out/ipcproof.sarif"
      --budget "${IPCP_IN_BUDGET:-60}")
[ -n "${IPCP_IN_PLUGIN_SRC:-}" ] && args+=(--plugin-src "$IPCP_IN_PLUGIN_SRC")
[ -n "${IPCP_IN_EXEC_PRODUCER:-}" ] && args+=(--exec-producer "$IPCP_IN_EXEC_PRODUCER")
[ -n "${IPCP_IN_EXEC_CONSUMER:-}" ] && args+=(--exec-consumer "$IPCP_IN_EXEC_CONSUMER")
[ -n "${IPCP_IN_EXEC_WORKER:-}" ] && args+=(--exec-worker "$IPCP_IN_EXEC_WORKER")
[ -n "${IPCP_IN_EXEC_SETUP:-}" ] && args+=(--exec-setup "$IPCP_IN_EXEC_SETUP")
[ -n "${IPCP_IN_EXEC_TEARDOWN:-}" ] && args+=(--exec-teardown "$IPCP_IN_EXEC_TEARDOWN")
[ "${IPCP_IN_FIFO:-false}" = true ] && args+=(--fifo)
[ "${IPCP_IN_ROBUST:-false}" = true ] && args+=(--robust)
[ -n "${IPCP_IN_KIND:-}" ] && args+=(--kind "$IPCP_IN_KIND")
[ -n "${IPCP_IN_OPT:-}" ] && args+=(--opt "$IPCP_IN_OPT")
[ -n "${IPCP_IN_SEED:-}" ] && args+=(--seed "$IPCP_IN_SEED")

"$bin" "${args[@]}" 2>&1 | tee "$out/validate.log"
status=${PIPESTATUS[0]}
verdict=$([ "$status" = 0 ] && echo pass || { [ "$status" = 1 ] && echo fail || echo error; })
{
  echo "status=$status"
  echo "verdict=$verdict"
  echo "dir=$out"
  echo "report=$out/report.json"
  [ -s "$out/ipcproof.sarif" ] && echo "sarif=$out/ipcproof.sarif"
} >>"${GITHUB_OUTPUT:-/dev/null}"

# the step summary: the verdict and one row per case, from the JSON report
python3 - "$out/report.json" "$verdict" >>"${GITHUB_STEP_SUMMARY:-/dev/null}" <<'PY' ||
import json, sys
path, verdict = sys.argv[1], sys.argv[2]
try:
    r = json.load(open(path))
except (OSError, ValueError):
    print("## ipcproof validate: %s\n\nno report was written (see the log)" % verdict)
    sys.exit(0)
cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
print("## ipcproof validate: %s (%s)\n" % (verdict, cell(r.get("protocol", "?"))))
print("| case | mode | result | runs | violations |")
print("|---|---|---|---|---|")
for c in r.get("cases", []):
    kinds = ", ".join(sorted({v.get("kind", "?") for v in c.get("violations", [])})) or "-"
    print("| %s | %s | %s | %s | %s |" % (cell(c.get("name", "?")), cell(c.get("mode", "?")),
          cell(c.get("result", "?")), c.get("runs", 0), cell(kinds)))
for v in r.get("violations", [])[:20]:
    print("\n**%s** in *%s*: %s  \n`%s`" % (cell(v.get("kind")), cell(v.get("case", "")),
          cell(v.get("detail", ""))[:400], cell(v.get("repro", ""))))
if r.get("error"):
    print("\nerror: %s" % cell(r["error"]))
PY
  echo "ipcproof action: could not write the step summary" >&2
exit 0
