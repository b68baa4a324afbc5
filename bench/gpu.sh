#!/usr/bin/env bash
# Runs on a GPU machine over a build made elsewhere (bench/gpu_build.sh):
# the GPU checks, then the benchmarks. Logs go to $OUT (or /tmp/sieve-gpu);
# the short table comes last.
#   bench/gpu.sh [BUILD_DIR] [tests|bench|sanitize|all]
# sanitize runs the GPU suite's small shapes of every shipped pattern (the
# default kernels), the wide configs', the tile-sized tables', the
# persistent grid's and one consumer warpgroup's (groups sanitize, wsan,
# tsan, psan, w1san) under compute-sanitizer's memcheck, racecheck and
# synccheck; any report fails it.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-.gpubuild}
what=${2:-all}
out=${OUT:-/tmp/sieve-gpu}
mkdir -p "$out"
export SIEVE_SOURCE_DIR=$PWD SIEVE_CACHE_DIR=${SIEVE_CACHE_DIR:-/tmp/sieve-cache} SIEVE_LIB_DIR=$B
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
rc=0
if [ "$what" != bench ] && [ "$what" != sanitize ]; then
  "$B/gpu_tests" ${GPU_TESTS:-} 2>&1 | tee "$out/gpu_tests.log" | grep -v '^pass ' || true
  tail -1 "$out/gpu_tests.log" | grep -q ' 0 failed' || rc=1
  "$B/example_host" 2>&1 | tee "$out/example_host.log" || rc=1
fi
if [ "$what" = sanitize ] || [ "$what" = all ]; then
  cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  for tool in memcheck racecheck synccheck; do
    timeout 300 "$cs" --tool $tool --error-exitcode 9 "$B/gpu_tests" sanitize,wsan,tsan,psan,w1san >"$out/sanitize_$tool.log" 2>&1
    r=$?
    echo "compute-sanitizer $tool: rc $r, $(grep -c '^pass ' "$out/sanitize_$tool.log") cases passed;" \
      "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize_$tool.log" | tail -1)"
    [ $r -eq 0 ] || rc=1
  done
fi
if [ "$what" != tests ] && [ "$what" != sanitize ]; then
  "$B/bench_startup" 2>&1 | tee "$out/startup.md"
  python3 bench/compare.py --out "$out/compare.md" ${COMPARE_ARGS:-} 2>&1 | tee "$out/compare.log" | tail -40
fi
exit $rc
