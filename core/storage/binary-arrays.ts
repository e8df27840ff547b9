/**
 * One-dimensional arrays in Postgres' binary wire format (what `array_recv` reads), for the
 * column-major parameters of batch statements. node-postgres sends a Buffer parameter as binary:
 * no per-element escaping in Node (its text encoder was a sixth of the consumer's busy time) and
 * no array text parsing in Postgres.
 *
 * Layout: int32 dimensions (0 for an empty array), int32 has-nulls flag, element type OID, then
 * per dimension int32 length and int32 lower bound (1); per element int32 byte length (-1 for
 * NULL) and the element's bytes. Values of types without a cheap binary form (numeric, jsonb,
 * timestamptz) travel as text[] and are cast in SQL: `$1::text[]::numeric[]`.
 */

const INT4_OID = 23;
const INT8_OID = 20;
const TEXT_OID = 25;
const HEADER_BYTES = 20;
const TWO_32 = 2 ** 32;

function header(buffer: Buffer, count: number, hasNulls: boolean, oid: number): number {
  if (count === 0) {
    buffer.writeInt32BE(0, 0);
    buffer.writeInt32BE(0, 4);
    buffer.writeInt32BE(oid, 8);
    return 12;
  }
  buffer.writeInt32BE(1, 0);
  buffer.writeInt32BE(hasNulls ? 1 : 0, 4);
  buffer.writeInt32BE(oid, 8);
  buffer.writeInt32BE(count, 12);
  buffer.writeInt32BE(1, 16);
  return HEADER_BYTES;
}

/** bigint[] of safe integers (JS numbers: event times in ms, offsets). */
export function int8Array(values: readonly (number | null)[]): Buffer {
  const buffer = Buffer.allocUnsafe(HEADER_BYTES + values.length * 12);
  let at = header(buffer, values.length, values.includes(null), INT8_OID);
  for (const value of values) {
    if (value === null) {
      at = buffer.writeInt32BE(-1, at);
      continue;
    }
    if (!Number.isSafeInteger(value)) throw new RangeError(`int8Array: ${value} is not a safe integer`);
    const high = Math.floor(value / TWO_32);
    at = buffer.writeInt32BE(8, at);
    at = buffer.writeInt32BE(high, at);
    at = buffer.writeUInt32BE(value - high * TWO_32, at);
  }
  return buffer.subarray(0, at);
}

/** integer[] (tile sizes, partitions). */
export function int4Array(values: readonly (number | null)[]): Buffer {
  const buffer = Buffer.allocUnsafe(HEADER_BYTES + values.length * 8);
  let at = header(buffer, values.length, values.includes(null), INT4_OID);
  for (const value of values) {
    if (value === null) {
      at = buffer.writeInt32BE(-1, at);
      continue;
    }
    at = buffer.writeInt32BE(4, at);
    at = buffer.writeInt32BE(value, at);
  }
  return buffer.subarray(0, at);
}

/** text[]; each element is written as UTF-8 (a JS string takes at most 3 bytes per UTF-16 unit). */
export function textArray(values: readonly (string | null)[]): Buffer {
  let units = 0;
  let hasNulls = false;
  for (const value of values) {
    if (value === null) hasNulls = true;
    else units += value.length;
  }
  const buffer = Buffer.allocUnsafe(HEADER_BYTES + values.length * 4 + units * 3);
  let at = header(buffer, values.length, hasNulls, TEXT_OID);
  for (const value of values) {
    if (value === null) {
      at = buffer.writeInt32BE(-1, at);
      continue;
    }
    const written = buffer.write(value, at + 4, 'utf8');
    buffer.writeInt32BE(written, at);
    at += 4 + written;
  }
  return buffer.subarray(0, at);
}
