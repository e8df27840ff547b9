/**
 * Generates the seed's kind of events with the faults the data plane must absorb (duplicates,
 * out-of-order arrival, invalid records) and computes, independently of core/, what must be served.
 */
import { randomInt } from 'node:crypto';

export const TEST_GROUP_SPEC = {
  entity: { name: 'user', keyField: 'entity_id' },
  source: { topic: 'set-per-test', eventTimeField: 'timestamp' },
  features: [
    { name: 'last_action', type: 'string' as const, from: 'action' },
    { name: 'last_amount', type: 'float64' as const, from: 'amount' },
  ],
};

/** TEST_GROUP_SPEC reading `topic`, optionally with its own dead-letter topic and batch size. */
export function testGroupSpec(topic: string, options: { deadLetterTopic?: string; batchSize?: number } = {}) {
  return {
    ...TEST_GROUP_SPEC,
    source: {
      ...TEST_GROUP_SPEC.source,
      topic,
      ...(options.deadLetterTopic ? { deadLetterTopic: options.deadLetterTopic } : {}),
    },
    ...(options.batchSize ? { consumer: { batchSize: options.batchSize } } : {}),
  };
}

export interface Expected {
  last_action: string | null;
  last_amount: number | null;
  /** Newest event time among the features, epoch ms. */
  last_updated: number;
}

export interface GeneratedStream {
  /** JSON texts in send order: shuffled, with duplicates. */
  lines: string[];
  /** JSON texts that every consumer must dead-letter. */
  invalid: Set<string>;
  entities: string[];
}

const ACTIONS = ['click', 'view', 'purchase', 'search', 'add_to_cart'];
const BASE_TIME = Date.parse('2026-01-23T09:00:00Z');
/** Ids a careless store would mangle or execute. */
export const HOSTILE_IDS = [
  "'; DROP TABLE features; --",
  'user_123',
  'Robert"); DELETE FROM x;--',
  '用户_七',
  'emoji_😀_id',
  'space id',
  '%2F..%2F',
];

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export function generateStream(options: {
  count: number;
  entities: number;
  prefix: string;
  duplicateRate?: number;
  invalidRate?: number;
}): GeneratedStream {
  const entities = [
    ...HOSTILE_IDS.map((id) => `${options.prefix}${id}`),
    ...Array.from({ length: options.entities }, (_, i) => `${options.prefix}u${i}`),
  ];
  const invalid = new Set<string>();
  const lines: string[] = [];
  let seq = 0;
  while (lines.length < options.count) {
    seq++;
    const entity = entities[randomInt(entities.length)]!;
    // Unique event times: ties exist only between exact duplicates, so order never decides.
    const timestamp = new Date(BASE_TIME + seq * 1000).toISOString();
    const event: Record<string, unknown> = { entity_id: entity, action: ACTIONS[randomInt(ACTIONS.length)], timestamp };
    if (randomInt(2) === 0) event.amount = randomInt(100_000) / 100;
    if (Math.random() < (options.invalidRate ?? 0.03)) {
      const fault = randomInt(4);
      if (fault === 0) delete event.entity_id;
      if (fault === 1) event.timestamp = 'not-a-time';
      if (fault === 2) event.amount = 'lots';
      if (fault === 3) event.entity_id = { nested: true };
      invalid.add(JSON.stringify(event));
    }
    const line = JSON.stringify(event);
    lines.push(line);
    if (Math.random() < (options.duplicateRate ?? 0.05) && lines.length < options.count) lines.push(line);
  }
  return { lines: shuffle(lines), invalid, entities };
}

/** What must be stored after consuming `lines` (any order): per feature, the value at the newest event time. */
export function expectedState(lines: Iterable<string>, invalid: Set<string>): Map<string, Expected> {
  const best = new Map<string, { action: [number, string] | undefined; amount: [number, number] | undefined }>();
  for (const line of lines) {
    if (invalid.has(line)) continue;
    const event = JSON.parse(line) as { entity_id: string; action?: string; amount?: number; timestamp: string };
    const time = Date.parse(event.timestamp);
    // An event that sets no feature makes no row.
    if (event.action === undefined && event.amount === undefined) continue;
    const entry = best.get(event.entity_id) ?? { action: undefined, amount: undefined };
    if (event.action !== undefined && (!entry.action || time > entry.action[0])) entry.action = [time, event.action];
    if (event.amount !== undefined && (!entry.amount || time > entry.amount[0])) entry.amount = [time, event.amount];
    best.set(event.entity_id, entry);
  }
  const state = new Map<string, Expected>();
  for (const [id, { action, amount }] of best) {
    state.set(id, {
      last_action: action?.[1] ?? null,
      last_amount: amount?.[1] ?? null,
      last_updated: Math.max(action?.[0] ?? -Infinity, amount?.[0] ?? -Infinity),
    });
  }
  return state;
}

/**
 * How a stored state departs from the oracle, counted: entities the oracle has that are missing or
 * hold other values (lost), and entities stored that the oracle does not have (duplicated: written
 * from records that should not count). The soak table's figures come from here, not from literals.
 */
export function divergence(
  stored: Map<string, Expected>,
  expected: Map<string, Expected>,
): { lost: number; duplicated: number } {
  let lost = 0;
  for (const [id, want] of expected) {
    const got = stored.get(id);
    if (
      !got ||
      got.last_action !== want.last_action ||
      got.last_amount !== want.last_amount ||
      got.last_updated !== want.last_updated
    )
      lost++;
  }
  let duplicated = 0;
  for (const id of stored.keys()) if (!expected.has(id)) duplicated++;
  return { lost, duplicated };
}

/** Reads a group table the way the test group's columns are laid out. */
export async function storedState(
  query: (sql: string) => Promise<{ rows: Record<string, unknown>[] }>,
  table: string,
): Promise<Map<string, Expected>> {
  const { rows } = await query(
    `SELECT entity_id, last_action, last_amount, last_action__ts, last_amount__ts FROM features."${table}"`,
  );
  const state = new Map<string, Expected>();
  for (const row of rows) {
    const times = [row.last_action__ts, row.last_amount__ts]
      .filter((t): t is Date => t instanceof Date)
      .map((t) => t.getTime());
    state.set(row.entity_id as string, {
      last_action: (row.last_action as string | null) ?? null,
      last_amount: (row.last_amount as number | null) ?? null,
      last_updated: Math.max(...times),
    });
  }
  return state;
}

/** The Kafka key a producer would use: the entity id when it is a string, else none. */
export function kafkaKeyOf(line: string): string | null {
  const id = (JSON.parse(line) as { entity_id?: unknown }).entity_id;
  return typeof id === 'string' ? id : null;
}
