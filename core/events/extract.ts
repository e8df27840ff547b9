import { jsonDepth, MAX_JSON_DEPTH } from './depth';
import type { AggregateFeature, CompiledGroup } from '../featuregroup/compiled';
import type { Predicate } from '../featuregroup/schema';
import { compilePath, isJsonObject, type JsonObject, type JsonValue } from './path';
import { convertValue, MAX_TIME_MS, MIN_TIME_MS, parseEventTime, textProblem, type StoredValue } from './values';

const TIME_RANGE = `[${new Date(MIN_TIME_MS).toISOString()}, ${new Date(MAX_TIME_MS).toISOString()}]`;

/** One Kafka record as the extractor sees it. */
export interface RawRecord {
  value: Buffer | null;
  /** The record's Kafka timestamp, epoch milliseconds. */
  timestamp: number;
}

export interface ExtractedEvent {
  entityId: string;
  eventTimeMs: number;
  /** Aligned with the group's `values`; undefined where the event does not carry the feature. */
  values: (StoredValue | undefined)[];
  /**
   * Aligned with the group's `aggregates`; undefined where the event does not count. count: 1;
   * sum/avg/min/max: the number as exact decimal text (timestamps as epoch ms); last_n: JSON text.
   */
  contributions: (string | undefined)[];
}

/**
 * An event with its Kafka offset. Offsets are int64; they are handled as JS numbers, exact below
 * 2^53 (a partition would need nine quadrillion records to pass it), which keeps BigInt off the
 * per-event path.
 */
export interface OffsetEvent {
  offset: number;
  event: ExtractedEvent;
}

export type Extraction =
  { kind: 'event'; event: ExtractedEvent } | { kind: 'skipped' } | { kind: 'invalid'; reason: string };

/**
 * Entity ids are keys of every group table's primary-key index, whose entries Postgres caps at
 * about 2.7 kB: the limit is on UTF-8 bytes, well within it.
 */
export const MAX_ENTITY_ID_BYTES = 1024;
export const ENTITY_ID_RULE = `a non-empty string of at most ${MAX_ENTITY_ID_BYTES} UTF-8 bytes, without U+0000 or lone surrogates, or a safe integer`;
/** A UTF-16 unit is at most 3 UTF-8 bytes (a surrogate pair, two units, is 4): shorter ids need no byte count. */
const SURELY_SHORT = Math.floor(MAX_ENTITY_ID_BYTES / 3);

function compilePredicate(predicate: Predicate): (event: JsonObject) => boolean {
  const get = compilePath(predicate.field);
  if (predicate.in !== undefined) {
    const allowed = new Set<JsonValue>(predicate.in);
    return (event) => allowed.has(get(event) ?? null);
  }
  const expected = predicate.equals;
  return (event) => get(event) === expected;
}

/** What one event adds to one aggregate, or why it cannot be counted. */
function compileContribution(
  feature: AggregateFeature,
): (event: JsonObject) => { ok: true; value: string | undefined } | { ok: false; reason: string } {
  const passes = feature.where ? compilePredicate(feature.where) : () => true;
  const get = feature.field ? compilePath(feature.field) : undefined;
  const label = `aggregate ${feature.name}`;
  return (event) => {
    if (!passes(event)) return { ok: true, value: undefined };
    if (feature.fn === 'count' && get === undefined) return { ok: true, value: '1' };
    const raw = get?.(event);
    if (raw === undefined || raw === null) return { ok: false, reason: `${label}: field ${feature.field} is missing` };
    if (feature.fn === 'count') return { ok: true, value: '1' };
    if (feature.fn === 'last_n') {
      const converted = convertValue('json', raw);
      return converted.ok
        ? { ok: true, value: converted.value as string }
        : { ok: false, reason: `${label}: ${converted.reason}` };
    }
    if (feature.type === 'timestamp') {
      const ms = parseEventTime(raw);
      return Number.isNaN(ms)
        ? { ok: false, reason: `${label}: field ${feature.field} is not a timestamp` }
        : { ok: true, value: String(ms) };
    }
    const converted = convertValue(feature.type === 'int64' && feature.fn !== 'avg' ? 'int64' : 'float64', raw);
    return converted.ok
      ? { ok: true, value: String(converted.value) }
      : { ok: false, reason: `${label}: field ${feature.field}: ${converted.reason}` };
  };
}

/** The value as an entity id if it can be one (ENTITY_ID_RULE): what text and the primary-key index hold as given. */
export function entityIdOf(value: JsonValue | undefined): string | undefined {
  if (typeof value === 'string') {
    if (value.length === 0 || (value.length > SURELY_SHORT && Buffer.byteLength(value, 'utf8') > MAX_ENTITY_ID_BYTES))
      return undefined;
    return textProblem(value) === undefined ? value : undefined;
  }
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

/**
 * Compiles a group's spec into a function from a Kafka record to its typed feature values.
 * Everything derivable from the spec is done here once, not per event.
 */
export function compileExtractor(group: CompiledGroup): (record: RawRecord) => Extraction {
  const { spec } = group;
  const getKey = compilePath(spec.entity.keyField);
  const getTime = spec.source.eventTimeField ? compilePath(spec.source.eventTimeField) : undefined;
  const passes = spec.source.filter ? compilePredicate(spec.source.filter) : () => true;
  const features = group.values.map((f) => ({ name: f.name, type: f.type, get: compilePath(f.from) }));
  const aggregates = group.aggregates.map(compileContribution);
  const keyField = spec.entity.keyField;
  const timeField = spec.source.eventTimeField;

  return (record) => {
    if (record.value === null || record.value.length === 0) return { kind: 'invalid', reason: 'empty record value' };
    const text = record.value.toString('utf8');
    if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH)
      return { kind: 'invalid', reason: `value nests deeper than ${MAX_JSON_DEPTH} levels` };
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return { kind: 'invalid', reason: `value is not JSON: ${(error as Error).message}` };
    }
    if (!isJsonObject(parsed)) return { kind: 'invalid', reason: 'value is not a JSON object' };
    if (!passes(parsed)) return { kind: 'skipped' };

    const entityId = entityIdOf(getKey(parsed));
    if (entityId === undefined) {
      return { kind: 'invalid', reason: `entity key ${keyField} is missing or not ${ENTITY_ID_RULE}` };
    }
    const eventTimeMs = getTime ? parseEventTime(getTime(parsed)) : parseEventTime(record.timestamp);
    if (Number.isNaN(eventTimeMs)) {
      return {
        kind: 'invalid',
        reason: getTime
          ? `event time ${timeField} is missing or not ISO-8601/epoch ms in ${TIME_RANGE}`
          : `record timestamp ${record.timestamp} is not epoch ms in ${TIME_RANGE}`,
      };
    }
    const values: (StoredValue | undefined)[] = new Array<StoredValue | undefined>(features.length);
    for (let i = 0; i < features.length; i++) {
      const feature = features[i]!;
      const raw = feature.get(parsed);
      if (raw === undefined || raw === null) continue;
      const converted = convertValue(feature.type, raw);
      if (!converted.ok) return { kind: 'invalid', reason: `feature ${feature.name}: ${converted.reason}` };
      values[i] = converted.value;
    }
    const contributions: (string | undefined)[] = new Array<string | undefined>(aggregates.length);
    for (let i = 0; i < aggregates.length; i++) {
      const contribution = aggregates[i]!(parsed);
      if (!contribution.ok) return { kind: 'invalid', reason: contribution.reason };
      contributions[i] = contribution.value;
    }
    return { kind: 'event', event: { entityId, eventTimeMs, values, contributions } };
  };
}
