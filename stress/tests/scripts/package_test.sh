#!/usr/bin/env bash
# package_test.sh BUILD_DIR [CONSUMER_DIR CC] - builds the .deb with CPack, unpacks it into a
# scratch root (dpkg -x, no installation) and uses ipcproof from there as a user of the package
# would: every file a user needs is in it (libipcproof static and shared, with its soname link),
# `validate --plugin-src` compiles an example plugin against the packaged header and passes, and
# a twin of another version is not used. With CONSUMER_DIR (core/tests/install: a CMake project
# using find_package(ipcproof COMPONENTS shared static) and pkg-config), that project is built
# against the unpacked root and run, and a plain `CC $(pkg-config --cflags --libs ipcproof)`
# program too: the shared ones load libipcproof.so.0 from the root, the static one does not.
set -u
build=$1
consumer=${2:-}
cc=${3:-cc}
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
ls "$r"/lib*/libipcproof.a "$r"/lib*/libipcproof.so "$r"/lib*/libipcproof.so.0 \
   "$r"/lib*/pkgconfig/ipcproof.pc "$r"/lib*/cmake/ipcproof/ipcproofConfig.cmake \
   "$r"/lib*/libipcproof-faults.so >/dev/null || { echo "FAIL: library files missing"; fail=1; }
so=$(ls "$r"/lib*/libipcproof.so.0 2>/dev/null | head -1)
if [ -n "$so" ]; then
  readelf -d "$so" | grep -q 'SONAME.*\[libipcproof\.so\.0\]' ||
    { echo "FAIL: libipcproof.so.0 has no soname libipcproof.so.0"; fail=1; }
  readelf --dyn-syms "$so" | grep -q ' ipcp_fdchan_open$' ||
    { echo "FAIL: libipcproof.so does not export the API"; fail=1; }
fi
if [ -n "$consumer" ]; then
  # the CMake consumer: find_package (ipcproof::ipcproof = shared, ipcproof::ipcproof_static)
  # and pkg_check_modules, against the unpacked root only
  if ! cmake -S "$consumer" -B "$tmp/consumer" -DCMAKE_C_COMPILER="$cc" \
       -DCMAKE_PREFIX_PATH="$r" -DCMAKE_FIND_USE_CMAKE_SYSTEM_PATH=OFF >"$tmp/consumer.log" 2>&1 ||
     ! cmake --build "$tmp/consumer" >>"$tmp/consumer.log" 2>&1; then
    echo "FAIL: a consumer of the packaged library does not build"; tail -30 "$tmp/consumer.log"; fail=1
  else
    for exe in consumer_cmake:shared consumer_pc:shared consumer_static:static; do
      kind=${exe#*:} exe=${exe%%:*}
      "$tmp/consumer/$exe" >/dev/null || { echo "FAIL: $exe (from the package) failed"; fail=1; }
      needed=$(readelf -d "$tmp/consumer/$exe" | grep NEEDED)
      if [ "$kind" = shared ]; then
        grep -q 'libipcproof\.so\.0' <<<"$needed" || { echo "FAIL: $exe is not linked to libipcproof.so.0"; fail=1; }
        ldd "$tmp/consumer/$exe" | grep -q "$tmp/root/.*libipcproof\.so\.0" ||
          { echo "FAIL: $exe does not load the packaged libipcproof.so.0"; fail=1; }
      elif grep -q libipcproof <<<"$needed"; then
        echo "FAIL: $exe should have libipcproof linked in statically"; fail=1
      fi
    done
  fi
  # a program built with plain pkg-config, as a Makefile would
  pcdir=$(dirname "$(ls "$r"/lib*/pkgconfig/ipcproof.pc "$r"/lib/*/pkgconfig/ipcproof.pc 2>/dev/null | head -1)")
  if ! flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs ipcproof) ||
     ! "$cc" "$consumer/consumer.c" $flags -o "$tmp/consumer_plain" 2>"$tmp/plain.log"; then
    echo "FAIL: cc \$(pkg-config --cflags --libs ipcproof) does not build"; cat "$tmp/plain.log"; fail=1
  else
    LD_LIBRARY_PATH=$(dirname "$so") "$tmp/consumer_plain" >/dev/null ||
      { echo "FAIL: the pkg-config consumer failed"; fail=1; }
  fi
  PKG_CONFIG_PATH=$pcdir pkg-config --static --libs ipcproof | grep -q -- '-lxxhash' ||
    { echo "FAIL: pkg-config --static does not name xxhash"; fail=1; }
fi
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
