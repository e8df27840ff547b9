import { entityIdOf } from '../../core/events/extract';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Request, Response } from 'express';
import type { Pool } from 'pg';
import { z } from 'zod';
import { featureRefSchema } from '../../core/featuregroup/schema';
import { parseEventTime } from '../../core/events/values';
import type { JsonValue } from '../../core/events/path';
import { describeIssues } from '../../core/featuregroup/schema';
import { HttpError } from '../../core/http/errors';
import type { PointInTime } from '../../core/history/reader';
import { formatTime } from '../../core/time';
import type { Catalog, ServedGroup } from './catalog';
import { FeatureStatus, resolveFeature } from './online';

/** Rows are read and written in chunks of this many: memory stays flat whatever the request size. */
const CHUNK_ROWS = 2_000;
const NO_TIMESTAMP = '1970-01-01T00:00:00Z';

const headerSchema = z.object({ features: z.array(featureRefSchema).min(1).max(500) }).strict();
export const historicalRequestSchema = z
  .object({
    features: headerSchema.shape.features,
    entities: z.array(
      z.record(z.string(), z.unknown()).meta({
        description: '{<entity key>: id, timestamp: ISO-8601 or epoch ms}',
        required: ['timestamp'],
        minProperties: 2,
        maxProperties: 2,
      }),
    ),
  })
  .strict();

interface Plan {
  entityKey: string;
  features: string[];
  /** Per group: the features asked of it and their positions in the response. */
  groups: { group: ServedGroup; names: string[]; positions: number[] }[];
}

function plan(catalog: Catalog, features: string[]): Plan {
  const requested = features.map((ref, i) => resolveFeature(catalog, ref, i));
  const entityKey = requested[0]!.group.registered.spec.entity.name;
  const byGroup = new Map<ServedGroup, { names: string[]; positions: number[] }>();
  requested.forEach((r, i) => {
    if (r.group.registered.spec.entity.name !== entityKey) {
      throw new HttpError(
        404,
        'E_ENTITY_MISMATCH',
        `feature ${r.ref} is keyed by entity "${r.group.registered.spec.entity.name}", not "${entityKey}"`,
        `features.${i}`,
      );
    }
    // Aggregates too: the head of a past window comes from the aggregate log, which history keeps.
    if (!r.group.group.history.enabled) {
      throw new HttpError(
        409,
        'E_NO_HISTORY',
        `feature ${r.ref} has no history: set spec.history.enabled on its FeatureGroup`,
        `features.${i}`,
      );
    }
    const entry = byGroup.get(r.group) ?? { names: [], positions: [] };
    entry.names.push(r.feature);
    entry.positions.push(i);
    byGroup.set(r.group, entry);
  });
  return { entityKey, features, groups: [...byGroup].map(([group, e]) => ({ group, ...e })) };
}

function parseRow(
  row: unknown,
  entityKey: string,
  index: number,
): PointInTime & { key: JsonValue; timestamp: JsonValue } {
  const field = `entities.${index}`;
  if (typeof row !== 'object' || row === null || Array.isArray(row))
    throw new HttpError(400, 'E_BAD_ROW', `row ${index} must be an object`, field);
  const record = row as Record<string, JsonValue>;
  const key = record[entityKey];
  if (
    !(typeof key === 'string' && entityIdOf(key) !== undefined) &&
    !(typeof key === 'number' && Number.isSafeInteger(key))
  ) {
    throw new HttpError(
      400,
      'E_BAD_ROW',
      `row ${index} needs "${entityKey}": a non-empty string or an integer`,
      `${field}.${entityKey}`,
    );
  }
  const atMs = parseEventTime(record.timestamp);
  if (Number.isNaN(atMs))
    throw new HttpError(
      400,
      'E_BAD_ROW',
      `row ${index} needs "timestamp": ISO-8601 or epoch milliseconds`,
      `${field}.timestamp`,
    );
  return { entityId: String(key), atMs, key, timestamp: record.timestamp ?? null };
}

/** Reads one chunk of rows across the groups involved and renders each row as a JSON object. */
async function answerChunk(pool: Pool, p: Plan, rows: ReturnType<typeof parseRow>[]): Promise<string[]> {
  const width = p.features.length;
  const values: JsonValue[][] = rows.map(() => new Array<JsonValue>(width).fill(null));
  const statuses: string[][] = rows.map(() => new Array<string>(width).fill(FeatureStatus.NOT_FOUND));
  const times: string[][] = rows.map(() => new Array<string>(width).fill(NO_TIMESTAMP));
  await Promise.all(
    p.groups.map(async ({ group, names, positions }) => {
      const read = await group.historical.read(pool, rows, names);
      const ttl = group.group.ttlMs;
      read.forEach((row, r) =>
        row.forEach((found, k) => {
          if (!found) return;
          const at = positions[k]!;
          values[r]![at] = found.value;
          statuses[r]![at] =
            ttl !== undefined && rows[r]!.atMs - found.eventMs > ttl
              ? FeatureStatus.OUTSIDE_MAX_AGE
              : FeatureStatus.PRESENT;
          times[r]![at] = formatTime(found.eventMs);
        }),
      );
    }),
  );
  return rows.map((row, r) =>
    JSON.stringify({
      [p.entityKey]: row.key,
      timestamp: row.timestamp,
      values: values[r],
      statuses: statuses[r],
      event_timestamps: times[r],
    }),
  );
}

async function write(res: Response, text: string): Promise<void> {
  if (!res.write(text)) await once(res, 'drain');
}

/**
 * `POST /v1/historical-features`, point-in-time correct rows for training sets.
 * JSON in (`{features, entities: [{<entity>: id, timestamp}]}`) → JSON out (`{features, rows}`);
 * NDJSON in (a `{features}` line, then one row per line) → NDJSON out (a `{features}` line, then
 * one row per line). Either way rows are answered and written a chunk at a time, so a large set
 * never sits in memory whole. A failure after the first byte ends the response early (NDJSON: with
 * an `{"error": ...}` line) rather than let a truncated answer pass as complete.
 */
export async function historicalFeatures(
  req: Request,
  res: Response,
  pool: Pool,
  catalog: Catalog,
  maxRows: number,
): Promise<void> {
  const ndjson = /^application\/(x-)?ndjson/i.test(req.get('content-type') ?? '');
  let started = false;
  const fail = (error: unknown): never => {
    if (!started) throw error;
    if (ndjson)
      res.end(
        `${JSON.stringify({ error: error instanceof HttpError ? error.message : 'internal error; the rows above are complete, the rest were not answered' })}\n`,
      );
    else res.destroy(error as Error);
    throw error;
  };

  if (!ndjson) {
    const parsed = historicalRequestSchema.safeParse(req.body);
    if (!parsed.success)
      throw new HttpError(
        400,
        'E_BAD_REQUEST',
        describeIssues(parsed.error),
        parsed.error.issues[0]?.path.join('.') || 'body',
      );
    const p = plan(catalog, parsed.data.features);
    if (parsed.data.entities.length > maxRows)
      throw new HttpError(400, 'E_TOO_MANY_ROWS', `at most ${maxRows} rows per request`, 'entities');
    const rows = parsed.data.entities.map((row, i) => parseRow(row, p.entityKey, i));
    res.status(200).type('application/json');
    started = true;
    await write(res, `{"features":${JSON.stringify(p.features)},"rows":[`);
    try {
      for (let i = 0; i < rows.length; i += CHUNK_ROWS) {
        const lines = await answerChunk(pool, p, rows.slice(i, i + CHUNK_ROWS));
        await write(res, (i > 0 ? ',' : '') + lines.join(','));
      }
    } catch (error) {
      fail(error);
    }
    res.end(']}');
    return;
  }

  const lines = createInterface({ input: req, crlfDelay: Infinity });
  let p: Plan | undefined;
  let chunk: ReturnType<typeof parseRow>[] = [];
  let count = 0;
  try {
    for await (const line of lines) {
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new HttpError(400, 'E_BAD_BODY', `line ${count + (p ? 2 : 1)} is not JSON`, 'body');
      }
      if (!p) {
        const header = headerSchema.safeParse(value);
        if (!header.success)
          throw new HttpError(
            400,
            'E_BAD_REQUEST',
            `the first line must be {"features": [...]}: ${describeIssues(header.error)}`,
            'features',
          );
        p = plan(catalog, header.data.features);
        res.status(200).type('application/x-ndjson');
        started = true;
        await write(res, `${JSON.stringify({ features: p.features })}\n`);
        continue;
      }
      if (++count > maxRows)
        throw new HttpError(400, 'E_TOO_MANY_ROWS', `at most ${maxRows} rows per request`, 'entities');
      chunk.push(parseRow(value, p.entityKey, count - 1));
      if (chunk.length >= CHUNK_ROWS) {
        await write(res, `${(await answerChunk(pool, p, chunk)).join('\n')}\n`);
        chunk = [];
      }
    }
    if (!p)
      throw new HttpError(
        400,
        'E_BAD_REQUEST',
        'the body is empty: send a {"features": [...]} line, then one row per line',
        'body',
      );
    if (chunk.length > 0) await write(res, `${(await answerChunk(pool, p, chunk)).join('\n')}\n`);
    res.end();
  } catch (error) {
    fail(error);
  }
}
