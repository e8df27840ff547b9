#!/usr/bin/env bash
# `make bench`: start the real servers, run each benchmark, write bench/results/<date>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/servers/up.sh >/dev/null
set -a; source .local/servers.env; set +a
out="bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).json"
{
  echo "{\"machine\": {\"cores\": $(nproc), \"node\": \"$(node --version)\", \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\"},"
  echo " \"results\": ["
  node dist/bench/consumer-throughput.js "$@"
  echo " ]}"
} | tee "$out"
echo "wrote $out" >&2
