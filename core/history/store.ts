import type { PoolClient } from 'pg';
import type { OffsetEvent } from '../events/extract';
import type { CompiledGroup } from '../featuregroup/compiled';
import { quoteIdent, statementName } from '../storage/identifiers';
import { int4Array, int8Array, textArray } from '../storage/binary-arrays';

/**
 * Append-only history of a group's value features, for point-in-time reads: one row per event and
 * feature it carries. Written in the transaction that stores the batch's offsets, and keyed by the
 * record's partition and offset, so a replay adds nothing. The key leads with entity and feature,
 * then event time: an as-of lookup is one index descent.
 */
export function historyDdl(group: CompiledGroup): string[] {
  const history = group.tables.history.sql;
  return [
    `CREATE TABLE IF NOT EXISTS ${history} (\n` +
      '  entity_id text NOT NULL,\n  feature text NOT NULL,\n  event_ms bigint NOT NULL,\n' +
      '  kafka_partition integer NOT NULL,\n  kafka_offset bigint NOT NULL,\n  value text NOT NULL,\n' +
      '  PRIMARY KEY (entity_id, feature, event_ms, kafka_partition, kafka_offset)\n)',
    `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${group.tables.history.name.slice(0, 55)}_age`)} ON ${history} (event_ms)`,
  ];
}

export class HistoryWriter {
  private readonly sql: string;
  private readonly name: string;

  readonly active: boolean;

  constructor(private readonly group: CompiledGroup) {
    this.active = group.history.enabled && group.values.length > 0;
    this.sql =
      `INSERT INTO ${group.tables.history.sql} (entity_id, feature, event_ms, kafka_partition, kafka_offset, value)\n` +
      `SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::bigint[], $6::text[])\n` +
      `ON CONFLICT DO NOTHING`;
    this.name = statementName('hist', this.sql);
  }

  async write(client: PoolClient, partition: number, events: readonly OffsetEvent[]): Promise<void> {
    const entities: string[] = [];
    const features: string[] = [];
    const times: number[] = [];
    const offsets: number[] = [];
    const values: string[] = [];
    for (const { offset, event } of events) {
      this.group.values.forEach((feature, i) => {
        const value = event.values[i];
        if (value === undefined) return;
        entities.push(event.entityId);
        features.push(feature.name);
        times.push(event.eventTimeMs);
        offsets.push(offset);
        values.push(String(value));
      });
    }
    if (entities.length === 0) return;
    const partitions = new Array<number>(entities.length).fill(partition);
    const params = [
      textArray(entities),
      textArray(features),
      int8Array(times),
      int4Array(partitions),
      int8Array(offsets),
      textArray(values),
    ];
    await client.query({ name: this.name, text: this.sql, values: params });
  }
}
