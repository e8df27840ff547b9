import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFeatureGroups } from '../../core/featuregroup/manifest';
import { featureGroupSpecSchema, parseGroupId, type FeatureGroupSpecInput } from '../../core/featuregroup/schema';
import { parseDuration } from '../../core/featuregroup/duration';

const base: FeatureGroupSpecInput = {
  entity: { name: 'user', keyField: 'entity_id' },
  source: { topic: 'raw-events' },
  features: [{ name: 'last_action', type: 'string', from: 'action' }],
};

function issues(spec: unknown): string[] {
  const result = featureGroupSpecSchema.safeParse(spec);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('FeatureGroup spec', () => {
  it('accepts the design example and fills defaults', () => {
    const spec = featureGroupSpecSchema.parse({
      ...base,
      source: {
        topic: 'raw-events',
        eventTimeField: 'timestamp',
        filter: { field: 'event_type', in: ['click', 'view'] },
      },
      features: [
        { name: 'last_action', type: 'string', from: 'action' },
        {
          name: 'clicks_1h',
          type: 'int64',
          aggregate: { fn: 'count', window: '1h', where: { field: 'action', equals: 'click' } },
        },
        { name: 'spend_7d', type: 'float64', aggregate: { fn: 'sum', field: 'amount', window: '7d' } },
      ],
      ttl: '24h',
      history: { enabled: true, retention: '30d' },
    });
    expect(spec.deletionPolicy).toBe('Retain');
    expect(spec.consumer).toEqual({ replicas: 1, batchSize: 5000, resources: {} });
  });

  it.each([
    [
      'duplicate feature names',
      { ...base, features: [base.features[0], base.features[0]] },
      'features.1.name: duplicate feature last_action',
    ],
    [
      'both from and aggregate',
      { ...base, features: [{ name: 'x', type: 'int64', from: 'a', aggregate: { fn: 'count', window: '1h' } }] },
      'features.0: set exactly one of from or aggregate',
    ],
    [
      'a bad window',
      { ...base, features: [{ name: 'x', type: 'int64', aggregate: { fn: 'count', window: '1 hour' } }] },
      'features.0.aggregate.window',
    ],
    [
      'sum without a field',
      { ...base, features: [{ name: 'x', type: 'float64', aggregate: { fn: 'sum', window: '1h' } }] },
      'aggregate sum needs a field',
    ],
    [
      'avg typed int64',
      { ...base, features: [{ name: 'x', type: 'int64', aggregate: { fn: 'avg', field: 'a', window: '1h' } }] },
      'aggregate avg yields float64',
    ],
    [
      'an SQL-looking feature name',
      { ...base, features: [{ name: 'x"; drop table', type: 'string', from: 'a' }] },
      'features.0.name',
    ],
    ['a reserved suffix', { ...base, features: [{ name: 'x__ts', type: 'string', from: 'a' }] }, 'features.0.name'],
    ['the entity column', { ...base, features: [{ name: 'entity_id', type: 'string', from: 'a' }] }, 'is reserved'],
    ['an unknown field', { ...base, extra: true }, 'Unrecognized key'],
  ])('refuses %s', (_label, spec, expected) => {
    expect(issues(spec).join('\n')).toContain(expected);
  });

  it('parses durations', () => {
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(() => parseDuration('0s')).toThrow(/invalid duration/);
  });

  it('parses group ids, defaulting the namespace', () => {
    expect(parseGroupId('ml/user-activity')).toEqual({ namespace: 'ml', name: 'user-activity' });
    expect(parseGroupId('user-activity')).toEqual({ namespace: 'default', name: 'user-activity' });
    expect(() => parseGroupId('a/b/c')).toThrow(/invalid feature group id/);
    expect(() => parseGroupId('Bad/Name')).toThrow(/invalid feature group id/);
  });

  it('reads the shipped examples', () => {
    const text = readFileSync(join(__dirname, '../../examples/user-activity.yaml'), 'utf8');
    const [group] = parseFeatureGroups(text, 'user-activity.yaml');
    expect(group?.metadata).toMatchObject({ name: 'user-activity', namespace: 'default' });
    expect(group?.spec.features.map((f) => f.name)).toContain('last_action');
  });
});
