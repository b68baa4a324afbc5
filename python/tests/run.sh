#!/usr/bin/env bash
# The Python package's tests, as ctest runs them (CMakeLists.txt):
#   run.sh venv  VENV   make VENV and pip-install the package (scikit-build-core
#                       builds libsieve into the wheel) with pytest
#   run.sh core  VENV   the tests that need no torch, with torch import blocked
#   run.sh torch VENV   install torch and diffusers, then every test
#
# Why torch is installed in CI: PyPI's torch is the CUDA build. Measured on
# the 2-core CI machine (2026-12-03, torch 2.15.0, pip --no-cache-dir):
# 3 min 59 s and 5.3 GB of disk for the venv, out of a 90-minute run with
# ~79 GB free. That fits, so the fake op, torch.compile tracing and the
# diffusers processors are tested on every run; the core tests run first
# without torch, so the binding stays importable without it. Where torch
# cannot be installed (no network, under 10 GB free) the torch stage is
# skipped (exit 77), and says why.
set -uo pipefail
stage=$1
venv=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
py=$venv/bin/python

pytest_run() {
  "$py" -m pytest -q -p no:cacheprovider "$root/python/tests" "$@"
  rc=$?
  # pytest's 5 means it collected nothing: a broken install, not a pass.
  [ $rc -eq 5 ] && echo "run.sh: pytest collected no tests" >&2
  return $rc
}

case $stage in
venv)
  [ -x "$py" ] || python3 -m venv "$venv" || exit 1
  "$py" -m pip install -q --upgrade pip || exit 1
  "$py" -m pip install -q "$root" pytest || exit 1
  ;;
core)
  SIEVE_TEST_NO_TORCH=1 pytest_run -m "not torch and not gpu"
  ;;
torch)
  free_kb=$(df -Pk "$venv" | awk 'NR == 2 { print $4 }')
  if [ "$free_kb" -lt $((10 * 1024 * 1024)) ]; then
    echo "run.sh: skipped: torch needs ~5.3 GB and $((free_kb / 1024)) MB are free" >&2
    exit 77
  fi
  if ! "$py" -c "import torch, diffusers" 2>/dev/null; then
    "$py" -m pip install -q --no-cache-dir torch "diffusers>=0.42" || {
      echo "run.sh: skipped: torch or diffusers could not be installed" >&2
      exit 77
    }
  fi
  SIEVE_TEST_TORCH=1 pytest_run
  ;;
*)
  echo "usage: run.sh venv|core|torch VENV" >&2
  exit 2
  ;;
esac
