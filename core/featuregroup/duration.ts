const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A duration such as `500ms`, `90s`, `10m`, `1h` or `7d`: one positive integer and one unit. */
export const DURATION_PATTERN = /^([1-9][0-9]{0,8})(ms|s|m|h|d)$/;

export function parseDuration(text: string): number {
  const match = DURATION_PATTERN.exec(text);
  if (!match) throw new Error(`invalid duration "${text}": expected e.g. 30s, 10m, 1h, 7d`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}
