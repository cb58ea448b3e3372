#!/usr/bin/env bash
# help.sh IPCPROOF - every command's help: `CMD --help`, `CMD -h` (anywhere after it) and
# `help CMD` print that command's usage on stdout and exit 0; the top level names the exit codes
# and the docs; an unknown command is exit 2 with a message on stderr.
set -u
bin=$1
fail=0
check() { # check WANT_RC WANT_REGEX ARGS...
    local want=$1 re=$2
    shift 2
    local out rc
    out=$("$bin" "$@" 2>/dev/null)
    rc=$?
    if [ "$rc" != "$want" ] || ! grep -Eq -- "$re" <<<"$out"; then
        echo "FAIL: ipcproof $* -> exit $rc (want $want), stdout does not match /$re/:"
        head -3 <<<"$out"
        fail=1
    fi
}
for cmd in stress validate bench repro describe replay list clean version help; do
    want="usage: ipcproof $cmd"
    [ "$cmd" = help ] && want="usage: ipcproof (COMMAND|help)"
    check 0 "^$want" "$cmd" --help
    check 0 "^$want" "$cmd" -h
    [ "$cmd" = help ] || check 0 "^$want" help "$cmd"
done
check 0 "^usage: ipcproof clean" clean --dry-run --help
check 0 "^usage: ipcproof stress" stress --proto ring --messages 10 -h
check 0 "--exec-producer" stress --help
check 0 "--budget SECONDS" validate --help
check 0 "exit status: 0 no violation" --help
check 0 "docs/exec.md" help
check 2 "" help no-such-command
check 2 "" no-such-command
"$bin" help no-such-command 2>&1 >/dev/null | grep -q "unknown command 'no-such-command'" ||
    { echo "FAIL: help of an unknown command does not say so on stderr"; fail=1; }
[ $fail = 0 ] && echo "every help: ok"
exit $fail
