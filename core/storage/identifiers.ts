import { createHash } from 'node:crypto';
import type { GroupRef } from '../featuregroup/schema';

/** Schema that holds the platform's own tables (registry, offsets, migrations). */
export const PLATFORM_SCHEMA = 'featurestore';
/** Schema that holds one table per feature group. */
export const FEATURES_SCHEMA = 'features';

const SAFE_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const MAX_IDENTIFIER = 63;

/**
 * Quotes an identifier for SQL. Only identifiers that already passed a strict pattern reach SQL;
 * quoting is the second line of defence, and the only place identifiers are quoted.
 */
export function quoteIdent(name: string): string {
  if (!SAFE_IDENTIFIER.test(name)) throw new Error(`unsafe SQL identifier ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** A string literal for DDL-time SQL built from validated names (data always travels as parameters). */
export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

export function qualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/**
 * `fs_<namespace>_<name>` with `-` folded to `_` (`ml/user-activity` → `fs_ml_user_activity`).
 * A name with dots, or one past Postgres' 63 bytes, gets a hash of the exact ref to stay unique;
 * the registry's unique table_name constraint refuses the rare remaining fold collision
 * (`a-b/c` vs `a/b-c`) instead of letting two groups share a table.
 */
export function tableNameFor(ref: GroupRef): string {
  const base = `fs_${ref.namespace}_${ref.name}`.replace(/[-.]/g, '_');
  if (!ref.name.includes('.') && base.length <= MAX_IDENTIFIER) return base;
  const hash = createHash('sha256').update(`${ref.namespace}/${ref.name}`).digest('hex').slice(0, 8);
  return `${base.slice(0, MAX_IDENTIFIER - hash.length - 1)}_${hash}`;
}

/**
 * A companion table of a group's table (`<table>__tiles`, `<table>__history`), shortened with a
 * hash of the group table's name where it would pass Postgres' 63 bytes.
 */
export function companionTableName(table: string, suffix: string): string {
  const name = `${table}__${suffix}`;
  if (name.length <= MAX_IDENTIFIER) return name;
  const hash = createHash('sha256').update(table).digest('hex').slice(0, 8);
  return `${table.slice(0, MAX_IDENTIFIER - suffix.length - 2 - hash.length - 1)}_${hash}__${suffix}`;
}

/** A prepared-statement name unique to the SQL text, so a changed layout never reuses a stale plan. */
export function statementName(prefix: string, sql: string): string {
  return `${prefix}_${createHash('sha1').update(sql).digest('hex').slice(0, 16)}`;
}
