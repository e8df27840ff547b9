/**
 * How far a group's consumers are behind its topic, from Kafka's watermarks and the offsets stored
 * in Postgres. Pure, so the operator and the consumer count lag the same way.
 */
export interface Watermarks {
  partition: number;
  low: number;
  high: number;
}

/**
 * Records the consumers still have to read: from where they resume (the stored offset, or the
 * earliest record Kafka holds when none is stored or it is older) to the high watermark.
 */
export function lagOf(watermarks: Watermarks, storedNextOffset: number | undefined): number {
  const resumeAt = Math.max(storedNextOffset ?? watermarks.low, watermarks.low);
  return Math.max(0, watermarks.high - resumeAt);
}

export const watermarksOf = (offsets: readonly { partition: number; low: string; high: string }[]): Watermarks[] =>
  offsets.map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }));
