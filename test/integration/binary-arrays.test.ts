/**
 * The binary array parameters the consumer sends, read back by real Postgres. The oracle is
 * Postgres itself: each element is returned as text (and its position and NULL-ness), and must
 * equal the JS value it was made from. Property-based over every string a JS string can be that
 * the extractor lets through (well-formed UTF-16, no NUL), every safe integer, every int4, NULLs
 * anywhere, and empty arrays. FUZZ_RUNS sets the number of arrays per type (300 in `make test`).
 */
import fc from 'fast-check';
import type { Pool } from 'pg';
import { int4Array, int8Array, textArray } from '../../core/storage/binary-arrays';
import { testPool } from '../support/platform';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

let pool: Pool;
beforeAll(() => {
  pool = testPool();
});
afterAll(async () => {
  await pool.end();
});

/** Elements in order as Postgres reads them: text, or null. Also checks the array's length. */
async function readBack(param: Buffer, type: string, expectedLength: number): Promise<(string | null)[]> {
  const result = await pool.query<{ n: number | null; elements: (string | null)[] | null }>(
    `SELECT cardinality($1::${type}[]) AS n, (SELECT array_agg(e::text ORDER BY i) FROM unnest($1::${type}[]) WITH ORDINALITY AS u(e, i)) AS elements`,
    [param],
  );
  const row = result.rows[0]!;
  expect(row.n).toBe(expectedLength);
  return row.elements ?? [];
}

const wellFormedText = fc
  .string({ unit: 'binary', maxLength: 40 })
  .filter((s) => s.isWellFormed() && !s.includes('\u0000'));

test('text[]: every well-formed string, NULLs anywhere, and empty arrays, element for element', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.option(wellFormedText, { nil: null }), { maxLength: 30 }), async (values) => {
      expect(await readBack(textArray(values), 'text', values.length)).toEqual(values);
    }),
    { numRuns: RUNS },
  );
});

test('bigint[]: every safe integer, including both ends and zero, with NULLs', async () => {
  const edges = fc.constantFrom(
    0,
    -1,
    1,
    Number.MAX_SAFE_INTEGER,
    Number.MIN_SAFE_INTEGER,
    2 ** 32,
    -(2 ** 32),
    2 ** 31,
    -(2 ** 31) - 1,
  );
  const element = fc.option(fc.oneof(fc.maxSafeInteger(), edges), { nil: null });
  await fc.assert(
    fc.asyncProperty(fc.array(element, { maxLength: 30 }), async (values) => {
      const expected = values.map((v) => (v === null ? null : String(v)));
      expect(await readBack(int8Array(values), 'bigint', values.length)).toEqual(expected);
    }),
    { numRuns: RUNS },
  );
});

test('integer[]: the whole int4 range, with NULLs', async () => {
  const element = fc.option(fc.oneof(fc.integer(), fc.constantFrom(2 ** 31 - 1, -(2 ** 31), 0)), { nil: null });
  await fc.assert(
    fc.asyncProperty(fc.array(element, { maxLength: 30 }), async (values) => {
      const expected = values.map((v) => (v === null ? null : String(v)));
      expect(await readBack(int4Array(values), 'integer', values.length)).toEqual(expected);
    }),
    { numRuns: RUNS },
  );
});

test('text[] cast to numeric[], jsonb[] and timestamptz[] reads what the text says, as the writers cast them', async () => {
  const numbers = textArray(['1.5', '-0.000000000000000000001', null, '12345678901234567890.123']);
  const json = textArray(['{"a": "é\\u00e9"}', null]);
  const times = textArray(['2026-01-02T03:04:05.678Z']);
  const result = await pool.query<{ sum: string; nulls: number; json: unknown; time: Date }>(
    'SELECT (SELECT sum(x) FROM unnest($1::text[]::numeric[]) x) AS sum, (SELECT count(*) FROM unnest($1::text[]::numeric[]) x WHERE x IS NULL)::int AS nulls, ' +
      '($2::text[]::jsonb[])[1] AS json, ($3::text[]::timestamptz[])[1] AS time',
    [numbers, json, times],
  );
  expect(result.rows[0]).toEqual({
    sum: '12345678901234567891.622999999999999999999',
    nulls: 1,
    json: { a: 'éé' },
    time: new Date('2026-01-02T03:04:05.678Z'),
  });
});

test('a number that is not a safe integer is refused before it is sent', () => {
  expect(() => int8Array([2 ** 53])).toThrow(RangeError);
  expect(() => int8Array([1.5])).toThrow(RangeError);
});
