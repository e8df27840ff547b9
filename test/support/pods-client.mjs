// A client of the platform's Services that runs on the test node, inside its network namespace
// (`node.sh exec node test/support/pods-client.mjs ...`), reaching ingest and serving through their
// ClusterIPs and kube-proxy like any pod would. Plain JavaScript: it runs with the host's node,
// outside jest. Every loop is bounded in count and in time. Results are one JSON line on stdout;
// progress lines go to stderr.
//
//   post BASE FILE BATCH          POST the NDJSON events of FILE to BASE/v1/events, BATCH per request.
//                                 A 503 (nothing accepted) is retried, at most 50 times per batch.
//   read BASE IDS_FILE            GET BASE/features/{id} for every id of IDS_FILE (one per line), 8 at
//                                 a time; prints {id: {status, body}}.
//   load BASE PATH RPS STOP_FILE MAX_SECONDS
//                                 GET BASE+PATH at RPS requests/s (open loop) until STOP_FILE exists or
//                                 MAX_SECONDS pass; counts answers by status and errors by code.
import { existsSync, readFileSync } from 'node:fs';

const [command, base, ...args] = process.argv.slice(2);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function post(file, batchSize) {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  let accepted = 0;
  let requests = 0;
  let retries = 0;
  for (let i = 0; i < lines.length; i += batchSize) {
    const body = lines.slice(i, i + batchSize).join('\n');
    for (let attempt = 0; ; attempt++) {
      requests++;
      const res = await fetch(`${base}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body,
      });
      const answer = await res.json();
      if (res.status === 202) {
        accepted += answer.accepted;
        break;
      }
      if (res.status !== 503 || attempt >= 50)
        throw new Error(`POST /v1/events: ${res.status} ${JSON.stringify(answer)}`);
      retries++;
      await sleep(200);
    }
    process.stderr.write(`posted ${Math.min(i + batchSize, lines.length)}\n`);
  }
  return { events: lines.length, accepted, requests, retries };
}

async function read(idsFile) {
  const ids = readFileSync(idsFile, 'utf8').split('\n').filter(Boolean);
  const out = {};
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      const res = await fetch(`${base}/features/${encodeURIComponent(id)}`);
      out[id] = { status: res.status, body: await res.json() };
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return out;
}

async function load(path, rps, stopFile, maxSeconds) {
  const statuses = {};
  const errors = {};
  const latencies = [];
  const started = performance.now();
  const inFlight = new Set();
  const one = async () => {
    const t0 = performance.now();
    try {
      const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    } catch (error) {
      const code = error.cause?.code ?? error.name ?? 'error';
      errors[code] = (errors[code] ?? 0) + 1;
    }
    latencies.push(performance.now() - t0);
  };
  for (let i = 0; ; i++) {
    const due = started + (i * 1000) / rps;
    const now = performance.now();
    if (now - started > maxSeconds * 1000 || (i % rps === 0 && existsSync(stopFile))) break;
    if (due > now) await sleep(due - now);
    const p = one();
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }
  await Promise.all(inFlight);
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    requests: latencies.length,
    seconds: (performance.now() - started) / 1000,
    statuses,
    errors,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: at(1),
  };
}

const result =
  command === 'post'
    ? await post(args[0], Number(args[1]))
    : command === 'read'
      ? await read(args[0])
      : command === 'load'
        ? await load(args[0], Number(args[1]), args[2], Number(args[3]))
        : undefined;
if (result === undefined) {
  process.stderr.write(
    'usage: pods-client.mjs {post BASE FILE BATCH|read BASE IDS_FILE|load BASE PATH RPS STOP_FILE MAX_SECONDS}\n',
  );
  process.exit(2);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
