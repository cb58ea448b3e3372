#!/usr/bin/env bash
# cflite_build.sh - .clusterfuzzlite/build.sh builds every fuzz target the way ClusterFuzzLite and
# OSS-Fuzz call it, without Docker: the OSS-Fuzz variables are set by hand (CC=clang-14, ASan +
# fuzzer-no-link CFLAGS, LIB_FUZZING_ENGINE=-fsanitize=fuzzer, SRC/OUT/WORK in a temp dir).
# Checks that for every harnesses/fuzz_<name>.c the binary, its dictionary and options, and a seed
# zip holding every file of corpora/<name>/ (and regressions) appear in $OUT, and that each
# binary is a libFuzzer target that runs -runs=100 over its unpacked seed corpus.
#   ci/tests/cflite_build.sh [SOURCE_DIR]
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipcp-cflite.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export CC=clang-14
export CFLAGS="-O1 -fno-omit-frame-pointer -gline-tables-only -fsanitize=address,fuzzer-no-link"
export LIB_FUZZING_ENGINE=-fsanitize=fuzzer
export SRC=$tmp/src OUT=$tmp/out WORK=$tmp/work
unset CXX CXXFLAGS
# ASan without address randomisation on kernels that need it (ci/lib/aslr.sh).
. "$root/ci/lib/aslr.sh"
read -r -a san <<< "$(ipcp_san_prefix)"
mkdir -p "$SRC" "$OUT" "$WORK"
ln -s "$root" "$SRC/ipcproof"
(cd "$SRC/ipcproof" && bash -eu .clusterfuzzlite/build.sh) >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log"; echo "FAIL: build.sh exited non-zero"; exit 1; }

fail=0
ntargets=0
for harness in "$root"/harnesses/fuzz_*.c; do
  target=$(basename "$harness" .c)
  name=${target#fuzz_}
  ntargets=$((ntargets + 1))
  bin=$OUT/$target
  [ -x "$bin" ] || { echo "FAIL: $target: no executable in \$OUT"; fail=1; continue; }
  for ext in dict options; do
    if [ -f "$root/harnesses/$name.$ext" ]; then
      cmp -s "$root/harnesses/$name.$ext" "$OUT/$target.$ext" ||
        { echo "FAIL: $target: \$OUT/$target.$ext is not harnesses/$name.$ext"; fail=1; }
    fi
  done
  zipf=$OUT/${target}_seed_corpus.zip
  [ -f "$zipf" ] || { echo "FAIL: $target: no seed corpus zip"; fail=1; continue; }
  want=0
  for d in "$root/corpora/$name" "$root/corpora/regressions/$name"; do
    [ -d "$d" ] && want=$((want + $(find "$d" -type f | wc -l)))
  done
  mkdir -p "$tmp/seeds/$name"
  python3 -m zipfile -e "$zipf" "$tmp/seeds/$name"
  got=$(find "$tmp/seeds/$name" -type f | wc -l)
  [ "$got" -eq "$want" ] && [ "$got" -gt 0 ] ||
    { echo "FAIL: $target: seed zip holds $got files, corpora have $want"; fail=1; }
  if ! ASAN_OPTIONS=detect_leaks=1 "${san[@]}" "$bin" -runs=100 -seed=1 "$tmp/seeds/$name" >"$tmp/$name.log" 2>&1; then
    tail -30 "$tmp/$name.log"; echo "FAIL: $target: -runs=100 over its seeds failed"; fail=1; continue
  fi
  grep -q "INITED" "$tmp/$name.log" && grep -Eq "Done [0-9]+ runs" "$tmp/$name.log" ||
    { tail -20 "$tmp/$name.log"; echo "FAIL: $target: not a libFuzzer run over the seeds"; fail=1; }
  echo "ok: $target: $got seeds, $(grep -o 'INITED cov: [0-9]*' "$tmp/$name.log" | head -1)"
done
[ $ntargets -gt 0 ] || { echo "FAIL: no harnesses/fuzz_*.c"; exit 1; }
[ $fail -eq 0 ] || exit 1
echo "PASS: build.sh built $ntargets fuzz targets with seed corpora"
