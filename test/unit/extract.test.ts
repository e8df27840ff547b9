import { compileExtractor } from '../../core/events/extract';
import { convertValue } from '../../core/events/values';
import { featureGroupSpecSchema } from '../../core/featuregroup/schema';

const spec = featureGroupSpecSchema.parse({
  entity: { name: 'user', keyField: 'user.id' },
  source: { topic: 't', eventTimeField: 'ts', filter: { field: 'kind', in: ['a', 'b'] } },
  features: [
    { name: 'action', type: 'string', from: 'action' },
    { name: 'amount', type: 'float64', from: 'detail.amount' },
    { name: 'clicks', type: 'int64', aggregate: { fn: 'count', window: '1h' } },
  ],
});
const extract = compileExtractor(spec);
const record = (value: unknown, timestamp = 1_000) => ({ value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), timestamp });

describe('compileExtractor', () => {
  it('reads the key, event time and value features by dotted path', () => {
    const result = extract(record({ user: { id: 'u1' }, kind: 'a', ts: '2026-01-23T09:16:19Z', action: 'click', detail: { amount: '9.5' } }));
    expect(result).toEqual({ kind: 'event', event: { entityId: 'u1', eventTimeMs: Date.parse('2026-01-23T09:16:19Z'), values: ['click', 9.5] } });
  });

  it('leaves features the event does not carry unset', () => {
    const result = extract(record({ user: { id: 7 }, kind: 'b', ts: 5, action: 'view' }));
    expect(result).toEqual({ kind: 'event', event: { entityId: '7', eventTimeMs: 5, values: ['view', undefined] } });
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
    ['a wrongly typed feature', { user: { id: 'u' }, kind: 'a', ts: 5, detail: { amount: 'lots' } }, /feature amount: expected float64/],
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
    expect(convertValue('timestamp', '2026-01-23T10:16:19+01:00')).toEqual({ ok: true, value: '2026-01-23T09:16:19.000Z' });
    expect(convertValue('bool', 'true')).toEqual({ ok: true, value: true });
    expect(convertValue('bool', 1).ok).toBe(false);
  });

  it('refuses text Postgres cannot store', () => {
    expect(convertValue('string', 'a\u0000').ok).toBe(false);
    expect(convertValue('json', { a: '\u0000' }).ok).toBe(false);
  });
});
