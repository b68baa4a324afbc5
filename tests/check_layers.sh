#!/bin/sh
# Includes point down the layers, never up. Each folder below has a rank, in
# the order data flows (script -> IR -> tables -> LLVM -> PTX -> launch);
# a file may include headers of its own rank or lower (include/sieve.h is
# below them all). Every violation is printed as file:line, and the exit
# status is 1. Includes are flat ("cg_expr.h"), so a header's name must be
# unique across the layers.
#
#   tests/check_layers.sh [SOURCE_DIR]
#
# lua/ ranks above every codegen stage, so that none of them may include
# it, but it stands on codegen/ir alone: ONLY narrows what it may include.
set -eu
cd "${1:-$(dirname "$0")/..}"

LAYERS="include codegen/ir codegen/tables codegen/emit codegen/kernels lua runtime api cli"
ONLY="lua:include,codegen/ir,lua"

for d in $LAYERS; do
  [ -d "$d" ] || { echo "check_layers: no folder $d"; exit 1; }
done

# Files in codegen/ outside its stage folders have no rank.
stray=$(find codegen -name '*.[ch]' | grep -v -E '^codegen/(ir|tables|emit|kernels)/[^/]+$' || true)
if [ -n "$stray" ]; then
  for f in $stray; do echo "$f: not in a layer (codegen/ir, tables, emit or kernels)"; done
  exit 1
fi

rank=0
for d in $LAYERS; do
  for f in "$d"/*.[ch]; do
    [ -e "$f" ] && printf '%s %s %s\n' "$rank" "$d" "$f"
  done
  rank=$((rank + 1))
done | awk -v only="$ONLY" '
  BEGIN {
    # ONLY: folder:allowed,allowed,... (space-separated entries).
    n = split(only, rule, " ")
    for (i = 1; i <= n; i++) {
      split(rule[i], kv, ":"); m = split(kv[2], al, ",")
      narrowed[kv[1]] = kv[2]; gsub(/,/, ", ", narrowed[kv[1]])
      for (j = 1; j <= m; j++) allowed[kv[1], al[j]] = 1
    }
  }
  # The list: each header name to its rank and folder.
  FILENAME == "-" {
    n = split($3, p, "/"); base = p[n]
    file_rank[$3] = $1; file_dir[$3] = $2; files[++nf] = $3
    if (base ~ /\.h$/) {
      if (base in hdr_dir && hdr_dir[base] != $2) {
        printf "%s: header name also in %s (includes are flat)\n", $3, hdr_dir[base]; bad = 1
      }
      hdr_rank[base] = $1; hdr_dir[base] = $2
    }
    next
  }
  END {
    for (i = 1; i <= nf; i++) {
      f = files[i]; line = 0
      while ((getline l < f) > 0) {
        line++
        if (l !~ /^[ \t]*#[ \t]*include[ \t]*"/) continue
        h = l; sub(/^[^"]*"/, "", h); sub(/".*$/, "", h)
        if (!(h in hdr_rank)) continue
        d = file_dir[f]
        if (hdr_rank[h] > file_rank[f]) {
          printf "%s:%d: includes %s from %s, a higher layer\n", f, line, h, hdr_dir[h]; bad = 1
        } else if ((d in narrowed) && !((d, hdr_dir[h]) in allowed)) {
          printf "%s:%d: includes %s from %s; %s/ includes only %s\n", f, line, h, hdr_dir[h],
                 d, narrowed[d]; bad = 1
        }
      }
      close(f)
    }
    exit bad
  }
' - && echo "check_layers: every include points down" || exit 1
