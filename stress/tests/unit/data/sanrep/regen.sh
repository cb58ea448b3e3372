#!/bin/sh
# regen.sh - rebuilds the sanitizer report samples of this directory from programs/ with the
# compilers of this machine (clang-14 and gcc), and optionally takes a real report of the ipcproof
# harness from a ThreadSanitizer build:
#     stress/tests/unit/data/sanrep/regen.sh [path/to/tsan/ipcproof]
# The samples' build directory is written as /src/demo, the source tree as /src/ipcproof and the
# ipcproof build directory as /src/ipcproof/build/tsan, so they do not depend on where they were
# made. After regenerating, update the expected values in stress/tests/unit/sanrep_test.c (line
# numbers, module names) if they changed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../../.." && pwd)
tmp=$(mktemp -d)
build=$tmp/no-build-dir
trap 'rm -rf "$tmp"' EXIT
cp "$here"/programs/*.c "$tmp"/
cd "$tmp"

run() { # run OUTFILE ENV... PROGRAM: capture stdout+stderr, whatever the exit status
    out=$1
    shift
    env "$@" >"$tmp/raw.txt" 2>&1 || true
    sed -e "s#$tmp#/src/demo#g" -e "s#$build#/src/ipcproof/build/tsan#g" \
        -e "s#$root#/src/ipcproof#g" "$tmp/raw.txt" >"$here/$out"
}

for cc in clang-14 gcc; do
    t=${cc%%-*}
    $cc -g -O1 -fsanitize=thread race.c -o race-$t -lpthread
    $cc -g -O1 -fsanitize=thread -shared -fPIC lib.c -o libr-$t.so
    $cc -g -O1 -fsanitize=thread racelib.c -o racelib-$t ./libr-$t.so -lpthread -Wl,-rpath,"$tmp"
    $cc -g -O1 -fsanitize=thread unlock.c -o unlock-$t -lpthread
    $cc -g -O1 -fsanitize=thread lockorder.c -o lockorder-$t -lpthread
    $cc -g -O1 -fsanitize=thread tuaf.c -o tuaf-$t -lpthread
    $cc -g -O1 -fsanitize=thread segv.c -o tsegv-$t
    $cc -g -O1 -fsanitize=address heap.c -o heap-$t
    $cc -g -O1 -fsanitize=address segv.c -o segv-$t
    $cc -g -O1 -fsanitize=address dfree.c -o dfree-$t
    $cc -g -O0 -fsanitize=address leak.c -o leak-$t
    $cc -g -O1 -fsanitize=undefined ub.c -o ub-$t
    run tsan-$t-race.txt ./race-$t
    run tsan-$t-race-lib.txt ./racelib-$t
    run tsan-$t-unlock.txt ./unlock-$t
    run tsan-$t-lockorder.txt ./lockorder-$t
    run tsan-$t-heap-use-after-free.txt ./tuaf-$t
    run tsan-$t-segv.txt ./tsegv-$t
    run asan-$t-heap-overflow.txt ./heap-$t
    run asan-$t-segv.txt ./segv-$t
    run asan-$t-double-free.txt ./dfree-$t
    run lsan-$t-leak.txt ./leak-$t
    run ubsan-$t-nostack.txt ./ub-$t
    run ubsan-$t-stack.txt UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./ub-$t
done
run asan-clang-heap-overflow-color.txt ASAN_OPTIONS=color=always ./heap-clang
run tsan-gcc-race-color.txt TSAN_OPTIONS=color=always ./race-gcc

# The harness itself: the thread-mode child of `ipcproof stress` running broken_ring_relaxed.so,
# and good_asm_spinlock.so without its TSan annotations.
if [ $# -ge 1 ]; then
    bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    build=$(cd "$(dirname "$bin")/.." && pwd)
    run tsan-clang-ipcproof-ring.txt "$bin" stress \
        --plugin "$(dirname "$bin")/plugins/broken_ring_relaxed.so" --mode thread --messages 20000 \
        --seed 1
    run tsan-clang-ipcproof-asm-spinlock.txt "$bin" stress \
        --plugin "$(dirname "$bin")/plugins/good_asm_spinlock.so" --kind lock --mode thread \
        --workers 4 --messages 20000 --seed 1 --opt annotate=0
fi
