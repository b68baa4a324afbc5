#!/usr/bin/env bash
# On a GPU machine: the Python package's GPU tests and the per-call
# overhead, over a libsieve built elsewhere (bench/gpu_build.sh) and the
# package's sources, with diffusers (and what the machine lacks) as wheels.
#   bench/gpu_py.sh LIB_DIR PY_DIR [WHEEL_DIR]
# Logs go to $OUT (or /tmp/sieve-gpu); the short table comes last.
set -uo pipefail
lib=$(cd "$1" && pwd)
pydir=$(cd "$2" && pwd)
whl=${3:-}
out=${OUT:-/tmp/sieve-gpu}
mkdir -p "$out"
if [ -n "$whl" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$whl"/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$pydir${PYTHONPATH:+:$PYTHONPATH} SIEVE_LIB_DIR=$lib SIEVE_PATTERNS=${SIEVE_PATTERNS:-$pydir/../patterns}
export SIEVE_CACHE_DIR=${SIEVE_CACHE_DIR:-/tmp/sieve-cache} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)"
python3 "$(dirname "$0")/py_overhead.py" 2>&1 | tee "$out/overhead.md"
# Cheapest first, so a time limit cuts the inductor compile, not the rest.
t=$pydir/tests/gpu
timeout "${PYTEST_LIMIT:-400}" python3 -m pytest -q -rA -s -p no:cacheprovider "$t/test_gpu_dense.py" \
  "$t/test_gpu_loops.py" "$t/test_gpu_compile_graph.py" 2>&1 | tee "$out/pytest_gpu.log" | grep -v '^$' | tail -60
rc=${PIPESTATUS[0]}
echo "== summary"
grep -E "^(PASSED|FAILED|ERROR)" "$out/pytest_gpu.log" | sed 's/ - .*//'
tail -1 "$out/pytest_gpu.log"
exit $rc
