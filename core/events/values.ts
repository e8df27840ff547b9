import type { FeatureType } from '../featuregroup/schema';
import type { JsonValue } from './path';

/**
 * The value of one feature as bound to Postgres: text for string/json, decimal text for int64
 * (exact past 2^53), number for float64, boolean, ISO-8601 text for timestamp.
 */
export type StoredValue = string | number | boolean;

export type Conversion = { ok: true; value: StoredValue } | { ok: false; reason: string };

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;
const INT64_TEXT = /^-?(0|[1-9][0-9]{0,18})$/;
/** Postgres text and jsonb cannot hold U+0000; such a value is refused rather than left to fail a batch. */
const NUL_TEXT: Conversion = { ok: false, reason: 'text contains U+0000, which Postgres cannot store' };
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function fail(type: FeatureType, value: JsonValue): Conversion {
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : Array.isArray(value) ? 'an array' : typeof value;
  return { ok: false, reason: `expected ${type}, got ${shown}` };
}

/** Parses an event time: ISO-8601 text or epoch milliseconds. Returns NaN when it is neither. */
export function parseEventTime(value: JsonValue | undefined): number {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : NaN;
  if (typeof value === 'string' && value.length <= 64 && ISO_DATE.test(value)) return Date.parse(value);
  return NaN;
}

export function convertValue(type: FeatureType, value: JsonValue): Conversion {
  switch (type) {
    case 'string':
      if (typeof value === 'string') return value.includes('\u0000') ? NUL_TEXT : { ok: true, value };
      if (typeof value === 'number' || typeof value === 'boolean') return { ok: true, value: String(value) };
      return fail(type, value);
    case 'int64': {
      if (typeof value === 'number' && Number.isSafeInteger(value)) return { ok: true, value: String(value) };
      if (typeof value === 'string' && INT64_TEXT.test(value)) {
        const big = BigInt(value);
        if (big >= INT64_MIN && big <= INT64_MAX) return { ok: true, value };
      }
      return fail(type, value);
    }
    case 'float64': {
      if (typeof value === 'number' && Number.isFinite(value)) return { ok: true, value };
      if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return { ok: true, value: Number(value) };
      return fail(type, value);
    }
    case 'bool':
      if (typeof value === 'boolean') return { ok: true, value };
      if (value === 'true' || value === 'false') return { ok: true, value: value === 'true' };
      return fail(type, value);
    case 'timestamp': {
      const ms = parseEventTime(value);
      return Number.isNaN(ms) ? fail(type, value) : { ok: true, value: new Date(ms).toISOString() };
    }
    case 'json': {
      const text = JSON.stringify(value);
      return text.includes('\\u0000') ? NUL_TEXT : { ok: true, value: text };
    }
  }
}
