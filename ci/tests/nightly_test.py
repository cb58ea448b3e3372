#!/usr/bin/env python3
"""nightly_test.py - the parts of ci/lib/nightly.py that decide what the nightly reports.

    nightly_test.py CI_LIB_NIGHTLY_PY FIXTURES_DIR

Checks, without building or fuzzing anything:
  - crash keys from real sanitizer output (fixtures/crashes/: an ASan heap overflow, a UBSan
    shift, a failed harness invariant under libFuzzer's deadly-signal handler): the kind, the
    top project frames (runtime, libc and libFuzzer frames skipped), a readable summary; the key
    does not change with addresses, pids, line numbers or file locations, and does change when
    the faulting function or the kind does;
  - a validate report becomes one verdict row per mode with the right result, violation count
    and kinds, median throughput, and a repro command that names the binary of the build; a
    missing report is an error row;
  - coverage JSON in ci/coverage's shape (every file of core/src/ with lines, functions, branches
    and trend) and in llvm-cov export's shape; which previous summaries can give a trend;
  - exec/s over a window rather than between two bursty reports;
  - libFuzzer fork-mode status lines and AFL++ plot_data are parsed;
  - the AFL++ instances: plain main with CMPLOG, one ASan secondary.
"""
import importlib.util
import json
import os
import re
import sys
import tempfile
import unittest

NIGHTLY = FIXTURES = None
nl = None


def load():
    spec = importlib.util.spec_from_file_location("nightly", NIGHTLY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fixture(name):
    with open(os.path.join(FIXTURES, "crashes", name)) as f:
        return f.read()


class CrashKeys(unittest.TestCase):
    def setUp(self):
        self.n = object.__new__(nl.Nightly)  # no run: only the parsers

    def key(self, out):
        p = self.n.parse_crash(out)
        self.assertIsNotNone(p)
        return "|".join([p[0]] + p[1]), p

    def test_asan_heap_overflow(self):
        key, (kind, frames, summary, disp) = self.key(fixture("asan-heap-overflow.txt"))
        self.assertEqual(kind, "heap-buffer-overflow")
        self.assertEqual(frames, ["copy_it", "LLVMFuzzerTestOneInput"])
        self.assertIn("heap-buffer-overflow (WRITE of size 6) in copy_it", summary)
        self.assertIn("fuzz_planted.c:9:5", summary)
        self.assertTrue(disp[0].startswith("#1 copy_it "), disp)
        self.assertFalse(any("__asan" in d or "fuzzer::" in d for d in disp), disp)

    def test_ubsan_shift(self):
        key, (kind, frames, summary, disp) = self.key(fixture("ubsan-shift.txt"))
        self.assertEqual(kind, "runtime error: shift exponent N is too large for N-bit type 'int'")
        self.assertEqual(frames, ["shift_it", "LLVMFuzzerTestOneInput"])
        self.assertIn("runtime error: shift exponent 48", summary)

    def test_invariant_under_deadly_signal(self):
        key, (kind, frames, summary, disp) = self.key(fixture("invariant-abort.txt"))
        self.assertEqual(kind, "invariant failed: d[3] != 'q'")
        self.assertEqual(frames, ["LLVMFuzzerTestOneInput"])  # abort/raise/libc/libFuzzer skipped
        self.assertIn("invariant failed: d[3] != 'q': planted invariant 113", summary)

    def test_key_ignores_addresses_lines_and_paths(self):
        out = fixture("asan-heap-overflow.txt")
        moved = re.sub(r"0x[0-9a-f]+", lambda m: hex(int(m.group(0), 16) + 0x1230), out)
        moved = moved.replace("==16399==", "==4242==").replace(":9:5", ":27:13")
        moved = moved.replace("/src/ipcproof/", "/home/ci/work/ipcproof/")
        moved = moved.replace("WRITE of size 6", "WRITE of size 61")
        self.assertEqual(self.key(out)[0], self.key(moved)[0])

    def test_key_changes_with_function_and_kind(self):
        out = fixture("asan-heap-overflow.txt")
        base = self.key(out)[0]
        other_fn = out.replace(" in copy_it ", " in copy_other ")
        self.assertNotEqual(base, self.key(other_fn)[0])
        other_kind = out.replace("heap-buffer-overflow", "heap-use-after-free")
        self.assertNotEqual(base, self.key(other_kind)[0])
        self.assertTrue(self.key(other_kind)[0].startswith("heap-use-after-free|copy_it|"))

    def test_double_free_kind(self):
        out = fixture("asan-heap-overflow.txt").replace(
            "ERROR: AddressSanitizer: heap-buffer-overflow on address",
            "ERROR: AddressSanitizer: attempting double-free on")
        self.assertEqual(self.key(out)[1][0], "attempting double-free")

    def test_not_a_crash(self):
        self.assertIsNone(self.n.parse_crash("INFO: Seed: 1\nExecuted x in 0 ms\n"))


def validate_report(path):
    cases = [
        {"name": "1 producer, 1 consumer", "mode": "process", "result": "pass",
         "msgs_per_s": 1000.0, "violations": [], "repro": "ipcproof stress --proto p --seed 1"},
        {"name": "4 producers, 1 consumer", "mode": "process", "result": "pass",
         "msgs_per_s": 3000.0, "violations": [], "repro": "ipcproof stress --proto p --seed 2"},
        {"name": "fault signals", "mode": "process", "result": "fail", "msgs_per_s": 50.0,
         "violations": [{"kind": "reorder", "count": 3, "detail": "seq 7 after 9"},
                        {"kind": "loss", "count": 1, "detail": "seq 12 never arrived"}],
         "repro": "ipcproof stress --proto p --fault signals --seed 3"},
        {"name": "threads: 1 producer, 1 consumer", "mode": "thread", "result": "pass",
         "msgs_per_s": 400.0, "violations": [], "repro": "ipcproof stress --proto p --mode thread"},
        {"name": "threads: 2 producers, 2 consumers", "mode": "thread", "result": "pass",
         "msgs_per_s": 600.0, "violations": []},
        {"name": "threads: 4 producers, 1 consumer", "mode": "thread", "result": "n/a",
         "msgs_per_s": 0.0, "violations": [], "detail": "capacity refused"},
    ]
    with open(path, "w") as f:
        json.dump({"result": "fail", "protocol": "p", "cases": cases, "violations": []}, f)


class StressRows(unittest.TestCase):
    def setUp(self):
        self.n = object.__new__(nl.Nightly)
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        for f in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, f))
        os.rmdir(self.tmp)

    def rows(self, build="asan", write=True, rc=1):
        self.binp = os.path.join(nl.ROOT, "build", build, "stress", "ipcproof")
        js = os.path.join(self.tmp, "v.json")
        if write:
            validate_report(js)
        cmd = [self.binp, "validate", "--proto", "p", "--budget", "4.0", "--json", js, "--seed", "9"]
        log = os.path.join(self.tmp, "v.log")
        with open(log, "w") as f:
            f.write("ipcproof validate: boom\n")
        return self.n.stress_rows("p", build, self.binp, cmd, rc, js, log, 5.0)

    def test_one_row_per_mode(self):
        rows = {r["mode"]: r for r in self.rows()}
        self.assertEqual(sorted(rows), ["process", "thread"])
        p, t = rows["process"], rows["thread"]
        self.assertEqual((p["result"], p["violations"]), ("fail", 2))
        self.assertEqual(p["violation_kinds"], {"reorder": 3, "loss": 1})
        self.assertEqual(p["failed_cases"], ["fault signals"])
        self.assertEqual(p["repro"], "build/asan/stress/ipcproof stress --proto p --fault signals --seed 3")
        self.assertEqual(p["throughput"], 2000.0)  # median of the passing cases
        self.assertEqual((t["result"], t["violations"], t["throughput"]), ("pass", 0, 500.0))
        self.assertEqual(t["cases"], 3)
        # a passing row reruns the whole validate, in the same configuration, without --json
        self.assertEqual(t["repro"], "IPCPROOF_TSAN_BIN= build/asan/stress/ipcproof validate "
                                     "--proto p --budget 4.0 --seed 9")

    def test_tsan_rerun_line(self):
        rows = {r["mode"]: r for r in self.rows(build="tsan")}
        self.assertEqual(rows["thread"]["repro"], "build/tsan/stress/ipcproof validate --proto p "
                                                  "--budget 4.0 --seed 9")
        self.assertTrue(rows["process"]["repro"].startswith("build/tsan/stress/ipcproof stress "))

    def test_missing_report_is_an_error(self):
        rows = self.rows(write=False, rc=2)
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["result"], "error")
        self.assertIn("exit 2", rows[0]["error"])
        self.assertIn("boom", rows[0]["error"])


class Coverage(unittest.TestCase):
    def test_own_shape(self):
        c = nl.Nightly.coverage_from({
            "totals": {"lines": {"covered": 8, "count": 10, "percent": 80.0}},
            "files": [{"file": os.path.join(nl.ROOT, "core/src/frame.c"),
                       "lines": {"covered": 8, "count": 10}}]})
        self.assertEqual(c["totals"]["lines"]["percent"], 80.0)
        self.assertEqual(c["files"], [{"file": "core/src/frame.c",
                                       "lines": {"covered": 8, "count": 10, "percent": 80.0}}])

    def test_ci_coverage_shape(self):
        m = lambda c, n: {"covered": c, "count": n, "percent": round(100.0 * c / n, 2)}
        c = nl.Nightly.coverage_from({
            "totals": {"lines": m(60, 110), "functions": m(5, 9), "branches": m(20, 50)},
            "files": [{"file": "core/src/frame.c", "lines": m(60, 100), "functions": m(5, 8),
                       "branches": m(20, 40), "reached": True, "trend": {"lines": 2.5}},
                      {"file": "core/src/err.c", "lines": m(0, 10), "functions": m(0, 1),
                       "branches": m(0, 10), "reached": False, "trend": None}],
            "harnesses": [{"file": "harnesses/fuzz_b.c", "target": "b", "lines": m(30, 40)}],
            "targets": {"b": {"inputs": 4, "corpus_inputs": 2, "status": "ok"}},
            "trend": {"lines": 1.5, "functions": None, "branches": -0.25}})
        # every file, the unreached one too, with its three metrics and trend
        self.assertEqual([f["file"] for f in c["files"]], ["core/src/frame.c", "core/src/err.c"])
        self.assertEqual(c["files"][1]["lines"], {"covered": 0, "count": 10, "percent": 0.0})
        self.assertFalse(c["files"][1]["reached"])
        self.assertEqual(c["files"][0]["branches"]["percent"], 50.0)
        self.assertEqual(c["files"][0]["trend"], {"lines": 2.5})
        self.assertNotIn("trend", c["files"][1])  # None: a file new since the previous night
        self.assertEqual(c["totals"]["functions"], m(5, 9))
        self.assertEqual(c["trend"]["branches"], -0.25)
        self.assertEqual(c["targets"]["b"]["corpus_inputs"], 2)
        self.assertEqual(c["harnesses"], [{"file": "harnesses/fuzz_b.c", "target": "b",
                                           "lines": m(30, 40)}])

    def test_previous_summary_with_coverage(self):
        with tempfile.TemporaryDirectory() as d:
            for name, body, ok in (("good.json", {"coverage": {"files": [{"file": "core/src/a.c"}]}}, True),
                                   ("plain.json", {"files": [{"file": "core/src/a.c"}]}, True),
                                   ("nocov.json", {"coverage": {"status": "skipped", "files": []}}, False),
                                   ("bad.json", None, False)):
                p = os.path.join(d, name)
                with open(p, "w") as f:
                    f.write("not json{" if body is None else json.dumps(body))
                self.assertEqual(nl.Nightly.previous_has_coverage(p), ok, name)

    def test_llvm_cov_export_shape(self):
        c = nl.Nightly.coverage_from({"data": [{
            "totals": {"lines": {"covered": 3, "count": 4, "percent": 75.0},
                       "functions": {"covered": 1, "count": 1, "percent": 100.0}},
            "files": [{"filename": "core/src/chunk.c",
                       "summary": {"lines": {"covered": 3, "count": 4, "percent": 75.0}}},
                      {"filename": "harnesses/fuzz_chunk_reassembly.c",
                       "summary": {"lines": {"covered": 9, "count": 9, "percent": 100.0}}}]}]})
        self.assertEqual([f["file"] for f in c["files"]], ["core/src/chunk.c"])
        self.assertEqual(c["totals"]["functions"]["percent"], 100.0)


class Samples(unittest.TestCase):
    def test_rate_over_a_window(self):
        s = []
        # reports in bursts: 1000 execs/s really, but two reports 0.1 s apart
        nl.add_sample(s, {"t": 1.0, "execs": 1000})
        nl.add_sample(s, {"t": 2.0, "execs": 2000})
        nl.add_sample(s, {"t": 4.0, "execs": 4000})
        r = nl.add_sample(s, {"t": 4.1, "execs": 4900})
        self.assertAlmostEqual(r, (4900 - 1000) / 3.1, places=1)
        self.assertEqual(s[0]["exec_per_s"], 1000.0)
        # early on, no sample is 3 s old: the rate is taken from the engine's start
        s = []
        nl.add_sample(s, {"t": 2.0, "execs": 100000})
        r = nl.add_sample(s, {"t": 3.0, "execs": 250000})
        self.assertAlmostEqual(r, 250000 / 3.0, places=1)
        # a long gap: the previous sample is the base
        r = nl.add_sample(s, {"t": 13.0, "execs": 260000})
        self.assertAlmostEqual(r, 1000.0, places=1)

    def test_libfuzzer_fork_line(self):
        m = nl.Nightly.LF_FORK.match("#212288: cov: 4 ft: 5 corp: 4 exec/s 0 oom/timeout/crash: "
                                     "0/0/1 time: 1s job: 2 dft_time: 0")
        self.assertIsNotNone(m)
        self.assertEqual([m.group(i) for i in (1, 2, 3, 4, 7)], ["212288", "4", "5", "4", "1"])
        m = nl.Nightly.LF_PLAIN.match("#4096\tpulse  cov: 75 ft: 254 corp: 20/19Kb lim: 4 exec/s: 9")
        self.assertEqual(m.group(2), "75")

    def test_afl_plot_data(self):
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write("# relative_time, cycles_done, cur_item, corpus_count, pending_total, "
                    "pending_favs, map_size, saved_crashes, saved_hangs, max_depth, "
                    "execs_per_sec, total_execs, edges_found\n"
                    "8, 25, 2, 5, 0, 0, 50.00%, 1, 0, 3, 16988.20, 144581, 7\n")
        try:
            self.assertEqual(nl.Nightly.afl_plot(f.name),
                             [{"t": 8.0, "execs": 144581, "exec_per_s": 16988.2, "edges": 7}])
        finally:
            os.unlink(f.name)


class Speed(unittest.TestCase):
    def test_verdicts(self):
        # per process: a 2-worker fork run's rate is halved before it meets its aim
        v = nl.speed_verdict(50000.0, 2, 20000, 0.5, 2)
        self.assertEqual((v["verdict"], v["exec_per_s"], v["aim"]), ("met", 25000.0, 20000))
        self.assertEqual(nl.speed_verdict(30000.0, 2, 20000, 0.5, 2)["verdict"], "missed")
        # under load (more runnable work than CPUs) and within 1.5x of the aim either way: noisy
        for rate in (14000.0, 29000.0):
            v = nl.speed_verdict(rate, 1, 20000, 3.0, 2)
            self.assertEqual(v["verdict"], "noisy", rate)
            self.assertIn("load 3.00 on 2 CPUs", v["noisy"])
        # under load but far from the aim: the verdict stands
        self.assertEqual(nl.speed_verdict(5000.0, 1, 20000, 3.0, 2)["verdict"], "missed")
        self.assertEqual(nl.speed_verdict(31000.0, 1, 20000, 3.0, 2)["verdict"], "met")
        self.assertEqual(nl.speed_verdict(0.0, 1, 20000, 0.1, 2)["verdict"], "n/a")

    def test_aims_from_the_options_files(self):
        self.assertEqual(nl.Nightly.speed_aim("frame_decode"), 100000)
        self.assertEqual(nl.Nightly.speed_aim("chunk_reassembly"), 100000)
        self.assertEqual(nl.Nightly.speed_aim("ring_model"), 20000)
        self.assertEqual(nl.Nightly.speed_aim("no_such_target"), nl.DEFAULT_SPEED_AIM)
        # the [ipcproof] section gives libFuzzer no flag
        self.assertEqual(nl.Nightly.options_section("frame_decode", "libfuzzer"),
                         [("max_len", "4200")])


class AflLayout(unittest.TestCase):
    """AFL++'s advice for parallel instances: plain main with CMPLOG, one ASan secondary."""

    @staticmethod
    def layout(jobs, built=("afl", "afl-plain", "afl-cmplog")):
        from types import SimpleNamespace
        me = SimpleNamespace(a=SimpleNamespace(jobs=jobs),
                             usable=lambda p, t: f"/b/{p}/{t}" if p in built else None)
        return nl.Nightly.afl_layout(me, "x", "/b/afl/fuzz_x")

    def test_three_jobs(self):
        self.assertEqual(self.layout(3), {
            "main": ("afl-plain", "/b/afl-plain/fuzz_x", "/b/afl-cmplog/fuzz_x"),
            "s1": ("afl", "/b/afl/fuzz_x", None),
            "s2": ("afl-plain", "/b/afl-plain/fuzz_x", None)})

    def test_one_job_runs_asan_with_cmplog(self):
        self.assertEqual(self.layout(1),
                         {"main": ("afl", "/b/afl/fuzz_x", "/b/afl-cmplog/fuzz_x")})

    def test_without_the_plain_build_every_instance_is_asan(self):
        self.assertEqual(self.layout(2, built=("afl",)), {
            "main": ("afl", "/b/afl/fuzz_x", None), "s1": ("afl", "/b/afl/fuzz_x", None)})


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    NIGHTLY, FIXTURES = sys.argv[1], sys.argv[2]
    nl = load()
    unittest.main(argv=[sys.argv[0], "-v"])
