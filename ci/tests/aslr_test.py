#!/usr/bin/env python3
"""aslr_test.py - sanitizer runs on kernels with more than 28 mmap bits, host setting untouched.

    aslr_test.py CI_DIR

Checks ci/lib/aslr.sh (sourced by ci/test, ci/nightly, ci/reproduce, ci/fuzz-speed,
ci/seed-corpora and ci/tests/cflite_build.sh) in bash:
  - ipcp_san_prefix N prints nothing for N <= 28 or a value it cannot read, and
    `setarch <machine> -R` above 28;
  - when setarch is not permitted it prints nothing and warns on stderr, and no `sysctl` is run
    (a fake sysctl on PATH records calls);
  - the prefix really turns address randomisation off for the command it starts (the
    ADDR_NO_RANDOMIZE personality bit), when this machine allows it;
  - IPCP_TEST_MMAP_RND_BITS stands in for the kernel's value; ipcp_is_sanitizer_build reads
    IPCP_SANITIZERS from a CMake cache;
and that no script under ci/ writes vm.mmap_rnd_bits any more.
"""
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

CI = None
ADDR_NO_RANDOMIZE = 0x0040000


def bash(script, env=None, path_prepend=None):
    e = dict(os.environ)
    e.pop("IPCP_TEST_MMAP_RND_BITS", None)
    if path_prepend:
        e["PATH"] = path_prepend + os.pathsep + e.get("PATH", "")
    e.update(env or {})
    full = f'set -euo pipefail\n. "{CI}/lib/aslr.sh"\n{script}\n'
    return subprocess.run(["bash", "-c", full], capture_output=True, text=True, env=e, timeout=60)


def setarch_works():
    return subprocess.run(["setarch", platform.machine(), "-R", "true"],
                          capture_output=True).returncode == 0 if shutil.which("setarch") else False


class Prefix(unittest.TestCase):
    def setUp(self):
        # a fake sysctl that records any call: the helper must never change the host setting
        self.tmp = tempfile.mkdtemp(prefix="ipcp-aslr.")
        self.calls = os.path.join(self.tmp, "sysctl.calls")
        fake = os.path.join(self.tmp, "sysctl")
        with open(fake, "w") as f:
            f.write(f'#!/bin/sh\necho "$*" >> "{self.calls}"\necho 32\n')
        os.chmod(fake, 0o755)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def writes(self):
        if not os.path.exists(self.calls):
            return []
        with open(self.calls) as f:
            return [ln for ln in f.read().splitlines() if "-w" in ln.split() or "=" in ln]

    def prefix(self, script, **kw):
        r = bash(script, path_prepend=self.tmp, **kw)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_at_most_28_bits_no_prefix(self):
        for bits in ("16", "27", "28", "", "abc", "-5"):
            r = self.prefix(f'ipcp_setarch_works() {{ return 0; }}\nipcp_san_prefix "{bits}"')
            self.assertEqual(r.stdout, "", bits)
            self.assertEqual(r.stderr, "", bits)

    def test_more_than_28_bits_setarch(self):
        for bits in ("29", "32", "33"):
            r = self.prefix(f'ipcp_setarch_works() {{ return 0; }}\nipcp_san_prefix {bits}')
            self.assertEqual(r.stdout.strip(), f"setarch {platform.machine()} -R", bits)
        self.assertEqual(self.writes(), [])

    def test_setarch_refused_warns_and_leaves_the_sysctl(self):
        r = self.prefix('ipcp_setarch_works() { return 1; }\nipcp_san_prefix 32')
        self.assertEqual(r.stdout, "")
        self.assertIn("vm.mmap_rnd_bits is 32", r.stderr)
        self.assertIn("not permitted", r.stderr)
        self.assertEqual(self.writes(), [])

    def test_test_override_of_the_kernel_value(self):
        r = self.prefix('ipcp_setarch_works() { return 0; }\nipcp_mmap_rnd_bits\nipcp_san_prefix',
                        env={"IPCP_TEST_MMAP_RND_BITS": "32"})
        self.assertEqual(r.stdout.splitlines(), ["32", f"setarch {platform.machine()} -R"])
        r = self.prefix('ipcp_setarch_works() { return 0; }\nipcp_san_prefix',
                        env={"IPCP_TEST_MMAP_RND_BITS": "28"})
        self.assertEqual(r.stdout, "")
        self.assertEqual(self.writes(), [])

    def test_kernel_value_is_read(self):
        r = self.prefix("ipcp_mmap_rnd_bits")
        try:
            with open("/proc/sys/vm/mmap_rnd_bits") as f:
                want = f.read().strip()
        except OSError:
            want = None
        if want is not None:
            self.assertEqual(r.stdout.strip(), want)

    def test_array_form_used_by_the_scripts(self):
        # `read -r -a san <<< "$(ipcp_san_prefix)"; "${san[@]}" cmd` runs cmd in both cases
        r = self.prefix('ipcp_setarch_works() { return 0; }\n'
                        'read -r -a san <<< "$(ipcp_san_prefix 28)"\necho "n=${#san[@]}"\n'
                        '"${san[@]}" echo ran')
        self.assertEqual(r.stdout.split(), ["n=0", "ran"])

    @unittest.skipUnless(setarch_works(), "setarch -R is not permitted here")
    def test_prefix_turns_randomisation_off_for_the_child_only(self):
        r = self.prefix('read -r -a san <<< "$(ipcp_san_prefix 32)"\n'
                        '"${san[@]}" cat /proc/self/personality\ncat /proc/self/personality')
        child, after = (int(x, 16) for x in r.stdout.split())
        self.assertTrue(child & ADDR_NO_RANDOMIZE, r.stdout)
        with open("/proc/self/personality") as f:
            mine = int(f.read(), 16)
        self.assertEqual(after & ADDR_NO_RANDOMIZE, mine & ADDR_NO_RANDOMIZE)  # the shell's own

    def test_sanitizer_build(self):
        for value, want in (("address,undefined", 0), ("thread", 0), ("", 1)):
            d = os.path.join(self.tmp, f"b{want}{len(value)}")
            os.mkdir(d)
            with open(os.path.join(d, "CMakeCache.txt"), "w") as f:
                f.write(f"CMAKE_BUILD_TYPE:STRING=Debug\nIPCP_SANITIZERS:STRING={value}\n")
            r = bash(f'ipcp_is_sanitizer_build "{d}"')
            self.assertEqual(r.returncode, want, value)
        self.assertNotEqual(bash(f'ipcp_is_sanitizer_build "{self.tmp}/none"').returncode, 0)


class EndToEnd(unittest.TestCase):
    """ci/test and ci/nightly copied into a scratch tree with stubs for ci/deps, cmake, ctest,
    sysctl and ci/lib/nightly.py: what runs under setarch, and that the sysctl is never run."""

    def setUp(self):
        self.t = tempfile.mkdtemp(prefix="ipcp-aslr-e2e.")
        os.makedirs(os.path.join(self.t, "ci", "lib"))
        os.makedirs(os.path.join(self.t, "bin"))
        for f in ("test", "nightly", "lib/aslr.sh"):
            shutil.copy(os.path.join(CI, f), os.path.join(self.t, "ci", f))
        self.log = os.path.join(self.t, "calls.log")
        stub = ('#!/bin/sh\necho "%s $* | pers=$(cat /proc/self/personality)'
                ' | prefix=${IPCP_RUN_PREFIX:-}" >> "' + self.log + '"\n')
        self.script("ci/deps", stub % "deps")
        self.script("bin/sysctl", stub % "sysctl" + "echo 32\n")
        self.script("bin/ctest", stub % "ctest")
        # cmake --preset P --fresh writes build/P/CMakeCache.txt: asan and tsan are sanitizer builds
        self.script("bin/cmake", stub % "cmake" + """
if [ "$1" = --preset ]; then
  mkdir -p build/$2
  case $2 in asan) s=address,undefined ;; tsan) s=thread ;; *) s= ;; esac
  echo "IPCP_SANITIZERS:STRING=$s" > build/$2/CMakeCache.txt
fi
""")
        self.script("ci/lib/nightly.py", "import subprocess, sys\n"
                    f"subprocess.run(['sh', '-c', {stub % 'nightly.py'!r}, 'sh'] + sys.argv[1:])\n")

    def tearDown(self):
        shutil.rmtree(self.t, ignore_errors=True)

    def script(self, rel, text):
        p = os.path.join(self.t, rel)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o755)

    def run_ci(self, *args, bits):
        e = dict(os.environ, PATH=os.path.join(self.t, "bin") + os.pathsep + os.environ["PATH"],
                 IPCP_TEST_MMAP_RND_BITS=bits)
        e.pop("IPCP_RUN_PREFIX", None)
        r = subprocess.run([os.path.join(self.t, "ci", args[0])] + list(args[1:]),
                           capture_output=True, text=True, env=e, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(self.log) as f:
            calls = f.read().splitlines()
        writes = [c for c in calls if c.startswith("sysctl")
                  and ("-w" in c.split("|")[0].split() or "=" in c.split("|")[0])]
        self.assertEqual(writes, [], calls)
        return calls

    @staticmethod
    def aslr_off(call):
        return bool(int(call.split("pers=")[1].split()[0], 16) & ADDR_NO_RANDOMIZE)

    def ctest_of(self, calls, preset):
        return [c for c in calls if c.startswith(f"ctest --preset {preset} ")][0]

    def test_ci_test_28_bits(self):
        calls = self.run_ci("test", "default", "asan", bits="28")
        mine = self.aslr_off("x pers=" + open("/proc/self/personality").read())
        for p in ("default", "asan"):
            c = self.ctest_of(calls, p)
            self.assertEqual(self.aslr_off(c), mine, c)
            self.assertTrue(c.endswith("prefix="), c)

    @unittest.skipUnless(setarch_works(), "setarch -R is not permitted here")
    def test_ci_test_32_bits(self):
        calls = self.run_ci("test", "default", "asan", "tsan", bits="32")
        want = f"prefix=setarch {platform.machine()} -R"
        for p in ("asan", "tsan"):
            c = self.ctest_of(calls, p)
            self.assertTrue(self.aslr_off(c), c)
            self.assertTrue(c.endswith(want), c)
        c = self.ctest_of(calls, "default")  # no sanitizer: randomisation as the caller had it
        mine = self.aslr_off("x pers=" + open("/proc/self/personality").read())
        self.assertEqual(self.aslr_off(c), mine, c)
        self.assertTrue(c.endswith(want), c)  # the stress checks' own prefix, as before
        builds = [c for c in calls if c.startswith("cmake --build")]
        self.assertEqual(len(builds), 3)

    @unittest.skipUnless(setarch_works(), "setarch -R is not permitted here")
    def test_ci_nightly(self):
        calls = self.run_ci("nightly", "--budget", "1", bits="32")
        self.assertTrue(calls[0].startswith("deps all"), calls)
        n = [c for c in calls if c.startswith("nightly.py")][0]
        self.assertTrue(self.aslr_off(n), n)
        os.remove(self.log)
        calls = self.run_ci("nightly", "--dry-run", bits="32")  # no packages, no prefix needed
        self.assertFalse([c for c in calls if c.startswith("deps")], calls)


class Scripts(unittest.TestCase):
    def scripts(self):
        for d, _, files in os.walk(CI):
            for n in files:
                p = os.path.join(d, n)
                if n.endswith(".py") and "tests" in p:
                    continue  # this test names what it looks for
                with open(p, "rb") as f:
                    head = f.read(4096)
                if b"\0" in head:
                    continue
                yield p

    def test_no_script_writes_the_sysctl(self):
        bad = re.compile(r"sysctl\s+(-\w+\s+)*-\w*w|vm\.mmap_rnd_bits\s*=\s*\d|"
                         r">\s*/proc/sys/vm/mmap_rnd_bits")
        for p in self.scripts():
            with open(p, errors="replace") as f:
                for i, ln in enumerate(f, 1):
                    # comments and quoted text (aslr.sh's warning names the command) run nothing
                    code = re.sub(r'"[^"]*"', '""', ln.split("#", 1)[0])
                    self.assertIsNone(bad.search(code), f"{p}:{i}: {ln.strip()}")

    def test_ci_test_and_nightly_use_the_helper(self):
        for name in ("test", "nightly"):
            with open(os.path.join(CI, name)) as f:
                text = f.read()
            self.assertIn(". ci/lib/aslr.sh", text, name)
            self.assertIn("ipcp_san_prefix", text, name)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    CI = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0], "-v"])
