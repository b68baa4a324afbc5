#!/usr/bin/env bash
# Two builds timed against each other on one GPU, for a kernel change:
# `sieve run` of each case with the builds alternating (each round in the
# opposite order of the one before), each build with its own kernel cache,
# so the ratios hold within the call even while the clock moves with power.
# FA3 (the fa3-fwd wheel on PYTHONPATH, where it imports) is timed at the
# dense cases' shapes before and after the rounds, in the same call.
#   bench/ab_builds.sh OLD_BUILD NEW_BUILD [CASES_FILE]
# A case is a line: PATTERN SHAPE REP_MS [KEY=VALUE ...] (a pattern's
# parameters); '#' starts a comment. ROUNDS (default 2) sets the rounds.
# Prints each round's times, then a table: old and new ms, new / old; and
# where FA3 ran, the dense cases' speed over FA3's, round by round.
# Checks are bench/gpu.sh's job: run it on the new build as well.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
old=$(cd "${1:?OLD_BUILD}" && pwd) || exit 2
new=$(cd "${2:?NEW_BUILD}" && pwd) || exit 2
cases=${3:-}
rounds=${ROUNDS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SIEVE_SOURCE_DIR=$src SIEVE_PATTERNS=$src/patterns PYTHONUNBUFFERED=1
if [ -n "$cases" ]; then
  grep -v '^[[:space:]]*\(#\|$\)' "$cases" > "$work/cases" || { echo "ab_builds: no cases in $cases" >&2; exit 2; }
else
  cat > "$work/cases" <<'EOF'
dense wan-1.3b-480p 1500
dense hunyuan-720p 3000
dense wan-14b-720p 3000
dense cogvideox-1.5 2000
frame_window wan-1.3b-480p 800 window=1
frame_window wan-1.3b-480p 800 window=3
frame_window hunyuan-720p 1500 window=1
frame_window cogvideox-1.5 1000 window=1
frame_window cogvideox-1.5 1000 window=3
EOF
fi

# run BUILD TAG PATTERN SHAPE REP [KEY=VALUE ...]: the time in ms, or "-"
run() {
  local b=$1 tag=$2 pat=$3 shape=$4 rep=$5
  shift 5
  local p=() t
  for x in "$@"; do p+=(-p "$x"); done
  t=$(SIEVE_LIB_DIR=$b SIEVE_CACHE_DIR=$work/cache_$tag XDG_CACHE_HOME=$work/xdg_$tag \
      timeout 300 "$b/sieve" run "$pat" --shape "$shape" "${p[@]}" --rep-ms "$rep" 2>"$work/err" < /dev/null |
      awk '$1 == "time" { print $2; exit }')
  if [ -z "$t" ]; then
    echo "ab_builds: $tag build, $pat $shape${*:+ $*}: $(tail -1 "$work/err")" >&2
    t=-
  fi
  echo "$t"
}

fa3() {
  awk '$1 == "dense" { print $2 }' "$work/cases" | sort -u > "$work/fa3_shapes"
  [ -s "$work/fa3_shapes" ] || return 0
  SIEVE_LIB_DIR=$new python3 - "$work/fa3_shapes" <<'PY' | tee -a "$work/fa3_times" || true
import sys
sys.path.insert(0, "bench")
try:
    import torch, triton.testing
    from compare import load_fa3
    from sieve_ctypes import Sieve
except ImportError as e:
    sys.exit("fa3: not timed (%s)" % e)
f = load_fa3()
if f is None:
    sys.exit(0)
sv = Sieve()
for name in open(sys.argv[1]).read().split():
    s = sv.shape(name)
    q, k, v = [torch.randn(1, s.tokens, s.heads, s.head_dim, dtype=torch.bfloat16, device="cuda") for _ in range(3)]
    t = triton.testing.do_bench(lambda: f(q, k, v), warmup=100, rep=1500, return_mode="median")
    print("fa3 %s %.3f ms" % (name, t), flush=True)
    del q, k, v
PY
}

cd "$src" || exit 2
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader 2>/dev/null
# every kernel compiled and every table built before the first timing
while read -r pat shape rep params; do
  run "$old" old "$pat" "$shape" 50 $params > /dev/null
  run "$new" new "$pat" "$shape" 50 $params > /dev/null
done < "$work/cases"
fa3
for r in $(seq 1 "$rounds"); do
  i=0
  while read -r pat shape rep params; do
    i=$((i + 1))
    if [ $((r % 2)) = 1 ]; then
      o=$(run "$old" old "$pat" "$shape" "$rep" $params); n=$(run "$new" new "$pat" "$shape" "$rep" $params)
    else
      n=$(run "$new" new "$pat" "$shape" "$rep" $params); o=$(run "$old" old "$pat" "$shape" "$rep" $params)
    fi
    echo "r$r $pat $shape $params | old $o ms | new $n ms"
    echo "$i $o $n" >> "$work/times"
  done < "$work/cases"
done
fa3
# One pass over the cases makes both tables: new against old, and the
# dense cases against FA3 in the same call (each round's speed over FA3's,
# FA3's time the mean of its runs before and after the rounds).
touch "$work/fa3_times" "$work/fa3_table"
i=0
while read -r pat shape rep params; do
  i=$((i + 1))
  awk -v i=$i -v c="| $pat | $shape | ${params:-} |" '
    $1 == i { o = o (n ? ", " : "") $2; w = w (n ? ", " : "") $3; n++
              if ($2 != "-" && $3 != "-") { q = $3 / $2; lo = (k && lo < q) ? lo : q; hi = (k && hi > q) ? hi : q; k++ } }
    END { r = !k ? "-" : (lo == hi ? sprintf("%.3f", lo) : sprintf("%.3f-%.3f", lo, hi)); print c " " o " | " w " | " r " |" }
  ' "$work/times" >> "$work/table"
  [ "$pat" = dense ] || continue
  awk -v i=$i -v s="$shape" '
    function span(lo, hi) { return lo == hi ? sprintf("%.3fx", lo) : sprintf("%.3f-%.3fx", lo, hi) }
    FNR == NR { if ($1 == "fa3" && $2 == s) { f = f (nf ? ", " : "") $3; sum += $3; nf++ } next }
    $1 == i && $2 != "-" { x[no++] = $2 }
    $1 == i && $3 != "-" { y[nn++] = $3 }
    END {
      if (!nf) exit
      m = sum / nf
      for (j = 0; j < no; j++) { q = m / x[j]; olo = (j && olo < q) ? olo : q; ohi = (j && ohi > q) ? ohi : q }
      for (j = 0; j < nn; j++) { q = m / y[j]; nlo = (j && nlo < q) ? nlo : q; nhi = (j && nhi > q) ? nhi : q }
      print "| " s " | " f " | " (no ? span(olo, ohi) : "-") " | " (nn ? span(nlo, nhi) : "-") " |"
    }
  ' "$work/fa3_times" "$work/times" >> "$work/fa3_table"
done < "$work/cases"
echo
echo "| pattern | shape | parameters | old ms | new ms | new / old |"
echo "| --- | --- | --- | --- | --- | --- |"
cat "$work/table"
[ -s "$work/fa3_table" ] || exit 0
echo
echo "| shape | FA3 ms | old speed / FA3's | new speed / FA3's |"
echo "| --- | --- | --- | --- |"
cat "$work/fa3_table"
