#!/usr/bin/env bash
# `make bench`: start the real servers, run each benchmark, write bench/results/<date>.json and
# bench/REPORT.md (targets met or not, ratios to the ceilings measured in the same run).
# Each benchmark prints one JSON line of figures; they are collected into one results file.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/servers/up.sh >/dev/null
set -a; source .local/servers.env; set +a
stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
out="bench/results/$stamp.json"
# V8 CPU profiles of the consumer and serving under load (large; kept out of git), summarised below.
profiles=".local/bench-profiles/$stamp"
mkdir -p "$profiles"/{consumer-values,consumer-aggregates,serving}
results=()
# Keeps the lines that are figures ({"benchmark": ...}); anything else a benchmark printed (a log
# line) goes to stderr instead of becoming a row of the report.
figures() {
  local line
  while IFS= read -r line; do
    if [[ "$line" =~ ^\{\ *\"benchmark\" ]]; then echo "$line"; else echo "bench: not a figure, skipped: ${line:0:200}" >&2; fi
  done
}
echo "bench: consumer throughput (Kafka -> Postgres, one consumer)" >&2
results+=("$(BENCH_CPU_PROF_DIR="$profiles/consumer-values" node dist/bench/consumer-throughput.js | figures)")
echo "bench: consumer throughput with 4 value features and 4 window aggregates" >&2
results+=("$(BENCH_CPU_PROF_DIR="$profiles/consumer-aggregates" node dist/bench/consumer-throughput.js --aggregates | figures)")
echo "bench: per-event extraction and validation (in process, no I/O)" >&2
results+=("$(node dist/bench/extract.js | figures)")
echo "bench: window aggregates read for 100 entities (POST /get-online-features, 200 rps open loop and closed loop)" >&2
results+=("$(node dist/bench/aggregate-read.js | figures)")
echo "bench: point-in-time retrieval of 100,000 rows (POST /v1/historical-features)" >&2
results+=("$(node dist/bench/historical.js --rows 100000 | figures)")
echo "bench: 200 FeatureGroups applied at once until all Ready (operator)" >&2
results+=("$(node dist/bench/operator-ready.js --groups 200 | figures)")
echo "bench: ceilings (pgbench -S, bulk upsert, raw Kafka consume), HTTP ingest, freshness" >&2
platform="$(node dist/bench/platform.js --only ceilings,ingest,freshness | figures)"
while IFS= read -r line; do results+=("$line"); done <<<"$platform"
echo "bench: serving with 10 groups beside bare node:http, bare Express and Feast (about 15 min, a 5-minute soak among them)" >&2
# Each server measured (ours, the bare prototypes, Feast) runs on core 0 and the load generator on
# core 1, so every peer gets the same CPU share; Postgres is not pinned. One core: nothing is pinned.
if (( $(nproc) >= 2 )); then pin=(taskset -c 1); export BENCH_SERVER_CPUS=0; else pin=(); fi
platform="$(BENCH_CPU_PROF_DIR="$profiles/serving" "${pin[@]}" node dist/bench/platform.js --only serving | figures)"
unset BENCH_SERVER_CPUS
while IFS= read -r line; do results+=("$line"); done <<<"$platform"
for component in consumer-values consumer-aggregates serving; do
  for file in "$profiles/$component"/*.cpuprofile; do
    [ -e "$file" ] || { echo "bench: no CPU profile was written for $component" >&2; exit 1; }
    results+=("{\"benchmark\": \"cpu_profile\", \"component\": \"$component\", \"file\": \"$file\", \"summary\": $(node dist/bench/profile.js "$file")}")
  done
done
{
  echo "{\"machine\": {\"cores\": $(nproc), \"node\": \"$(node --version)\", \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\"},"
  echo " \"results\": ["
  (IFS=$'\n'; echo "${results[*]}") | sed '$!s/$/,/'
  echo " ]}"
} | tee "$out"
node dist/bench/report.js "$out" >bench/REPORT.md
echo "wrote $out and bench/REPORT.md" >&2
