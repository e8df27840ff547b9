/**
 * What a Node process on this machine can serve at best, to put serving's figures in proportion:
 *   static   node:http answering a fixed 200-byte JSON body (no framework, no database)
 *   pg       node:http + one prepared pg lookup joining the groups' tables on the entity id,
 *            answered as GET /features/{id} answers (no Express, no catalog, no auth/metrics
 *            middleware, timestamps as pg parses them)
 *   express  the same lookup in a bare Express app, started as usual (app.listen)
 *   express-server  the same app served by core/http/express-server.ts, as ours is
 *   node dist/bench/prototype-server.js static|pg|express|express-server
 *   (or PROTOTYPE_MODE; PORT, DATABASE_URL, BENCH_TABLES)
 * Every mode also answers its garbage collector's figures on PORT + 1 (GET, JSON), counted by a
 * PerformanceObserver, so the bench reads them as it reads serving's /metrics.
 */
import { createServer, type ServerResponse } from 'node:http';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import express from 'express';
import { Pool } from 'pg';
import { createExpressServer } from '../core/http/express-server';

const mode = process.argv[2] ?? process.env.PROTOTYPE_MODE;
const port = Number(process.env.PORT);
const body = JSON.stringify({
  entity_id: 'user_1',
  features: { last_action: 'click', last_page: '/p/1', last_amount: 0.01 },
  last_updated: '2026-11-26T00:00:00.000Z',
});

const gc = { minor: 0, minor_ms: 0, major: 0, major_ms: 0, other: 0, other_ms: 0, over_10ms: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
    const key =
      kind === constants.NODE_PERFORMANCE_GC_MINOR
        ? 'minor'
        : kind === constants.NODE_PERFORMANCE_GC_MAJOR
          ? 'major'
          : 'other';
    gc[key]++;
    gc[`${key}_ms`] += entry.duration;
    if (entry.duration > 10) gc.over_10ms++;
  }
}).observe({ entryTypes: ['gc'] });
createServer((_req, res) => res.end(JSON.stringify(gc))).listen(port + 1, '127.0.0.1');

if (mode === 'static') {
  createServer((_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }).listen(port, '127.0.0.1');
} else if (mode === 'pg' || mode === 'express' || mode === 'express-server') {
  // The groups' tables (BENCH_TABLES, comma-separated): one lookup joins them all on the entity id,
  // as a hand-written query, and the answer is built from the columns as they arrive.
  const tables = (process.env.BENCH_TABLES ?? '').split(',');
  if (!tables.every((t) => /^[a-z0-9_]+$/.test(t))) throw new Error('BENCH_TABLES must name the bench tables');
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 8 });
  let query: { name: string; text: string; rowMode: 'array' } | undefined;
  const columns: { name: string; time: number; value: number }[] = [];
  const ready = (async () => {
    const found = await pool.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns
       WHERE table_schema = 'features' AND table_name = ANY($1) AND column_name <> 'entity_id' AND column_name NOT LIKE '%\\_\\_%'
       ORDER BY array_position($1, table_name::text), ordinal_position`,
      [tables],
    );
    const select: string[] = [];
    for (const { table_name, column_name } of found.rows) {
      const t = `t${tables.indexOf(table_name)}`;
      columns.push({ name: column_name, value: select.length, time: select.length + 1 });
      select.push(`${t}."${column_name}"`, `${t}."${column_name}__ts"`);
    }
    const joins = tables.map((t, i) => `LEFT JOIN features."${t}" t${i} ON t${i}.entity_id = k.id`).join(' ');
    const any = tables.map((_, i) => `t${i}.entity_id IS NOT NULL`).join(' OR ');
    query = {
      name: 'proto_read',
      text: `SELECT ${select.join(', ')} FROM (SELECT $1::text AS id) k ${joins} WHERE ${any}`,
      rowMode: 'array',
    };
  })();
  const answer = (id: string, res: ServerResponse): void => {
    pool.query({ ...query!, values: [id] }).then(
      (result) => {
        const row = result.rows[0] as unknown[] | undefined;
        let out: string;
        if (row) {
          const features: Record<string, unknown> = {};
          let newest = 0;
          for (const c of columns) {
            const time = row[c.time] as Date | null;
            if (time === null) continue;
            features[c.name] = row[c.value];
            newest = Math.max(newest, time.getTime());
          }
          out = JSON.stringify({ entity_id: id, features, last_updated: new Date(newest).toISOString() });
        } else out = JSON.stringify({ detail: `No features found for entity_id=${id}` });
        res.writeHead(row ? 200 : 404, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(out),
        });
        res.end(out);
      },
      () => {
        res.writeHead(503).end();
      },
    );
  };
  const listen = (start: () => void) =>
    ready.then(start, (error: unknown) => {
      console.error(`prototype failed to read the tables: ${(error as Error).message}`);
      process.exit(1);
    });
  void listen(() => {
    if (mode === 'pg') {
      createServer((req, res) => answer(decodeURIComponent((req.url ?? '').slice('/features/'.length)), res)).listen(
        port,
        '127.0.0.1',
      );
    } else {
      const app = express();
      app.get('/features/:entityId', (req, res) => answer(req.params.entityId, res));
      if (mode === 'express') app.listen(port, '127.0.0.1');
      else createExpressServer(app).listen(port, '127.0.0.1');
    }
  });
} else {
  console.error('usage: node dist/bench/prototype-server.js static|pg|express|express-server');
  process.exit(2);
}
