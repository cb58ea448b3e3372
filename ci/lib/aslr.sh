# shellcheck shell=bash
# ci/lib/aslr.sh - sourced (bash) by the ci/ scripts that run sanitizer builds.
#
# The sanitizers of LLVM 14 (ASan, TSan, libFuzzer's ASan) die at start-up on kernels that
# randomise more than 28 bits of mmap addresses (vm.mmap_rnd_bits is 32 on recent kernels). The
# ci/ scripts never change that host-wide setting: they run the sanitizer processes with address
# randomisation turned off for those processes only, `setarch $(uname -m) -R CMD` (the
# ADDR_NO_RANDOMIZE personality, inherited by every child of CMD).
#
#   . ci/lib/aslr.sh
#   read -r -a san <<< "$(ipcp_san_prefix)"     # () or (setarch x86_64 -R)
#   "${san[@]}" build/asan/some_test
#
# ipcp_san_prefix takes the value to judge as an optional argument; without one it reads the
# running kernel's. For the tests of ci/ only, IPCP_TEST_MMAP_RND_BITS stands in for the kernel's
# value (to try the > 28 path on a machine that does not need it).

IPCP_MAX_MMAP_RND_BITS=28

# The kernel's vm.mmap_rnd_bits, or nothing when it cannot be read.
ipcp_mmap_rnd_bits() {
  if [ -n "${IPCP_TEST_MMAP_RND_BITS:-}" ]; then
    echo "$IPCP_TEST_MMAP_RND_BITS"
    return 0
  fi
  cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || sysctl -n vm.mmap_rnd_bits 2>/dev/null || true
}

# ipcp_is_sanitizer_build BUILD_DIR: whether that CMake build has IPCP_SANITIZERS set (the
# asan, tsan, libfuzzer and afl presets).
ipcp_is_sanitizer_build() {
  grep -q '^IPCP_SANITIZERS:[A-Z]*=.' "$1/CMakeCache.txt" 2>/dev/null
}

# Whether this process may turn address randomisation off for a child (a container's seccomp
# profile may refuse the personality call; docs/nightly.md).
ipcp_setarch_works() {
  setarch "$(uname -m)" -R true >/dev/null 2>&1
}

# ipcp_san_prefix [BITS]: prints the command prefix for sanitizer runs: nothing when BITS (default:
# the kernel's vm.mmap_rnd_bits) is at most 28 or unknown, else `setarch <arch> -R`. When setarch
# is not allowed here it prints nothing and warns on stderr; it never changes the sysctl.
# shellcheck disable=SC2120 # the argument is optional
ipcp_san_prefix() {
  local bits
  if [ $# -gt 0 ]; then bits=$1; else bits=$(ipcp_mmap_rnd_bits); fi
  case "$bits" in '' | *[!0-9]*) return 0 ;; esac
  [ "$bits" -gt "$IPCP_MAX_MMAP_RND_BITS" ] || return 0
  if ipcp_setarch_works; then
    echo "setarch $(uname -m) -R"
    return 0
  fi
  echo "ci: warning: vm.mmap_rnd_bits is $bits (more than $IPCP_MAX_MMAP_RND_BITS) and" \
       "'setarch $(uname -m) -R' is not permitted here: sanitizer runs may die at start-up." \
       "Allow the personality call (e.g. docker run --privileged), or lower the setting for the" \
       "run yourself (sysctl -w vm.mmap_rnd_bits=$IPCP_MAX_MMAP_RND_BITS) and set it back to" \
       "$bits afterwards." >&2
  return 0
}
