import { z } from 'zod';
import {
  compileExtractor,
  entityIdOf,
  ENTITY_ID_RULE,
  type Extraction,
  type RawRecord,
} from '../../core/events/extract';
import { isJsonObject, type JsonObject, type JsonValue } from '../../core/events/path';
import { describeIssues, parseGroupId } from '../../core/featuregroup/schema';
import { HttpError } from '../../core/http/errors';
import type { OutgoingEvent, Publisher } from '../../core/kafka-publisher';
import type { Catalog, ServedGroup } from './catalog';

/**
 * Feast's writes, on the base URL its SDK uses for a `remote` online store:
 * - `POST /write-to-online-store {feature_view_name, df}`: what the SDK sends for both
 *   `store.write_to_online_store(...)` and `store.push(..., to=ONLINE)`;
 * - `POST /push {push_source_name, df, to}`: Feast's feature-server push.
 * `df` is column-major (`{column: [values]}`). The view or push source is the group's reference
 * name (`group`, or `namespace/group`). Each row becomes one raw event of the group's own shape:
 * the join key column (the group's `entity.name`) at `entity.keyField`, `event_timestamp` at
 * `source.eventTimeField` (or as the Kafka record time), each value feature's column at its `from`
 * path, and the group's filter satisfied. The events go to the group's topic keyed by the entity,
 * the path every event takes, so event-time ordering, history, aggregates and exactly-once apply.
 * Rows are checked by the group's own extractor first: a bad row fails the request and nothing is
 * written. The answer comes only once Kafka has acknowledged every event.
 */

const frame = z
  .record(z.string().max(256), z.array(z.json()).max(100_000))
  .meta({ description: 'column-major rows: {column: [values]}' });

export const writeToOnlineStoreSchema = z
  .object({
    feature_view_name: z.string().min(1).max(600),
    df: frame,
    allow_registry_cache: z.boolean().optional(),
    transform_on_write: z.boolean().optional(),
  })
  .loose();

export const pushSchema = z
  .object({
    push_source_name: z.string().min(1).max(600),
    df: frame,
    /** `offline` is answered apart, with why (there is no separate offline store). */
    to: z.enum(['online', 'online_and_offline']).optional(),
    allow_registry_cache: z.boolean().optional(),
    transform_on_write: z.boolean().optional(),
  })
  .loose();

/** Feast's name for the event time column; the group's own event time field name is read too. */
const FEAST_TIMESTAMP_COLUMN = 'event_timestamp';
/** ISO-8601 without an offset: Feast writes UTC times this way (`2026-01-02T03:04:05.678000`). */
const NAIVE_ISO = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new HttpError(
      400,
      'E_BAD_REQUEST',
      describeIssues(parsed.error),
      parsed.error.issues[0]?.path.join('.') || 'body',
    );
  }
  return parsed.data;
}

function groupNamed(catalog: Catalog, name: string, field: string): ServedGroup {
  let id: string;
  try {
    const ref = parseGroupId(name);
    id = `${ref.namespace}/${ref.name}`;
  } catch {
    throw new HttpError(
      404,
      'E_UNKNOWN_GROUP',
      `no feature group is named ${JSON.stringify(name.slice(0, 100))}`,
      field,
    );
  }
  const group = catalog.get(id);
  if (!group)
    throw new HttpError(
      404,
      'E_UNKNOWN_GROUP',
      `no feature group is named ${JSON.stringify(name.slice(0, 100))} (views and push sources are group names: "group" or "namespace/group")`,
      field,
    );
  return group;
}

function setPath(event: JsonObject, path: string, value: JsonValue): void {
  const keys = path.split('.');
  let node = event;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next !== null && typeof next === 'object' && !Array.isArray(next)) node = next;
    else node = node[key] = {};
  }
  node[keys[keys.length - 1]!] = value;
}

/** ISO text as Feast means it: without an offset, UTC. */
const utcText = (text: string): string => (NAIVE_ISO.test(text) ? `${text.replace(' ', 'T')}Z` : text);

/** Event time in epoch ms from a frame cell: ISO text (UTC when it has no offset) or epoch ms. */
function timeOf(cell: JsonValue | undefined): number {
  if (typeof cell === 'string') return Date.parse(utcText(cell));
  return typeof cell === 'number' && Number.isFinite(cell) ? Math.floor(cell) : NaN;
}

/**
 * A timestamp feature's cell as Feast sends it: a UnixTimestamp is epoch seconds (its proto's
 * int64), text without an offset is UTC. Anything else goes to the extractor as it came.
 */
function feastTime(cell: JsonValue): JsonValue {
  if (typeof cell === 'number' && Number.isFinite(cell)) return new Date(cell * 1000).toISOString();
  return typeof cell === 'string' ? utcText(cell) : cell;
}

const extractors = new WeakMap<ServedGroup, (record: RawRecord) => Extraction>();

/** The frame's rows as the group's raw events, each checked by the group's extractor. */
export function eventsFromFrame(group: ServedGroup, df: Record<string, JsonValue[]>, field: string): OutgoingEvent[] {
  const { spec, values, aggregates } = group.group;
  const joinKey = spec.entity.name;
  const ids = df[joinKey];
  if (!ids)
    throw new HttpError(
      400,
      'E_BAD_FRAME',
      `df needs the join key column "${joinKey}" (the group's entity.name)`,
      `${field}.${joinKey}`,
    );
  const rows = ids.length;
  for (const [column, cells] of Object.entries(df)) {
    if (cells.length !== rows)
      throw new HttpError(
        400,
        'E_BAD_FRAME',
        `df column "${column}" has ${cells.length} values, "${joinKey}" has ${rows}`,
        `${field}.${column}`,
      );
  }
  const computed = aggregates.filter((a) => a.name in df).map((a) => a.name);
  if (computed.length > 0) {
    throw new HttpError(
      400,
      'E_NOT_WRITABLE',
      `df writes window aggregates (${computed.join(', ')}): they are computed from events, write the events' fields instead`,
      `${field}.${computed[0]!}`,
    );
  }
  const timeField = spec.source.eventTimeField;
  const timeColumn = [FEAST_TIMESTAMP_COLUMN, ...(timeField ? [timeField] : [])].find((c) => c in df);
  if (!timeColumn)
    throw new HttpError(
      400,
      'E_BAD_FRAME',
      `df needs an event time column "${FEAST_TIMESTAMP_COLUMN}"`,
      `${field}.${FEAST_TIMESTAMP_COLUMN}`,
    );
  const written = values.filter((f) => f.name in df);
  if (written.length === 0)
    throw new HttpError(
      400,
      'E_BAD_FRAME',
      `df has no column of a value feature of ${group.group.refName} (${values.map((f) => f.name).join(', ')})`,
      field,
    );

  let extract = extractors.get(group);
  if (!extract) extractors.set(group, (extract = compileExtractor(group.group)));
  const filter = spec.source.filter;
  const events: OutgoingEvent[] = [];
  for (let row = 0; row < rows; row++) {
    const where = `${field}.${joinKey}.${row}`;
    const rawId = ids[row];
    const entityId = typeof rawId === 'number' || typeof rawId === 'string' ? entityIdOf(rawId) : undefined;
    if (entityId === undefined)
      throw new HttpError(400, 'E_BAD_ENTITY_ID', `row ${row}: the ${joinKey} must be ${ENTITY_ID_RULE}`, where);
    const timeMs = timeOf(df[timeColumn]![row]);
    if (Number.isNaN(timeMs))
      throw new HttpError(
        400,
        'E_BAD_FRAME',
        `row ${row}: ${timeColumn} must be an ISO-8601 time or epoch ms`,
        `${field}.${timeColumn}.${row}`,
      );
    const event: JsonObject = {};
    setPath(event, spec.entity.keyField, rawId!);
    if (timeField) setPath(event, timeField, new Date(timeMs).toISOString());
    if (filter) setPath(event, filter.field, filter.equals ?? filter.in![0]!);
    for (const feature of written) {
      const cell = df[feature.name]![row];
      if (cell === null || cell === undefined) continue;
      setPath(event, feature.from, feature.type === 'timestamp' ? feastTime(cell) : cell);
    }
    const value = JSON.stringify(event);
    const outcome = extract({ value: Buffer.from(value), timestamp: timeMs });
    if (outcome.kind === 'invalid') throw new HttpError(400, 'E_BAD_FRAME', `row ${row}: ${outcome.reason}`, where);
    if (outcome.kind === 'skipped')
      throw new HttpError(400, 'E_BAD_FRAME', `row ${row}: the group's filter skips it`, where);
    events.push({ key: entityId, value, ...(timeField ? {} : { timestamp: timeMs }) });
  }
  return events;
}

export interface WriteOutcome {
  status: 'success';
  /** Events handed to Kafka (and acknowledged by it). */
  written: number;
}

export async function writeFrame(
  publisher: Publisher | undefined,
  catalog: Catalog,
  body: unknown,
  kind: 'write' | 'push',
): Promise<WriteOutcome> {
  let group: ServedGroup;
  let df: Record<string, JsonValue[]>;
  if (kind === 'write') {
    const request = parse(writeToOnlineStoreSchema, body);
    group = groupNamed(catalog, request.feature_view_name, 'feature_view_name');
    df = request.df;
  } else {
    if (isJsonObject(body) && body.to === 'offline') {
      throw new HttpError(
        400,
        'E_OFFLINE_UNSUPPORTED',
        'there is no separate offline store: push to "online" (history, where enabled, keeps what point-in-time reads need)',
        'to',
      );
    }
    const request = parse(pushSchema, body);
    group = groupNamed(catalog, request.push_source_name, 'push_source_name');
    df = request.df;
  }
  const events = eventsFromFrame(group, df, 'df');
  if (!publisher) {
    throw new HttpError(503, 'E_WRITES_DISABLED', 'writes need Kafka: serving runs without KAFKA_BROKERS', undefined, {
      'Retry-After': '30',
    });
  }
  try {
    await publisher.publish(group.group.spec.source.topic, events);
  } catch {
    throw new HttpError(
      503,
      'E_BROKER_UNAVAILABLE',
      'events could not be handed to Kafka; nothing was written, retry later',
      undefined,
      { 'Retry-After': '5' },
    );
  }
  return { status: 'success', written: events.length };
}
