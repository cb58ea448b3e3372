#!/usr/bin/env bash
# package_test.sh BUILD_DIR - builds the .deb with CPack, unpacks it into a scratch root
# (dpkg -x, no installation) and uses ipcproof from there as a user of the package would: every
# file a user needs is in it, `validate --plugin-src` compiles an example plugin against the
# packaged header and passes, and a twin of another version is not used.
set -u
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1) ||
  { echo "FAIL: cpack"; tail -20 "$tmp/cpack.log"; exit 1; }
deb=$(ls "$tmp"/pkg/*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "FAIL: no .deb"; exit 1; }
dpkg-deb -f "$deb" Package Version Depends
dpkg -x "$deb" "$tmp/root" || { echo "FAIL: dpkg -x"; exit 1; }
r=$tmp/root/usr
for f in bin/ipcproof include/ipcproof/plugin.h include/ipcproof/ring.h share/man/man1/ipcproof.1 \
         share/bash-completion/completions/ipcproof share/doc/ipcproof/exec.md \
         share/doc/ipcproof/examples/plugins/good_pipe.c share/doc/ipcproof/examples/exec/fifo_producer.py; do
  [ -e "$r/$f" ] || { echo "FAIL: the package has no usr/$f"; fail=1; }
done
ls "$r"/lib*/libipcproof.a "$r"/lib*/pkgconfig/ipcproof.pc "$r"/lib*/cmake/ipcproof/ipcproofConfig.cmake \
   "$r"/lib*/libipcproof-faults.so >/dev/null || { echo "FAIL: library files missing"; fail=1; }
[ -x "$r/share/doc/ipcproof/examples/exec/fifo_producer.py" ] || { echo "FAIL: examples lost their x bit"; fail=1; }
"$r/bin/ipcproof" version | grep -q '^ipcproof ' || { echo "FAIL: ipcproof version"; fail=1; }
# a twin of another version: validate says so and does not use it
printf '#!/bin/sh\necho "ipcproof 0.0.0-other"\necho "plugin ABI 999"\n' >"$r/bin/ipcproof-tsan"
chmod +x "$r/bin/ipcproof-tsan"
(cd "$tmp" && env -u IPCPROOF_TSAN_BIN "$r/bin/ipcproof" validate \
   --plugin-src "$r/share/doc/ipcproof/examples/plugins/good_pipe.c" --budget 5 --seed 1 \
   --json "$tmp/v.json" >"$tmp/validate.log" 2>&1)
rc=$?
[ $rc = 0 ] || { echo "FAIL: validate of the packaged example: exit $rc"; tail -30 "$tmp/validate.log"; fail=1; }
# (a ThreadSanitizer build is its own twin and looks for none)
if ! "$r/bin/ipcproof" version | grep -q '^sanitizers: .*thread'; then
  grep -q "is not this ipcproof's twin" "$tmp/validate.log" ||
    { echo "FAIL: a twin of another version was not refused"; tail -15 "$tmp/validate.log"; fail=1; }
fi
python3 - "$tmp/v.json" <<'PY' || { echo "FAIL: report"; fail=1; }
import json, sys
r = json.load(open(sys.argv[1]))
assert r["result"] == "pass", r["result"]
PY
[ $fail = 0 ] && echo "package: ok ($(basename "$deb"))"
exit $fail
