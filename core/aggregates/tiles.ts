import { parseDuration } from '../featuregroup/duration';
import type { Aggregate, Feature, FeatureGroupSpec } from '../featuregroup/schema';

/**
 * Window aggregates are kept as partial aggregates in event-time tiles and combined at read time.
 *
 * Semantics (the same online and for point-in-time reads, so training sees what serving served):
 * the value at time T of an aggregate with window W and tile size S covers the events whose tile
 * lies in [E − W, E), where E = floor(T / S) · S is the end of the last tile that closed at or
 * before T. Events of the tile still open at T are not included yet: a value moves forward once
 * per tile (S ≤ W / 60), never sees an event after T, and never changes for a past T. This is
 * Tecton's aggregation_interval behaviour; it trades up to S of staleness for exact, leak-free,
 * replay-stable values.
 */

/** Tile sizes to choose from: the largest one at most W/60 (and at least 1 s) is used. */
const TILE_SIZES_MS = [1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400].map((s) => s * 1000);

export function tileSizeFor(windowMs: number): number {
  const target = windowMs / 60;
  let chosen = TILE_SIZES_MS[0]!;
  for (const size of TILE_SIZES_MS) if (size <= target) chosen = size;
  return chosen;
}

export const tileStart = (timeMs: number, tileMs: number): number => Math.floor(timeMs / tileMs) * tileMs;

/** The tile starts [from, to) an aggregate covers at time `atMs`. */
export function windowBounds(atMs: number, windowMs: number, tileMs: number): { from: number; to: number } {
  const to = tileStart(atMs, tileMs);
  return { from: to - windowMs, to };
}

export interface AggregateFeature {
  /** Index among the group's aggregate features (order of the spec). */
  index: number;
  name: string;
  type: Feature['type'];
  fn: Aggregate['fn'];
  field: string | undefined;
  windowMs: number;
  tileMs: number;
  /** last_n only: how many values are kept. */
  limit: number;
  where: Aggregate['where'];
}

export function aggregateFeatures(spec: FeatureGroupSpec): AggregateFeature[] {
  return spec.features
    .filter((f): f is Feature & { aggregate: Aggregate } => f.aggregate !== undefined)
    .map((f, index) => {
      const windowMs = parseDuration(f.aggregate.window);
      return {
        index,
        name: f.name,
        type: f.type,
        fn: f.aggregate.fn,
        field: f.aggregate.field,
        windowMs,
        tileMs: tileSizeFor(windowMs),
        limit: f.aggregate.limit ?? 0,
        where: f.aggregate.where,
      };
    });
}
