import { Agent, request } from 'node:http';

export interface LatencySummary {
  requests: number;
  errors: number;
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  achieved_rps: number;
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

const round = (x: number): number => Math.round(x * 100) / 100;

export interface Target {
  url: string;
  method: 'GET' | 'POST';
  /** Path (with query) for request i. */
  path: (i: number) => string;
  body?: (i: number) => string;
  contentType?: string;
}

/** Sends request i of `target` and resolves with its HTTP status (0 when it failed to connect). */
function send(target: Target, base: URL, agent: Agent, i: number): Promise<number> {
  return new Promise((resolve) => {
    const body = target.body?.(i);
    const headers =
      body !== undefined
        ? { 'content-type': target.contentType ?? 'application/json', 'content-length': Buffer.byteLength(body) }
        : {};
    const req = request(
      { host: base.hostname, port: base.port, method: target.method, path: target.path(i), agent, headers },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

const failed = (status: number): boolean => status === 0 || status >= 400;

/**
 * Open loop at a fixed rate: request i is due at start + i/rate whatever happened to the ones
 * before, and its latency is measured from when it was due, not from when it could be sent. A
 * server that stalls therefore shows its stall in every request queued behind it (coordinated
 * omission corrected), as HdrHistogram/wrk2 do.
 */
export async function openLoop(
  target: Target,
  rate: number,
  seconds: number,
  connections: number,
): Promise<LatencySummary> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const base = new URL(target.url);
  const total = Math.round(rate * seconds);
  const latencies = new Float64Array(total);
  let done = 0;
  let errors = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    let next = 0;
    const fire = (i: number): void => {
      const due = start + (i * 1000) / rate;
      void send(target, base, agent, i).then((status) => {
        if (failed(status)) errors++;
        latencies[i] = performance.now() - due;
        if (++done === total) resolve();
      });
    };
    const tick = (): void => {
      const now = performance.now();
      while (next < total && start + (next * 1000) / rate <= now) fire(next++);
      if (next < total) setTimeout(tick, 1);
    };
    tick();
  });
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  const sorted = latencies.sort();
  return {
    requests: total,
    errors,
    p50_ms: round(percentile(sorted, 0.5)),
    p99_ms: round(percentile(sorted, 0.99)),
    p999_ms: round(percentile(sorted, 0.999)),
    max_ms: round(sorted[sorted.length - 1] ?? NaN),
    achieved_rps: Math.round(total / elapsed),
  };
}

/** Closed loop: `connections` clients each send the next request as soon as the last answered. */
export async function closedLoop(
  target: Target,
  seconds: number,
  connections: number,
): Promise<{
  requests_per_second: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  statuses: Record<number, number>;
}> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const base = new URL(target.url);
  const latencies: number[] = [];
  let errors = 0;
  const statuses: Record<number, number> = {};
  let i = 0;
  const deadline = performance.now() + seconds * 1000;
  const client = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const n = i++;
      const sent = performance.now();
      const status = await send(target, base, agent, n);
      if (failed(status)) errors++;
      statuses[status] = (statuses[status] ?? 0) + 1;
      latencies.push(performance.now() - sent);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: connections }, client));
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests_per_second: Math.round(latencies.length / elapsed),
    p50_ms: round(percentile(sorted, 0.5)),
    p99_ms: round(percentile(sorted, 0.99)),
    errors,
    statuses,
  };
}
