/**
 * `GET /features/{id}` over many groups at once: 14 groups (two namespaces, feature names shared
 * across groups, every feature type, four groups of 200 features, so the groups' columns exceed one
 * select list), values written straight into the groups' tables, and every entity's response
 * compared with an oracle computed here from the rows written: the newest value under the plain
 * name, every group's value under its reference where more than one group has one, the newest
 * event time as last_updated, 404 where no group holds the entity. Serving's SELECTs on feature
 * tables are counted in pg_stat_statements: the narrow groups take one statement per request, the
 * wide ones one more. POST /get-online-features with features of four groups for a batch of ids
 * (unknown and repeated ones among them) takes one statement and matches the oracle too.
 */
import type { Pool } from 'pg';
import type { FeatureGroupSpecInput } from '../../core/featuregroup/schema';
import { dropRegisteredGroups, registerGroup, testPool, uniqueName } from '../support/platform';
import { HOSTILE_IDS } from '../support/oracle';
import { eventually, serverEnv, startService, type RunningService } from '../support/services';
import { random } from '../support/random';

type Type = 'string' | 'int64' | 'float64' | 'bool' | 'timestamp' | 'json';
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const TYPES: Type[] = ['string', 'int64', 'float64', 'bool', 'timestamp', 'json'];

const rnd = random(16);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
const int = (n: number) => Math.floor(rnd() * n);

/** Text with every escape JSON has, astral characters and lone-free surrogates; never U+0000 (text refuses it). */
function text(): string {
  const parts = ['"', '\\', '\n', '\t', '\u0001', '\u001f', '\u2028', '😀', '用', "'", '/', 'a', ' ', '\u007f'];
  return Array.from({ length: int(12) }, () => pick(parts)).join('');
}
function json(depth = 0): Json {
  switch (int(depth > 2 ? 4 : 6)) {
    case 0:
      return null;
    case 1:
      return rnd() < 0.5;
    case 2:
      return int(2_000_001) - 1_000_000 + (rnd() < 0.5 ? 0 : 0.25);
    case 3:
      return text();
    case 4:
      return Array.from({ length: int(4) }, () => json(depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: int(4) }, (_, i) => [`${text()}${i}`, json(depth + 1)]));
  }
}
/** ISO text as the API serves a time: UTC, milliseconds only when not zero. */
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
const FROM = Date.parse('0001-01-01T00:00:00Z');
const TO = Date.parse('9999-12-31T23:59:59.999Z');

/** A stored value (what is bound into the column) and what the API must serve for it. */
function valueOf(type: Type): { stored: unknown; served: Json } {
  switch (type) {
    case 'string': {
      const s = text();
      return { stored: s, served: s };
    }
    case 'int64': {
      const edges = [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 53n - 1n];
      const big = BigInt(int(2 ** 31)) * BigInt(int(2 ** 31)) * BigInt(pick([1, -1]));
      const n = pick([BigInt(int(2 ** 31) - 2 ** 30), big, pick(edges)]);
      const safe = n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= BigInt(Number.MIN_SAFE_INTEGER);
      return { stored: n.toString(), served: safe ? Number(n) : n.toString() };
    }
    case 'float64': {
      const f = pick([(rnd() - 0.5) * 1e300, rnd() * 1e-300, Math.round(rnd() * 1e6) / 1e3, 0.1 + 0.2]);
      return { stored: f, served: f };
    }
    case 'bool': {
      const b = rnd() < 0.5;
      return { stored: b, served: b };
    }
    case 'timestamp': {
      const ms = FROM + int(TO - FROM);
      return { stored: new Date(ms).toISOString(), served: iso(ms) };
    }
    case 'json': {
      const j = json();
      return { stored: JSON.stringify(j), served: j };
    }
  }
}

interface Group {
  namespace: string;
  name: string;
  /** What a response calls the group's features: `name:` in default, `namespace/name:` elsewhere. */
  ref: string;
  features: { name: string; type: Type }[];
  table: string;
}

const SHARED = ['score', 'last_action', 'country', 'seen_at', 'tags', 'count'];

describe('GET /features/{id} across many groups', () => {
  const prefix = uniqueName('many');
  const ROW_ONLY = `${prefix}-only-a-row`;
  const groups: Group[] = [];
  /** entity → served name → candidates (group ref, value, event ms). */
  const written = new Map<string, Map<string, { ref: string; served: Json; ms: number }[]>>();
  /** entity → `group ref:feature` → what was written. */
  const byRef = new Map<string, Map<string, { served: Json; ms: number }>>();
  /** Entities that have a row in some group (even with every feature unset). */
  const rows = new Set<string>();
  const times = new Set<number>();
  let pool: Pool;
  let serving: RunningService;

  beforeAll(async () => {
    pool = testPool();
    await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const narrow = Array.from({ length: 10 }, (_, g) => ({
      namespace: g === 9 ? 'ml' : 'default',
      name: g === 9 ? `${prefix}-0` : `${prefix}-${g}`,
      features: [...new Set(Array.from({ length: 1 + int(5) }, () => pick(SHARED)))].map((name) => ({
        name,
        type: pick(TYPES),
      })),
    }));
    const wide = Array.from({ length: 4 }, (_, g) => ({
      namespace: 'default',
      name: `${prefix}-wide-${g}`,
      features: Array.from({ length: 200 }, (_, f) => ({
        name: f < 2 ? pick(SHARED) : `w${g}_${f}`,
        type: pick(TYPES),
      })),
    }));
    for (const g of [...narrow, ...wide]) {
      // A name twice in one group is refused by the schema: keep the first.
      const features = g.features.filter((f, i) => g.features.findIndex((o) => o.name === f.name) === i);
      const spec: FeatureGroupSpecInput = {
        entity: { name: 'user', keyField: 'entity_id' },
        source: { topic: `${g.name}-events`, eventTimeField: 'timestamp' },
        features: features.map((f) => ({ name: f.name, type: f.type, from: f.name })),
      };
      const table = await registerGroup(pool, { namespace: g.namespace, name: g.name }, spec);
      groups.push({ ...g, features, table, ref: g.namespace === 'default' ? g.name : `${g.namespace}/${g.name}` });
    }
    // Ids of this run only: groups other suites or `make up` left on these servers hold none of them.
    const entities = [
      ...HOSTILE_IDS.map((id) => `${prefix}${id}`),
      ...Array.from({ length: 150 }, (_, i) => `${prefix}u${i}_${text().replace(/\//g, '')}`),
    ];
    for (const group of groups) {
      const holders = entities.filter(() => rnd() < 0.6);
      for (const entity of holders) {
        const columns = ['entity_id'];
        const values: unknown[] = [entity];
        for (const f of group.features) {
          if (rnd() < 0.3) continue; // never set: the columns stay NULL
          let ms: number;
          do ms = FROM + int(TO - FROM);
          while (times.has(ms)); // distinct event times: the newest is never a tie
          times.add(ms);
          const { stored, served } = valueOf(f.type);
          columns.push(f.name, `${f.name}__ts`, `${f.name}__off`);
          values.push(stored, new Date(ms).toISOString(), int(1000));
          const names = written.get(entity) ?? new Map<string, { ref: string; served: Json; ms: number }[]>();
          names.set(f.name, [...(names.get(f.name) ?? []), { ref: `${group.ref}:${f.name}`, served, ms }]);
          written.set(entity, names);
          const refs = byRef.get(entity) ?? new Map<string, { served: Json; ms: number }>();
          byRef.set(entity, refs.set(`${group.ref}:${f.name}`, { served, ms }));
        }
        rows.add(entity);
        await pool.query(
          `INSERT INTO features."${group.table}" (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${values.map((_, i) => `$${i + 1}`).join(', ')})`,
          values,
        );
      }
    }
    // A row whose features were never set: the entity is known, with nothing to serve.
    await pool.query(`INSERT INTO features."${groups[0]!.table}" (entity_id) VALUES ($1)`, [ROW_ONLY]);
    rows.add(ROW_ONLY);
    serving = await startService('serving', { ...serverEnv(), REGISTRY_REFRESH_MS: '200' }, `${prefix}-serving`);
    await serving.waitReady();
    await eventually(async () => {
      const listed = (await (await fetch(`${serving.url}/v1/feature-groups`)).json()) as { groups: { name: string }[] };
      return listed.groups.filter((g) => g.name.startsWith(prefix)).length === groups.length ? true : undefined;
    }, 'serving to list every group');
  });

  afterAll(async () => {
    await serving?.stop();
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  /** SELECTs on these groups' tables Postgres has run (pg_stat_statements): serving's reads. */
  const tableReads = async () =>
    Number(
      (
        await pool.query<{ n: string | null }>(
          `SELECT sum(calls) AS n FROM pg_stat_statements WHERE query ILIKE 'SELECT%' AND query LIKE ANY($1)`,
          [groups.map((g) => `%"${g.table}"%`)],
        )
      ).rows[0]!.n ?? 0,
    );

  const expected = (entity: string) => {
    const features: Record<string, Json> = {};
    let newest = -Infinity;
    for (const [name, list] of written.get(entity) ?? []) {
      const best = [...list].sort((a, b) => b.ms - a.ms)[0]!;
      features[name] = best.served;
      newest = Math.max(newest, best.ms);
      if (list.length > 1) for (const c of list) features[c.ref] = c.served;
    }
    return { entity_id: entity, features, last_updated: iso(Number.isFinite(newest) ? newest : 0) };
  };

  it('serves every entity as the oracle of the rows written says, in one statement per request (and one per 1,200 columns)', async () => {
    const entities = [...rows];
    expect(entities.length).toBeGreaterThan(100);
    expect([...written.values()].some((names) => [...names.values()].some((l) => l.length > 2))).toBe(true);
    // Warm: the first requests prepare the statements (pg_stat_statements counts those too).
    for (const entity of entities.slice(0, 3)) await fetch(`${serving.url}/features/${encodeURIComponent(entity)}`);
    const before = await tableReads();
    for (const entity of entities) {
      const response = await fetch(`${serving.url}/features/${encodeURIComponent(entity)}`);
      expect({ entity, status: response.status }).toEqual({ entity, status: 200 });
      expect(await response.json()).toEqual(expected(entity));
    }
    const statements = (await tableReads()) - before;
    // 14 groups, 1,604 columns of wide groups: at most two wide groups (401 columns each) fit one
    // select list of 1,200 with the narrow ones, so every request takes exactly two statements.
    expect(statements).toBe(2 * entities.length);
  });

  it('answers 404 with the original body for an entity no group holds, and for one only a row without values holds', async () => {
    const nobody = `nobody_${prefix}`;
    const response = await fetch(`${serving.url}/features/${nobody}`);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ detail: `No features found for entity_id=${nobody}` });
    const found = await fetch(`${serving.url}/features/${ROW_ONLY}`);
    expect(found.status).toBe(200);
    expect(await found.json()).toEqual({ entity_id: ROW_ONLY, features: {}, last_updated: iso(0) });
  });

  it('POST /get-online-features: features of several groups for a batch of ids, in one statement', async () => {
    const chosen = [groups[0]!, groups[3]!, groups[9]!, groups[12]!];
    const features = chosen.flatMap((g) => g.features.slice(0, 3).map((f) => ({ g, f: f.name })));
    const ids = [...[...rows].slice(0, 37), 'nobody-1', [...rows][0]!, 'nobody-2'];
    const body = JSON.stringify({
      features: features.map(({ g, f }) => `${g.ref}:${f}`),
      entities: { user: ids },
      full_feature_names: true,
    });
    const ask = () =>
      fetch(`${serving.url}/get-online-features`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
    await ask(); // prepares the statement
    const before = await tableReads();
    const response = await ask();
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      metadata: { feature_names: ['user', ...features.map(({ g, f }) => `${g.ref}__${f}`)] },
      results: [
        { values: ids, statuses: ids.map(() => 'PRESENT'), event_timestamps: ids.map(() => '1970-01-01T00:00:00Z') },
        ...features.map(({ g, f }) => {
          const cells = ids.map((id) => byRef.get(id)?.get(`${g.ref}:${f}`));
          return {
            values: cells.map((c) => (c ? c.served : null)),
            statuses: cells.map((c) => (c ? 'PRESENT' : 'NOT_FOUND')),
            event_timestamps: cells.map((c) => (c ? iso(c.ms) : '1970-01-01T00:00:00Z')),
          };
        }),
      ],
    });
    expect((await tableReads()) - before).toBe(1);
    // One id (twice) takes the single-entity statement: the same answer for it.
    const one = [ids[0]!, ids[0]!];
    const single = await fetch(`${serving.url}/get-online-features`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ features: features.map(({ g, f }) => `${g.ref}:${f}`), entities: { user: one } }),
    });
    const answer = (await single.json()) as { results: { values: unknown[]; event_timestamps: string[] }[] };
    expect(answer.results.slice(1).map((r) => [r.values, r.event_timestamps])).toEqual(
      features.map(({ g, f }) => {
        const c = byRef.get(one[0]!)?.get(`${g.ref}:${f}`);
        return [one.map(() => (c ? c.served : null)), one.map(() => (c ? iso(c.ms) : '1970-01-01T00:00:00Z'))];
      }),
    );
  });
});
