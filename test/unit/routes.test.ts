import { compileGroup } from '../../core/featuregroup/compiled';
import { featureGroupSpecSchema } from '../../core/featuregroup/schema';
import { topicRouting } from '../../core/events/routes';

const group = (namespace: string, name: string, topic: string, keyField: string) =>
  compileGroup(
    { namespace, name },
    featureGroupSpecSchema.parse({
      entity: { name: 'e', keyField },
      source: { topic },
      features: [{ name: 'v', type: 'string', from: 'v' }],
    }),
  );

describe('topicRouting', () => {
  const routing = topicRouting(
    [
      group('ml', 'b', 'telemetry', 'device.id'),
      group('default', 'a', 'clicks', 'user'),
      group('default', 'z', 'telemetry', 'device.id'),
      group('team', 'late', 'telemetry', 'entity_id'),
    ],
    ['raw-events', 'clicks'],
    'entity_id',
  );

  it('accepts every group topic and the allowlist, each keyed once', () => {
    const summary = [...routing.routes.values()].map((r) => [r.topic, r.keyField, r.groups]);
    expect(summary.sort()).toEqual([
      ['clicks', 'user', ['default/a']],
      ['raw-events', 'entity_id', []],
      ['telemetry', 'device.id', ['default/z', 'ml/b']],
    ]);
  });

  it('reads the key by its dotted path', () => {
    const key = routing.routes.get('telemetry')!.key;
    expect(key({ device: { id: 'd-1' }, entity_id: 'no' })).toBe('d-1');
    expect(key({ device: 'flat' })).toBeUndefined();
  });

  it('reports a group that disagrees with its topic key instead of obeying it', () => {
    expect(routing.conflicts).toHaveLength(1);
    expect(routing.conflicts[0]).toContain('team/late keys topic telemetry by entity_id');
    expect(routing.conflicts[0]).toContain('default/z keys it by device.id');
  });
});
