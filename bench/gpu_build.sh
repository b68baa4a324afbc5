#!/usr/bin/env bash
# Builds what the GPU machine runs (it has no LLVM or Lua dev files): a
# Release build, whose binaries (libsieve stripped) are copied to
# .gpubuild/ to travel as a carried folder (64 MiB limit).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-gpu -j "$(nproc)" >/dev/null
rm -rf .gpubuild && mkdir .gpubuild
for f in build-gpu/*; do
  [ -f "$f" ] && [ -x "$f" ] && cp "$f" .gpubuild/
done
cp build-gpu/liblua5.4.so.0 .gpubuild/
strip --strip-unneeded .gpubuild/*
du -sh .gpubuild
