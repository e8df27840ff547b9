import { tileSizeFor } from '../aggregates/tiles';
import { companionTableName, FEATURES_SCHEMA, qualified, tableNameFor } from '../storage/identifiers';
import { parseDuration } from './duration';
import {
  DEFAULT_NAMESPACE,
  groupId,
  type Aggregate,
  type Feature,
  type FeatureGroupSpec,
  type FeatureType,
  type GroupRef,
} from './schema';

/**
 * A FeatureGroup spec compiled once into what every component reads it through: table names,
 * column layout, value and aggregate features with their tile sizes, history, retention and ttl.
 * Nothing downstream re-interprets the spec: a component takes what it needs from this object.
 */

/** History kept when spec.history.retention is not given. */
export const DEFAULT_HISTORY_RETENTION_MS = 30 * 86_400_000;

export interface TableName {
  /** Bare name in the features schema (what information_schema reports). */
  name: string;
  /** Schema-qualified, quoted: safe to splice into SQL. */
  sql: string;
}

/** A feature whose latest value by event time is stored, with its three columns in the value table. */
export interface ValueFeature {
  /** Index among the group's value features (order of the spec): where events carry its value. */
  index: number;
  name: string;
  type: FeatureType;
  /** Dotted path of the event field it is read from. */
  from: string;
  /** The value itself. */
  value: string;
  /** Event time of the stored value: an older event never overwrites a newer one. */
  eventTime: string;
  /** Kafka offset of the stored value: breaks event-time ties, later offset wins. */
  offset: string;
}

export interface AggregateFeature {
  /** Index among the group's aggregate features (order of the spec): where events carry its contribution. */
  index: number;
  name: string;
  type: FeatureType;
  fn: Aggregate['fn'];
  field: string | undefined;
  windowMs: number;
  tileMs: number;
  /** last_n only: how many values are kept. */
  limit: number;
  where: Aggregate['where'];
}

export interface CompiledGroup {
  ref: GroupRef;
  /** `namespace/name`. */
  id: string;
  /**
   * The group as feature references name it: `name` in the default namespace, `namespace/name`
   * elsewhere (`ml/user-activity:last_action`; full feature names `ml/user-activity__last_action`),
   * so same-named groups of two namespaces never share a name.
   */
  refName: string;
  /** The validated spec, for what is not storage (source, consumer settings). */
  spec: FeatureGroupSpec;
  tables: {
    values: TableName;
    /** Partial aggregates per tile (when the group has aggregates). */
    tiles: TableName;
    /** Value history (when history is enabled). */
    history: TableName;
    /** Single-event aggregate contributions, for the head of a past window (aggregates and history). */
    aggregateLog: TableName;
  };
  values: readonly ValueFeature[];
  aggregates: readonly AggregateFeature[];
  /** Distinct tile sizes of the aggregates, ascending. */
  tileSizes: readonly number[];
  history: { enabled: boolean; retentionMs: number };
  /** Whether the aggregate log is kept: a point-in-time window head needs single events. */
  keepsAggregateLog: boolean;
  ttlMs: number | undefined;
  /** The tables this spec has, values first: what a replay empties and the grants cover. */
  ownedTables: readonly TableName[];
}

const tableName = (name: string): TableName => ({ name, sql: qualified(FEATURES_SCHEMA, name) });

/** Aggregates kept as numeric partials (sum, min and max of the field); count and last_n are not. */
export const isNumericAggregate = (feature: AggregateFeature): boolean =>
  feature.fn !== 'count' && feature.fn !== 'last_n';

/** The table names of a group, which depend on its ref alone (a deleted group's spec is not needed to drop them). */
export function groupTables(ref: GroupRef): CompiledGroup['tables'] {
  const values = tableNameFor(ref);
  return {
    values: tableName(values),
    tiles: tableName(companionTableName(values, 'tiles')),
    history: tableName(companionTableName(values, 'history')),
    aggregateLog: tableName(companionTableName(values, 'agglog')),
  };
}

export function compileGroup(ref: GroupRef, spec: FeatureGroupSpec): CompiledGroup {
  const tables = groupTables(ref);
  const values = spec.features
    .filter((f): f is Feature & { from: string } => f.from !== undefined)
    .map((f, index) => ({
      index,
      name: f.name,
      type: f.type,
      from: f.from,
      value: f.name,
      eventTime: `${f.name}__ts`,
      offset: `${f.name}__off`,
    }));
  const aggregates = spec.features
    .filter((f): f is Feature & { aggregate: Aggregate } => f.aggregate !== undefined)
    .map((f, index) => {
      const windowMs = parseDuration(f.aggregate.window);
      return {
        index,
        name: f.name,
        type: f.type,
        fn: f.aggregate.fn,
        field: f.aggregate.field,
        windowMs,
        tileMs: tileSizeFor(windowMs),
        limit: f.aggregate.limit ?? 0,
        where: f.aggregate.where,
      };
    });
  const historyEnabled = spec.history?.enabled === true;
  const keepsAggregateLog = historyEnabled && aggregates.length > 0;
  return {
    ref,
    id: groupId(ref),
    refName: ref.namespace === DEFAULT_NAMESPACE ? ref.name : groupId(ref),
    spec,
    tables,
    values,
    aggregates,
    tileSizes: [...new Set(aggregates.map((a) => a.tileMs))].sort((a, b) => a - b),
    history: {
      enabled: historyEnabled,
      retentionMs: historyEnabled
        ? spec.history?.retention
          ? parseDuration(spec.history.retention)
          : DEFAULT_HISTORY_RETENTION_MS
        : 0,
    },
    keepsAggregateLog,
    ttlMs: spec.ttl ? parseDuration(spec.ttl) : undefined,
    ownedTables: [
      tables.values,
      ...(aggregates.length > 0 ? [tables.tiles] : []),
      ...(historyEnabled ? [tables.history] : []),
      ...(keepsAggregateLog ? [tables.aggregateLog] : []),
    ],
  };
}
