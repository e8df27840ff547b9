import type { CompiledGroup } from '../featuregroup/compiled';
import { companionTableName, FEATURES_SCHEMA, qualified, quoteIdent, quoteLiteral } from '../storage/identifiers';
import { tileColumns, tilesDdl } from './store';

/**
 * Moves a tiles table of the first layout (one row per entity, feature and tile: columns feature,
 * count, sum, min, max, last_ts, last_values) to one row per entity and tile, keeping every partial
 * of the features the spec still has. Runs inside applyStore's transaction: all or nothing.
 */
export function narrowTilesMigration(group: CompiledGroup): string[] {
  const current = group.tables.tiles.sql;
  const oldName = companionTableName(group.tables.values.name, 'tiles_v1');
  const old = qualified(FEATURES_SCHEMA, oldName);
  const statements = [
    `ALTER TABLE ${current} RENAME TO ${quoteIdent(oldName)}`,
    // The age index moves with the renamed table; its name is needed again for the new one.
    `ALTER INDEX IF EXISTS ${qualified(FEATURES_SCHEMA, `${group.tables.tiles.name.slice(0, 55)}_age`)} RENAME TO ${quoteIdent(`${oldName.slice(0, 55)}_age`)}`,
    ...tilesDdl(group, undefined),
  ];
  for (const f of group.aggregates) {
    const c = tileColumns(f);
    const pairs: [string, string][] = [
      [c.count, 'count'],
      [c.lastTs, 'last_ts'],
      ...(c.sum && c.min && c.max
        ? ([
            [c.sum, 'sum'],
            [c.min, 'min'],
            [c.max, 'max'],
          ] as [string, string][])
        : []),
      ...(c.last ? ([[c.last, 'last_values']] as [string, string][]) : []),
    ];
    statements.push(
      `INSERT INTO ${current} AS t (entity_id, tile_start, tile_ms, ${pairs.map(([to]) => quoteIdent(to)).join(', ')})\n` +
        `SELECT entity_id, tile_start, ${Math.trunc(f.tileMs)}, ${pairs.map(([, from]) => from).join(', ')} FROM ${old} WHERE feature = ${quoteLiteral(f.name)}\n` +
        `ON CONFLICT (entity_id, tile_start, tile_ms) DO UPDATE SET ${pairs.map(([to]) => `${quoteIdent(to)} = excluded.${quoteIdent(to)}`).join(', ')}`,
    );
  }
  statements.push(`DROP TABLE ${old}`);
  return statements;
}
