import type { FeatureType } from '../featuregroup/schema';
import type { JsonValue } from '../events/path';
import { formatTime } from '../time';
import { quoteIdent } from './identifiers';

export interface StoredFeature {
  value: JsonValue;
  /** The event time, in epoch milliseconds. */
  eventMs: number;
}

export interface StoredEntity {
  entityId: string;
  /** Aligned with the reader's feature list; null where the entity has no value yet. */
  features: (StoredFeature | null)[];
}

const identity = (value: unknown): JsonValue => value as JsonValue;
/** bigint arrives as text; it is served as a number where a JS number holds it exactly. */
const int64 = (value: unknown): JsonValue => {
  if (value === null) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : (value as string);
};
const timestamp = (value: unknown): JsonValue => (value instanceof Date ? formatTime(value) : (value as JsonValue));
/** A stored value column of `type` as served (bigint as a number where exact, timestamps as ISO text). */
export const PARSERS: Record<FeatureType, (value: unknown) => JsonValue> = {
  string: identity,
  int64,
  float64: identity,
  bool: identity,
  timestamp,
  json: identity,
};

/**
 * A timestamptz column as epoch milliseconds, so a row's event times reach JS as numbers instead
 * of text parsed into a Date per value. date_part's float8 costs Postgres a fifth of numeric
 * extract; rounded, it is exact for every whole millisecond from year 1 to 9999 (checked over 2M
 * random times), which is what the consumer stores. A sub-millisecond part rounds to the nearest ms.
 */
export const epochMs = (column: string): string => `round(date_part('epoch', ${quoteIdent(column)}) * 1000)`;
