#!/usr/bin/env bash
# make demo: starts the mock vendor API (500 requests/s limit, 2% injected
# faults) on a loopback port, writes a crawl spec for it, and crawls its
# 24,000-document tree with `fanout crawl` at the vendor's rate: live progress,
# then the summary, the vendor's own count (429s it sent) and the journal's.
#   scripts/demo.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
fanout="$build/tools/fanout/fanout"
out=$(mktemp -d /tmp/fanout-demo.XXXXXX)
log="$out/mock-api.log"

"$fanout" mock-api --port=0 --rate=500 --burst=20 --error-rate=0.01 --reset-rate=0.005 \
  --truncate-rate=0.005 --seed=7 >"$log" 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null || true; wait $mock 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$log" 2>/dev/null && break
  sleep 0.05
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1)
[[ -n "$url" ]] || { echo "demo: the mock API did not start:"; cat "$log"; exit 1; }

cat >"$out/spec.json" <<SPEC
{
  "base_url": "$url",
  "headers": {"Authorization": "Bearer \${DEMO_TOKEN}"},
  "limits": {"rate": 500, "burst": 5, "concurrency": 32, "adaptive": true},
  "levels": [
    {"name": "troops", "url": "/troops", "items": "/items", "bind": "troop",
     "pagination": {"next_pointer": "/next_cursor", "cursor_param": "cursor"}},
    {"name": "warriors", "url": "/troops/{troop}/warriors", "items": "/items", "bind": "warrior",
     "pagination": {"next_pointer": "/next_cursor", "cursor_param": "cursor"}},
    {"name": "groups", "url": "/troops/{troop}/warriors/{warrior}/groups", "items": "/items", "bind": "group",
     "pagination": {"next_pointer": "/next_cursor", "cursor_param": "cursor"}},
    {"name": "data", "url": "/troops/{troop}/warriors/{warrior}/groups/{group}/data"}
  ],
  "sinks": {"tree": "tree", "jsonl": "data.jsonl"},
  "journal": "crawl.journal",
  "dead_letters": "dead_letters.jsonl"
}
SPEC
echo "demo: mock vendor API at $url (limit 500 requests/s, 2% faults)"
echo "demo: fanout crawl $out/spec.json"
code=0
DEMO_TOKEN=demo-secret "$fanout" crawl "$out/spec.json" --summary-json "$out/summary.json" || code=$?
echo
echo "demo: the vendor's own count:"
curl -s "$url/_stats" | head -c 600; echo
echo
"$fanout" status "$out/crawl.journal" || true
echo "demo: documents on disk: $(find "$out/tree" -name data.json | wc -l) in $out/tree, $(wc -l <"$out/data.jsonl") lines in $out/data.jsonl"
# The pace over the whole crawl against the vendor's limit, and its refusals.
stats=$(curl -s "$url/_stats")
rejected=$(sed -n 's/.*"rejected":\([0-9]*\).*/\1/p' <<<"$stats")
awk -v s="$(cat "$out/summary.json")" -v rejected="${rejected:-?}" 'BEGIN {
  match(s, /"requests":[0-9]+/); n = substr(s, RSTART + 11, RLENGTH - 11)
  match(s, /"elapsed_seconds":[0-9.]+/); t = substr(s, RSTART + 18, RLENGTH - 18)
  if (t > 0) printf "demo: %d requests in %.1f s: %.1f/s, %.1f%% of the vendor'"'"'s 500/s limit; 429s from the vendor: %s\n", n, t, n / t, n / t / 5, rejected
}'
# 0: all done; 4: done with dead letters (shown above). Anything else failed.
[[ $code -eq 0 || $code -eq 4 ]]
