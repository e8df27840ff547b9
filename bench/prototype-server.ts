/**
 * What a Node process on this machine can serve at best, to put serving's figures in proportion:
 *   static   node:http answering a fixed 200-byte JSON body (no framework, no database)
 *   pg       node:http + one prepared pg point lookup on the group's table, answered as
 *            GET /features/{id} answers (no Express, no catalog, no auth/metrics middleware)
 *   express  the same lookup in a bare Express app: what the framework alone costs
 *   node dist/bench/prototype-server.js static|pg   (or PROTOTYPE_MODE; PORT, DATABASE_URL, BENCH_TABLE)
 */
import { createServer, type ServerResponse } from 'node:http';
import express from 'express';
import { Pool } from 'pg';

const mode = process.argv[2] ?? process.env.PROTOTYPE_MODE;
const port = Number(process.env.PORT);
const body = JSON.stringify({
  entity_id: 'user_1',
  features: { last_action: 'click', last_page: '/p/1', last_amount: 0.01 },
  last_updated: '2026-11-26T00:00:00.000Z',
});

if (mode === 'static') {
  createServer((_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }).listen(port, '127.0.0.1');
} else if (mode === 'pg' || mode === 'express') {
  const table = process.env.BENCH_TABLE ?? '';
  if (!/^[a-z0-9_]+$/.test(table)) throw new Error('BENCH_TABLE must name the bench table');
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 8 });
  const query = {
    name: 'proto_read',
    text: `SELECT entity_id, last_action, last_action__ts, last_page, last_page__ts, last_amount, last_amount__ts FROM features."${table}" WHERE entity_id = $1`,
    rowMode: 'array' as const,
  };
  const answer = (id: string, res: ServerResponse): void => {
    pool.query({ ...query, values: [id] }).then(
      (result) => {
        const row = result.rows[0] as unknown[] | undefined;
        const out = row
          ? JSON.stringify({
              entity_id: row[0],
              features: { last_action: row[1], last_page: row[3], last_amount: row[5] },
              last_updated: (row[2] as Date).toISOString(),
            })
          : JSON.stringify({ detail: `No features found for entity_id=${id}` });
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
  if (mode === 'pg') {
    createServer((req, res) => answer(decodeURIComponent((req.url ?? '').slice('/features/'.length)), res)).listen(
      port,
      '127.0.0.1',
    );
  } else {
    const app = express();
    app.get('/features/:entityId', (req, res) => answer(req.params.entityId, res));
    app.listen(port, '127.0.0.1');
  }
} else {
  console.error('usage: node dist/bench/prototype-server.js static|pg|express');
  process.exit(2);
}
