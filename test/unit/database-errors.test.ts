import { createServer } from 'node:net';
import { Client, DatabaseError } from 'pg';
import { describeDatabaseError, describeRecordedError } from '../../operator/database-errors';

/** A Postgres error as the driver builds it from the server's ErrorResponse. */
const pgError = (code: string, message: string): DatabaseError => {
  const error = new DatabaseError(message, message.length, 'error');
  error.code = code;
  return error;
};

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('database failures as a reason and a sentence', () => {
  it('a refused connection, as pg reports it, is DatabaseUnreachable', async () => {
    const client = new Client({ host: '127.0.0.1', port: await closedPort(), connectionTimeoutMillis: 5_000 });
    const error: unknown = await client.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(describeDatabaseError(error)).toEqual({
      reason: 'DatabaseUnreachable',
      message: 'Postgres cannot be reached (ECONNREFUSED); the operator retries with backoff',
    });
  });

  // SQLSTATE classes as Postgres' appendix A defines them, mapped to what a person can act on.
  it.each([
    ['08006', 'DatabaseUnreachable'],
    ['57P01', 'DatabaseUnreachable'],
    ['28P01', 'DatabaseAuthFailed'],
    ['42501', 'DatabasePermissionDenied'],
    ['55P03', 'DatabaseBusy'],
    ['57014', 'DatabaseBusy'],
    ['40P01', 'DatabaseConflict'],
    ['40001', 'DatabaseConflict'],
    ['53100', 'DatabaseResources'],
    ['53300', 'DatabaseResources'],
    ['23505', 'DatabaseError'],
    ['XX000', 'DatabaseError'],
  ])('SQLSTATE %s is %s, and the driver text stays out', (code, reason) => {
    const secret = 'duplicate key value violates unique constraint "feature_groups_table_name_key"';
    const described = describeDatabaseError(pgError(code, secret));
    expect(described.reason).toBe(reason);
    expect(described.message).not.toContain('duplicate key');
    expect(described.message).toMatch(/[a-z]/);
  });

  it('a recorded consumer error becomes a sentence; its text is not repeated', () => {
    expect(describeRecordedError('53100: the disk is full')).toBe(
      'Postgres is out of a resource (SQLSTATE 53100: disk, memory or connections); the consumer retries with backoff',
    );
    expect(describeRecordedError('Connection terminated unexpectedly')).toMatch(/^Postgres cannot be reached/);
    expect(describeRecordedError('something odd')).not.toContain('something odd');
  });
});
