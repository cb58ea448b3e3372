#!/bin/sh
# exports.sh LIBIPCPROOF_SO INCLUDE_DIR - the shared library exports exactly the public API: every
# defined dynamic symbol starts with ipcp_ followed by a letter or digit (no ipcp__ internals, no
# foreign symbols), and each of them is declared in a public header.
set -eu
so=$1
inc=$2
syms=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u)
[ -n "$syms" ] || { echo "exports.sh: $so exports nothing"; exit 1; }
bad=0
for s in $syms; do
  case $s in
    ipcp__*) echo "internal symbol exported: $s"; bad=1 ;;
    ipcp_[a-z0-9]*)
      grep -qw "$s" "$inc"/*.h || { echo "exported but in no public header: $s"; bad=1; } ;;
    *) echo "foreign symbol exported: $s"; bad=1 ;;
  esac
done
[ $bad -eq 0 ] || exit 1
echo "exports.sh: $(echo "$syms" | wc -l) public symbols, nothing else"
