/** ISO-8601 in UTC, without a fractional part when it is zero: `2026-01-23T09:16:19Z`. */
export function formatTime(ms: number | Date): string {
  const iso = new Date(ms).toISOString();
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}
