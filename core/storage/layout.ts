import type { FeatureGroupSpec, FeatureType, GroupRef } from '../featuregroup/schema';
import { valueFeatures } from '../events/extract';
import { FEATURES_SCHEMA, qualified, quoteIdent, tableNameFor } from './identifiers';

/** Postgres column type per feature type, as written in DDL and as information_schema reports it. */
export const COLUMN_TYPES: Record<FeatureType, { ddl: string; reported: string }> = {
  string: { ddl: 'text', reported: 'text' },
  int64: { ddl: 'bigint', reported: 'bigint' },
  float64: { ddl: 'double precision', reported: 'double precision' },
  bool: { ddl: 'boolean', reported: 'boolean' },
  timestamp: { ddl: 'timestamptz', reported: 'timestamp with time zone' },
  json: { ddl: 'jsonb', reported: 'jsonb' },
};

export const ENTITY_COLUMN = 'entity_id';

export interface FeatureColumns {
  name: string;
  type: FeatureType;
  /** The value itself. */
  value: string;
  /** Event time of the stored value: an older event never overwrites a newer one. */
  eventTime: string;
  /** Kafka offset of the stored value: breaks event-time ties, later offset wins. */
  offset: string;
}

export interface StoreLayout {
  table: string;
  /** Schema-qualified, quoted: safe to splice into SQL. */
  sqlTable: string;
  features: FeatureColumns[];
}

export function layoutFor(ref: GroupRef, spec: FeatureGroupSpec): StoreLayout {
  const table = tableNameFor(ref);
  return {
    table,
    sqlTable: qualified(FEATURES_SCHEMA, table),
    features: valueFeatures(spec).map((f) => ({
      name: f.name,
      type: f.type,
      value: f.name,
      eventTime: `${f.name}__ts`,
      offset: `${f.name}__off`,
    })),
  };
}

/** Column name → type as information_schema.columns reports it, for a table that exists. */
export type ObservedColumns = Map<string, string>;

export interface StorePlan {
  /** DDL to run, in order; empty when the table already matches. */
  statements: string[];
  /** Why the plan cannot be applied (a feature whose type changed); when set, nothing is altered. */
  conflicts: string[];
}

/**
 * Plans the DDL that moves a group's table from what exists to what the spec wants. Only
 * additions are planned: a removed feature keeps its column and data; a type change is refused.
 */
export function planStore(layout: StoreLayout, observed: ObservedColumns | undefined): StorePlan {
  const columnsFor = (f: FeatureColumns): [string, string][] => [
    [f.value, COLUMN_TYPES[f.type].ddl],
    [f.eventTime, 'timestamptz'],
    [f.offset, 'bigint'],
  ];
  if (observed === undefined) {
    const columns = layout.features.flatMap(columnsFor).map(([name, type]) => `${quoteIdent(name)} ${type}`);
    const body = [`${quoteIdent(ENTITY_COLUMN)} text PRIMARY KEY`, ...columns].join(',\n  ');
    // Rows are updated far more often than inserted: room left on each page lets Postgres put the
    // new version beside the old one (a HOT update, no index entry). In the consumer benchmark this
    // took HOT updates from 3% to 70% and the upsert's execution time per event down by a quarter.
    return { statements: [`CREATE TABLE IF NOT EXISTS ${layout.sqlTable} (\n  ${body}\n) WITH (fillfactor = 70)`], conflicts: [] };
  }
  const conflicts: string[] = [];
  const additions: string[] = [];
  for (const feature of layout.features) {
    const existing = observed.get(feature.value);
    const wanted = COLUMN_TYPES[feature.type].reported;
    if (existing !== undefined && existing !== wanted) {
      conflicts.push(`feature ${feature.name} is stored as ${existing} and cannot change to ${feature.type}; add a feature with a new name instead`);
      continue;
    }
    for (const [name, type] of columnsFor(feature)) {
      if (!observed.has(name)) additions.push(`ADD COLUMN IF NOT EXISTS ${quoteIdent(name)} ${type}`);
    }
  }
  if (conflicts.length > 0) return { statements: [], conflicts };
  return { statements: additions.length ? [`ALTER TABLE ${layout.sqlTable} ${additions.join(', ')}`] : [], conflicts };
}
