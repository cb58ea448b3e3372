#!/usr/bin/env python3
"""coverage.py - the figures of ci/coverage: llvm-cov's export of one merged profile, reduced to
line, function and branch coverage of every file of core/src/ (and of the harnesses), the trend
against a previous run, a terminal table and a Markdown table. Standard library only.

    coverage.py summarize --root ROOT --export EXPORT.json --targets TARGETS.json
                          [--corpus DIR]... [--units UNITS.json] [--previous SUMMARY.json]
                          [--json OUT] [--markdown OUT]
    coverage.py check-previous --previous SUMMARY.json

EXPORT.json is `llvm-cov export -summary-only` over every fuzz target and libipcproof.a (so a
file that no target reaches is there with its counts and nothing covered). TARGETS.json is
{target: {"inputs": N, "corpus_inputs": M, "status": "ok" | "failed", "failed_inputs": [...]}}.
SUMMARY.json is an earlier output of this script or a nightly's summary.json (its "coverage").
Exit: 0; 2 on unreadable input (a message on stderr).
"""
import argparse
import json
import os
import sys

METRICS = ("lines", "functions", "branches")


def metric(m):
    """{covered, count, percent} from llvm-cov's or our own figures; None when unusable."""
    if not isinstance(m, dict):
        return None
    try:
        c, n = int(m.get("covered", 0)), int(m.get("count", 0))
    except (TypeError, ValueError):
        return None
    if c < 0 or n < 0 or c > n:
        return None
    return {"covered": c, "count": n, "percent": round(100.0 * c / n, 2) if n else 0.0}


def add(ms):
    """The sum of several metrics (None ones skipped)."""
    ms = [m for m in ms if m]
    if not ms:
        return None
    return metric({"covered": sum(m["covered"] for m in ms), "count": sum(m["count"] for m in ms)})


def core_sources(root):
    """Every file of core/src/, as a path relative to ROOT: the files the report must list."""
    d = os.path.join(root, "core", "src")
    return sorted(os.path.join("core", "src", f) for f in os.listdir(d)
                  if f.endswith((".c", ".h")) and os.path.isfile(os.path.join(d, f)))


def summarize(export, root, targets):
    """The report of one merged profile. Every file of core/src/ is in "files"; one that is not in
    the export (no coverage mapping at all) is listed with "missing": true and no figures."""
    data = (export.get("data") or [{}])[0]
    seen = {}
    harnesses = []
    for f in data.get("files", []):
        name = os.path.relpath(os.path.realpath(f.get("filename", "?")), os.path.realpath(root))
        s = f.get("summary") or {}
        row = {"file": name, **{k: metric(s.get(k)) for k in METRICS}}
        if name.startswith("core/src/"):
            seen[name] = row
        elif name.startswith("harnesses/fuzz_"):
            row["target"] = os.path.basename(name)[len("fuzz_"):-2]
            harnesses.append(row)
    files = []
    for name in core_sources(root):
        row = seen.pop(name, None)
        if row is None:
            row = {"file": name, "missing": True}
        files.append(row)
    files += [seen[n] for n in sorted(seen)]  # generated or moved files: listed too
    totals = {k: add(r.get(k) for r in files) for k in METRICS}
    for r in files:
        lines = r.get("lines")
        r["reached"] = bool(lines and lines["covered"])
    return {"tool": "ci/coverage", "profile": "merged",
            "totals": {k: v for k, v in totals.items() if v},
            "files": files, "harnesses": sorted(harnesses, key=lambda r: r["file"]),
            "targets": targets}


def previous_coverage(prev):
    """The coverage part of an earlier result: this script's JSON or a nightly summary.json."""
    if isinstance(prev, dict) and isinstance(prev.get("coverage"), dict):
        prev = prev["coverage"]
    if not isinstance(prev, dict) or not isinstance(prev.get("files"), list):
        raise ValueError("no coverage \"files\" list in it")
    files = {}
    for f in prev["files"]:
        if not isinstance(f, dict) or not isinstance(f.get("file"), str):
            continue
        ms = {k: metric(f.get(k)) for k in METRICS}
        old = files.get(f["file"])  # an old per-target summary: the best target per file
        if old is None or (ms["lines"] or {}).get("covered", -1) > (old["lines"] or {}).get("covered", -1):
            files[f["file"]] = ms
    totals = {k: metric((prev.get("totals") or {}).get(k)) for k in METRICS}
    return files, totals


def delta(now, before):
    if not now or not before:
        return None
    return round(now["percent"] - before["percent"], 2)


def add_trend(res, prev, prev_name):
    """Adds "trend": {lines: +points, ...} to every file and to the totals (None where the
    previous run has no figure: a new file, or a metric it did not record)."""
    pfiles, ptotals = previous_coverage(prev)
    for r in res["files"]:
        p = pfiles.get(r["file"])
        r["trend"] = {k: delta(r.get(k), p.get(k) if p else None) for k in METRICS}
    res["trend"] = {k: delta(res["totals"].get(k), ptotals.get(k)) for k in METRICS}
    res["previous"] = prev_name
    return res


def fmt_m(m):
    if not m:
        return "-"
    if not m["count"]:
        return "n/a (0/0)"  # e.g. a header without branches
    return f"{m['percent']:.1f}% ({m['covered']}/{m['count']})"


def fmt_t(t):
    return "" if t is None else f"{t:+.1f}"


def table(res):
    """Rows of (file, lines, functions, branches[, trend]) for the terminal and Markdown."""
    trend = "trend" in res
    rows = []
    for r in res["files"] + [dict(res["totals"], file="total", trend=res.get("trend"))]:
        if r.get("missing"):
            row = [r["file"], "no coverage mapping", "", ""]
        else:
            row = [r["file"]] + [fmt_m(r.get(k)) for k in METRICS]
        if trend:
            t = r.get("trend") or {}
            row.append(" ".join(f"{k[0]}{fmt_t(t.get(k))}" for k in METRICS
                                if t.get(k) is not None) or "new")
        rows.append(row)
    head = ["file", "lines", "functions", "branches"] + (["trend (points)"] if trend else [])
    return head, rows


def text(res):
    head, rows = table(res)
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    out = ["  ".join(str(x).ljust(n) for x, n in zip(r, w)).rstrip() for r in [head] + rows]
    tg = res.get("targets") or {}
    out.append("inputs replayed: " + ", ".join(
        f"{t} {v.get('inputs', 0)}" + (f" ({v['corpus_inputs']} from --corpora)"
                                       if v.get("corpus_inputs") else "")
        + ("" if v.get("status") == "ok" else f" [{v.get('status')}]")
        for t, v in sorted(tg.items())))
    if res.get("unit_tests"):
        out.append("unit tests: " + ", ".join(f"{u} {st}" for u, st in sorted(res["unit_tests"].items())))
    return "\n".join(out)


def markdown(res):
    head, rows = table(res)
    out = ["### Coverage of core/src (one merged profile over every fuzz target)", ""]
    if res.get("corpus"):
        out += [f"Inputs: {', '.join(res['corpus'])}." + (
            f" Trend against {res['previous']}." if res.get("previous") else ""), ""]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for r in rows:
        cells = [f"`{r[0]}`" if r[0] != "total" else "**total**"] + r[1:]
        out.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(out) + "\n"


def load(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"ci/coverage: error: cannot read {what} {path}: {e}", file=sys.stderr)
        sys.exit(2)


def main(argv):
    ap = argparse.ArgumentParser(prog="coverage.py")
    ap.add_argument("cmd", choices=["summarize", "check-previous"])
    ap.add_argument("--root")
    ap.add_argument("--export")
    ap.add_argument("--targets")
    ap.add_argument("--corpus", action="append", default=[])
    ap.add_argument("--units")
    ap.add_argument("--previous")
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    a = ap.parse_args(argv)
    if a.cmd == "check-previous":  # before anything is built: a bad --previous is exit 2 at once
        try:
            previous_coverage(load(a.previous, "previous summary"))
        except ValueError as e:
            print(f"ci/coverage: error: previous summary {a.previous}: {e}", file=sys.stderr)
            return 2
        return 0
    res = summarize(load(a.export, "llvm-cov export"), a.root, load(a.targets, "target list"))
    if a.units:
        res["unit_tests"] = load(a.units, "unit test list")
    real = os.path.realpath(a.root)
    res["corpus"] = [os.path.relpath(c, real)
                     if os.path.isabs(c) and os.path.realpath(c).startswith(real + os.sep)
                     else c for c in a.corpus]
    if a.previous:
        try:
            add_trend(res, load(a.previous, "previous summary"), a.previous)
        except ValueError as e:
            print(f"ci/coverage: error: previous summary {a.previous}: {e}", file=sys.stderr)
            return 2
    print(text(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
            f.write("\n")
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
