#!/usr/bin/env bash
# Runs every benchmark of a build and keeps the results beside it (those that
# need a server start their own: redis_rate_limiter_bench a redis-server).
#   bench/run.sh BUILD_DIR [extra Google Benchmark flags]
set -euo pipefail
build=${1:?usage: bench/run.sh BUILD_DIR}
shift || true
out="$build/bench-results"
mkdir -p "$out"
for bin in "$build"/bench/*_bench; do
  [[ -x "$bin" ]] || continue
  name=$(basename "$bin")
  echo "== $name"
  if [[ "$name" == crawl_bench ]]; then
    "$bin" --mock="$build/mock_api/fanout-mock-api" | tee "$out/$name.txt"
  elif [[ "$name" == adaptive_bench || "$name" == scale_out_bench ]]; then
    "$bin" | tee "$out/$name.txt"
  else
    "$bin" --benchmark_out="$out/$name.json" --benchmark_out_format=json "$@"
  fi
done
echo "results: $out/"
