#!/usr/bin/env python3
"""bench_verdicts.py IPCPROOF - each aimed row's verdict follows from its own figures.

Runs `ipcproof bench --smoke --reps 3 --only ring --json` and checks every row with an aim:
repetitions that straddle the aim with the best ratio 1.5 times the worst or more make it
`noisy`; `noisy` is said only for that reason, or for a load above the CPU count with the median
within 1.5x of the aim; otherwise the verdict is `met` exactly when the median meets the aim. Never a speed test: the figures of a smoke
run mean nothing, only the rule that judges them.
"""
import json
import subprocess
import sys
import tempfile

with tempfile.NamedTemporaryFile(suffix=".json") as f:
    subprocess.run([sys.argv[1], "bench", "--smoke", "--reps", "3", "--only", "ring",
                    "--json", f.name], check=True, stdout=subprocess.DEVNULL)
    doc = json.load(open(f.name))
problems, judged = [], 0
for r in doc["rows"]:
    if "aim" not in r or r.get("na") or r.get("error"):
        continue
    judged += 1
    name, v, lo, hi = r["name"], r.get("verdict"), r["min_ratio"], r["max_ratio"]
    aim_ge, aim = r["aim"].startswith(">="), float(r["aim"][2:])
    straddle = (lo < aim <= hi) if aim_ge else (lo <= aim < hi)
    disagree = straddle and lo > 0 and hi / lo >= 1.5
    near = r["ratio"] * 1.5 >= aim and r["ratio"] <= aim * 1.5
    why = r.get("noisy", "")
    if disagree and v != "noisy":
        problems.append(f"{name}: ratios {lo}..{hi} straddle the aim {aim}, verdict {v}")
    elif v == "noisy":
        if not ((disagree and why.startswith("repetitions disagree"))
                or (near and why.startswith("load "))):
            problems.append(f"{name}: noisy without a reason that holds: {why!r}")
    else:
        want = "met" if r["aim_met"] else "missed"
        if v != want:
            problems.append(f"{name}: verdict {v}, aim_met {r['aim_met']}: expected {want}")
if judged == 0:
    problems.append("no row with an aim was judged")
print(f"bench_verdicts.py: {judged} rows judged")
for p in problems:
    print("  " + p)
sys.exit(1 if problems else 0)
