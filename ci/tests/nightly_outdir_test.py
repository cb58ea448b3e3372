#!/usr/bin/env python3
"""nightly_outdir_test.py - the nightly only deletes inside an output directory it created.

    nightly_outdir_test.py CI_DIR

Checks, without building or fuzzing anything (ci/lib/nightly.py's functions, and
`ci/lib/nightly.py --out DIR` / `ci/nightly --out DIR --dry-run` as processes):
  - a fake checkout (files, no marker) and any other non-empty directory without the
    .ipcproof-nightly marker are refused with exit status 2 and an error naming the directory,
    and nothing in them is deleted, created or moved;
  - a new or empty directory is created/adopted with the marker; a marked one is accepted: the
    previous results go, unknown files stay, corpora/ becomes the previous corpus (and stays
    when the run merges nothing); a directory holding only restored corpora/<target>/ (the CI
    cache) is accepted;
  - symbolic links: DIR itself a link to a checkout, or an entry of a marked DIR (stress/) that
    links outside it, are refused and the target is left alone;
  - the deletion helper refuses the marked directory itself, anything outside it (.., a
    symlinked parent that leads out), an unmarked directory, /, the checkout, $HOME and git
    checkout roots, and removes a symbolic link without touching what it points to.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

CI = nl = None


def load():
    spec = importlib.util.spec_from_file_location("nightly", os.path.join(CI, "lib", "nightly.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write(path, text="x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def snapshot(top):
    """Every path below top (links not followed) with its content or link target."""
    res = {}
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(d, n)
            r = os.path.relpath(p, top)
            if os.path.islink(p):
                res[r] = "-> " + os.readlink(p)
            elif os.path.isdir(p):
                res[r] = "dir"
            else:
                with open(p, "rb") as f:
                    res[r] = f.read()
    return res


def fake_checkout(d):
    """A directory that looks like an ipcproof checkout: what `--out .` used to wipe."""
    write(os.path.join(d, "CMakeLists.txt"), "project(x)\n")
    write(os.path.join(d, "README.md"), "# x\n")
    write(os.path.join(d, "stress", "main.c"), "int main(void) { return 0; }\n")
    write(os.path.join(d, "stress", "tests", "check.cmake"), "# x\n")
    write(os.path.join(d, "corpora", "frame_decode", "seed-hello"), "hello")
    write(os.path.join(d, "corpora", "regressions", "frame_decode", "crash-1"), "boom")
    write(os.path.join(d, "logs", "keep.log"), "mine")
    write(os.path.join(d, "summary.json"), "{}")
    return d


def a_target():
    return sorted(nl.fuzz_target_names())[0]


def run_nightly(out, *extra):
    """ci/lib/nightly.py --out OUT, as a process, with nothing to build or fuzz (should it get
    past the output directory)."""
    cmd = [sys.executable, os.path.join(CI, "lib", "nightly.py"), "--out", out, "--budget", "0.05",
           "--engines", "", "--stress-builds", "", "--no-coverage", "--targets", a_target()]
    return subprocess.run(cmd + list(extra), capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(CI))


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="ipcp-outdir."))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def p(self, *parts):
        return os.path.join(self.tmp, *parts)

    def marked(self, *parts):
        d = self.p(*parts)
        write(os.path.join(d, nl.MARKER), nl.MARKER_TEXT)
        return d

    def assertRefused(self, out, *words):
        with self.assertRaises(nl.OutDirError) as cm:
            nl.prepare_out_dir(out)
        for w in words:
            self.assertIn(w, str(cm.exception))
        return str(cm.exception)


class Refused(Base):
    def test_fake_checkout_refused_nothing_deleted(self):
        d = fake_checkout(self.p("checkout"))
        os.mkdir(os.path.join(d, ".git"))
        before = snapshot(d)
        self.assertRefused(d, d, "git checkout")
        r = run_nightly(d)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(d, r.stderr)
        self.assertIn("refusing", r.stderr)
        self.assertEqual(snapshot(d), before)

    def test_non_empty_without_marker_refused(self):
        d = fake_checkout(self.p("notmine"))  # no .git: the marker rule alone
        before = snapshot(d)
        msg = self.assertRefused(d, d, nl.MARKER, "Nothing was deleted")
        self.assertNotIn("git checkout", msg)
        r = run_nightly(d)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"{d} is not empty and was not created by ci/nightly", r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(snapshot(d), before)
        self.assertFalse(os.path.exists(os.path.join(d, nl.MARKER)))

    def test_relative_dot_refused(self):
        d = fake_checkout(self.p("cwd"))
        before = snapshot(d)
        cmd = [sys.executable, os.path.join(CI, "lib", "nightly.py"), "--out", ".", "--engines", "",
               "--stress-builds", "", "--no-coverage", "--targets", a_target()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=d)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(d, r.stderr)
        self.assertEqual(snapshot(d), before)

    def test_dry_run_of_refused_dir(self):
        d = fake_checkout(self.p("dry"))
        before = snapshot(d)
        r = subprocess.run([os.path.join(CI, "nightly"), "--out", d, "--dry-run"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(d, r.stderr)
        self.assertEqual(snapshot(d), before)

    def test_not_a_directory(self):
        write(self.p("file"), "data")
        self.assertRefused(self.p("file"), "not a directory")
        with open(self.p("file")) as f:
            self.assertEqual(f.read(), "data")

    def test_checkout_home_and_root_refused_even_with_marker(self):
        for d in ("/", nl.ROOT, os.path.dirname(nl.ROOT)):
            with self.assertRaises(nl.OutDirError, msg=d):
                nl.check_out_dir(d)
        home = self.marked("home")
        old = os.environ.get("HOME")
        os.environ["HOME"] = home
        try:
            self.assertRefused(home, "home directory")
        finally:
            if old is None:
                del os.environ["HOME"]
            else:
                os.environ["HOME"] = old
        g = self.marked("gitroot")
        os.mkdir(os.path.join(g, ".git"))
        write(os.path.join(g, "stress", "a.c"))
        before = snapshot(g)
        self.assertRefused(g, "git checkout")
        self.assertEqual(snapshot(g), before)

    def test_restored_corpora_with_a_stranger_refused(self):
        d = self.p("restored")
        write(os.path.join(d, "corpora", "no_such_target_here", "f"))
        before = snapshot(d)
        self.assertRefused(d, nl.MARKER)
        self.assertEqual(snapshot(d), before)


class Symlinks(Base):
    def test_dir_is_a_link_to_a_checkout(self):
        d = fake_checkout(self.p("checkout"))
        before = snapshot(d)
        os.symlink(d, self.p("out"))
        self.assertRefused(self.p("out"), self.p("out"), d)
        r = run_nightly(self.p("out"))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(self.p("out"), r.stderr)
        self.assertEqual(snapshot(d), before)

    def test_entry_linking_outside_refused(self):
        outside = fake_checkout(self.p("checkout"))
        before = snapshot(outside)
        d = self.marked("out")
        write(os.path.join(d, "logs", "old.log"), "old")
        write(os.path.join(d, "summary.json"), "{}")
        os.symlink(os.path.join(outside, "stress"), os.path.join(d, "stress"))
        mine = snapshot(d)
        msg = self.assertRefused(d, os.path.join(d, "stress"), "outside")
        self.assertIn(os.path.join(outside, "stress"), msg)
        r = run_nightly(d)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(os.path.join(d, "stress"), r.stderr)
        self.assertEqual(snapshot(outside), before)
        self.assertEqual(snapshot(d), mine)  # not even the old results went

    def test_corpora_linking_outside_refused(self):
        outside = fake_checkout(self.p("checkout"))
        before = snapshot(outside)
        d = self.marked("out")
        os.symlink(os.path.join(outside, "corpora"), os.path.join(d, "corpora"))
        self.assertRefused(d, "corpora")
        self.assertEqual(snapshot(outside), before)

    def test_link_inside_is_removed_not_followed(self):
        d = self.marked("out")
        write(os.path.join(d, "mine", "keep"), "keep")
        os.symlink("mine", os.path.join(d, "logs"))
        nl.prepare_out_dir(d)
        self.assertTrue(os.path.isdir(os.path.join(d, "logs")))
        self.assertFalse(os.path.islink(os.path.join(d, "logs")))
        with open(os.path.join(d, "mine", "keep")) as f:
            self.assertEqual(f.read(), "keep")

    def test_link_to_a_marked_dir_is_fine(self):
        d = self.marked("real")
        os.symlink(d, self.p("out"))
        real, prev = nl.prepare_out_dir(self.p("out"))
        self.assertEqual(real, d)
        self.assertTrue(os.path.isdir(os.path.join(d, "work")))


class Accepted(Base):
    def test_new_dir_gets_the_marker(self):
        d = self.p("a", "b", "nightly")
        r = subprocess.run([os.path.join(CI, "nightly"), "--out", d, "--dry-run"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(self.p("a")))  # --dry-run creates nothing
        real, prev = nl.prepare_out_dir(d)
        self.assertEqual(real, d)
        with open(os.path.join(d, nl.MARKER)) as f:
            self.assertIn("ci/nightly", f.read())
        self.assertTrue(os.path.isdir(os.path.join(d, "work", "tmp")))
        self.assertTrue(os.path.isdir(os.path.join(d, "logs")))
        self.assertEqual(nl.check_out_dir(d), (d, "marked"))

    def test_empty_dir_is_adopted(self):
        d = self.p("empty")
        os.mkdir(d)
        self.assertEqual(nl.check_out_dir(d), (d, "empty"))
        nl.prepare_out_dir(d)
        self.assertTrue(nl.is_marked(d))

    def test_marked_dir_is_cleared_and_reused(self):
        d = self.marked("out")
        t = a_target()
        for f in ("logs/build.log", "crashes/x/crash-1", "stress/asan-p.json",
                  "coverage/coverage.json", "work/x/y", "summary.json", "report.html"):
            write(os.path.join(d, f), "old")
        write(os.path.join(d, "corpora", t, "found-1"), "corpus")
        write(os.path.join(d, "notes.txt"), "mine")
        r = subprocess.run([os.path.join(CI, "nightly"), "--out", d, "--dry-run"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("a run deletes: work, logs, crashes, stress, coverage", r.stdout)
        self.assertTrue(os.path.exists(os.path.join(d, "logs", "build.log")))  # dry: untouched
        real, prev = nl.prepare_out_dir(d)
        self.assertEqual(prev, os.path.join(d, "work", "prev-corpora"))
        with open(os.path.join(prev, t, "found-1")) as f:
            self.assertEqual(f.read(), "corpus")
        left = snapshot(d)
        self.assertEqual(sorted(k for k in left if "/" not in k),
                         sorted([nl.MARKER, "logs", "notes.txt", "work"]))
        self.assertEqual(left["notes.txt"], b"mine")
        self.assertEqual(os.listdir(os.path.join(d, "logs")), [])

    def test_previous_summary_is_kept_for_the_trend(self):
        d = self.marked("out")
        write(os.path.join(d, "summary.json"), '{"coverage": {"files": []}}')
        nl.prepare_out_dir(d)
        self.assertFalse(os.path.exists(os.path.join(d, "summary.json")))
        with open(os.path.join(d, "work", nl.PREV_SUMMARY)) as f:
            self.assertEqual(f.read(), '{"coverage": {"files": []}}')
        # a summary.json that is a link (inside DIR: one out of it is refused) is removed, not
        # read through
        write(os.path.join(d, "mine.json"), '{"coverage": {"files": [{"file": "x"}]}}')
        os.symlink("mine.json", os.path.join(d, "summary.json"))
        nl.prepare_out_dir(d)
        self.assertFalse(os.path.exists(os.path.join(d, "work", nl.PREV_SUMMARY)))
        self.assertFalse(os.path.lexists(os.path.join(d, "summary.json")))
        self.assertTrue(os.path.isfile(os.path.join(d, "mine.json")))

    def test_run_keeps_previous_corpora_and_unknown_files(self):
        d = self.marked("out")
        t = a_target()
        write(os.path.join(d, "corpora", t, "found-1"), "corpus")
        write(os.path.join(d, "logs", "old.log"), "old")
        write(os.path.join(d, "notes.txt"), "mine")
        r = run_nightly(d)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(d, "corpora", t, "found-1")) as f:
            self.assertEqual(f.read(), "corpus")  # nothing merged tonight: the old one stays
        self.assertFalse(os.path.exists(os.path.join(d, "logs", "old.log")))
        self.assertFalse(os.path.exists(os.path.join(d, "work")))
        self.assertTrue(os.path.isfile(os.path.join(d, "summary.json")))
        self.assertTrue(nl.is_marked(d))
        with open(os.path.join(d, "notes.txt")) as f:
            self.assertEqual(f.read(), "mine")

    def test_restored_corpora_are_accepted(self):
        d = self.p("out")
        t = a_target()
        write(os.path.join(d, "corpora", t, "found-nightly-1"), "c")
        self.assertEqual(nl.check_out_dir(d), (d, "restored"))
        real, prev = nl.prepare_out_dir(d)
        self.assertTrue(nl.is_marked(d))
        self.assertTrue(os.path.isfile(os.path.join(prev, t, "found-nightly-1")))


class RemoveInside(Base):
    def test_only_strictly_inside_a_marked_dir(self):
        d = self.marked("out")
        outside = fake_checkout(self.p("checkout"))
        before = snapshot(outside)
        write(os.path.join(d, "sub", "f"))
        os.symlink(outside, os.path.join(d, "lnk"))
        for bad in (d, d + "/", os.path.join(d, "."), os.path.join(d, ".."),
                    os.path.join(d, "sub", "..", ".."), outside,
                    os.path.join(outside, "stress"), os.path.join(d, "lnk", "stress"),
                    os.path.join(d, "..", "checkout")):
            with self.assertRaises(nl.OutDirError, msg=bad):
                nl.remove_inside(d, bad, ignore_errors=True)
        self.assertEqual(snapshot(outside), before)
        nl.remove_inside(d, os.path.join(d, "lnk"))  # the link goes, not what it points to
        self.assertFalse(os.path.lexists(os.path.join(d, "lnk")))
        self.assertEqual(snapshot(outside), before)
        nl.remove_inside(d, os.path.join(d, "sub"))
        self.assertFalse(os.path.exists(os.path.join(d, "sub")))
        nl.remove_inside(d, os.path.join(d, "missing"))  # nothing there: nothing to do

    def test_unmarked_or_guarded_base(self):
        d = fake_checkout(self.p("checkout"))
        before = snapshot(d)
        with self.assertRaises(nl.OutDirError):
            nl.remove_inside(d, os.path.join(d, "stress"), ignore_errors=True)
        os.mkdir(os.path.join(d, ".git"))
        write(os.path.join(d, nl.MARKER))
        with self.assertRaises(nl.OutDirError):
            nl.remove_inside(d, os.path.join(d, "stress"), ignore_errors=True)
        # the checkout itself, asked without deleting anything there
        self.assertIn("checkout", nl.out_dir_guard(os.path.realpath(nl.ROOT)))
        snap = snapshot(d)
        del snap[nl.MARKER], snap[".git"]
        self.assertEqual(snap, before)


class KeepPrevCorpora(Base):
    def test_targets_without_a_new_corpus_keep_the_old_one(self):
        d = self.marked("out")
        n = object.__new__(nl.Nightly)  # no run: only the helper
        n.out = d
        n.prev_corpora = os.path.join(d, "work", "prev-corpora")
        write(os.path.join(n.prev_corpora, "a", "old-a"), "a")
        write(os.path.join(n.prev_corpora, "b", "old-b"), "b")
        write(os.path.join(d, "corpora", "a", "merged-a"), "new")  # a was merged tonight
        n.keep_prev_corpora()
        self.assertEqual(sorted(os.listdir(os.path.join(d, "corpora", "a"))), ["merged-a"])
        self.assertEqual(sorted(os.listdir(os.path.join(d, "corpora", "b"))), ["old-b"])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    CI = os.path.abspath(sys.argv[1])
    nl = load()
    unittest.main(argv=[sys.argv[0], "-v"])
