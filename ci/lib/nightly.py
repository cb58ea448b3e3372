#!/usr/bin/env python3
"""nightly.py - the nightly pipeline behind ci/nightly (docs/nightly.md has the whole story).

Steps, each recorded as a phase in summary.json:
  1. build   cmake --preset X (first time) + cmake --build --preset X for libfuzzer, afl, asan,
             tsan; the coverage flavour is built by ci/coverage. Builds are not part of the budget.
  2. fuzz    ~60 % of the budget, shared out equally between targets and, per target, between
             libFuzzer (-fork=JOBS) and AFL++ (-M main, one -S per extra job, one sync dir).
             AFL++ starts from the seeds plus what libFuzzer found. exec/s and coverage are
             sampled while they run (libFuzzer status lines, AFL++ StatsD gauges).
  3. stress  ~30 %: `ipcproof validate` on every built-in protocol in the asan and tsan builds.
  4. merge   AFL++ queues through afl-cmin, then libFuzzer -merge=1 of seeds + previous corpus +
             new inputs into an empty dir -> DIR/corpora/<target>/ (--update-corpora: corpora/).
  5. triage  every crash file replayed with the libFuzzer build, keyed by its sanitizer kind and
             top stack frames, one minimized reproducer per key; a key that a file in
             corpora/regressions/<target>/ reproduces is known, any other is new.
  6. coverage ci/coverage over the seeds and tonight's merged corpora: one merged profile, line,
              function and branch coverage of every file of core/src/, trend against the
              previous run's summary.json.
  7. report  DIR/summary.json, DIR/report.html (ci/report).
Python 3 standard library only.
"""
import argparse
import datetime
import hashlib
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = "ipcproof-nightly/1"
FUZZ_SHARE, STRESS_SHARE = 0.60, 0.30
ENGINES = ("libfuzzer", "afl")
# AFL++ instances, as its docs advise for parallel fuzzing: the main one and the others run the
# build without sanitizers (afl-plain), with `-c` and the CMPLOG build (afl-cmplog) on the main
# one; exactly one secondary runs the ASan + UBSan build (afl). Without the plain build, every
# instance runs the ASan one, as before.
AFL_FLAVOURS = ("afl-plain", "afl-cmplog")
# What ctest gives sanitizer builds (IPCP_TEST_ENV in CMakeLists.txt).
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
# For replaying a crash: one DEDUP_TOKEN line from the top 3 frames, symbolized stacks.
TRIAGE_ENV = {"ASAN_OPTIONS": "dedup_token_length=3:detect_leaks=1:symbolize=1:halt_on_error=1",
              "UBSAN_OPTIONS": "print_stacktrace=1:dedup_token_length=3:halt_on_error=1:symbolize=1"}
LF_TIMEOUT_S = 10  # libFuzzer -timeout: an input running this long is a hang finding
MAX_TRIAGE_FILES = 60  # crash files replayed per target (smallest first)
# A fuzz target's speed aim: exec/s of one libFuzzer + ASan process, from the [ipcproof]
# exec_per_s_aim of harnesses/<target>.options (this when it has none). A rate within
# NOISY_SPREAD of its aim, measured while the machine had more runnable work than CPUs, is
# "noisy" rather than met or missed (the rule of stress/bench.c's rows).
DEFAULT_SPEED_AIM = 20000
NOISY_SPREAD = 1.5


# ---- small helpers ------------------------------------------------------------------------------

def now():
    return time.monotonic()


def iso(ts=None):
    return datetime.datetime.fromtimestamp(ts or time.time(), datetime.timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")


def rel(path):
    """Path as the user would type it from the checkout: relative when inside it. A relative
    path is taken as relative to the checkout (the tools run there)."""
    p = os.path.normpath(os.path.join(ROOT, path))
    if p == ROOT or p.startswith(ROOT + os.sep):
        return os.path.relpath(p, ROOT)
    return p


def sha1_file(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def files_in(d):
    if not d or not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d)
                  if not f.startswith(".") and os.path.isfile(os.path.join(d, f)))


def fmt_rate(v):
    v = float(v or 0)
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


RATE_WINDOW_S = 3.0


def speed_verdict(exec_per_s, workers, aim, load, ncpu):
    """The speed row of a libFuzzer run: exec/s per process (the run's exec/s over its -fork
    workers) against aim, as met / missed / noisy (with why) / n/a (nothing ran)."""
    per = exec_per_s / max(1, workers)
    v = {"aim": aim, "exec_per_s": round(per, 1), "load": round(load, 2), "cpus": ncpu}
    if per <= 0 or not aim:
        v["verdict"] = "n/a"
    elif load > ncpu and per * NOISY_SPREAD >= aim and per <= aim * NOISY_SPREAD:
        v["verdict"] = "noisy"
        v["noisy"] = f"load {load:.2f} on {ncpu} CPUs, rate near the aim"
    else:
        v["verdict"] = "met" if per >= aim else "missed"
    return v


def add_sample(series, sample):
    """Appends sample (with t and execs) to series, with exec_per_s over the last RATE_WINDOW_S
    seconds: the engines report in bursts (libFuzzer fork mode when a job ends), so the rate
    between two neighbouring reports is noise."""
    t, execs = sample["t"], sample["execs"]
    base = {"t": 0.0, "execs": 0}  # the engine's start, when no sample is old enough
    for prev in reversed(series):
        if t - prev["t"] >= RATE_WINDOW_S:
            base = prev
            break
    dt = t - base["t"]
    sample["exec_per_s"] = round(max(0.0, (execs - base["execs"]) / dt), 1) if dt > 0 else 0.0
    series.append(sample)
    return sample["exec_per_s"]


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def kill_group(p, grace=5.0):
    """Stops p and everything in its process group: SIGTERM, up to grace seconds for p to end,
    then SIGKILL to the group (libFuzzer's fork-mode jobs outlive a parent that got SIGTERM).
    p is reaped only after that, so its pid, which is the group's id, cannot have been reused."""
    if p.returncode is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    end = time.monotonic() + grace
    while time.monotonic() < end:
        try:
            if os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                break  # ended, still a zombie
        except ChildProcessError:
            break
        time.sleep(0.05)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def run(cmd, log=None, env=None, timeout=None, cwd=ROOT):
    """Runs cmd in its own process group, output to log (or captured). Returns (rc, output);
    rc is None when it was killed at the timeout."""
    out = open(log, "ab") if log else subprocess.PIPE
    try:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                             start_new_session=True)
    except OSError as e:
        if log:
            out.close()
        return 127, f"cannot run {cmd[0]}: {e}"
    ACTIVE.add(p)
    try:
        data, _ = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        kill_group(p)
        data, _ = p.communicate()
        rc = None
    finally:
        ACTIVE.discard(p)
        if log:
            out.close()
    if log:
        return rc, tail(log, 400)
    return rc, (data or b"").decode(errors="replace")


ACTIVE = set()  # running child process groups, stopped on SIGINT/SIGTERM


# ---- the output directory -----------------------------------------------------------------------
#
# A run clears the results of the previous one. It only ever deletes inside a directory that a
# nightly created (the marker file says so), and only strictly inside it: a directory that is not
# new, not empty and not marked is refused before anything is built or deleted.

MARKER = ".ipcproof-nightly"
MARKER_TEXT = """\
This directory holds the output of ipcproof's ci/nightly (docs/nightly.md), which created it.
A later `ci/nightly --out` with this directory deletes the previous results in it (work/, logs/,
crashes/, stress/, coverage/, summary.json, report.html), reads corpora/ back as an input and
writes new results. ci/nightly refuses a non-empty directory that does not hold this file.
"""
# What a run writes in DIR, hence what the next run clears. Other entries are left alone.
OUT_RESULTS = ("work", "logs", "crashes", "stress", "coverage", "summary.json",
               "summary.json.tmp", "report.html")
# The previous run's merged corpus: read back as an input (moved to work/prev-corpora).
OUT_CARRIED = ("corpora", ".prev-corpora")
# The previous run's summary.json, kept as work/previous-summary.json for the coverage trend.
PREV_SUMMARY = "previous-summary.json"


class OutDirError(Exception):
    """The output directory cannot be used, or a deletion would leave it. Nothing was deleted."""


def strictly_inside(base, path):
    """Whether path is below base (both absolute and real), and not base itself."""
    return path != base and os.path.commonpath([base, path]) == base


def out_dir_guard(real):
    """Why the real path real may never be an output directory, even with a marker; or None."""
    root = os.path.realpath(ROOT)
    if real == os.path.dirname(real):
        return "it is the root of the file system"
    home = os.environ.get("HOME")
    if home and real == os.path.realpath(home):
        return "it is the home directory"
    if real == root or strictly_inside(real, root):
        return "it is the checkout of ipcproof or contains it"
    if os.path.lexists(os.path.join(real, ".git")):
        return "it is the root of a git checkout"
    return None


def is_marked(real):
    m = os.path.join(real, MARKER)
    return os.path.isfile(m) and not os.path.islink(m)


def fuzz_target_names():
    d = os.path.join(ROOT, "harnesses")
    return {f[len("fuzz_"):-2] for f in os.listdir(d) if f.startswith("fuzz_") and f.endswith(".c")}


def only_restored_corpora(real):
    """DIR holds nothing but corpora/<target>/ directories: what a CI cache restores of an
    earlier run's DIR/corpora (.github/workflows/nightly.yml caches out/nightly/corpora)."""
    if os.listdir(real) != ["corpora"]:
        return False
    c = os.path.join(real, "corpora")
    if os.path.islink(c) or not os.path.isdir(c):
        return False
    known = fuzz_target_names()
    return all(t in known and os.path.isdir(os.path.join(c, t))
               and not os.path.islink(os.path.join(c, t)) for t in os.listdir(c))


def check_out_dir(out):
    """Decides whether DIR may be used, without changing anything. Returns (real path, state):
    'new' (does not exist), 'empty', 'restored' (only corpora/<target>/, see
    only_restored_corpora) or 'marked'. Raises OutDirError otherwise."""
    path = os.path.abspath(out)
    real = os.path.realpath(path)
    shown = path if real == path else f"{path} (-> {real})"
    why = out_dir_guard(real)
    if why:
        raise OutDirError(f"{shown}: refusing to use it as the output directory: {why}. "
                          "Nothing was deleted.")
    if os.path.islink(path) and not os.path.exists(path):
        raise OutDirError(f"{path} is a symbolic link to {real}, which does not exist: "
                          "refusing to use it as the output directory")
    if not os.path.exists(real):
        return real, "new"
    if not os.path.isdir(real):
        raise OutDirError(f"{shown} exists and is not a directory")
    if is_marked(real):
        for name in OUT_RESULTS + OUT_CARRIED:
            p = os.path.join(real, name)
            if os.path.islink(p):
                to = os.path.realpath(p)
                if not strictly_inside(real, to):
                    raise OutDirError(
                        f"{p} is a symbolic link to {to}, outside the output directory {shown}: "
                        "refusing to use it (a run deletes and rewrites that entry). "
                        "Nothing was deleted.")
        return real, "marked"
    entries = os.listdir(real)
    if not entries:
        return real, "empty"
    if only_restored_corpora(real):
        return real, "restored"
    raise OutDirError(
        f"{shown} is not empty and was not created by ci/nightly (there is no {MARKER} file in "
        "it): refusing to use it as the output directory, because a run deletes what an earlier "
        "run left there. Nothing was deleted. Pass --out with a new or empty directory (the "
        "default is out/nightly); if this really is the output of an older ci/nightly, delete it "
        "yourself.")


def remove_inside(base, path, ignore_errors=False):
    """Deletes path (a file, a symbolic link - never what it points to - or a directory tree)
    if it lies strictly inside the marked output directory base. Raises OutDirError for any
    other path, whatever ignore_errors says; ignore_errors only covers failures to delete."""
    base = os.path.realpath(base)
    if out_dir_guard(base) or not is_marked(base):
        raise OutDirError(f"refusing to delete {path}: {base} is not a nightly output directory")
    a = os.path.abspath(path)
    name = os.path.basename(a)
    # The last component is not resolved: a symbolic link is removed, not followed.
    target = os.path.join(os.path.realpath(os.path.dirname(a)), name)
    if name in ("", ".", "..") or not strictly_inside(base, target):
        raise OutDirError(f"refusing to delete {path}: it is not inside the output directory {base}")
    try:
        if os.path.islink(target) or (os.path.lexists(target) and not os.path.isdir(target)):
            os.unlink(target)
        elif os.path.isdir(target):
            shutil.rmtree(target)
    except OSError:
        if not ignore_errors:
            raise


def prepare_out_dir(out):
    """Makes DIR ready for a run: creates it (or adopts an empty one, or one holding only restored
    corpora) with its marker, or, in a marked DIR, clears the previous results and keeps the
    previous corpora as an input. Returns (real path, work/prev-corpora path). Raises
    OutDirError, having deleted nothing, when DIR may not be used (check_out_dir)."""
    real, state = check_out_dir(out)
    if state == "new":
        os.makedirs(real)
    if state != "marked":
        with open(os.path.join(real, MARKER), "w") as f:
            f.write(MARKER_TEXT)
    prev = os.path.join(real, "corpora")
    keep = os.path.join(real, ".prev-corpora")
    if os.path.islink(prev):
        remove_inside(real, prev)
    elif os.path.isdir(prev):
        if os.path.lexists(keep):
            remove_inside(real, keep)
        os.rename(prev, keep)
    # the previous run's summary: the coverage trend is measured against it
    prev_summary = None
    old = os.path.join(real, "summary.json")
    if os.path.isfile(old) and not os.path.islink(old):
        try:
            with open(old, "rb") as f:
                prev_summary = f.read()
        except OSError:
            prev_summary = None
    for name in OUT_RESULTS:
        remove_inside(real, os.path.join(real, name), ignore_errors=True)
    work = os.path.join(real, "work")
    os.makedirs(os.path.join(work, "tmp"), exist_ok=True)
    if prev_summary is not None:
        with open(os.path.join(work, PREV_SUMMARY), "wb") as f:
            f.write(prev_summary)
    os.makedirs(os.path.join(real, "logs"), exist_ok=True)
    prev_corpora = os.path.join(work, "prev-corpora")
    if os.path.isdir(keep) and not os.path.islink(keep):
        os.rename(keep, prev_corpora)
    elif os.path.lexists(keep):
        remove_inside(real, keep)
    return real, prev_corpora


def dry_run(out):
    """--dry-run: what a run would do with DIR; changes nothing. Exit status 0, or OutDirError."""
    real, state = check_out_dir(out)
    what = {"new": "does not exist: a run creates it with its marker file",
            "empty": "is empty: a run uses it and puts its marker file in it",
            "restored": "holds only restored corpora/<target>/: a run marks it and reads them as "
                        "the previous corpus",
            "marked": f"holds the {MARKER} marker: a run reuses it"}[state]
    print(f"nightly: {rel(real)} {what}")
    if state == "marked":
        gone = [n for n in OUT_RESULTS if os.path.lexists(os.path.join(real, n))]
        print("  a run deletes: " + (", ".join(gone) if gone else "nothing"))
        if os.path.isdir(os.path.join(real, "corpora")):
            print("  corpora/ is read as the previous corpus and replaced by the merged one")
    return 0


# ---- progress line ------------------------------------------------------------------------------

class Progress:
    """One status line on stderr: rewritten every second on a terminal, printed every 15 s
    (and at every step) otherwise."""

    def __init__(self, t0, budget_s):
        self.t0, self.budget_s = t0, budget_s
        self.tb = None  # when the budget started (after the builds)
        self.tty = sys.stderr.isatty()
        self.phase, self.detail = "start", ""
        self.crashes = self.violations = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.last_len = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def line(self):
        def mmss(x):
            x = int(max(0, x))
            return f"{x // 60:02d}:{x % 60:02d}"
        budget = (f"budget {mmss(now() - self.tb)}/{mmss(self.budget_s)}" if self.tb
                  else "building, budget not started")
        return (f"[nightly {mmss(now() - self.t0)} | {budget}] {self.phase}"
                f"{': ' + self.detail if self.detail else ''} | new crashes {self.crashes}"
                f" | violations {self.violations}")

    def _emit(self, final_newline):
        text = self.line()
        with self.lock:
            if self.tty:
                pad = max(0, self.last_len - len(text))
                sys.stderr.write("\r" + text + " " * pad + ("\n" if final_newline else ""))
                self.last_len = 0 if final_newline else len(text)
            else:
                sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def _loop(self):
        tick = 1.0 if self.tty else 15.0
        while not self.stop.wait(tick):
            self._emit(False)

    def set(self, phase, detail=""):
        changed = phase != self.phase
        self.phase, self.detail = phase, detail
        if changed:
            self._emit(False)

    def note(self, detail):
        self.detail = detail

    def say(self, msg):
        with self.lock:
            if self.tty and self.last_len:
                sys.stderr.write("\r" + " " * self.last_len + "\r")
                self.last_len = 0
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    def close(self):
        self.stop.set()
        self.thread.join()
        self._emit(True)


# ---- the run ------------------------------------------------------------------------------------

class Nightly:
    def __init__(self, a, prev_corpora=None):
        self.a = a
        self.t0 = now()  # start of the run
        self.tb = self.t0  # start of the budget: set again once the builds are done
        self.wall0 = time.time()
        self.budget_s = a.budget * 60.0
        self.out = os.path.abspath(a.out)
        self.work = os.path.join(self.out, "work")
        self.logs = os.path.join(self.out, "logs")
        self.prev_corpora = prev_corpora or os.path.join(self.work, "prev-corpora")
        self.seed = a.seed if a.seed is not None else int(time.time()) % 1000000007
        self.errors, self.warnings, self.phases = [], [], []
        self.summary = {}
        self.prog = Progress(self.t0, self.budget_s)
        self.unshare = None
        self.symbolizer = shutil.which("llvm-symbolizer-14") or shutil.which("llvm-symbolizer")
        self.built = {}  # preset -> build dir, for presets that built (maybe partly)
        self.broken = {}  # preset -> targets that failed to build this time

    # -- bookkeeping --

    def phase(self, name, status, started, detail=""):
        self.phases.append({"name": name, "status": status, "seconds": round(now() - started, 2),
                            "detail": detail})

    def error(self, msg, detail=""):
        """msg: one line for the summary; detail (a log tail) only goes to the console."""
        self.errors.append(msg)
        self.prog.say(f"nightly: ERROR: {msg}" + (f"\n{detail.rstrip()}" if detail else ""))

    def env(self, extra=None, drop=()):
        e = dict(os.environ)
        for k in drop:
            e.pop(k, None)
        if self.symbolizer:
            e.setdefault("ASAN_SYMBOLIZER_PATH", self.symbolizer)
        e.update(extra or {})
        return e

    def elapsed(self):
        return now() - self.t0

    # -- 0. output directory: prepare_out_dir(), before the run starts --

    def keep_prev_corpora(self):
        """Before work/ goes: a target that got no merged corpus tonight (not fuzzed, merge
        failed, run interrupted) keeps the previous one in DIR/corpora/<target>/."""
        src = self.prev_corpora
        if not src or not os.path.isdir(src) or os.path.islink(src):
            return
        dst = os.path.join(self.out, "corpora")
        for t in sorted(os.listdir(src)):
            if not os.path.lexists(os.path.join(dst, t)):
                os.makedirs(dst, exist_ok=True)
                os.rename(os.path.join(src, t), os.path.join(dst, t))

    # -- 1. builds --

    def targets_available(self):
        names = sorted(f[len("fuzz_"):-2] for f in os.listdir(os.path.join(ROOT, "harnesses"))
                       if f.startswith("fuzz_") and f.endswith(".c"))
        if self.a.targets:
            want = self.a.targets.split(",")
            missing = [t for t in want if t not in names]
            if missing:
                self.error(f"unknown fuzz target(s): {', '.join(missing)}")
            names = [t for t in names if t in want]
        return names

    def build(self, preset, targets):
        t = now()
        self.prog.set(f"build {preset}")
        log = os.path.join(self.logs, f"build-{preset}.log")
        bdir = os.path.join(ROOT, "build", preset)
        # Configure every time (a few seconds when nothing changed): a target added since the
        # last configure is unknown to the generated Makefiles until then.
        rc, out = run(["cmake", "--preset", preset], log=log)
        if rc != 0:
            self.phase(f"build {preset}", "failed", t, "configure failed")
            self.error(f"cmake --preset {preset} failed, see {rel(log)}", out[-1500:])
            return False
        cmd = ["cmake", "--build", "--preset", preset, "--parallel", str(self.a.jobs)]
        if targets:
            cmd += ["--target"] + targets
        cmd += ["--", "-k"]  # keep going: one broken target does not stop the others
        before = os.path.getsize(log) if os.path.exists(log) else 0
        rc, out = run(cmd, log=log)
        with open(log, errors="replace") as f:
            f.seek(before)
            text = f.read()
        did = sum(1 for ln in text.splitlines() if "Building C object" in ln or "Linking C" in ln)
        self.built[preset] = bdir
        self.broken[preset] = set()
        if rc != 0:
            # make names the target of each failed rule: .../CMakeFiles/<target>.dir/...
            broken = set(re.findall(r"\*\*\* \[\S*CMakeFiles/([\w.-]+)\.dir/", text))
            if not broken or "ipcproof" in broken:  # the library itself: nothing is usable
                del self.built[preset]
                self.phase(f"build {preset}", "failed", t, "build failed")
                self.error(f"cmake --build --preset {preset} failed, see {rel(log)}", out[-1500:])
                return False
            self.broken[preset] = broken
            self.phase(f"build {preset}", "failed", t, f"failed: {', '.join(sorted(broken))}")
            self.error(f"build {preset}: {', '.join(sorted(broken))} failed to build, see {rel(log)}",
                       out[-1500:])
            return True
        self.phase(f"build {preset}", "ok", t, f"{did} steps" if did else "up to date")
        return True

    def usable(self, preset, target):
        """The binary of target in preset, if this run built it."""
        if preset not in self.built or target in self.broken.get(preset, ()):
            return None
        sub = "stress" if target == "ipcproof_cli" else "harnesses"
        name = "ipcproof" if target == "ipcproof_cli" else target
        p = os.path.join(self.built[preset], sub, name)
        return p if os.access(p, os.X_OK) else None

    # -- 2. fuzzing --

    @staticmethod
    def options_section(target, want):
        """[want] of harnesses/<target>.options (OSS-Fuzz format) -> [(key, value)]."""
        path = os.path.join(ROOT, "harnesses", f"{target}.options")
        pairs, section = [], None
        if not os.path.isfile(path):
            return pairs
        with open(path) as f:
            for ln in f:
                ln = ln.strip()
                if not ln or ln.startswith(("#", ";")):
                    continue
                m = re.match(r"\[(\w+)\]$", ln)
                if m:
                    section = m.group(1)
                elif section == want and "=" in ln:
                    pairs.append(tuple(x.strip() for x in ln.split("=", 1)))
        return pairs

    def read_options(self, target):
        """harnesses/<target>.options ([libfuzzer] key = value) -> flags."""
        return [f"-{k}={v}" for k, v in self.options_section(target, "libfuzzer")]

    @classmethod
    def speed_aim(cls, target):
        """exec_per_s_aim of [ipcproof] in harnesses/<target>.options, else DEFAULT_SPEED_AIM."""
        for k, v in cls.options_section(target, "ipcproof"):
            if k == "exec_per_s_aim":
                return int(v)
        return DEFAULT_SPEED_AIM

    def input_dirs(self, target):
        dirs = [os.path.join(ROOT, "corpora", target)]
        prev = os.path.join(self.prev_corpora, target)
        if os.path.isdir(prev):
            dirs.append(prev)
        return [d for d in dirs if os.path.isdir(d)]

    LF_FORK = re.compile(r"^#(\d+): cov: (\d+) ft: (\d+) corp: (\d+) exec/s \d+ "
                         r"oom/timeout/crash: (\d+)/(\d+)/(\d+) time: (\d+)s")
    LF_PLAIN = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/")

    def fuzz_libfuzzer(self, target, seconds, tdir, label):
        binp = self.usable("libfuzzer", f"fuzz_{target}")
        res = {"status": "ok", "seconds": 0.0, "workers": self.a.jobs, "execs": 0,
               "exec_per_s": 0.0, "cov": 0, "ft": 0, "corpus": 0, "crash_files": 0, "series": []}
        if binp is None:
            res["status"] = "not built"
            return res
        corpus = os.path.join(tdir, "libfuzzer-corpus")
        art = os.path.join(tdir, "libfuzzer-crashes")
        os.makedirs(corpus, exist_ok=True)
        os.makedirs(art, exist_ok=True)
        cmd = [binp, f"-fork={self.a.jobs}", "-ignore_crashes=1", "-ignore_timeouts=1",
               "-ignore_ooms=1", f"-max_total_time={max(3, int(seconds) - 3)}",
               f"-timeout={LF_TIMEOUT_S}", f"-artifact_prefix={art}/", f"-seed={self.seed}",
               "-print_final_stats=1"] + self.read_options(target)
        d = os.path.join(ROOT, "harnesses", f"{target}.dict")
        if os.path.isfile(d):
            cmd.append(f"-dict={d}")
        cmd += [corpus] + self.input_dirs(target)
        log = os.path.join(self.logs, f"fuzz-{target}-libfuzzer.log")
        env = self.env(SAN_ENV)
        env["TMPDIR"] = os.path.join(self.work, "tmp")
        t = now()
        series = []
        with open(log, "wb") as lf:
            lf.write((" ".join(shlex.quote(c) for c in cmd) + "\n").encode())
            lf.flush()
            p = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.PIPE, env=env, cwd=tdir,
                                 start_new_session=True)
            ACTIVE.add(p)
            buf = b""
            hard = t + seconds + 20
            try:
                while True:
                    r, _, _ = select.select([p.stderr], [], [], 0.5)
                    if r:
                        chunk = os.read(p.stderr.fileno(), 65536)
                        if not chunk:
                            break
                        lf.write(chunk)
                        buf += chunk
                        *lines, buf = buf.split(b"\n")
                        for ln in lines:
                            s = ln.decode(errors="replace")
                            m = self.LF_FORK.match(s) or self.LF_PLAIN.match(s)
                            if not m:
                                continue
                            el = now() - t
                            execs, cov, ft, corp = (int(m.group(i)) for i in range(1, 5))
                            crashes = int(m.group(7)) if m.re is self.LF_FORK else 0
                            if series and el - series[-1]["t"] < 0.5:
                                series.pop()  # a burst of lines: keep the last of it
                            eps = add_sample(series, {"t": round(el, 2), "execs": execs, "cov": cov,
                                                      "ft": ft, "corpus": corp, "crashes": crashes})
                            self.prog.note(f"{label}: libFuzzer {int(el)}/{int(seconds)}s "
                                           f"{fmt_rate(eps)} exec/s cov {cov}")
                    if now() > hard:
                        self.warnings.append(f"{target}: libFuzzer overran its slot; stopped")
                        kill_group(p)
                        break
                p.wait()
            finally:
                if p.poll() is None:
                    kill_group(p)
                ACTIVE.discard(p)
        res["seconds"] = round(now() - t, 2)
        rc = p.returncode
        # With -ignore_crashes=1 fork mode goes on after a crash and exits, at the end, with the
        # last finding's code: 1 (sanitizer), 77 (deadly signal, leak), 70 (timeout), 71 (OOM).
        # 72 and signals: stopped by us at the hard deadline.
        finding = rc in (1, 70, 71, 77) and (series or files_in(art))
        stopped = rc in (72, -signal.SIGTERM, -signal.SIGKILL) and series
        if rc != 0 and not finding and not stopped:
            res["status"] = f"failed (exit {rc})"
            self.error(f"libFuzzer on {target} exited {rc}, see {rel(log)}", tail(log, 15))
        if series:
            lastp = series[-1]
            res.update(execs=lastp["execs"], cov=lastp["cov"], ft=lastp["ft"],
                       exec_per_s=round(lastp["execs"] / max(0.1, res["seconds"]), 1))
        res["series"] = series
        res["speed"] = speed_verdict(res["exec_per_s"], self.a.jobs, self.speed_aim(target),
                                     os.getloadavg()[0], os.cpu_count() or 1)
        res["corpus"] = len(files_in(corpus))
        res["crash_files"] = len(files_in(art))
        return res

    def can_unshare(self):
        if self.unshare is None:
            self.unshare = False
            if os.geteuid() == 0 and shutil.which("unshare"):
                rc, _ = run(["unshare", "--pid", "--fork", "--kill-child", "true"], timeout=20)
                self.unshare = rc == 0
        return self.unshare

    def fuzz_afl(self, target, seconds, tdir, label, lf_corpus):
        binp = self.usable("afl", f"fuzz_{target}")
        res = {"status": "ok", "seconds": 0.0, "instances": self.a.jobs, "execs": 0,
               "exec_per_s": 0.0, "edges": 0, "corpus": 0, "crash_files": 0, "hangs": 0,
               "series": []}
        if binp is None:
            res["status"] = "not built"
            return res
        layout = self.afl_layout(target, binp)
        res["layout"] = {name: flavour for name, (flavour, _, _) in layout.items()}
        # Input: the seeds, the previous night's corpus and what libFuzzer just found.
        inp = os.path.join(tdir, "afl-in")
        os.makedirs(inp, exist_ok=True)
        for d in self.input_dirs(target) + [lf_corpus]:
            for f in files_in(d):
                dst = os.path.join(inp, sha1_file(f))
                if not os.path.exists(dst):
                    shutil.copyfile(f, dst)
        if not files_in(inp):
            with open(os.path.join(inp, "empty"), "wb") as f:
                f.write(b"\0")
        sync = os.path.join(tdir, "afl-sync")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        env = self.env({"AFL_NO_UI": "1", "AFL_NO_AFFINITY": "1", "AFL_SKIP_CPUFREQ": "1",
                        "AFL_FAST_CAL": "1", "AFL_STATSD": "1", "AFL_STATSD_HOST": "127.0.0.1",
                        "AFL_STATSD_PORT": str(port), "AFL_STATSD_TAGS_FLAVOR": "dogstatsd",
                        "AFL_IGNORE_UNKNOWN_ENVS": "1", "AFL_SKIP_CRASHES": "1"},
                       drop=("ASAN_OPTIONS", "UBSAN_OPTIONS", "AFL_USE_ASAN"))
        try:
            with open("/proc/sys/kernel/core_pattern") as f:
                if f.read().startswith("|"):
                    env["AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES"] = "1"
        except OSError:
            pass
        d = os.path.join(ROOT, "harnesses", f"{target}.dict")
        vsecs = max(3, int(seconds) - 2)
        procs = []
        t = now()
        names = list(layout)
        for name in names:
            _, ibin, cmplog = layout[name]
            cmd = ["afl-fuzz", "-i", inp, "-o", sync, "-M" if name == "main" else "-S", name,
                   "-V", str(vsecs), "-T", name, "-t", "1000", "-m", "none"]
            if cmplog:
                cmd += ["-c", cmplog]
            if os.path.isfile(d):
                cmd += ["-x", d]
            cmd += ["--", ibin]
            if self.can_unshare():
                # afl-fuzz as init of a PID namespace: nothing it forked outlives it.
                cmd = ["unshare", "--pid", "--fork", "--kill-child"] + cmd
            log = open(os.path.join(self.logs, f"fuzz-{target}-afl-{name}.log"), "wb")
            log.write((" ".join(shlex.quote(c) for c in cmd) + "\n").encode())
            log.flush()
            p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tdir,
                                 start_new_session=True)
            ACTIVE.add(p)
            procs.append((name, p, log))
        gauges = {n: {} for n in names}
        series = []
        hard = t + seconds + 30
        next_sample = t + 1.0
        try:
            while any(p.poll() is None for _, p, _ in procs):
                r, _, _ = select.select([sock], [], [], 0.25)
                if r:
                    data = sock.recv(65536).decode(errors="replace")
                    for ln in data.splitlines():
                        m = re.match(r"fuzzing\.(\w+):([\d.]+)\|g(?:\|#(.*))?$", ln.strip())
                        if not m:
                            continue
                        tags = dict(kv.split(":", 1) for kv in (m.group(3) or "").split(",")
                                    if ":" in kv)
                        inst = tags.get("banner")
                        if inst in gauges:
                            gauges[inst][m.group(1)] = float(m.group(2))
                if now() >= next_sample:
                    next_sample += 1.0
                    live = [g for g in gauges.values() if g]
                    if live:
                        el = now() - t
                        execs = int(sum(g.get("execs_done", 0) for g in live))
                        edges = int(max(g.get("edges_found", 0) for g in live))
                        eps = add_sample(series, {"t": round(el, 2), "execs": execs,
                                                  "edges": edges})
                        self.prog.note(f"{label}: AFL++ x{len(names)} {int(el)}/{int(seconds)}s "
                                       f"{fmt_rate(eps)} exec/s edges {edges}")
                if now() > hard:
                    self.warnings.append(f"{target}: AFL++ overran its slot; stopped")
                    break
        finally:
            for _, p, log in procs:
                kill_group(p, grace=10)
                ACTIVE.discard(p)
                log.close()
            sock.close()
        res["seconds"] = round(now() - t, 2)
        execs = eps = edges = corpus = crashes = hangs = 0
        for name, p, _ in procs:
            st = self.afl_stats(os.path.join(sync, name, "fuzzer_stats"))
            if not st:
                res["status"] = "failed"
                alog = os.path.join(self.logs, f"fuzz-{target}-afl-{name}.log")
                self.error(f"AFL++ instance {name} on {target} did not start, see {rel(alog)}",
                           tail(alog, 8))
                continue
            execs += int(st.get("execs_done", 0))
            edges = max(edges, int(st.get("edges_found", 0)))
            corpus = max(corpus, int(st.get("corpus_count", 0)))
            hangs += int(st.get("saved_hangs", 0))
            crashes += len([f for f in files_in(os.path.join(sync, name, "crashes"))
                            if os.path.basename(f).startswith("id:")])
        if not series:  # no StatsD samples: fall back to plot_data of the main instance
            series = self.afl_plot(os.path.join(sync, "main", "plot_data"))
        res.update(execs=execs, edges=edges, corpus=corpus, crash_files=crashes, hangs=hangs,
                   exec_per_s=round(execs / max(0.1, res["seconds"]), 1), series=series)
        return res

    def afl_layout(self, target, asan_bin):
        """Instance name -> (flavour, binary, CMPLOG binary or None), AFL_FLAVOURS' rule."""
        plain = self.usable("afl-plain", f"fuzz_{target}")
        cmplog = self.usable("afl-cmplog", f"fuzz_{target}")
        names = ["main"] + [f"s{i}" for i in range(1, self.a.jobs)]
        if plain is None:
            return {n: ("afl", asan_bin, cmplog if n == "main" else None) for n in names}
        layout = {}
        for n in names:
            # one instance runs ASan: the second if there is one, else the only one
            asan = n == ("s1" if len(names) > 1 else "main")
            layout[n] = ("afl" if asan else "afl-plain", asan_bin if asan else plain,
                         cmplog if n == "main" else None)
        return layout

    @staticmethod
    def afl_stats(path):
        st = {}
        try:
            with open(path) as f:
                for ln in f:
                    if ":" in ln:
                        k, v = ln.split(":", 1)
                        st[k.strip()] = v.strip().rstrip("%")
        except OSError:
            return {}
        return st

    @staticmethod
    def afl_plot(path):
        out = []
        try:
            with open(path) as f:
                for ln in f:
                    if ln.startswith("#"):
                        continue
                    c = [x.strip() for x in ln.split(",")]
                    if len(c) >= 13:
                        out.append({"t": float(c[0]), "execs": int(c[11]),
                                    "exec_per_s": float(c[10]), "edges": int(c[12])})
        except (OSError, ValueError):
            pass
        return out

    def fuzz(self, targets):
        t = now()
        engines = [e for e in ENGINES if e in self.a.engines]
        # Slots only for what was built: a target that failed to build gives its time to others.
        plan = {tg: [e for e in engines if self.usable(e, f"fuzz_{tg}")] for tg in targets}
        plan = {tg: es for tg, es in plan.items() if es}
        results = []
        if not plan:
            self.phase("fuzz", "skipped", t, "nothing built to fuzz" if targets else "no target")
            return results
        deadline = self.tb + FUZZ_SHARE * self.budget_s
        slots = sum(len(es) for es in plan.values())
        for i, (target, tengines) in enumerate(plan.items()):
            tdir = os.path.join(self.work, target)
            os.makedirs(tdir, exist_ok=True)
            tres = {"name": target, "engines": {}}
            label = f"{target} ({i + 1}/{len(plan)})"
            self.prog.set("fuzz", label)
            lf_corpus = os.path.join(tdir, "libfuzzer-corpus")
            os.makedirs(lf_corpus, exist_ok=True)
            for engine in tengines:
                slot = max(6.0, (deadline - now()) / slots)
                slots -= 1
                if engine == "libfuzzer":
                    tres["engines"][engine] = self.fuzz_libfuzzer(target, slot, tdir, label)
                else:
                    tres["engines"][engine] = self.fuzz_afl(target, slot, tdir, label, lf_corpus)
            results.append(tres)
            e = tres["engines"]
            self.prog.say("nightly: fuzz " + target + ": " + ", ".join(
                f"{k} {fmt_rate(v.get('exec_per_s'))} exec/s, {v.get('crash_files')} crash files"
                for k, v in e.items()))
        bad = [f"{r['name']}/{k}" for r in results for k, v in r["engines"].items()
               if v.get("status") != "ok"]
        skipped = [tg for tg in targets if tg not in plan]
        detail = f"{len(plan)} targets, {sum(len(es) for es in plan.values())} engine runs"
        if bad:
            detail += f"; failed: {', '.join(bad)}"
        if skipped:
            detail += f"; not built: {', '.join(skipped)}"
        self.phase("fuzz", "failed" if bad or skipped else "ok", t, detail)
        return results

    # -- 4. corpus merge --

    def merge(self, targets):
        t = now()
        self.prog.set("merge corpora")
        added_total = 0
        out_root = os.path.join(self.out, "corpora")
        for tr in targets:
            target = tr["name"]
            tdir = os.path.join(self.work, target)
            lf_bin = self.usable("libfuzzer", f"fuzz_{target}")
            if lf_bin is None:
                continue
            known = {}  # sha1 -> name, for inputs that already have a name
            before = set()
            for d in self.input_dirs(target):
                for f in files_in(d):
                    h = sha1_file(f)
                    known.setdefault(h, os.path.basename(f))
                    before.add(h)
            inputs = self.input_dirs(target) + [os.path.join(tdir, "libfuzzer-corpus")]
            # AFL++ queues: one flat dir, shrunk by afl-cmin when it works.
            queue = os.path.join(tdir, "afl-queue")
            os.makedirs(queue, exist_ok=True)
            for q in sorted(os.path.join(tdir, "afl-sync", n, "queue")
                            for n in (os.listdir(os.path.join(tdir, "afl-sync"))
                                      if os.path.isdir(os.path.join(tdir, "afl-sync")) else [])):
                for f in files_in(q):
                    shutil.copyfile(f, os.path.join(queue, sha1_file(f)))
            if files_in(queue):
                cmin = os.path.join(tdir, "afl-cmin")
                afl_bin = self.usable("afl", f"fuzz_{target}")
                rc = None
                if afl_bin and shutil.which("afl-cmin"):
                    rc, _ = run(["afl-cmin", "-i", queue, "-o", cmin, "-t", "1000", "-m", "none",
                                 "--", afl_bin], log=os.path.join(self.logs, f"cmin-{target}.log"),
                                env=self.env({"AFL_ALLOW_TMP": "1", "AFL_NO_AFFINITY": "1"},
                                             drop=("ASAN_OPTIONS", "UBSAN_OPTIONS")),
                                timeout=120, cwd=tdir)
                if rc == 0 and files_in(cmin):
                    inputs.append(cmin)
                    tr.setdefault("corpus", {})["afl_cmin"] = [len(files_in(queue)),
                                                               len(files_in(cmin))]
                else:
                    inputs.append(queue)
                    self.warnings.append(f"{target}: afl-cmin failed; merging the raw AFL++ queue")
            merged = os.path.join(tdir, "merged")
            remove_inside(self.out, merged, ignore_errors=True)
            os.makedirs(merged)
            rc, out = run([lf_bin, "-merge=1", f"-merge_control_file={os.path.join(tdir, 'merge.ctl')}",
                           merged] + [d for d in inputs if files_in(d)],
                          log=os.path.join(self.logs, f"merge-{target}.log"),
                          env=self.env(SAN_ENV, drop=("TMPDIR",)), timeout=600, cwd=tdir)
            if rc != 0 or not files_in(merged):
                self.error(f"libFuzzer -merge=1 failed for {target} (exit {rc}); "
                           f"see {rel(os.path.join(self.logs, f'merge-{target}.log'))}")
                continue
            dst = os.path.join(out_root, target)
            os.makedirs(dst, exist_ok=True)
            added = 0
            for f in files_in(merged):
                h = os.path.basename(f)
                name = known.get(h)
                if name is None:
                    name = f"found-nightly-{h[:16]}"
                    added += 1
                shutil.copyfile(f, os.path.join(dst, name))
            added_total += added
            tr["corpus"] = dict(tr.get("corpus", {}),
                                seeds=len(files_in(os.path.join(ROOT, "corpora", target))),
                                before=len(before), after=len(files_in(dst)), added=added,
                                dir=rel(dst))
        self.phase("merge corpora", "ok", t, f"+{added_total} inputs")
        if self.a.update_corpora:
            self.update_corpora(targets)

    def update_corpora(self, targets):
        """--update-corpora: new inputs go into corpora/<target>/ as found-nightly-* files; then
        ci/seed-corpora re-minimizes each corpus under its own naming rules."""
        t = now()
        self.prog.set("update corpora/")
        changed = []
        for tr in targets:
            src = os.path.join(self.out, "corpora", tr["name"])
            dst = os.path.join(ROOT, "corpora", tr["name"])
            new = [f for f in files_in(src) if os.path.basename(f).startswith("found-nightly-")
                   and not os.path.exists(os.path.join(dst, os.path.basename(f)))]
            for f in new:
                shutil.copyfile(f, os.path.join(dst, os.path.basename(f)))
            if new:
                changed.append(tr["name"])
        detail = f"new inputs for {', '.join(changed)}" if changed else "nothing new"
        tool = os.path.join(ROOT, "ci", "seed-corpora")
        if changed and os.access(tool, os.X_OK):
            kept = []
            for target in changed:
                rc, out = run([tool, target], log=os.path.join(self.logs, f"seed-corpora-{target}.log"),
                              timeout=1800)
                if rc == 0:
                    kept.append(target)
                elif "has no seeds for" in out:
                    pass  # a target without generated seeds: the copied inputs stay as they are
                else:
                    self.error(f"ci/seed-corpora {target} failed after --update-corpora",
                               out[-1500:])
                    self.phase("update corpora/", "failed", t, detail)
                    return
            if kept:
                detail += f"; re-minimized by ci/seed-corpora: {', '.join(kept)}"
        self.phase("update corpora/", "ok", t, detail)

    # -- 5. crash triage --

    RUNTIME_FRAME = re.compile(
        r"^(__asan|__ubsan|__sanitizer|__interceptor|__lsan|__msan|__tsan|fuzzer::|__libc_|"
        r"__GI_|__assert|__pthread_kill|pthread_kill|raise$|abort$|gsignal$|_start$|main$|"
        r"__restore_rt|malloc$|calloc$|realloc$|free$|operator new|operator delete|"
        r"LLVMFuzzerRunDriver|__afl_)")
    FRAME = re.compile(r"^\s*#(\d+) 0x[0-9a-f]+ in (.+?)(?: (/\S+|\S+\.[ch]:\d+\S*)| \((.*)\))?$")

    def parse_crash(self, out):
        """Sanitizer output -> (kind, key frames, summary, display frames) or None."""
        kind = summary = None
        lines = out.splitlines()
        for ln in lines:
            m = re.search(r"ERROR: AddressSanitizer: (.*)", ln)
            if m:  # "heap-buffer-overflow on address ...", "attempting double-free on ..."
                kind = re.split(r" on | at | for |\(", m.group(1))[0]
                kind = re.sub(r"\d+", "N", re.sub(r"0x[0-9a-f]+", "ADDR", kind)).strip()
                break
            if "ERROR: LeakSanitizer: detected memory leaks" in ln:
                kind = "memory-leak"
                break
            m = re.search(r"ERROR: libFuzzer: (deadly signal|timeout|out-of-memory)", ln)
            if m:
                kind = m.group(1).replace(" ", "-")
                break
            m = re.search(r"(\S+:\d+:\d+): runtime error: (.*)", ln)
            if m:
                msg = re.sub(r"0x[0-9a-f]+", "ADDR", m.group(2))
                msg = re.sub(r"\d+", "N", msg.split(":")[0])
                kind = "runtime error: " + msg.strip()
                summary = ln.strip()
                break
        for ln in lines:  # a failed invariant or assert names the bug better than "abort"
            m = re.search(r"invariant failed: (.*?): ", ln) or re.search(r"Assertion `(.*)' failed", ln)
            if m:
                kind = ("invariant failed: " if "invariant" in ln else "assertion failed: ") + m.group(1)
                summary = summary or ln.strip()
                break
        if kind is None:
            return None
        frames, disp, started, top = [], [], False, None
        for ln in lines:
            m = self.FRAME.match(ln)
            if not m:
                if re.match(r"\s*#\d+ 0x", ln):
                    continue  # a frame without a function name
                if started and frames:
                    break
                continue
            idx = int(m.group(1))
            if started and idx == 0:
                break
            started = True
            func = re.sub(r"\(.*$", "", m.group(2)).strip()
            if func.startswith("fuzzer::") and frames:
                break  # the libFuzzer driver below the target: not interesting
            if self.RUNTIME_FRAME.match(func):
                continue
            loc = m.group(3) or ""
            if not loc and m.group(4):  # "(module+0x1234) (BuildId: ...)"
                loc = "(" + os.path.basename(m.group(4).split(")")[0].split("+")[0]) + ")"
            loc = loc.replace(ROOT + os.sep, "")
            frames.append(func)
            disp.append(f"#{idx} {func} {loc}".strip())
            if top is None:
                top = f"{func} {loc}".strip()
        if summary is None:
            first = next((ln for ln in lines if "ERROR:" in ln), "").strip()
            m = re.search(r"ERROR: (\w+Sanitizer: [\w-]+|libFuzzer: [\w -]+)", first)
            what = m.group(1).strip() if m else kind
            access = next((ln.strip() for ln in lines if re.match(r"(READ|WRITE) of size", ln)), "")
            if access:
                what += f" ({access.split(' at ')[0].split(' thread ')[0]})"
            summary = f"{what} in {top}" if top else what
        summary = summary.replace(ROOT + os.sep, "")
        return kind, frames[:3], summary, disp[:8]

    def replay(self, lf_bin, path, tries=2):
        for _ in range(tries):
            rc, out = run([lf_bin, f"-timeout={LF_TIMEOUT_S}", "-rss_limit_mb=2048", path],
                          env=self.env(TRIAGE_ENV), timeout=LF_TIMEOUT_S * 3 + 30,
                          cwd=os.path.join(self.work, "tmp"))
            if rc not in (0,):
                p = self.parse_crash(out)
                if p:
                    return p, out
        return None, out

    def crash_files(self, tdir):
        out = []
        for f in files_in(os.path.join(tdir, "libfuzzer-crashes")):
            b = os.path.basename(f)
            if b.startswith(("crash-", "leak-", "timeout-", "oom-")):
                out.append(("libfuzzer", f))
        sync = os.path.join(tdir, "afl-sync")
        if os.path.isdir(sync):
            for inst in sorted(os.listdir(sync)):
                for f in files_in(os.path.join(sync, inst, "crashes")):
                    if os.path.basename(f).startswith("id:"):
                        out.append(("afl", f))
        return out

    def triage(self, targets):
        t = now()
        self.prog.set("crash triage")
        crashes, nfiles = [], 0
        for tr in targets:
            target = tr["name"]
            tdir = os.path.join(self.work, target)
            files = self.crash_files(tdir)
            tr["crashes"] = {"files": len(files), "unique": 0, "new": 0}
            if not files:
                continue
            nfiles += len(files)
            lf_bin = self.usable("libfuzzer", f"fuzz_{target}")
            if lf_bin is None:
                self.error(f"{target}: {len(files)} crash files but no libFuzzer build to triage them")
                continue
            # Smallest first; timeouts cost LF_TIMEOUT_S each, so few of them.
            files.sort(key=lambda ef: (os.path.basename(ef[1]).startswith("timeout-"),
                                       os.path.getsize(ef[1])))
            timeouts = 0
            groups = {}
            unrepro = []
            for n, (engine, f) in enumerate(files[:MAX_TRIAGE_FILES]):
                if os.path.basename(f).startswith("timeout-"):
                    timeouts += 1
                    if timeouts > 3:
                        continue
                self.prog.note(f"{target}: replaying {n + 1}/{min(len(files), MAX_TRIAGE_FILES)}")
                p, out = self.replay(lf_bin, f)
                if p is None:
                    unrepro.append((engine, f, out))
                    continue
                kind, frames, summary, disp = p
                key = "|".join([kind] + frames)
                g = groups.setdefault(key, {"kind": kind, "frames": disp, "summary": summary,
                                            "files": [], "engines": set(), "out": out})
                g["files"].append(f)
                g["engines"].add(engine)
            if len(files) > MAX_TRIAGE_FILES:
                self.warnings.append(f"{target}: {len(files)} crash files, triaged the "
                                     f"{MAX_TRIAGE_FILES} smallest")
            known = self.known_keys(target, lf_bin) if groups else {}
            cdir = os.path.join(self.out, "crashes", target)
            for key, g in sorted(groups.items()):
                os.makedirs(cdir, exist_ok=True)
                rep = min(g["files"], key=os.path.getsize)
                final, out = self.minimize(lf_bin, rep, key, g["kind"], tdir)
                h = sha1_file(final)
                dst = os.path.join(cdir, f"crash-{h}")
                shutil.copyfile(final, dst)
                with open(dst + ".txt", "w") as f:
                    f.write(out)
                entry = {"target": target, "key": key, "kind": g["kind"], "new": key not in known,
                         "reproduced": True, "engines": sorted(g["engines"]),
                         "count": len(g["files"]), "size": os.path.getsize(dst),
                         "original_size": os.path.getsize(rep), "file": rel(dst),
                         "log": rel(dst + ".txt"), "summary": g["summary"], "frames": g["frames"],
                         "repro": f"ci/reproduce {shlex.quote(rel(dst))}"}
                if key in known:
                    entry["known_by"] = rel(known[key])
                crashes.append(entry)
                tr["crashes"]["unique"] += 1
                tr["crashes"]["new"] += 1 if entry["new"] else 0
                if entry["new"]:
                    self.prog.crashes += 1
                    self.prog.say(f"nightly: NEW CRASH in {target}: {g['summary']}\n"
                                  f"         reproduce: {entry['repro']}")
            for engine, f, out in unrepro[:3]:
                os.makedirs(cdir, exist_ok=True)
                dst = os.path.join(cdir, f"unreproduced-{sha1_file(f)}")
                shutil.copyfile(f, dst)
                crashes.append({"target": target, "key": "unreproduced", "kind": "not reproduced",
                                "new": False, "reproduced": False, "engines": [engine], "count": 1,
                                "size": os.path.getsize(dst), "file": rel(dst),
                                "summary": f"{engine} saved it as a crash; replaying it with the "
                                           f"libFuzzer build twice did not fail",
                                "frames": [], "repro": f"ci/reproduce {shlex.quote(rel(dst))}"})
            if unrepro:
                self.warnings.append(f"{target}: {len(unrepro)} crash files did not reproduce")
        new = sum(1 for c in crashes if c["new"])
        self.phase("crash triage", "ok", t,
                   f"{nfiles} files, {sum(1 for c in crashes if c['reproduced'])} unique, {new} new")
        return crashes

    def known_keys(self, target, lf_bin):
        """Keys of the crashes that files in corpora/regressions/<target>/ still reproduce."""
        keys = {}
        for f in files_in(os.path.join(ROOT, "corpora", "regressions", target)):
            if f.endswith((".md", ".txt")):  # the note that goes with a stored crash
                continue
            p, _ = self.replay(lf_bin, f, tries=1)
            if p:
                keys.setdefault("|".join([p[0]] + p[1]), f)
        return keys

    def minimize(self, lf_bin, path, key, kind, tdir):
        """-minimize_crash=1 for a few seconds; kept only if it still crashes the same way."""
        if kind in ("timeout", "out-of-memory", "memory-leak"):
            return path, self.replay(lf_bin, path)[1]
        mdir = os.path.join(tdir, "minimize")
        os.makedirs(mdir, exist_ok=True)
        outp = os.path.join(mdir, "min-" + os.path.basename(path).replace(":", "_").replace(",", "_"))
        secs = max(5, min(20, int(0.02 * self.budget_s)))
        run([lf_bin, "-minimize_crash=1", f"-max_total_time={secs}", f"-timeout={LF_TIMEOUT_S}",
             f"-exact_artifact_path={outp}", path],
            log=os.path.join(self.logs, f"minimize-{os.path.basename(tdir)}.log"),
            env=self.env(TRIAGE_ENV), timeout=secs + 60, cwd=mdir)
        if os.path.isfile(outp) and os.path.getsize(outp) < os.path.getsize(path):
            p, out = self.replay(lf_bin, outp)
            if p and "|".join([p[0]] + p[1]) == key:
                return outp, out
        return path, self.replay(lf_bin, path)[1]

    # -- 3. stress --

    def protocols(self, binp):
        rc, out = run([binp, "list"], timeout=60)
        if rc != 0:
            self.error(f"{rel(binp)} list failed (exit {rc})", out[-800:])
            return []
        protos = [ln.split()[0] for ln in out.splitlines()
                  if ln.strip() and not ln.startswith("#")]
        if self.a.protos:
            protos = [p for p in protos if p in self.a.protos.split(",")]
        return protos

    def stress(self):
        t = now()
        runs = []
        builds = [b for b in ("asan", "tsan") if b in self.built and b in self.a.stress_builds]
        if not builds:
            self.phase("stress", "skipped", t, "no asan/tsan build of ipcproof")
            return runs
        plan = []
        for b in builds:
            binp = self.usable(b, "ipcproof_cli")
            if binp is None:
                self.error(f"the {b} build has no ipcproof command")
                continue
            for p in self.protocols(binp):
                plan.append((p, b, binp))
        plan.sort()  # protocol by protocol, each in both builds
        os.makedirs(os.path.join(self.out, "stress"), exist_ok=True)
        deadline = max(now(), self.tb + FUZZ_SHARE * self.budget_s) + STRESS_SHARE * self.budget_s
        overhead = 2.5  # seconds a validate run takes beyond its --budget (measured as we go)
        for i, (proto, b, binp) in enumerate(plan):
            per = max(1.0, (deadline - now()) / (len(plan) - i) - overhead)
            self.prog.set("stress", f"{proto} in {b} ({i + 1}/{len(plan)}, {per:.0f}s)")
            js = os.path.join(self.out, "stress", f"{b}-{proto}.json")
            log = os.path.join(self.logs, f"stress-{b}-{proto}.log")
            cmd = [binp, "validate", "--proto", proto, "--budget", f"{per:.1f}", "--json", js,
                   "--seed", str(self.seed)]
            # asan: every case under ASan, thread mode too (no hand-over to the TSan build);
            # tsan: this binary is the TSan build, every case runs under TSan.
            env = self.env(dict(SAN_ENV, IPCPROOF_TSAN_BIN="") if b == "asan" else {},
                           drop=("IPCPROOF_TSAN_BIN",) if b == "tsan" else ())
            t1 = now()
            rc, out = run(cmd, log=log, env=env, timeout=per * 3 + 180)
            secs = now() - t1
            overhead = 0.5 * overhead + 0.5 * max(0.0, secs - per)
            runs += self.stress_rows(proto, b, binp, cmd, rc, js, log, secs)
        failed = [r for r in runs if r["result"] == "fail"]
        errors = [r for r in runs if r["result"] == "error"]
        self.prog.violations = len(failed)
        for r in errors:
            self.error(f"ipcproof validate --proto {r['proto']} ({r['build']}, {r['mode']}): "
                       f"{r.get('error', 'setup error')}")
        self.phase("stress", "failed" if failed or errors else "ok", t,
                   f"{len(runs)} verdicts from {len(plan)} validate runs, {len(failed)} failed, "
                   f"{len(errors)} errors")
        return runs

    def stress_rows(self, proto, build, binp, cmd, rc, js, log, secs):
        """One validate JSON -> one row per mode (process/thread) for the verdict table."""
        i = cmd.index("--json")
        rerun = [rel(binp)] + cmd[1:i] + cmd[i + 2:]  # the same validate, minus its report file
        whole = ("IPCPROOF_TSAN_BIN= " if build == "asan" else "") + " ".join(
            shlex.quote(c) for c in rerun)
        base = {"proto": proto, "build": build, "exit_code": rc, "json": rel(js), "log": rel(log)}
        try:
            with open(js) as f:
                v = json.load(f)
        except (OSError, ValueError):
            what = "timed out" if rc is None else f"exit {rc}, no JSON report"
            return [dict(base, mode="all", result="error", violations=0, violation_kinds={},
                         throughput=None, seconds=round(secs, 2), repro=whole,
                         error=f"validate {what}: {tail(log, 3).strip()[-300:]}")]
        cases = v.get("cases") or []
        if not cases:
            cases = [dict(v, name="all", mode=v.get("mode", "all"))]
        rows = []
        for mode in sorted({c.get("mode", "all") for c in cases}):
            cs = [c for c in cases if c.get("mode", "all") == mode]
            res = [c.get("result") for c in cs]
            result = ("fail" if "fail" in res else "error" if "error" in res
                      else "pass" if "pass" in res else "skipped")
            kinds = {}
            nviol = 0
            for c in cs:
                for x in c.get("violations") or []:
                    nviol += 1
                    k = x.get("kind", "?")
                    kinds[k] = kinds.get(k, 0) + int(x.get("count", 1) or 1)
            rates = [float(c.get("msgs_per_s") or 0) for c in cs if c.get("result") == "pass"
                     and float(c.get("msgs_per_s") or 0) > 0]
            failing = [c for c in cs if c.get("result") in ("fail", "error")]
            repro = next((c.get("repro") for c in failing if c.get("repro")), None)
            if repro and repro.startswith("ipcproof "):  # the case ran in this build's binary
                repro = rel(binp) + repro[len("ipcproof"):]
            repro = repro or whole
            row = dict(base, mode=mode, result=result, violations=nviol, violation_kinds=kinds,
                       throughput=round(statistics.median(rates), 1) if rates else None,
                       throughput_unit="msg/s", throughput_of="median of the passing cases",
                       seconds=round(secs, 2),
                       cases=len(cs), failed_cases=[c.get("name") for c in failing], repro=repro)
            if result == "error":
                row["error"] = "; ".join(f"{c.get('name')}: {c.get('detail', 'error')}"
                                         for c in failing if c.get("result") == "error")[:600]
            rows.append(row)
        if rc not in (0, 1) and not any(r["result"] == "error" for r in rows):
            rows.append(dict(base, mode="all", result="error", violations=0, violation_kinds={},
                             throughput=None, seconds=round(secs, 2), repro=whole,
                             error=f"validate exited {rc}"))
        return rows

    # -- 6. coverage --

    def coverage(self, targets):
        t = now()
        self.prog.set("coverage", "ci/coverage")
        tool = os.path.join(ROOT, "ci", "coverage")
        res = {"status": "skipped", "tool": "ci/coverage", "totals": {}, "files": []}
        if not self.a.coverage:
            self.phase("coverage", "skipped", t, "--no-coverage")
            return res
        if not os.access(tool, os.X_OK):
            res["detail"] = "ci/coverage is not there"
            self.phase("coverage", "skipped", t, res["detail"])
            return res
        cdir = os.path.join(self.out, "coverage")
        os.makedirs(cdir, exist_ok=True)
        js = os.path.join(cdir, "coverage.json")
        corp = os.path.join(self.out, "corpora")
        md = os.path.join(cdir, "coverage.md")
        cmd = [tool, "--json", js, "--markdown", md, "--html", os.path.join(cdir, "html")]
        res["corpus"] = "corpora/ (the checked-in seeds and regressions)"
        if os.path.isdir(corp):
            cmd += ["--corpora", corp]  # tonight's merged corpora, one directory per target
            res["corpus"] += f" and {rel(corp)} (tonight's merged corpora)"
        prev = self.a.previous or os.path.join(self.work, PREV_SUMMARY)
        if os.path.isfile(prev):
            if self.previous_has_coverage(prev):
                cmd += ["--previous", prev]
                res["previous"] = rel(prev) if self.a.previous else "the previous run's summary.json"
            else:
                self.warnings.append(f"no coverage trend: {rel(prev)} holds no coverage files")
        cmd += [t["name"] for t in targets] if targets else []
        rc, out = run(cmd, log=os.path.join(self.logs, "coverage.log"), timeout=1800)
        try:
            with open(js) as f:
                data = json.load(f)
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            res.update(status="failed", detail=f"ci/coverage exited {rc}, no JSON")
            self.error(f"ci/coverage failed (exit {rc}), see {rel(os.path.join(self.logs, 'coverage.log'))}",
                       out[-1200:])
            self.phase("coverage", "failed", t, res["detail"])
            return res
        res.update(self.coverage_from(data), status="ok" if rc == 0 else "failed")
        html = os.path.join(cdir, "html", "index.html")
        if os.path.isfile(html):  # llvm-cov's annotated sources, linked from the report
            res["html"] = {"merged profile": os.path.relpath(html, self.out)}
        if os.path.isfile(md):
            res["markdown"] = os.path.relpath(md, self.out)
        detail = ", ".join(f"{k} {m['percent']:.1f}%" for k, m in res["totals"].items()) or "no totals"
        detail = "core/src " + detail
        if rc != 0:
            self.error(f"ci/coverage exited {rc} (a target failed on its corpus), see "
                       f"{rel(os.path.join(self.logs, 'coverage.log'))}", out[-1200:])
            detail += f"; ci/coverage exited {rc}"
        self.phase("coverage", res["status"], t, detail)
        return res

    @staticmethod
    def previous_has_coverage(path):
        """An earlier summary.json (or ci/coverage JSON) with per-file coverage: a trend base."""
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, ValueError):
            return False
        if isinstance(d, dict) and isinstance(d.get("coverage"), dict):
            d = d["coverage"]
        return isinstance(d, dict) and isinstance(d.get("files"), list) and bool(d["files"])

    @staticmethod
    def coverage_from(data):
        """Accepts ci/coverage's JSON ({totals, files:[{file, lines, functions, branches,
        reached?, trend?}], harnesses, targets, trend?}) or llvm-cov export -summary-only
        ({data:[{totals, files:[{filename, summary}]}]})."""
        def metric(m):
            if not isinstance(m, dict):
                return None
            c, n = m.get("covered", 0), m.get("count", 0)
            return {"covered": c, "count": n,
                    "percent": round(float(m["percent"] if "percent" in m
                                           else 100.0 * c / n if n else 0.0), 2)}
        keys = ("lines", "functions", "branches")
        extra = {}
        if "data" in data and isinstance(data["data"], list) and data["data"]:
            d = data["data"][0]
            files = [{"file": rel(f.get("filename", "?")),
                      **{k: metric(f.get("summary", {}).get(k)) for k in keys}}
                     for f in d.get("files", [])]
            totals = {k: metric(d.get("totals", {}).get(k)) for k in keys}
        else:
            files = []
            for f in data.get("files", []):
                row = {"file": rel(f.get("file") or f.get("filename") or "?"),
                       **{k: metric(f.get(k)) for k in keys}}
                for k in ("reached", "missing", "trend"):
                    if k in f:
                        row[k] = f[k]
                files.append(row)
            totals = {k: metric((data.get("totals") or {}).get(k)) for k in keys}
            extra["harnesses"] = [{"file": rel(h.get("file", "?")), "target": h.get("target"),
                                   **{k: metric(h.get(k)) for k in keys if h.get(k)}}
                                  for h in data.get("harnesses") or [] if isinstance(h, dict)]
            if isinstance(data.get("targets"), dict):
                extra["targets"] = data["targets"]
            if isinstance(data.get("trend"), dict):
                extra["trend"] = data["trend"]
        files = [f for f in files if f["file"].startswith("core/")] or files
        return dict(extra, totals={k: v for k, v in totals.items() if v},
                    files=[{k: v for k, v in f.items() if v is not None} for f in files])

    # -- 7. summary and report --

    def git(self):
        rc, out = run(["git", "rev-parse", "--short=12", "HEAD"], timeout=30)
        commit = out.strip() if rc == 0 else None
        rc, out = run(["git", "status", "--porcelain", "--untracked-files=no"], timeout=60)
        return commit, (rc == 0 and bool(out.strip()))

    def write(self, fuzz, crashes, runs, cov, interrupted=False):
        new = sum(1 for c in crashes if c.get("new"))
        viol = sum(1 for r in runs if r.get("result") == "fail")
        if new or viol:
            status, code = "fail", 1
        elif self.errors or interrupted:
            status, code = "error", 2
        else:
            status, code = "pass", 0
        commit, dirty = self.git()
        s = {"schema": SCHEMA, "started": iso(self.wall0), "finished": iso(),
             "duration_s": round(self.elapsed(), 1), "budget_min": self.a.budget,
             "jobs": self.a.jobs, "seed": self.seed, "commit": commit, "dirty": dirty,
             "command": "ci/nightly " + " ".join(shlex.quote(x) for x in self.a.argv),
             "status": status, "exit_code": code, "new_crashes": new, "violations": viol,
             "errors": [e.splitlines()[0] for e in self.errors], "warnings": self.warnings,
             "phases": self.phases, "fuzz": {"targets": fuzz}, "crashes": crashes,
             "stress": {"runs": runs}, "coverage": cov}
        os.makedirs(self.out, exist_ok=True)
        path = os.path.join(self.out, "summary.json")
        with open(path + ".tmp", "w") as f:
            json.dump(s, f, indent=1)
        os.replace(path + ".tmp", path)
        t = now()
        html = os.path.join(self.out, "report.html")
        rc, out = run([sys.executable, os.path.join(ROOT, "ci", "report"), path, "-o", html],
                      timeout=120)
        if rc != 0:
            self.errors.append(f"ci/report failed: {out[-500:]}")
            code = max(code, 2)
        s["phases"].append({"name": "report", "status": "ok" if rc == 0 else "failed",
                            "seconds": round(now() - t, 2), "detail": rel(html)})
        with open(path + ".tmp", "w") as f:
            json.dump(s, f, indent=1)
        os.replace(path + ".tmp", path)
        return s, code

    # -- main --

    def main(self):
        fuzz, crashes, runs = [], [], []
        cov = {"status": "skipped", "totals": {}, "files": []}
        interrupted = False
        try:
            targets = self.targets_available()
            names = [f"fuzz_{t}" for t in targets]
            wanted = []
            if targets:
                wanted += [(e, names) for e in ENGINES if e in self.a.engines]
                if "afl" in self.a.engines:  # AFL++'s advice: one ASan instance, one CMPLOG
                    wanted += [(b, names) for b in AFL_FLAVOURS]
            wanted += [(b, ["ipcproof_cli"]) for b in ("asan", "tsan") if b in self.a.stress_builds]
            for preset, tg in wanted:
                self.build(preset, tg)
            self.tb = now()
            self.prog.tb = self.tb
            fuzz = self.fuzz(targets)
            runs = self.stress()
            self.merge(fuzz)
            crashes = self.triage(fuzz)
            cov = self.coverage(fuzz)
        except KeyboardInterrupt:
            interrupted = True
            self.errors.append("interrupted")
            for p in list(ACTIVE):
                kill_group(p)
        finally:
            self.prog.set("report")
            s, code = self.write(fuzz, crashes, runs, cov, interrupted)
            self.prog.close()
            try:
                self.keep_prev_corpora()
            except OSError as e:
                self.prog.say(f"nightly: warning: could not keep the previous corpora: {e}")
            if not self.a.keep_work:
                try:
                    remove_inside(self.out, self.work, ignore_errors=True)
                except OutDirError as e:
                    self.prog.say(f"nightly: ERROR: {e}")
        self.final_words(s)
        return code

    def final_words(self, s):
        out = rel(self.out)
        print(f"nightly: {s['status'].upper()} in {s['duration_s']:.0f}s: "
              f"{s['new_crashes']} new crashes, {s['violations']} failed stress verdicts, "
              f"{len(s['errors'])} errors")
        for c in s["crashes"]:
            if c.get("new"):
                print(f"  new crash in {c['target']}: {c['summary']}\n    {c['repro']}")
        for r in s["stress"]["runs"]:
            if r.get("result") == "fail":
                print(f"  {r['proto']} ({r['build']}, {r['mode']}): "
                      f"{', '.join(r.get('violation_kinds') or {}) or 'violation'}\n    {r['repro']}")
        for e in s["errors"]:
            print(f"  error: {e}")
        tot = s["coverage"].get("totals") or {}
        if tot:
            trend = s["coverage"].get("trend") or {}
            print("  core/src coverage: " + ", ".join(
                f"{k} {m['percent']:.1f}%"
                + (f" ({trend[k]:+.1f})" if isinstance(trend.get(k), (int, float)) else "")
                for k, m in tot.items()))
        print(f"  report: {out}/report.html   summary: {out}/summary.json")


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="ci/nightly",
        description="Fuzz every target (libFuzzer and AFL++), validate every built-in protocol "
                    "(asan and tsan builds), merge corpora, triage crashes, measure coverage; "
                    "write DIR/summary.json and DIR/report.html. Exit 0 clean, 1 new crash or "
                    "violation, 2 pipeline error.")
    ap.add_argument("--budget", type=float, default=30.0,
                    help="minutes for fuzzing + stress + post-processing, builds not included "
                         "(default 30; ~60%% fuzzing, ~30%% stress)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="cores to use: libFuzzer -fork=N, AFL++ instances (default: all)")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "nightly"),
                    help="output directory (default out/nightly); a run creates it with a "
                         f"{MARKER} marker file and refuses a non-empty one without it")
    ap.add_argument("--update-corpora", action="store_true",
                    help="also put the new inputs into corpora/<target>/ (re-minimized by "
                         "ci/seed-corpora); by default only DIR/corpora/ is written")
    ap.add_argument("--targets", help="comma list of fuzz targets (default: all)")
    ap.add_argument("--engines", default="libfuzzer,afl", help="comma list (default libfuzzer,afl)")
    ap.add_argument("--protos", help="comma list of built-in protocols to validate (default: all)")
    ap.add_argument("--stress-builds", default="asan,tsan",
                    help="builds to run ipcproof validate in (default asan,tsan; '' for none)")
    ap.add_argument("--no-coverage", dest="coverage", action="store_false",
                    help="skip the coverage step")
    ap.add_argument("--previous", metavar="SUMMARY.json",
                    help="the coverage trend is measured against this earlier summary.json "
                         "(default: the one the previous run left in DIR)")
    ap.add_argument("--seed", type=int, help="seed for libFuzzer and validate (default: time)")
    ap.add_argument("--keep-work", action="store_true",
                    help="keep DIR/work/ (AFL++ sync dirs, raw crash files)")
    ap.add_argument("--dry-run", action="store_true",
                    help="only check the output directory as a run would (exit 2 when it is "
                         "refused) and say what a run would delete there; builds, runs, creates "
                         "and deletes nothing")
    a = ap.parse_args(argv)
    if a.budget <= 0 or a.jobs < 1:
        ap.error("--budget must be > 0 and --jobs >= 1")
    if a.previous and not os.path.isfile(a.previous):
        ap.error(f"--previous {a.previous}: no such file")
    a.engines = [e for e in a.engines.split(",") if e]
    bad = [e for e in a.engines if e not in ENGINES]
    if bad:
        ap.error(f"unknown engine(s) {bad}")
    a.stress_builds = [b for b in a.stress_builds.split(",") if b]
    a.argv = argv
    return a


def main(argv):
    a = parse_args(argv)
    try:
        if a.dry_run:
            return dry_run(a.out)
        out, prev_corpora = prepare_out_dir(a.out)
    except OutDirError as e:
        print(f"ci/nightly: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"ci/nightly: error: cannot prepare the output directory {a.out}: {e}",
              file=sys.stderr)
        return 2
    n = Nightly(a, prev_corpora)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    return n.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
