#!/usr/bin/env bash
# Installs, with apt-get, the Debian 12 packages fanout needs to build, test and
# benchmark, and only those that are missing: when everything is present it
# does nothing (no network, no root needed).
#
#   scripts/install-deps.sh            # install what is missing
#   scripts/install-deps.sh --check    # list what is missing, exit 1 if any
set -euo pipefail

packages=(
  build-essential cmake make pkg-config curl
  openssl nghttp2-server # a TLS + HTTP/2 server for the transport tests
  libabsl-dev            # Status, Time, containers, flags, random
  libcurl4-openssl-dev   # the HTTP transport (multi socket interface)
  libsimdjson-dev        # JSON extraction (On-Demand)
  libboost-dev           # Asio / Beast (header-only parts)
  libgtest-dev libgmock-dev
  libbenchmark-dev
  libsqlite3-dev         # the durable journal
  nginx-light            # a real nginx limit_req upstream for the adaptive rate tests
  libhiredis-dev         # the Redis client behind the shared rate limit (scale-out)
  redis-server           # a real Redis the scale-out tests and benchmarks start on loopback
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  printf 'missing: %s\n' "${missing[*]}"
  exit 1
fi

echo "fanout: installing missing packages: ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "fanout: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
