#!/usr/bin/env bash
# Whether two builds generate the same code, byte for byte: for a change
# meant to keep every kernel (a refactor, a faster compile), this is the
# proof that needs no GPU. Both builds read the same pattern scripts.
#   bench/same_kernels.sh OLD_BUILD NEW_BUILD [OUTDIR]
# Compares, from `sieve compile`, the attention kernel's PTX, LLVM IR and
# config summary for every pattern (patterns/ and bench/patterns/) at four
# preset shapes on sm_90a and sm_80, three configs of dense and
# frame_window, and each generator switch; and, from module_ptx, the GPU
# table builders, permute, search and profile modules. Prints each file
# that differs and a count; exits 1 when any does.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
old=$(cd "${1:?OLD_BUILD}" && pwd)
new=$(cd "${2:?NEW_BUILD}" && pwd)
out=${3:-$(mktemp -d)}
mkdir -p "$out/old" "$out/new"
export SIEVE_PATTERNS=$src/patterns
pats=$(ls "$src"/patterns/*.lua "$src"/bench/patterns/*.lua)
shapes="wan-1.3b-480p hunyuan-720p cogvideox-1.5 wan-14b-720p"
n=0 bad=0

differ() {
  local f
  for f in "$@"; do
    if [ -e "$out/old/$f" ] || [ -e "$out/new/$f" ]; then
      cmp -s "$out/old/$f" "$out/new/$f" || { echo "differs: $f"; bad=$((bad + 1)); }
    fi
  done
}

# case TAG ENV PATTERN ARGS...: one `sieve compile` with both builds
case_() {
  local tag=$1 env=$2 side bin
  shift 2
  for side in old new; do
    [ $side = old ] && bin=$old || bin=$new
    (cd "$out/$side" &&
      { env $env "$bin/sieve" compile "$@" -o "$tag.ptx" >"$tag.sum" 2>&1; echo "rc=$?" >>"$tag.sum"; } &&
      sed -i 's/generated in [0-9.]* ms/generated in N ms/' "$tag.sum" &&
      env $env "$bin/sieve" compile "$@" --emit llvm -o "$tag.ll" >/dev/null 2>&1)
  done
  n=$((n + 1))
  differ "$tag.ptx" "$tag.sum" "$tag.ll"
}

for p in $pats; do
  b=$(basename "$p" .lua)
  for s in $shapes; do for a in sm_90a sm_80; do case_ "$b-$s-$a" "" "$p" --shape $s --arch $a; done; done
done
for b in frame_window dense; do
  for s in $shapes; do
    case_ "$b-$s-c1" "" $b --shape $s --arch sm_90a --config bm=192,bn=128,warps=16,stages=2
    case_ "$b-$s-c2" "" $b --shape $s --arch sm_90a --config bm=128,bn=192,warps=12,stages=2
    case_ "$b-$s-c3" "" $b --shape $s --arch sm_90a --config bm=128,bn=64,warps=12,stages=2,sched=2
  done
done
for e in SIEVE_SCHED=1 SIEVE_PERMUTE=0 SIEVE_MERGE_ROWS=0 SIEVE_BITS_AHEAD=0 SIEVE_PARTIAL=auto \
         SIEVE_RESCALE_UNDER_S=0 SIEVE_RESCALE_UNDER_S=1; do
  for p in $pats; do for s in hunyuan-720p cogvideox-1.5; do
    case_ "$(basename "$p" .lua)-$s-${e/=/_}" "$e" "$p" --shape $s --arch sm_90a
  done; done
done
m=0
if [ -x "$old/module_ptx" ] && [ -x "$new/module_ptx" ]; then
  mkdir -p "$out/old/mod" "$out/new/mod"
  "$old/module_ptx" "$out/old/mod" hunyuan-720p,cogvideox-1.5 $pats
  "$new/module_ptx" "$out/new/mod" hunyuan-720p,cogvideox-1.5 $pats
else
  # A build older than bench/module_ptx.c: build it there first.
  echo "no module_ptx in both builds: the other modules are not compared"
  bad=$((bad + 1))
fi
{ ls "$out/old/mod" "$out/new/mod" 2>/dev/null | grep '\.ptx$'; } | sort -u >"$out/modules"
while read -r f; do m=$((m + 1)); differ "mod/$f"; done <"$out/modules"
echo "$n compile cases, $m modules: $bad files differ (outputs in $out)"
[ $bad -eq 0 ]
