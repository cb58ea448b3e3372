#!/bin/bash -eu
# .clusterfuzzlite/build.sh - build every fuzz target of ipcproof for ClusterFuzzLite / OSS-Fuzz.
#
# The builder image sets CC, CFLAGS (sanitizer and coverage flags included), LIB_FUZZING_ENGINE
# (libFuzzer, AFL++ or honggfuzz driver), SRC, OUT and WORK, and runs this script from the
# project's checkout ($SRC/ipcproof, the Dockerfile's WORKDIR). For each harnesses/fuzz_<name>.c
# it writes to $OUT:
#   fuzz_<name>                  core/src/*.c + the harness compiled with $CC $CFLAGS, linked with
#                                $LIB_FUZZING_ENGINE (with $CXX $CXXFLAGS when CXX is set: the
#                                engines are C++ libraries)
#   fuzz_<name>.dict, .options   harnesses/<name>.dict and harnesses/<name>.options
#   fuzz_<name>_seed_corpus.zip  corpora/<name>/ and corpora/regressions/<name>/
# xxHash: built from source with the same flags when $SRC/xxHash/xxhash.c exists (the Dockerfile
# fetches a pinned release), otherwise the system's libxxhash (Debian libxxhash-dev).
# Locally: see ci/tests/cflite_build.sh, which runs this with the OSS-Fuzz variables set.

root=$PWD
[ -d "$root/core/src" ] && [ -d "$root/harnesses" ] || root=$SRC/ipcproof
cd "$root"
obj=$WORK/ipcproof-obj
rm -rf "$obj"
mkdir -p "$obj" "$OUT"

cflags=("-std=c11" "-D_GNU_SOURCE" "-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"
        "-I$root/core/include" "-I$root/core/src" "-I$root/harnesses")
xxhash_link=()
if [ -f "$SRC/xxHash/xxhash.c" ]; then
  # The runner image has no libxxhash: build it in, with the same sanitizer flags.
  cflags=("-I$SRC/xxHash" "${cflags[@]}")
  for f in xxhash xxh_x86dispatch; do
    [ -f "$SRC/xxHash/$f.c" ] || continue
    # shellcheck disable=SC2086 # CFLAGS is a list of flags
    $CC $CFLAGS "-I$SRC/xxHash" -c "$SRC/xxHash/$f.c" -o "$obj/$f.o"
    xxhash_link+=("$obj/$f.o")
  done
else
  # Local runs (ci/tests/cflite_build.sh): Debian's libxxhash.so. Its static libxxhash.a lacks
  # the x86 dispatch entry points that core/src/frame.c calls.
  xxhash_link=(-lxxhash)
fi

# libipcproof: every core source, compiled in parallel.
pids=()
for src in core/src/*.c; do
  # shellcheck disable=SC2086 # CFLAGS is a list of flags
  $CC $CFLAGS "${cflags[@]}" -c "$src" -o "$obj/core_$(basename "$src" .c).o" &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ $failed -eq 0 ] || { echo "ipcproof: compiling core/ failed" >&2; exit 1; }
rm -f "$obj/libipcproof.a"
${AR:-ar} rcs "$obj/libipcproof.a" "$obj"/core_*.o

if [ -n "${CXX:-}" ]; then link=($CXX ${CXXFLAGS:-}); else link=($CC $CFLAGS); fi
built=0
pids=()
for harness in harnesses/fuzz_*.c; do
  # shellcheck disable=SC2086
  $CC $CFLAGS "${cflags[@]}" -I"$root/stress/sched" -c "$harness" -o "$obj/$(basename "$harness" .c).o" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ $failed -eq 0 ] || { echo "ipcproof: compiling harnesses/ failed" >&2; exit 1; }
# fuzz_ring_sched and fuzz_lock_sched run core code under ipcproof's scheduler (docs/fuzzing.md):
# their core sources again with the ThreadSanitizer instrumentation in place of ASan/MSan (the
# scheduler runtime supplies its callbacks), the runtime, its queue interposers and the
# futex/clock glue (harnesses/CMakeLists.txt: IPCP_SCHED_CORE_<name>). Their core objects come
# first, so the archive's are never linked in. Not in MemorySanitizer builds: MSan cannot see the
# stores of core code built without it.
declare -A sched_core=([ring_sched]="ring.c" [lock_sched]="mqlock.c handoff.c")
sched_objs=()
if [[ " $CFLAGS " != *"-fsanitize=memory"* ]]; then
  for src in stress/sched/schedrt.c stress/sched/tsancb.c stress/sched/interpose_ipc.c \
             stress/sched/schedfmt.c stress/sched/hb.c stress/sched/crashpt.c \
             stress/sched/places.c harnesses/sched_glue.c; do
    # shellcheck disable=SC2086
    $CC $CFLAGS "${cflags[@]}" -I"$root/stress/sched" -c "$src" -o "$obj/sched_$(basename "$src")".o
  done
  sched_objs=("$obj"/sched_schedrt.c.o "$obj"/sched_tsancb.c.o "$obj"/sched_interpose_ipc.c.o
              "$obj"/sched_schedfmt.c.o "$obj"/sched_hb.c.o "$obj"/sched_crashpt.c.o
              "$obj"/sched_places.c.o "$obj"/sched_sched_glue.c.o -ldl -latomic)
  for name in "${!sched_core[@]}"; do
    for src in ${sched_core[$name]}; do
      # shellcheck disable=SC2086
      $CC $CFLAGS -fno-sanitize=address,memory -fsanitize=thread "${cflags[@]}" -c "core/src/$src" \
        -o "$obj/sched_${name}_$src.o"
    done
  done
fi
for harness in harnesses/fuzz_*.c; do
  target=$(basename "$harness" .c)
  name=${target#fuzz_}
  extra=()
  if [ -n "${sched_core[$name]:-}" ]; then
    [ ${#sched_objs[@]} -gt 0 ] || continue
    for src in ${sched_core[$name]}; do extra+=("$obj/sched_${name}_$src.o"); done
    extra+=("${sched_objs[@]}")
  fi
  "${link[@]}" "$obj/$target.o" "${extra[@]}" -o "$OUT/$target" $LIB_FUZZING_ENGINE \
    "$obj/libipcproof.a" "${xxhash_link[@]}" -lpthread -lrt
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
