#!/usr/bin/env bash
# cflite_build.sh - .clusterfuzzlite/build.sh builds every fuzz target the way ClusterFuzzLite and
# OSS-Fuzz call it, without Docker: the OSS-Fuzz variables are set by hand, SRC/OUT/WORK in a
# temporary directory, twice:
#   1. libFuzzer as OSS-Fuzz sets it: CC=clang-14, CXX=clang++-14, CFLAGS=CXXFLAGS with ASan and
#      fuzzer-no-link, LIB_FUZZING_ENGINE=-fsanitize=fuzzer (linked by the C++ compiler);
#   2. an engine given as the path of a driver library, as AFL++ and honggfuzz are: the replay
#      main (harnesses/replay_main.c) as libdriver.a, no CXX, CFLAGS with ASan only.
# Checks, each time: build.sh went through the project's CMake with IPCP_FUZZ_ENGINE=external
# and the caller's CFLAGS (the cache says so; every target has ASan in it); for every
# harnesses/fuzz_<name>.c the binary, its dictionary and options, and a seed zip holding every
# file of corpora/<name>/ (and regressions) are in $OUT, and nothing else that is executable;
# no target needs a library the runner image lacks (libipcproof, or anything ldd cannot find);
# each binary runs one seed file, and (libFuzzer) -runs=100 over its unpacked seed corpus.
#   ci/tests/cflite_build.sh [SOURCE_DIR]
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipcp-cflite.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# ASan without address randomisation on kernels that need it (ci/lib/aslr.sh).
. "$root/ci/lib/aslr.sh"
read -r -a san <<< "$(ipcp_san_prefix)"
fail=0
failed() { echo "FAIL: $*"; fail=1; }

# build.sh once with the environment of this flavour; $1 is a label, $2 libfuzzer|driver
run_build() {
  local label=$1 kind=$2
  export SRC=$tmp/$label/src OUT=$tmp/$label/out WORK=$tmp/$label/work
  mkdir -p "$SRC" "$OUT" "$WORK"
  ln -s "$root" "$SRC/ipcproof"
  if ! (cd "$SRC/ipcproof" && bash -eu .clusterfuzzlite/build.sh) >"$tmp/$label.log" 2>&1; then
    tail -40 "$tmp/$label.log"
    echo "FAIL: $label: build.sh exited non-zero"
    exit 1
  fi
  local cache=$WORK/ipcproof-build/CMakeCache.txt
  [ -f "$cache" ] || { failed "$label: no CMake build in \$WORK/ipcproof-build"; return; }
  grep -qx 'IPCP_FUZZ_ENGINE:UNINITIALIZED=external' "$cache" ||
    grep -qx 'IPCP_FUZZ_ENGINE:STRING=external' "$cache" ||
    failed "$label: CMake was not configured with IPCP_FUZZ_ENGINE=external"
  grep -qxF "IPCP_FUZZ_ENGINE_LINK:STRING=$LIB_FUZZING_ENGINE" "$cache" ||
    grep -qxF "IPCP_FUZZ_ENGINE_LINK:UNINITIALIZED=$LIB_FUZZING_ENGINE" "$cache" ||
    failed "$label: the engine is not \$LIB_FUZZING_ENGINE"
  grep -qF "CMAKE_C_FLAGS:STRING=$CFLAGS" "$cache" || failed "$label: CMake did not take \$CFLAGS"

  local ntargets=0 harness target name bin ext zipf want got d one
  for harness in "$root"/harnesses/fuzz_*.c; do
    target=$(basename "$harness" .c)
    name=${target#fuzz_}
    ntargets=$((ntargets + 1))
    bin=$OUT/$target
    [ -x "$bin" ] || { failed "$label: $target: no executable in \$OUT"; continue; }
    # (grep -q reads from a file: in a pipe its early exit would fail the pipeline, pipefail)
    nm "$bin" >"$tmp/nm.txt"
    grep -q ' T __asan_init$' "$tmp/nm.txt" || failed "$label: $target: not built with \$CFLAGS (no ASan)"
    ldd "$bin" >"$tmp/ldd.txt"
    if grep -Eq 'not found|libipcproof' "$tmp/ldd.txt"; then
      cat "$tmp/ldd.txt"; failed "$label: $target: needs a library the runner image does not have"
    fi
    for ext in dict options; do
      if [ -f "$root/harnesses/$name.$ext" ]; then
        cmp -s "$root/harnesses/$name.$ext" "$OUT/$target.$ext" ||
          failed "$label: $target: \$OUT/$target.$ext is not harnesses/$name.$ext"
      fi
    done
    zipf=$OUT/${target}_seed_corpus.zip
    [ -f "$zipf" ] || { failed "$label: $target: no seed corpus zip"; continue; }
    want=0
    for d in "$root/corpora/$name" "$root/corpora/regressions/$name"; do
      [ -d "$d" ] && want=$((want + $(find "$d" -type f | wc -l)))
    done
    mkdir -p "$tmp/$label/seeds/$name"
    python3 -m zipfile -e "$zipf" "$tmp/$label/seeds/$name"
    got=$(find "$tmp/$label/seeds/$name" -type f | wc -l)
    [ "$got" -eq "$want" ] && [ "$got" -gt 0 ] ||
      failed "$label: $target: seed zip holds $got files, corpora have $want"
    # one seed, by itself
    one=$(find "$root/corpora/$name" -type f | sort | head -1)
    if ! ASAN_OPTIONS=detect_leaks=1 "${san[@]}" "$bin" "$one" >"$tmp/$label-$name-one.log" 2>&1; then
      tail -20 "$tmp/$label-$name-one.log"; failed "$label: $target: fails on one seed"; continue
    fi
    grep -qF "Running: $one" "$tmp/$label-$name-one.log" ||
      { tail -20 "$tmp/$label-$name-one.log"; failed "$label: $target: did not run $one"; }
    [ "$kind" = libfuzzer ] || continue
    if ! ASAN_OPTIONS=detect_leaks=1 "${san[@]}" "$bin" -runs=100 -seed=1 "$tmp/$label/seeds/$name" \
         >"$tmp/$label-$name.log" 2>&1; then
      tail -30 "$tmp/$label-$name.log"; failed "$label: $target: -runs=100 over its seeds failed"
      continue
    fi
    grep -q "INITED" "$tmp/$label-$name.log" && grep -Eq "Done [0-9]+ runs" "$tmp/$label-$name.log" ||
      { tail -20 "$tmp/$label-$name.log"; failed "$label: $target: not a libFuzzer run over the seeds"; }
    echo "ok: $label: $target: $got seeds, $(grep -o 'INITED cov: [0-9]*' "$tmp/$label-$name.log" | head -1)"
  done
  [ $ntargets -gt 0 ] || { echo "FAIL: no harnesses/fuzz_*.c"; exit 1; }
  # nothing executable in $OUT but the targets
  local extra
  extra=$(find "$OUT" -maxdepth 1 -type f -perm -u+x ! -name 'fuzz_*' -printf '%f\n')
  [ -z "$extra" ] || failed "$label: executables in \$OUT that are no fuzz target: $extra"
  echo "$label: $ntargets targets checked"
}

asan="-O1 -fno-omit-frame-pointer -gline-tables-only -fsanitize=address"
export CC=clang-14 CXX=clang++-14
export CFLAGS="$asan -fsanitize=fuzzer-no-link" CXXFLAGS="$asan -fsanitize=fuzzer-no-link"
export LIB_FUZZING_ENGINE=-fsanitize=fuzzer
run_build libfuzzer libfuzzer

# A driver library as the engine: the replay main, compiled with the same flags.
unset CXX CXXFLAGS
export CFLAGS="$asan"
mkdir -p "$tmp/driver"
# shellcheck disable=SC2086 # CFLAGS is a list of flags
clang-14 $CFLAGS -c "$root/harnesses/replay_main.c" -o "$tmp/driver/replay_main.o"
ar rcs "$tmp/driver/libdriver.a" "$tmp/driver/replay_main.o"
export LIB_FUZZING_ENGINE=$tmp/driver/libdriver.a
run_build driver driver

[ $fail -eq 0 ] || exit 1
echo "PASS: build.sh built every fuzz target through CMake, with a libFuzzer flag and with a driver library"
