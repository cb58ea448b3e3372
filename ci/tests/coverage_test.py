#!/usr/bin/env python3
"""coverage_test.py - ci/coverage: one merged profile, every file of core/src/, the trend.

    coverage_test.py trend SOURCE_DIR          (ci/lib/coverage.py alone: no build)
    coverage_test.py run SOURCE_DIR BUILD_DIR  (ci/coverage for real, coverage build in BUILD_DIR)

trend: ci/lib/coverage.py on a fabricated llvm-cov export and a fabricated previous night's
summary.json: every file of core/src/ is listed (one the export lacks is marked missing, one no
target reaches is 0 %), totals are sums, the trend is the change in points per file and in
total (none for a file the previous night did not have), the Markdown table has the column, and
a previous summary without coverage is refused with exit 2.

run: ci/coverage on two targets (frame_decode, chunk_reassembly) with a tiny --corpora directory:
every core/src/*.c is in its JSON with line, function and branch figures (files no target
reaches at 0 %); inputs under --corpora are replayed and change the figures (the real seeds of
frame_decode given as --corpora reach functions of frame.c that a 1-byte input does not); with
the seeds and --corpora both are replayed; --previous gives per-file and total trends equal to
the difference of the two runs; bad arguments exit 2 with a message before anything is built;
--unit-tests adds core/'s cmocka tests to the profile (lock.c, which no fuzz target reaches, gets
covered) and exits 1 exactly when one of them fails.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SRC = BUILD = None
METRICS = ("lines", "functions", "branches")


def m(c, n):
    return {"covered": c, "count": n, "percent": round(100.0 * c / n, 2) if n else 0.0}


def core_c():
    return sorted(os.path.join("core", "src", os.path.basename(p))
                  for p in glob.glob(os.path.join(SRC, "core", "src", "*.c")))


class Trend(unittest.TestCase):
    """ci/lib/coverage.py on fabricated input."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ipcp-covtest.")
        self.addCleanup(shutil.rmtree, self.tmp)

    def write(self, name, obj):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return p

    def summarize(self, export, previous=None, expect=0):
        args = [sys.executable, os.path.join(SRC, "ci", "lib", "coverage.py"), "summarize",
                "--root", SRC, "--export", self.write("export.json", export),
                "--targets", self.write("targets.json", {"frame_decode": {"inputs": 3}}),
                "--json", os.path.join(self.tmp, "out.json"),
                "--markdown", os.path.join(self.tmp, "out.md")]
        if previous is not None:
            args += ["--previous", self.write("prev.json", previous)]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, expect, r.stdout + r.stderr)
        if expect:
            return r
        with open(os.path.join(self.tmp, "out.json")) as f, open(os.path.join(self.tmp, "out.md")) as g:
            return json.load(f), g.read()

    def export(self):
        f = lambda name, l, fn, b: {"filename": os.path.join(SRC, name),
                                    "summary": {"lines": l, "functions": fn, "branches": b}}
        files = [f("core/src/frame.c", m(150, 200), m(8, 10), m(30, 100)),
                 f("core/src/err.c", m(0, 20), m(0, 2), m(0, 8)),
                 f("harnesses/fuzz_frame_decode.c", m(40, 50), m(2, 2), m(10, 20))]
        # every other core/src/*.c but ring.c: as llvm-cov lists them from libipcproof.a
        files += [f(n, m(1, 10), m(1, 2), m(0, 4)) for n in core_c()
                  if n not in ("core/src/frame.c", "core/src/err.c", "core/src/ring.c")]
        return {"data": [{"files": files, "totals": {}}]}

    def test_every_file_totals_and_trend(self):
        prev = {"schema": "ipcproof-nightly/1", "coverage": {
            "files": [{"file": "core/src/frame.c", "lines": m(100, 200), "functions": m(8, 10),
                       "branches": m(40, 100)},
                      {"file": "core/src/err.c", "lines": m(5, 20)}],
            "totals": {"lines": m(100, 1000), "functions": m(1, 2)}}}
        res, md = self.summarize(self.export(), prev)
        files = {f["file"]: f for f in res["files"]}
        self.assertTrue(set(core_c()) <= set(files), set(core_c()) - set(files))
        self.assertEqual(files["core/src/ring.c"], {"file": "core/src/ring.c", "missing": True,
                                                    "reached": False,
                                                    "trend": {k: None for k in METRICS}})
        self.assertEqual(files["core/src/err.c"]["lines"], m(0, 20))  # reached by nothing: 0 %
        self.assertFalse(files["core/src/err.c"]["reached"])
        self.assertTrue(files["core/src/frame.c"]["reached"])
        self.assertEqual(files["core/src/frame.c"]["trend"], {"lines": 25.0, "functions": 0.0,
                                                              "branches": -10.0})
        self.assertEqual(files["core/src/err.c"]["trend"], {"lines": -25.0, "functions": None,
                                                            "branches": None})
        others = [n for n in core_c() if n not in ("core/src/frame.c", "core/src/err.c",
                                                   "core/src/ring.c")]
        self.assertEqual(files[others[0]]["trend"], {k: None for k in METRICS})  # new file
        n = len(others)
        self.assertEqual(res["totals"]["lines"], m(150 + n, 220 + 10 * n))
        self.assertEqual(res["totals"]["branches"], m(30, 108 + 4 * n))
        lt = round(m(150 + n, 220 + 10 * n)["percent"] - 10.0, 2)
        self.assertEqual(res["trend"], {"lines": lt, "functions": round(
            m(8 + n, 12 + 2 * n)["percent"] - 50.0, 2), "branches": None})
        self.assertEqual([h["target"] for h in res["harnesses"]], ["frame_decode"])
        self.assertIn("| file | lines | functions | branches | trend (points) |", md)
        self.assertIn("| `core/src/frame.c` | 75.0% (150/200) | 80.0% (8/10) | 30.0% (30/100) "
                      "| l+25.0 f+0.0 b-10.0 |", md)
        self.assertIn(f"| **total** | {res['totals']['lines']['percent']:.1f}%", md)
        self.assertIn("| `core/src/ring.c` | no coverage mapping |", md)

    def test_no_previous_no_trend(self):
        res, md = self.summarize(self.export())
        self.assertNotIn("trend", res)
        self.assertFalse(any("trend" in f for f in res["files"]))
        self.assertNotIn("trend", md)

    def test_previous_without_coverage_is_refused(self):
        for bad in ({"coverage": {"status": "skipped"}}, [1, 2], "{not json"):
            r = self.summarize(self.export(), bad, expect=2)
            self.assertIn("previous summary", r.stderr)


class Run(unittest.TestCase):
    """ci/coverage for real, on two targets, in its own build directory."""
    targets = ["frame_decode", "chunk_reassembly"]

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ipcp-covrun.")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def cov(self, *args, expect=0, targets=None, build=None):
        out = os.path.join(self.tmp, f"out{len(os.listdir(self.tmp))}.json")
        cmd = [os.path.join(SRC, "ci", "coverage"), "--build-dir", build or BUILD, "--json", out,
               *args, *(self.targets if targets is None else targets)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
        if expect is not None:
            self.assertEqual(r.returncode, expect, r.stdout[-3000:] + r.stderr[-3000:])
        if expect:
            return r
        with open(out) as f:
            return (r, json.load(f)) if expect is None else json.load(f)

    def corpora(self, name, with_seeds):
        d = os.path.join(self.tmp, name)
        os.makedirs(os.path.join(d, "frame_decode"))
        with open(os.path.join(d, "frame_decode", "one-byte"), "wb") as f:
            f.write(b"x")
        if with_seeds:
            for p in glob.glob(os.path.join(SRC, "corpora", "frame_decode", "*")):
                shutil.copy(p, os.path.join(d, "frame_decode", "copy-" + os.path.basename(p)))
        return d

    @staticmethod
    def by_file(res):
        return {f["file"]: f for f in res["files"]}

    def test_1_bad_arguments_exit_2_before_building(self):
        never = os.path.join(self.tmp, "never-built")
        for args, what in ((["--corpora", os.path.join(self.tmp, "nope")], "is not a directory"),
                           (["--previous", os.path.join(self.tmp, "nope.json")], "previous summary"),
                           (["--timeout", "soon"], "--timeout"),
                           (["--no-seeds"], "--no-seeds needs --corpora"),
                           (["--bogus"], "unknown option")):
            r = self.cov(*args, expect=2, build=never)
            self.assertIn("ci/coverage: error: ", r.stderr)
            self.assertIn(what, r.stderr)
        r = self.cov(expect=2, targets=["no_such_target"], build=never)
        self.assertIn("unknown fuzz target 'no_such_target'", r.stderr)
        self.assertFalse(os.path.exists(never), "a bad argument got as far as the build")

    def test_2_every_file_and_corpora_change_the_figures(self):
        seeds = self.cov()
        files = self.by_file(seeds)
        for name in core_c():  # every core/src/*.c, with its three figures
            self.assertIn(name, files)
            for k in METRICS:
                fm = files[name].get(k)
                self.assertIsInstance(fm, dict, (name, k))
                self.assertGreaterEqual(fm["count"], 1 if k != "branches" else 0, (name, k))
                self.assertLessEqual(fm["covered"], fm["count"])
        self.assertGreater(files["core/src/frame.c"]["functions"]["covered"], 0)
        unreached = [n for n in core_c() if not files[n]["reached"]]
        self.assertTrue(unreached, "two targets reach every file of core/src?")
        for n in unreached:  # listed at 0 %, with their real sizes
            self.assertEqual(files[n]["lines"]["covered"], 0)
            self.assertGreater(files[n]["lines"]["count"], 0)
        tot = seeds["totals"]["lines"]
        self.assertEqual(tot["count"], sum(f["lines"]["count"] for f in seeds["files"]
                                           if f.get("lines")))
        self.assertEqual(seeds["targets"]["frame_decode"]["corpus_inputs"], 0)

        # --corpora only: one byte, then the real seeds too; the latter reach more of frame.c
        tiny = self.cov("--no-seeds", "--corpora", self.corpora("tiny", False))
        full = self.cov("--no-seeds", "--corpora", self.corpora("full", True))
        self.assertEqual(tiny["targets"]["frame_decode"]["inputs"], 1)
        self.assertEqual(tiny["targets"]["chunk_reassembly"]["inputs"], 0)
        ft, ff = self.by_file(tiny)["core/src/frame.c"], self.by_file(full)["core/src/frame.c"]
        self.assertGreater(ff["functions"]["covered"], ft["functions"]["covered"])
        self.assertGreater(ff["lines"]["covered"], ft["lines"]["covered"])
        self.assertGreater(ff["branches"]["covered"], ft["branches"]["covered"])

        # seeds and --corpora together: everything replayed; --previous: the trend is the change
        prev = os.path.join(self.tmp, "prev.json")
        with open(prev, "w") as f:
            json.dump({"coverage": tiny}, f)  # as a nightly's summary.json holds it
        both = self.cov("--corpora", os.path.join(self.tmp, "full"), "--previous", prev)
        nseeds = seeds["targets"]["frame_decode"]["inputs"]
        ncorp = full["targets"]["frame_decode"]["inputs"]
        self.assertEqual(both["targets"]["frame_decode"]["inputs"], nseeds + ncorp)
        self.assertEqual(both["targets"]["frame_decode"]["corpus_inputs"], ncorp)
        self.assertEqual(both["corpus"], ["corpora/<target>", "corpora/regressions/<target>",
                                          os.path.join(self.tmp, "full") + "/<target>"])
        bf, tf = self.by_file(both), self.by_file(tiny)
        for name in core_c():
            for k in METRICS:
                self.assertAlmostEqual(bf[name]["trend"][k], round(
                    bf[name][k]["percent"] - tf[name][k]["percent"], 2), places=2, msg=(name, k))
        self.assertGreater(bf["core/src/frame.c"]["trend"]["functions"], 0)
        for k in METRICS:
            self.assertAlmostEqual(both["trend"][k], round(
                both["totals"][k]["percent"] - tiny["totals"][k]["percent"], 2), places=2)


    def test_3_unit_tests_join_the_profile(self):
        fuzz = self.by_file(self.cov())
        self.assertEqual(fuzz["core/src/lock.c"]["lines"]["covered"], 0)  # no target reaches it
        r, res = self.cov("--unit-tests", expect=None)
        units = res["unit_tests"]
        self.assertIn("lock_test", units)
        self.assertEqual(set(units), {os.path.basename(p)[:-2] for p in
                                      glob.glob(os.path.join(SRC, "core", "tests", "*_test.c"))})
        # exit 1 exactly when a unit test failed (the figures are written either way)
        self.assertEqual(r.returncode, 1 if "failed" in units.values() else 0, r.stderr[-2000:])
        lock = self.by_file(res)["core/src/lock.c"]
        self.assertGreater(lock["lines"]["covered"], 0)
        self.assertGreater(lock["functions"]["covered"], 0)
        self.assertIn("core/tests/*_test.c (unit tests)", res["corpus"])


def main():
    global SRC, BUILD
    mode = sys.argv[1]
    SRC = os.path.realpath(sys.argv[2])
    if mode == "run":
        BUILD = os.path.abspath(sys.argv[3])
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(Trend if mode == "trend" else Run)
    ok = unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
