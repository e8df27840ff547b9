/**
 * Window aggregates are kept as partial aggregates in event-time tiles and combined at read time.
 *
 * Semantics: the value at time T of an aggregate with window W and tile size S (S ≤ W/60) covers
 * the stored events with event time in (T − W, T]. The head is exact: the tile holding T is read
 * while it is still open, so an event counts as soon as it is stored. The tail is rounded outward
 * to its tile: the tile holding T − W is read whole, so events up to one tile (< S ≤ W/60) before
 * the window may be included too, never fewer than the window holds.
 *
 * Point in time (T in the past) gives the same value without ever seeing an event after T: the
 * closed tiles [tail, head) come from the tiles, and the head (from the start of the tile holding T
 * up to T itself) from the group's aggregate log of single events, which groups with history keep
 * for their retention. Online, no event after T exists yet (save for producers whose clocks run
 * ahead: those count in the open tile).
 */

/** Tile sizes to choose from: the largest one at most W/60 (and at least 1 s) is used. */
const TILE_SIZES_MS = [1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400].map(
  (s) => s * 1000,
);

export function tileSizeFor(windowMs: number): number {
  const target = windowMs / 60;
  let chosen = TILE_SIZES_MS[0]!;
  for (const size of TILE_SIZES_MS) if (size <= target) chosen = size;
  return chosen;
}

export const tileStart = (timeMs: number, tileMs: number): number => Math.floor(timeMs / tileMs) * tileMs;

/**
 * The tiles a window at `atMs` reads: from `tail`, the tile holding T − W, to `head`, the tile
 * holding T itself (both included online; point in time reads `head` from single events instead).
 */
export function windowTiles(atMs: number, windowMs: number, tileMs: number): { tail: number; head: number } {
  return { tail: tileStart(atMs - windowMs, tileMs), head: tileStart(atMs, tileMs) };
}
