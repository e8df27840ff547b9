#!/usr/bin/env bash
# `make soak`: the fault and hostile-input suites at length (FUZZ_RUNS inputs per property,
# LOAD_SECONDS of overload, FAULT_EVENTS through the consumer-kill test), then
# the table: fault, events sent, lost, duplicated, recovered-in-seconds; inputs tried, 5xx, crashes.
# Exits non-zero if a test failed, a promised zero is not zero, or a fault has no row.
set -uo pipefail
cd "$(dirname "$0")/.."
report="$PWD/.local/soak.jsonl"
mkdir -p .local && rm -f "$report"
SOAK_REPORT="$report" FUZZ_RUNS="${FUZZ_RUNS:-20000}" LOAD_SECONDS="${LOAD_SECONDS:-60}" FAULT_EVENTS="${FAULT_EVENTS:-100000}" npx jest --selectProjects integration --runInBand --forceExit \
  test/integration/faults.test.ts test/integration/hostile-input.test.ts \
  test/integration/exactly-once.test.ts test/integration/postgres-outage.test.ts test/integration/operator.test.ts \
  test/integration/poison-records.test.ts test/integration/scale-out.test.ts
tests=$?
node test/support/print-soak.js "$report" "consumer killed" "Postgres stopped" "Postgres crashed" "Postgres paused" "Kafka broker" "dead-letter topic" "kube-apiserver restarted" "leading operator killed" "ingest:" "serving:" "consumer:" "ingest overloaded" "serving overloaded" "3 consumer replicas" "consumer: record values"
table=$?
exit $(( tests || table ))
