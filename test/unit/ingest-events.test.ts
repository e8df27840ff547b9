import { compilePath } from '../../core/events/path';
import { formatOf, parseEvents } from '../../services/ingest/events';
import { HttpError } from '../../core/http/errors';
import { backoffDelay } from '../../core/retry';

const limits = { maxEventBytes: 100, maxEvents: 3 };
const parse = (text: string, format: 'json' | 'ndjson' = 'json') =>
  parseEvents(Buffer.from(text), format, limits, compilePath('entity_id'));

function httpError(fn: () => unknown): HttpError {
  try {
    fn();
  } catch (error) {
    if (error instanceof HttpError) return error;
  }
  throw new Error('expected an HttpError');
}

describe('ingest body parsing', () => {
  it('accepts one event, keeping its bytes, keyed by the entity field', () => {
    expect(parse('{"entity_id":"u1","a":1}')).toEqual({
      events: [{ key: 'u1', value: '{"entity_id":"u1","a":1}' }],
      rejected: [],
    });
  });

  it('accepts an array and rejects its non-objects by index', () => {
    const result = parse('[{"entity_id":5},1,{"x":"y"}]');
    expect(result.events).toEqual([
      { key: '5', value: '{"entity_id":5}' },
      { key: null, value: '{"x":"y"}' },
    ]);
    expect(result.rejected).toEqual([{ index: 1, reason: 'event must be a JSON object' }]);
  });

  it('reads NDJSON line by line, rejecting only the bad lines', () => {
    const result = parse('{"entity_id":"a"}\nnot json\n\n{"entity_id":"b"}\n', 'ndjson');
    expect(result.events.map((e) => e.key)).toEqual(['a', 'b']);
    expect(result.rejected[0]).toMatchObject({ index: 1 });
  });

  it('rejects oversized events and too many events', () => {
    expect(parse(`{"entity_id":"${'x'.repeat(200)}"}`).rejected[0]?.reason).toMatch(/exceeds 100 bytes/);
    // A count, not a size: the request's shape is wrong (400), as schemathesis and the OpenAPI document say.
    expect(httpError(() => parse('[{},{},{},{}]')).status).toBe(400);
  });

  it('answers 400 for unreadable bodies and 415 for other media types', () => {
    expect(httpError(() => parse('{oops')).code).toBe('E_INVALID_JSON');
    expect(httpError(() => parse('')).code).toBe('E_EMPTY_BODY');
    expect(httpError(() => formatOf('text/csv')).status).toBe(415);
    expect(formatOf('application/json; charset=utf-8')).toBe('json');
    expect(formatOf('application/x-ndjson')).toBe('ndjson');
  });
});

describe('backoffDelay', () => {
  it('grows exponentially with jitter and stays under the cap', () => {
    const options = { initialMs: 100, maxMs: 1_000 };
    expect(backoffDelay(0, options, () => 0)).toBe(50);
    expect(backoffDelay(0, options, () => 1)).toBe(100);
    expect(backoffDelay(3, options, () => 1)).toBe(800);
    expect(backoffDelay(50, options, () => 1)).toBe(1_000);
  });
});
