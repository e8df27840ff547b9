import { jsonDepth, MAX_JSON_DEPTH } from '../../core/events/depth';
import type { OutgoingEvent } from '../../core/kafka-publisher';
import { HttpError } from '../../core/http/errors';
import { isJsonObject, type JsonObject, type JsonValue } from '../../core/events/path';

export interface Rejection {
  index: number;
  reason: string;
}

export interface ParsedEvents {
  events: OutgoingEvent[];
  rejected: Rejection[];
}

export interface EventLimits {
  maxEventBytes: number;
  maxEvents: number;
}

type BodyFormat = 'json' | 'ndjson';

export function formatOf(contentType: string | undefined): BodyFormat {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  if (type === 'application/x-ndjson' || type === 'application/jsonl' || type === 'application/x-jsonlines')
    return 'ndjson';
  throw new HttpError(
    415,
    'E_UNSUPPORTED_MEDIA_TYPE',
    `Content-Type ${type || '(none)'} is not supported: send application/json (one event or an array) or application/x-ndjson`,
    'content-type',
  );
}

/**
 * Splits a request body into Kafka-ready events. A body that cannot be read at all is a 400; an
 * individual bad event is rejected with its index and reason while the others go through.
 */
/** `getKey`: the entity key of the topic's groups (see topicRouting): the record's Kafka key. */
export function parseEvents(
  body: Buffer,
  format: BodyFormat,
  limits: EventLimits,
  getKey: (event: JsonObject) => JsonValue | undefined,
): ParsedEvents {
  if (body.length === 0) throw new HttpError(400, 'E_EMPTY_BODY', 'request body is empty', 'body');
  const result: ParsedEvents = { events: [], rejected: [] };
  const accept = (index: number, value: JsonValue, text: string): void => {
    if (!isJsonObject(value)) return void result.rejected.push({ index, reason: 'event must be a JSON object' });
    if (Buffer.byteLength(text) > limits.maxEventBytes) {
      return void result.rejected.push({ index, reason: `event exceeds ${limits.maxEventBytes} bytes` });
    }
    result.events.push({ key: keyOf(getKey(value)), value: text });
  };

  const text = body.toString('utf8');
  if (format === 'json') {
    // An array of events is one level more than each event may have.
    if (jsonDepth(text, MAX_JSON_DEPTH + 1) > MAX_JSON_DEPTH + 1) {
      throw new HttpError(400, 'E_TOO_DEEP', `body nests deeper than ${MAX_JSON_DEPTH} levels per event`, 'body');
    }
    let parsed: JsonValue;
    try {
      parsed = JSON.parse(text) as JsonValue;
    } catch (error) {
      throw new HttpError(400, 'E_INVALID_JSON', `body is not valid JSON: ${(error as Error).message}`, 'body');
    }
    if (Array.isArray(parsed)) {
      checkCount(parsed.length, limits.maxEvents);
      parsed.forEach((event, index) => accept(index, event, JSON.stringify(event)));
    } else {
      accept(0, parsed, text);
    }
    return result;
  }
  let index = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    checkCount(index + 1, limits.maxEvents);
    if (jsonDepth(line, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
      result.rejected.push({ index: index++, reason: `event nests deeper than ${MAX_JSON_DEPTH} levels` });
      continue;
    }
    try {
      accept(index, JSON.parse(line) as JsonValue, line);
    } catch (error) {
      result.rejected.push({ index, reason: `line is not valid JSON: ${(error as Error).message}` });
    }
    index++;
  }
  return result;
}

function checkCount(count: number, max: number): void {
  if (count > max) throw new HttpError(400, 'E_TOO_MANY_EVENTS', `at most ${max} events per request`, 'body');
}

function keyOf(value: JsonValue | undefined): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}
