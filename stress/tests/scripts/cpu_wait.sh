#!/bin/bash
# cpu_wait.sh IPCPROOF PLUGIN OUTDIR - the report's per-endpoint cpu_wait_s (time runnable but
# without a CPU, which the starvation check uses to tell an overloaded machine from a stopped
# protocol) is measured: near 0 for a run with CPUs to spare is not asserted (the machine is
# shared), but a run squeezed onto one CPU beside a busy loop of higher priority must show
# seconds of it, and a pass.
set -eu
ipcproof=$1 plugin=$2 out=$3
mkdir -p "$out"
json=$out/cpu_wait.json
taskset -c 0 bash -c 'end=$((SECONDS + 8)); while [ $SECONDS -lt $end ]; do :; done' &
hog=$!
trap 'kill $hog 2>/dev/null || true' EXIT
nice -n 19 taskset -c 0 "$ipcproof" stress --plugin "$plugin" --kind channel --producers 2 \
  --consumers 1 --duration 2 --max-size 1024 --seed 1 --json "$json"
python3 - "$json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
eps = r["stats"]["endpoints"]
waits = [e.get("cpu_wait_s") for e in eps]
print("cpu_wait_s per endpoint:", waits)
assert all(w is not None and w >= 0 for w in waits), "cpu_wait_s missing"
assert max(waits) > 0.2, "a busy loop beside the run on one CPU left no CPU wait"
assert r["result"] == "pass", r["result"]
PY
