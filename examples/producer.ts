/**
 * Emits the original system's events through the ingest API:
 *   npm run produce -- --rate 1000 --count 10000 [--url http://127.0.0.1:8081] [--users 1000] [--batch 100]
 * {"entity_id": "user_123", "action": "click", "timestamp": "...", "page": "/home", "amount": 9.5}
 */
import { parseArgs } from 'node:util';

const ACTIONS = ['click', 'view', 'purchase', 'add_to_cart', 'search'] as const;
const PAGES = ['/home', '/search', '/product', '/cart', '/checkout'] as const;

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

function event(users: number): Record<string, unknown> {
  const action = pick(ACTIONS);
  return {
    entity_id: `user_${Math.floor(Math.random() * users)}`,
    event_type: action === 'purchase' ? 'purchase' : 'interaction',
    action,
    page: pick(PAGES),
    ...(action === 'purchase' ? { amount: Math.round(Math.random() * 20_000) / 100 } : {}),
    timestamp: new Date().toISOString(),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: process.env.INGEST_URL ?? 'http://127.0.0.1:8081' },
      rate: { type: 'string', default: '1000' },
      count: { type: 'string', default: '10000' },
      users: { type: 'string', default: '1000' },
      batch: { type: 'string', default: '100' },
      topic: { type: 'string', default: 'raw-events' },
    },
  });
  const [rate, count, users, batch] = [values.rate, values.count, values.users, values.batch].map(Number) as [
    number,
    number,
    number,
    number,
  ];
  if (![rate, count, users, batch].every((n) => Number.isInteger(n) && n > 0))
    throw new Error('--rate, --count, --users and --batch take positive integers');
  const endpoint = `${values.url}/v1/events?topic=${encodeURIComponent(values.topic)}`;
  const started = Date.now();
  let sent = 0;
  let lastReport = 0;
  while (sent < count) {
    const size = Math.min(batch, count - sent);
    const body = Array.from({ length: size }, () => JSON.stringify(event(users))).join('\n');
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body,
    });
    if (response.status !== 202) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
    sent += size;
    const due = started + (sent / rate) * 1000;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    if (Date.now() - lastReport > 1000 || sent === count) {
      lastReport = Date.now();
      const elapsed = (Date.now() - started) / 1000;
      process.stdout.write(`\rsent ${sent}/${count} events (${Math.round(sent / Math.max(elapsed, 0.001))}/s)   `);
    }
  }
  process.stdout.write('\n');
}

main().catch((error: unknown) => {
  console.error(`\nproducer failed: ${(error as Error).message}`);
  process.exit(1);
});
