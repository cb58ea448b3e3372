#!/bin/bash -eu
# .clusterfuzzlite/build.sh - build every fuzz target of ipcproof for ClusterFuzzLite / OSS-Fuzz.
#
# The builder image sets CC, CXX, CFLAGS, CXXFLAGS (sanitizer and coverage flags included),
# LIB_FUZZING_ENGINE (libFuzzer, AFL++ or honggfuzz driver), SRC, OUT and WORK, and runs this
# script from the project's checkout ($SRC/ipcproof, the Dockerfile's WORKDIR). The targets are
# built by the project's own CMake (harnesses/CMakeLists.txt) with IPCP_FUZZ_ENGINE=external:
# $CC and $CFLAGS compile, $LIB_FUZZING_ENGINE is linked into each target (with $CXX $CXXFLAGS
# when CXX is set: the engines are C++ libraries). For each harnesses/fuzz_<name>.c it writes
# to $OUT:
#   fuzz_<name>                  the target (ring_sched: not in MemorySanitizer builds)
#   fuzz_<name>.dict, .options   harnesses/<name>.dict and harnesses/<name>.options
#   fuzz_<name>_seed_corpus.zip  corpora/<name>/ and corpora/regressions/<name>/
# xxHash: built from source with the same flags when $SRC/xxHash/xxhash.c exists (the Dockerfile
# fetches a pinned release; the runner image has no libxxhash), as a static library that
# pkg-config finds as libxxhash; otherwise the system's libxxhash (Debian libxxhash-dev).
# Locally: see ci/tests/cflite_build.sh, which runs this with the OSS-Fuzz variables set.

root=$PWD
[ -f "$root/CMakeLists.txt" ] && [ -d "$root/harnesses" ] || root=$SRC/ipcproof
cd "$root"
bdir=$WORK/ipcproof-build
rm -rf "$bdir"
mkdir -p "$bdir" "$OUT"

if [ -f "$SRC/xxHash/xxhash.c" ]; then
  # libxxhash.a with the builder's flags (x86 dispatch included: core/src/frame.c calls it),
  # and a pkg-config file that points at it, ahead of any system one.
  xx=$bdir/xxhash
  mkdir -p "$xx/pkgconfig"
  for f in xxhash xxh_x86dispatch; do
    [ -f "$SRC/xxHash/$f.c" ] || continue
    # shellcheck disable=SC2086 # CFLAGS is a list of flags
    $CC $CFLAGS "-I$SRC/xxHash" -c "$SRC/xxHash/$f.c" -o "$xx/$f.o"
  done
  ${AR:-ar} rcs "$xx/libxxhash.a" "$xx"/*.o
  cat > "$xx/pkgconfig/libxxhash.pc" <<PC
Name: libxxhash
Description: xxHash built for the fuzz targets
Version: 0.8.2
Cflags: -I$SRC/xxHash
Libs: -L$xx -lxxhash
PC
  export PKG_CONFIG_PATH=$xx/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
fi

# No build type: $CFLAGS alone decides optimisation and debug information. No tests, no stress
# command (nor its benchmarks): the library and the fuzz targets.
cxx=()
[ -z "${CXX:-}" ] || cxx=(-DCMAKE_CXX_COMPILER="$CXX")
cmake -S "$root" -B "$bdir" -DCMAKE_C_COMPILER="$CC" "${cxx[@]}" -DIPCP_FUZZ_ENGINE=external \
  -DIPCP_FUZZ_ENGINE_LINK="$LIB_FUZZING_ENGINE" -DBUILD_TESTING=OFF -DIPCP_BUILD_STRESS=OFF \
  -DBUILD_SHARED_LIBS=OFF -DIPCP_BUILD_LIBRARY_TWIN=OFF
# everything configured: libipcproof, the fuzz targets (ring_sched not in MemorySanitizer
# builds: see harnesses/CMakeLists.txt) and the seed generator
cmake --build "$bdir" -j"$(nproc)"

built=0
for harness in harnesses/fuzz_*.c; do
  target=$(basename "$harness" .c)
  name=${target#fuzz_}
  [ -x "$bdir/harnesses/$target" ] || { echo "ipcproof: $target not built in this flavour"; continue; }
  cp "$bdir/harnesses/$target" "$OUT/$target"
  [ -f "harnesses/$name.dict" ] && cp "harnesses/$name.dict" "$OUT/$target.dict"
  [ -f "harnesses/$name.options" ] && cp "harnesses/$name.options" "$OUT/$target.options"
  seeds=()
  for d in "corpora/$name" "corpora/regressions/$name"; do
    [ -d "$d" ] && while IFS= read -r -d '' f; do seeds+=("$f"); done < <(find "$d" -type f -print0)
  done
  rm -f "$OUT/${target}_seed_corpus.zip"
  if [ ${#seeds[@]} -gt 0 ]; then
    if command -v zip >/dev/null; then
      zip -q -j "$OUT/${target}_seed_corpus.zip" "${seeds[@]}"
    else
      python3 -m zipfile -c "$OUT/${target}_seed_corpus.zip" "${seeds[@]}"
    fi
  fi
  built=$((built + 1))
done
echo "ipcproof: built $built fuzz targets into $OUT"
