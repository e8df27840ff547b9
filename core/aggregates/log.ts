import type { PoolClient } from 'pg';
import type { OffsetEvent } from '../events/extract';
import { isNumericAggregate, type AggregateFeature, type CompiledGroup } from '../featuregroup/compiled';
import { quoteIdent, statementName } from '../storage/identifiers';
import { int4Array, int8Array, textArray } from '../storage/binary-arrays';

/**
 * The aggregate log: one row per event that counts in any aggregate, with what it adds to each
 * (`<feature>__v`, NULL where it does not count). Kept by groups with history, for their retention:
 * a point-in-time read at T takes the head of each window (from the start of the tile holding T up
 * to T itself) from here, since the tile itself also holds events after T. Keyed by entity and
 * event time, then the record's partition and offset: a replay adds nothing, and a head is one
 * index range per entity. Cost per event: one row of about 40 bytes plus the entity id and the
 * values, and its index entry.
 */

const valueColumn = (feature: AggregateFeature): string => `${feature.name}__v`;
const valueType = (feature: AggregateFeature): string =>
  isNumericAggregate(feature) ? 'numeric' : feature.fn === 'last_n' ? 'jsonb' : 'smallint';

export function aggregateLogDdl(group: CompiledGroup, observed: ReadonlySet<string> | undefined): string[] {
  const log = group.tables.aggregateLog.sql;
  const features = group.aggregates;
  if (observed === undefined) {
    return [
      `CREATE TABLE IF NOT EXISTS ${log} (\n  entity_id text NOT NULL,\n  event_ms bigint NOT NULL,\n  kafka_partition integer NOT NULL,\n  kafka_offset bigint NOT NULL,\n` +
        features.map((f) => `  ${quoteIdent(valueColumn(f))} ${valueType(f)},\n`).join('') +
        '  PRIMARY KEY (entity_id, event_ms, kafka_partition, kafka_offset)\n)',
      `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${group.tables.aggregateLog.name.slice(0, 55)}_age`)} ON ${log} USING brin (event_ms)`,
    ];
  }
  const additions = features
    .filter((f) => !observed.has(valueColumn(f)))
    .map((f) => `ADD COLUMN IF NOT EXISTS ${quoteIdent(valueColumn(f))} ${valueType(f)}`);
  return additions.length ? [`ALTER TABLE ${log} ${additions.join(', ')}`] : [];
}

/**
 * SQL expressions of one feature's six partials (WindowSums order) over the log rows `l` of one
 * point-in-time row `w`, from `from` (the head tile's start) up to and including the row's time.
 */
export function logPartials(f: AggregateFeature, from: string, at: string): string[] {
  const v = `l.${quoteIdent(valueColumn(f))}`;
  const inHead = `FILTER (WHERE l.event_ms >= ${from} AND l.event_ms <= ${at} AND ${v} IS NOT NULL)`;
  const numeric = isNumericAggregate(f);
  return [
    `count(${v}) ${inHead}`,
    numeric ? `sum(${v}) ${inHead}` : 'NULL::numeric',
    numeric ? `min(${v}) ${inHead}` : 'NULL::numeric',
    numeric ? `max(${v}) ${inHead}` : 'NULL::numeric',
    `max(l.event_ms) ${inHead}`,
    f.fn === 'last_n' ? `jsonb_agg(jsonb_build_array(l.event_ms, l.kafka_offset, ${v})) ${inHead}` : 'NULL::jsonb',
  ];
}

/** Writes the log rows of a batch, in the batch's transaction. */
export class AggregateLogWriter {
  private readonly sql: string;
  private readonly name: string;

  private readonly features: readonly AggregateFeature[];

  constructor(group: CompiledGroup) {
    const features = group.aggregates;
    this.features = features;
    const columns = ['entity_id', 'event_ms', 'kafka_partition', 'kafka_offset', ...features.map(valueColumn)];
    const inputs = [
      '$1::text[]',
      '$2::bigint[]',
      '$3::int[]',
      '$4::bigint[]',
      ...features.map((f, k) => `$${5 + k}::text[]::${valueType(f)}[]`),
    ];
    this.sql =
      `INSERT INTO ${group.tables.aggregateLog.sql} (${columns.map(quoteIdent).join(', ')})\n` +
      `SELECT * FROM unnest(${inputs.join(', ')})\nON CONFLICT DO NOTHING`;
    this.name = statementName('agglog', this.sql);
  }

  async write(client: PoolClient, partition: number, events: readonly OffsetEvent[]): Promise<void> {
    const entities: string[] = [];
    const times: number[] = [];
    const offsets: number[] = [];
    const values: (string | null)[][] = this.features.map(() => []);
    for (const { offset, event } of events) {
      if (!this.features.some((f) => event.contributions[f.index] !== undefined)) continue;
      entities.push(event.entityId);
      times.push(event.eventTimeMs);
      offsets.push(offset);
      this.features.forEach((f, k) => values[k]!.push(event.contributions[f.index] ?? null));
    }
    if (entities.length === 0) return;
    const partitions = new Array<number>(entities.length).fill(partition);
    const params = [
      textArray(entities),
      int8Array(times),
      int4Array(partitions),
      int8Array(offsets),
      ...values.map(textArray),
    ];
    await client.query({ name: this.name, text: this.sql, values: params });
  }
}
