import { compileExtractor, entityIdOf } from '../../core/events/extract';
import { convertValue, parseEventTime } from '../../core/events/values';
import { compileGroup } from '../../core/featuregroup/compiled';
import { featureGroupSpecSchema, type FeatureGroupSpecInput } from '../../core/featuregroup/schema';

const compiled = (spec: FeatureGroupSpecInput) =>
  compileGroup({ namespace: 'default', name: 'test' }, featureGroupSpecSchema.parse(spec));

const spec = featureGroupSpecSchema.parse({
  entity: { name: 'user', keyField: 'user.id' },
  source: { topic: 't', eventTimeField: 'ts', filter: { field: 'kind', in: ['a', 'b'] } },
  features: [
    { name: 'action', type: 'string', from: 'action' },
    { name: 'amount', type: 'float64', from: 'detail.amount' },
    { name: 'clicks', type: 'int64', aggregate: { fn: 'count', window: '1h' } },
  ],
});
const extract = compileExtractor(compileGroup({ namespace: 'default', name: 'test' }, spec));
const record = (value: unknown, timestamp = 1_000) => ({
  value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
  timestamp,
});

describe('compileExtractor', () => {
  it('reads the key, event time and value features by dotted path', () => {
    const result = extract(
      record({ user: { id: 'u1' }, kind: 'a', ts: '2026-01-23T09:16:19Z', action: 'click', detail: { amount: '9.5' } }),
    );
    expect(result).toEqual({
      kind: 'event',
      event: {
        entityId: 'u1',
        eventTimeMs: Date.parse('2026-01-23T09:16:19Z'),
        values: ['click', 9.5],
        contributions: ['1'],
      },
    });
  });

  it('leaves features the event does not carry unset', () => {
    const result = extract(record({ user: { id: 7 }, kind: 'b', ts: 5, action: 'view' }));
    expect(result).toEqual({
      kind: 'event',
      event: { entityId: '7', eventTimeMs: 5, values: ['view', undefined], contributions: ['1'] },
    });
  });

  it('skips events the filter excludes', () => {
    expect(extract(record({ user: { id: 'u1' }, kind: 'z', ts: 5 }))).toEqual({ kind: 'skipped' });
  });

  it.each([
    ['not JSON', '{"user":', /not JSON/],
    ['not an object', '[1,2]', /not a JSON object/],
    ['no entity key', { kind: 'a', ts: 5 }, /entity key user.id/],
    ['an object as entity key', { user: { id: { x: 1 } }, kind: 'a', ts: 5 }, /entity key/],
    ['a NUL in the entity key', { user: { id: 'a\u0000b' }, kind: 'a', ts: 5 }, /entity key/],
    ['a bad event time', { user: { id: 'u' }, kind: 'a', ts: 'yesterday' }, /event time ts/],
    [
      'a wrongly typed feature',
      { user: { id: 'u' }, kind: 'a', ts: 5, detail: { amount: 'lots' } },
      /feature amount: expected float64/,
    ],
  ])('marks %s invalid with a reason', (_label, value, reason) => {
    const result = extract(record(value));
    expect(result.kind).toBe('invalid');
    expect(result.kind === 'invalid' && result.reason).toMatch(reason);
  });

  it('marks an empty record invalid', () => {
    expect(extract({ value: null, timestamp: 0 })).toEqual({ kind: 'invalid', reason: 'empty record value' });
  });
});

describe('convertValue', () => {
  it('keeps int64 exact beyond 2^53 and refuses overflow', () => {
    expect(convertValue('int64', '9223372036854775807')).toEqual({ ok: true, value: '9223372036854775807' });
    expect(convertValue('int64', '9223372036854775808').ok).toBe(false);
    expect(convertValue('int64', 1.5).ok).toBe(false);
  });

  it('normalises timestamps and booleans', () => {
    expect(convertValue('timestamp', '2026-01-23T10:16:19+01:00')).toEqual({
      ok: true,
      value: '2026-01-23T09:16:19.000Z',
    });
    expect(convertValue('bool', 'true')).toEqual({ ok: true, value: true });
    expect(convertValue('bool', 1).ok).toBe(false);
  });

  it('refuses text Postgres cannot store', () => {
    expect(convertValue('string', 'a\u0000').ok).toBe(false);
    expect(convertValue('json', { a: '\u0000' }).ok).toBe(false);
    for (const lone of ['\ud800', 'x\udfff', '\udc00\ud800']) {
      expect(convertValue('string', lone)).toEqual({
        ok: false,
        reason: expect.stringContaining('lone UTF-16 surrogate'),
      });
      expect(convertValue('json', { [lone]: 1 }).ok).toBe(false);
      expect(convertValue('json', [lone]).ok).toBe(false);
    }
  });

  it('keeps text that only looks like a bad escape, and paired surrogates', () => {
    // A literal backslash followed by "u0000" or "ud800" is fine text; so is an emoji (a surrogate pair).
    expect(convertValue('json', { a: '\\u0000', b: '\\ud800', c: '\u{1F600}' })).toEqual({
      ok: true,
      value: '{"a":"\\\\u0000","b":"\\\\ud800","c":"\u{1F600}"}',
    });
    expect(convertValue('string', '\u{1F600}\uffff')).toEqual({ ok: true, value: '\u{1F600}\uffff' });
    expect(convertValue('json', { a: '\\\u0000' }).ok).toBe(false);
  });

  it('takes event times within year 1 to 9999, as whole milliseconds', () => {
    expect(parseEventTime(1700000000000.5)).toBe(1700000000000);
    expect(parseEventTime(-1.5)).toBe(-2);
    expect(parseEventTime(1e20)).toBeNaN();
    expect(parseEventTime(Number.MAX_VALUE)).toBeNaN();
    expect(parseEventTime('0001-01-01T00:00:00Z')).toBe(-62135596800000);
    expect(parseEventTime('0000-12-31T23:59:59.999Z')).toBeNaN();
    expect(parseEventTime('9999-12-31T23:59:59.999Z')).toBe(253402300799999);
    expect(parseEventTime(253402300800000)).toBeNaN();
    expect(convertValue('timestamp', 253402300800000).ok).toBe(false);
    expect(convertValue('timestamp', 1.9)).toEqual({ ok: true, value: '1970-01-01T00:00:00.001Z' });
  });
});

describe('entity ids', () => {
  it('are limited by UTF-8 bytes, not characters', () => {
    expect(entityIdOf('a'.repeat(1024))).toBe('a'.repeat(1024));
    expect(entityIdOf('a'.repeat(1025))).toBeUndefined();
    expect(entityIdOf('é'.repeat(512))).toBe('é'.repeat(512));
    expect(entityIdOf('é'.repeat(513))).toBeUndefined();
    expect(entityIdOf('\u{1F600}'.repeat(256))).toBeDefined();
    expect(entityIdOf('\u{1F600}'.repeat(257))).toBeUndefined();
    expect(entityIdOf('a\ud800')).toBeUndefined();
    expect(entityIdOf('')).toBeUndefined();
    expect(entityIdOf(2 ** 53)).toBeUndefined();
  });
});

describe('aggregate contributions', () => {
  const aggregates = compileExtractor(
    compiled({
      entity: { name: 'user', keyField: 'id' },
      source: { topic: 't', eventTimeField: 'ts' },
      features: [
        {
          name: 'clicks',
          type: 'int64',
          aggregate: { fn: 'count', window: '1h', where: { field: 'action', equals: 'click' } },
        },
        {
          name: 'spend',
          type: 'float64',
          aggregate: { fn: 'sum', field: 'amount', window: '1d', where: { field: 'action', in: ['buy'] } },
        },
        {
          name: 'units',
          type: 'int64',
          aggregate: { fn: 'sum', field: 'qty', window: '1d', where: { field: 'action', equals: 'buy' } },
        },
        { name: 'first_seen', type: 'timestamp', aggregate: { fn: 'min', field: 'ts', window: '7d' } },
        { name: 'recent', type: 'json', aggregate: { fn: 'last_n', field: 'page', window: '1h', limit: 3 } },
      ],
    }),
  );
  const at = '2026-01-23T09:16:19Z';

  it('counts only where the predicate holds, and carries exact decimal text', () => {
    expect(aggregates(record({ id: 'u', ts: at, action: 'click', page: '/a' }))).toMatchObject({
      kind: 'event',
      event: { contributions: ['1', undefined, undefined, String(Date.parse(at)), '"/a"'] },
    });
    expect(
      aggregates(record({ id: 'u', ts: at, action: 'buy', amount: 0.1, qty: '12', page: { p: 1 } })),
    ).toMatchObject({
      kind: 'event',
      event: { contributions: [undefined, '0.1', '12', String(Date.parse(at)), '{"p":1}'] },
    });
  });

  it('sends an event to the dead letters when an aggregated field is missing or not a number, naming both', () => {
    expect(aggregates(record({ id: 'u', ts: at, action: 'buy', qty: 1, page: '/' }))).toEqual({
      kind: 'invalid',
      reason: 'aggregate spend: field amount is missing',
    });
    expect(aggregates(record({ id: 'u', ts: at, action: 'buy', amount: 'lots', qty: 1, page: '/' }))).toEqual({
      kind: 'invalid',
      reason: 'aggregate spend: field amount: expected float64, got "lots"',
    });
    expect(aggregates(record({ id: 'u', ts: at, action: 'buy', amount: 1, qty: 1.5, page: '/' }))).toMatchObject({
      kind: 'invalid',
      reason: expect.stringContaining('aggregate units: field qty'),
    });
  });
});
