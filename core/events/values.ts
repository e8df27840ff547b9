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
/** A lone surrogate has no UTF-8 form: text would be stored altered (U+FFFD) and jsonb refuses it. */
const LONE_SURROGATE: Conversion = {
  ok: false,
  reason: 'text contains a lone UTF-16 surrogate, which is not valid Unicode',
};

/**
 * Times that Postgres (timestamptz), JavaScript's Date and ISO-8601 with a four-digit year can all
 * hold: 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z. Event times and timestamp values
 * outside are refused, so none reaches a statement that would fail.
 */
export const MIN_TIME_MS = -62_135_596_800_000;
export const MAX_TIME_MS = 253_402_300_799_999;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function fail(type: FeatureType, value: JsonValue): Conversion {
  const shown =
    typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : Array.isArray(value) ? 'an array' : typeof value;
  return { ok: false, reason: `expected ${type}, got ${shown}` };
}

const inTimeRange = (ms: number): number => (ms >= MIN_TIME_MS && ms <= MAX_TIME_MS ? ms : NaN);

/**
 * Parses an event time: ISO-8601 text or epoch milliseconds, as whole milliseconds within
 * [MIN_TIME_MS, MAX_TIME_MS]. A fraction of a millisecond is dropped, as ISO text's digits past
 * the millisecond are. Returns NaN when it is neither, or out of range.
 */
export function parseEventTime(value: JsonValue | undefined): number {
  if (typeof value === 'number') return Number.isFinite(value) ? inTimeRange(Math.floor(value)) : NaN;
  if (typeof value === 'string' && value.length <= 64 && ISO_DATE.test(value)) return inTimeRange(Date.parse(value));
  return NaN;
}

/** Why Postgres text would not hold the string as it is, if it would not. */
export function textProblem(value: string): Conversion | undefined {
  if (value.includes('\u0000')) return NUL_TEXT;
  return value.isWellFormed() ? undefined : LONE_SURROGATE;
}

/**
 * Why jsonb would refuse JSON text made by JSON.stringify: an escaped U+0000, or an escaped lone
 * surrogate (JSON.stringify escapes exactly those surrogates that are unpaired). Escapes are found
 * by their unescaped backslash; the scan runs only when the text has an escape at all.
 */
export function jsonTextProblem(text: string): Conversion | undefined {
  for (let i = text.indexOf('\\u'); i !== -1; i = text.indexOf('\\u', i + 2)) {
    let backslashes = 1;
    while (i - backslashes >= 0 && text.charCodeAt(i - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) continue;
    const code = Number.parseInt(text.slice(i + 2, i + 6), 16);
    if (code === 0) return NUL_TEXT;
    if (code >= 0xd800 && code <= 0xdfff) return LONE_SURROGATE;
  }
  return undefined;
}

export function convertValue(type: FeatureType, value: JsonValue): Conversion {
  switch (type) {
    case 'string':
      if (typeof value === 'string') return textProblem(value) ?? { ok: true, value };
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
      if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
        return { ok: true, value: Number(value) };
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
      return jsonTextProblem(text) ?? { ok: true, value: text };
    }
  }
}
