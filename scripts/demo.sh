#!/usr/bin/env bash
# make demo: starts the mock vendor API (500 requests/s limit, 2% injected
# faults) on a loopback port, crawls its 24,000-document tree at the vendor's
# rate into demo-out/, then prints the vendor's own view (429s it sent).
#   scripts/demo.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
out=$(mktemp -d /tmp/fanout-demo.XXXXXX)
log="$out/mock-api.log"

"$build/mock_api/fanout-mock-api" --port=0 --rate=500 --burst=20 --error_rate=0.01 --reset_rate=0.005 \
  --truncate_rate=0.005 --seed=7 >"$log" 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null || true; wait $mock 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$log" 2>/dev/null && break
  sleep 0.05
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1)
[[ -n "$url" ]] || { echo "demo: the mock API did not start:"; cat "$log"; exit 1; }
echo "demo: mock vendor API at $url (limit 500 requests/s, 2% faults); crawling into $out/tree"

"$build/examples/crawl_monitoring_api" --base_url="$url" --rate=500 --burst=5 --max_in_flight=32 \
  --out="$out/tree" --dead_letters="$out/dead_letters.jsonl"

echo "demo: the vendor's own count:"
curl -s "$url/_stats" | head -c 600; echo
echo "demo: documents on disk: $(find "$out/tree" -name data.json | wc -l) (in $out/tree)"
