/**
 * Reads a one-dimensional array in Postgres' binary format back into JS values, written from the
 * protocol documentation (array_recv) for tests: int8 and int4 elements as numbers, text as strings.
 */
export function decodeBinaryArray(buffer: Buffer): (string | number | null)[] {
  const dimensions = buffer.readInt32BE(0);
  const oid = buffer.readInt32BE(8);
  if (dimensions === 0) return [];
  if (dimensions !== 1) throw new Error(`expected one dimension, got ${dimensions}`);
  const length = buffer.readInt32BE(12);
  const out: (string | number | null)[] = [];
  let at = 20;
  for (let i = 0; i < length; i++) {
    const size = buffer.readInt32BE(at);
    at += 4;
    if (size === -1) {
      out.push(null);
      continue;
    }
    const bytes = buffer.subarray(at, at + size);
    at += size;
    if (oid === 20) out.push(Number(bytes.readBigInt64BE(0)));
    else if (oid === 23) out.push(bytes.readInt32BE(0));
    else if (oid === 25) out.push(bytes.toString('utf8'));
    else throw new Error(`element type ${oid} is not decoded here`);
  }
  if (at !== buffer.length) throw new Error(`${buffer.length - at} bytes after the last element`);
  return out;
}
