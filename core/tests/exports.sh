#!/bin/sh
# exports.sh LIBIPCPROOF_SO INCLUDE_DIR [LIBIPCPROOF_A] - the shared library exports exactly the
# public API: every defined dynamic symbol starts with ipcp_ followed by a letter or digit (no
# ipcp__ internals, no foreign symbols), and each of them is declared in a public header. With the
# static library too: its objects were compiled with -fvisibility=hidden, so every global symbol
# they define is HIDDEN unless a public header declares it (and then it is DEFAULT).
set -eu
so=$1
inc=$2
ar=${3:-}
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
if [ -n "$ar" ]; then
  # readelf -sW columns: Num Value Size Type Bind Vis Ndx Name
  vis=$(readelf -sW "$ar" | awk '$5 == "GLOBAL" && $7 != "UND" && ($4 == "FUNC" || $4 == "OBJECT") {print $8, $6}' | sort -u)
  [ -n "$vis" ] || { echo "exports.sh: $ar defines no global symbol"; exit 1; }
  while read -r s v; do
    if grep -qw "$s" "$inc"/*.h; then
      [ "$v" = DEFAULT ] || { echo "public symbol not visible in $ar: $s ($v)"; bad=1; }
    else
      [ "$v" = HIDDEN ] || { echo "internal symbol visible in $ar: $s ($v)"; bad=1; }
    fi
  done <<EOF
$vis
EOF
fi
[ $bad -eq 0 ] || exit 1
echo "exports.sh: $(echo "$syms" | wc -l) public symbols, nothing else"
