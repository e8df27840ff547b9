import { featureGroupSpecSchema } from '../../core/featuregroup/schema';
import { quoteIdent, tableNameFor } from '../../core/storage/identifiers';
import { compileGroup } from '../../core/featuregroup/compiled';
import { planStore } from '../../core/storage/layout';
import { derivedWriterPassword } from '../../core/storage/roles';
import { buildUpsertSql, reduceByEntity, upsertParams } from '../../core/storage/writer';
import { decodeBinaryArray } from '../support/pg-binary';

const spec = featureGroupSpecSchema.parse({
  entity: { name: 'user', keyField: 'entity_id' },
  source: { topic: 'raw-events' },
  features: [
    { name: 'last_action', type: 'string', from: 'action' },
    { name: 'amount', type: 'float64', from: 'amount' },
  ],
});
const layout = compileGroup({ namespace: 'ml', name: 'user-activity' }, spec);

describe('table names', () => {
  it('follows fs_<namespace>_<name>', () => {
    expect(tableNameFor({ namespace: 'ml', name: 'user-activity' })).toBe('fs_ml_user_activity');
  });

  it('stays within 63 bytes and unique for long or dotted names', () => {
    const long = tableNameFor({ namespace: 'a'.repeat(63), name: 'b'.repeat(200) });
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).not.toBe(tableNameFor({ namespace: 'a'.repeat(63), name: 'b'.repeat(199) }));
    expect(tableNameFor({ namespace: 'ml', name: 'a.b' })).not.toBe(tableNameFor({ namespace: 'ml', name: 'a-b' }));
  });

  it('refuses to quote anything outside the strict pattern', () => {
    expect(quoteIdent('fs_ml_x')).toBe('"fs_ml_x"');
    expect(() => quoteIdent('x"; drop table y; --')).toThrow(/unsafe SQL identifier/);
  });
});

describe('planStore', () => {
  it('creates the table with value, event-time and offset columns', () => {
    const plan = planStore(layout, undefined);
    expect(plan.conflicts).toEqual([]);
    expect(plan.statements[0]).toContain('CREATE TABLE IF NOT EXISTS "features"."fs_ml_user_activity"');
    expect(plan.statements[0]).toContain('"amount" double precision');
    expect(plan.statements[0]).toContain('"amount__ts" timestamptz');
  });

  it('adds only missing columns, and nothing when up to date', () => {
    const existing = new Map([
      ['entity_id', 'text'],
      ['last_action', 'text'],
      ['last_action__ts', 'timestamp with time zone'],
      ['last_action__off', 'bigint'],
    ]);
    expect(planStore(layout, existing).statements).toEqual([
      'ALTER TABLE "features"."fs_ml_user_activity" ADD COLUMN IF NOT EXISTS "amount" double precision, ADD COLUMN IF NOT EXISTS "amount__ts" timestamptz, ADD COLUMN IF NOT EXISTS "amount__off" bigint',
    ]);
    const complete = new Map([
      ...existing,
      ['amount', 'double precision'],
      ['amount__ts', 'timestamp with time zone'],
      ['amount__off', 'bigint'],
    ]);
    expect(planStore(layout, complete)).toEqual({ statements: [], conflicts: [] });
  });

  it('refuses a type change and plans nothing', () => {
    const plan = planStore(
      layout,
      new Map([
        ['entity_id', 'text'],
        ['amount', 'text'],
      ]),
    );
    expect(plan.statements).toEqual([]);
    expect(plan.conflicts[0]).toMatch(/feature amount is stored as text and cannot change to float64/);
  });
});

describe('reduceByEntity', () => {
  const ev = (offset: number, entityId: string, eventTimeMs: number, values: (string | number | undefined)[]) => ({
    offset,
    event: { entityId, eventTimeMs, values, contributions: [] },
  });

  it('keeps per feature the newest event time, later offset on ties, whatever the order', () => {
    const rows = reduceByEntity(
      [
        ev(1, 'u', 200, ['new', undefined]),
        ev(2, 'u', 100, ['old', 5]),
        ev(3, 'u', 200, ['tie-later', undefined]),
        ev(4, 'v', 1, ['x', 1]),
      ],
      2,
    );
    expect(rows.get('u')).toEqual({ times: [200, 100], offsets: [3, 2], values: ['tie-later', 5] });
    const params = upsertParams(layout, rows).map(decodeBinaryArray);
    expect(params[0]).toEqual(['u', 'v']);
    expect(params[1]).toEqual(['tie-later', 'x']);
    expect(params[4]).toEqual(['5', '1']);
    expect(params[6]).toEqual([2, 4]);
  });

  it('binds every value: the SQL holds no data', () => {
    const sql = buildUpsertSql(layout);
    expect(sql).toContain('unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]::double precision[]');
    expect(sql).toContain(
      "'epoch'::timestamptz + (u.c2 / 1000) * interval '1 second' + (u.c2 % 1000) * interval '1 millisecond'",
    );
    expect(sql).toContain('(excluded."amount__ts", excluded."amount__off") > (t."amount__ts", t."amount__off")');
  });
});

describe('derivedWriterPassword', () => {
  const group = { namespace: 'default', name: 'user-activity', uid: '3f1c9a2e-0000-4000-8000-000000000001' };
  it('is 48 hex characters, the same for the same group and key', () => {
    const password = derivedWriterPassword('postgres://op:secret@db/fs', group);
    expect(password).toMatch(/^[0-9a-f]{48}$/);
    expect(derivedWriterPassword('postgres://op:secret@db/fs', { ...group })).toBe(password);
  });
  it('changes with the group (a recreated one has a new uid) and with the key (rotation)', () => {
    const password = derivedWriterPassword('k1', group);
    expect(derivedWriterPassword('k1', { ...group, uid: '3f1c9a2e-0000-4000-8000-000000000002' })).not.toBe(password);
    expect(derivedWriterPassword('k1', { ...group, name: 'user-activity2' })).not.toBe(password);
    expect(derivedWriterPassword('k2', group)).not.toBe(password);
  });
});
