const DAY_MS = 86_400_000;
/** 'YYYY-MM-DD' (or ±YYYYYY-MM-DD) of recent days, by day number since the epoch. */
const dayPrefixes = new Map<number, string>();
const TWO = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const THREE = Array.from({ length: 1000 }, (_, i) => `.${String(i).padStart(3, '0')}Z`);

/**
 * ISO-8601 in UTC, without a fractional part when it is zero: `2026-01-23T09:16:19Z`. Serving
 * formats one per value it answers (a 100-entity read: 200), so the date part is kept per day and
 * the time of day is assembled from tables; only a new day goes through Date#toISOString.
 */
export function formatTime(time: number | Date): string {
  const ms = typeof time === 'number' ? Math.trunc(time) : time.getTime();
  // Not a time a Date can hold: toISOString throws its RangeError, as before.
  if (!(Math.abs(ms) <= 8.64e15)) return new Date(ms).toISOString();
  const day = Math.floor(ms / DAY_MS);
  let prefix = dayPrefixes.get(day);
  if (prefix === undefined) {
    const iso = new Date(day * DAY_MS).toISOString();
    prefix = iso.slice(0, iso.indexOf('T') + 1);
    if (dayPrefixes.size >= 4096) dayPrefixes.clear();
    dayPrefixes.set(day, prefix);
  }
  let rest = ms - day * DAY_MS;
  const milli = rest % 1000;
  rest = (rest - milli) / 1000;
  const second = rest % 60;
  rest = (rest - second) / 60;
  const minute = rest % 60;
  const hour = (rest - minute) / 60;
  return `${prefix}${TWO[hour]!}:${TWO[minute]!}:${TWO[second]!}${milli === 0 ? 'Z' : THREE[milli]!}`;
}
