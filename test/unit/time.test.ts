import fc from 'fast-check';
import { formatTime } from '../../core/time';

/** formatTime against Date#toISOString over every time a Date can hold, fractional ms included. */
const oracle = (ms: number) => new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
const LIMIT = 8.64e15;

describe('formatTime', () => {
  it('equals toISOString without a zero fraction, for every ms a Date holds', () => {
    fc.assert(
      fc.property(fc.integer({ min: -LIMIT, max: LIMIT }), (ms) => formatTime(ms) === oracle(ms)),
      { numRuns: 20_000 },
    );
    fc.assert(
      fc.property(fc.double({ min: -LIMIT, max: LIMIT, noNaN: true }), (ms) => formatTime(ms) === oracle(ms)),
      { numRuns: 20_000 },
    );
  });

  it('is exact at the edges of days, years, the epoch and the Date range, and for Date arguments', () => {
    const edges = [0, -1, 1, 999, 1000, -1000, -1001, 86_399_999, 86_400_000, -86_400_000, -86_400_001, LIMIT, -LIMIT];
    const years = [-271_821, -1, 0, 1, 1969, 1970, 1999, 2000, 2024, 9999, 10_000, 275_759];
    const dates = years.flatMap((y) => {
      const start = new Date(0).setUTCFullYear(y, 0, 1); // Date.UTC would read years 0-99 as 1900-1999
      return [start, start - 1, start + 1, start + 86_399_999];
    });
    for (const ms of [...edges, ...dates.filter((d) => Math.abs(d) <= LIMIT)]) {
      expect([ms, formatTime(ms)]).toEqual([ms, oracle(ms)]);
      expect([ms, formatTime(new Date(ms))]).toEqual([ms, oracle(ms)]);
    }
  });

  it('refuses what is not a time, as Date#toISOString does', () => {
    for (const bad of [NaN, Infinity, -Infinity, LIMIT + 1, -LIMIT - 1])
      expect(() => formatTime(bad)).toThrow(RangeError);
  });
});
