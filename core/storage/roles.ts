import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { CompiledGroup } from '../featuregroup/compiled';
import { FEATURES_SCHEMA, PLATFORM_SCHEMA, qualified, quoteIdent } from './identifiers';
import { withTransaction } from './transaction';

/** Read-only role for serving: SELECT on the registry and on every group table, nothing else. */
export const SERVING_ROLE = 'featurestore_serving';

const PASSWORD = /^[0-9a-f]{48}$/;

/**
 * A group's writer password, derived rather than stored: an HMAC of the group's identity (its uid,
 * so a recreated group gets a new one) under a key only the operator holds (its own database URL).
 * The operator can therefore set it on the role and write it into the consumer's Secret without
 * ever reading a Secret back; rotating the operator's credentials rotates every writer's.
 */
export function derivedWriterPassword(key: string, group: { namespace: string; name: string; uid: string }): string {
  return createHmac('sha256', key)
    .update(`writer\n${group.namespace}\n${group.name}\n${group.uid}`)
    .digest('hex')
    .slice(0, 48);
}

/**
 * The SCRAM-SHA-256 verifier of a password (RFC 5802/7677), in the form Postgres stores it. Set with
 * ALTER ROLE, it is taken as is: the plaintext never reaches the server, its logs or
 * pg_stat_statements. The salt is derived from the password, so the verifier of one password is
 * always the same and an unchanged password need not be set again.
 */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = createHash('sha256').update(`featurestore-scram-salt\n${password}`).digest().subarray(0, 16);
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Whether the role's stored verifier is already this one; unknown (false) where pg_authid is not readable. */
async function hasVerifier(db: PoolClient, role: string, verifier: string): Promise<boolean> {
  const readable = await db.query<{ ok: boolean }>(
    "SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS ok",
  );
  if (!readable.rows[0]?.ok) return false;
  const stored = await db.query<{ same: boolean }>(
    'SELECT rolpassword = $2 AS same FROM pg_catalog.pg_authid WHERE rolname = $1',
    [role, verifier],
  );
  return stored.rows[0]?.same === true;
}

/** The login role a group's consumer writes as: `<table>_writer`, hashed when it would pass 63 bytes. */
export function writerRoleFor(table: string): string {
  const role = `${table}_writer`;
  if (role.length <= 63) return role;
  return `${table.slice(0, 45)}_${createHash('sha256').update(table).digest('hex').slice(0, 10)}_writer`;
}

/** Serializes grants on the objects every group shares; also taken by dropWriterRole. */
const SHARED_GRANTS_LOCK = 727210002;
/** Serializes grants on one group's own objects (with hashtext of its table name). */
export const GROUP_GRANTS_LOCK = 727210005;

/** Whether the serving role or the writer lacks one of the grants on shared objects. */
async function sharedGrantsMissing(db: PoolClient, writer: string): Promise<boolean> {
  const serving = await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [SERVING_ROLE]);
  if (serving.rowCount === 0) return true;
  const held = await db.query<{ ok: boolean }>(
    // (One privilege per call: has_table_privilege with a list is true if any one is held.)
    `SELECT bool_and(has_schema_privilege(r, $3, 'USAGE') AND has_schema_privilege(r, $4, 'USAGE')
       AND has_table_privilege(r, $5, 'SELECT'))
       AND has_table_privilege($2, $6, 'SELECT') AND has_table_privilege($2, $6, 'INSERT')
       AND has_table_privilege($2, $6, 'UPDATE') AS ok
     FROM unnest(ARRAY[$1, $2]::text[]) AS r`,
    [
      SERVING_ROLE,
      writer,
      PLATFORM_SCHEMA,
      FEATURES_SCHEMA,
      `${PLATFORM_SCHEMA}.feature_groups`,
      `${PLATFORM_SCHEMA}.consumer_offsets`,
    ],
  );
  return held.rows[0]?.ok !== true;
}

async function ensureRole(db: PoolClient, role: string, login: boolean): Promise<void> {
  // CREATE ROLE takes no bind parameters; the name is a validated identifier, quoted once here.
  const exists = await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  if (exists.rowCount === 0) await db.query(`CREATE ROLE ${quoteIdent(role)} ${login ? 'LOGIN' : 'NOLOGIN'}`);
}

/**
 * Grants exactly what each party needs on one group's table, idempotently: serving may read it,
 * the group's writer may read and write it (and the shared offsets table), nobody else.
 * `writerPassword` (48 hex chars, derivedWriterPassword) is set on the writer's login role.
 */
export async function applyGrants(
  pool: Pool,
  tables: CompiledGroup['tables'],
  writerPassword: string,
): Promise<string> {
  const table = tables.values.name;
  if (!PASSWORD.test(writerPassword)) throw new Error('writer password must be 48 hex characters');
  const writer = writerRoleFor(table);
  await withTransaction(pool, async (client) => {
    await client.query(`SET LOCAL lock_timeout = '5s'`);
    // The group's own objects (its writer role, its tables) under a lock of the group's own.
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [GROUP_GRANTS_LOCK, table]);
    await ensureRole(client, writer, true);
    const verifier = scramVerifier(writerPassword);
    if (!(await hasVerifier(client, writer, verifier))) {
      // Base64 and hex only: nothing in the verifier needs quoting.
      await client.query(`ALTER ROLE ${quoteIdent(writer)} WITH LOGIN PASSWORD '${verifier}'`);
    }
    // Objects every group's grants touch (the serving role, the schemas, the registry and offsets
    // tables): Postgres refuses two concurrent updates of one catalog row ("tuple concurrently
    // updated"), so these take the shared lock, and only when a grant is missing.
    if (await sharedGrantsMissing(client, writer)) {
      await client.query('SELECT pg_advisory_xact_lock($1)', [SHARED_GRANTS_LOCK]);
      await ensureRole(client, SERVING_ROLE, false);
      const schemas = `${quoteIdent(PLATFORM_SCHEMA)}, ${quoteIdent(FEATURES_SCHEMA)}`;
      for (const role of [SERVING_ROLE, writer].map(quoteIdent)) {
        await client.query(`GRANT USAGE ON SCHEMA ${schemas} TO ${role}`);
        await client.query(`GRANT SELECT ON ${qualified(PLATFORM_SCHEMA, 'feature_groups')} TO ${role}`);
      }
      await client.query(
        `GRANT SELECT, INSERT, UPDATE ON ${qualified(PLATFORM_SCHEMA, 'consumer_offsets')} TO ${quoteIdent(writer)}`,
      );
    }
    const groupTable = qualified(FEATURES_SCHEMA, table);
    await client.query(`GRANT SELECT ON ${groupTable} TO ${quoteIdent(SERVING_ROLE)}`);
    await client.query(`GRANT SELECT, INSERT, UPDATE ON ${groupTable} TO ${quoteIdent(writer)}`);
    // The group's tiles and history tables, where they exist. DELETE: the consumer removes rows
    // past retention.
    for (const extra of [tables.tiles.name, tables.history.name, tables.aggregateLog.name]) {
      const exists = await client.query('SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2', [
        FEATURES_SCHEMA,
        extra,
      ]);
      if (exists.rowCount !== 1) continue;
      await client.query(`GRANT SELECT ON ${qualified(FEATURES_SCHEMA, extra)} TO ${quoteIdent(SERVING_ROLE)}`);
      await client.query(
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ${qualified(FEATURES_SCHEMA, extra)} TO ${quoteIdent(writer)}`,
      );
    }
  });
  return writer;
}

/** Removes a group's writer role (after its table is dropped or retained without a consumer). */
export async function dropWriterRole(pool: Pool, table: string): Promise<void> {
  const writer = writerRoleFor(table);
  const exists = await pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [writer]);
  if (exists.rowCount === 0) return;
  await withTransaction(pool, async (client) => {
    // DROP OWNED revokes grants on shared objects (schemas, registry): serialize with applyGrants.
    await client.query('SELECT pg_advisory_xact_lock($1)', [SHARED_GRANTS_LOCK]);
    await client.query(`REASSIGN OWNED BY ${quoteIdent(writer)} TO CURRENT_USER`);
    await client.query(`DROP OWNED BY ${quoteIdent(writer)}`);
    await client.query(`DROP ROLE ${quoteIdent(writer)}`);
  });
}
