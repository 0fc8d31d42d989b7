#!/usr/bin/env bash
# Runs every benchmark binary of a build and keeps the JSON results beside it.
#   bench/run.sh BUILD_DIR [extra benchmark flags]
set -euo pipefail
build=${1:?usage: bench/run.sh BUILD_DIR}
shift || true
out="$build/bench-results"
mkdir -p "$out"
for bin in "$build"/bench/*_bench; do
  [[ -x "$bin" ]] || continue
  name=$(basename "$bin")
  echo "== $name"
  "$bin" --benchmark_out="$out/$name.json" --benchmark_out_format=json "$@"
done
echo "results: $out/"
