/**
 * The thread of QueryThread (queryThread.ts): a read-only connection to the hub's database that
 * runs the SELECTs the query store compiles, so that a query over a large fleet (a COUNT() ...
 * GROUP BY scans every twin) does not hold the hub's event loop. WAL lets it read while the hub
 * commits; each statement reads the last commit made before it started, which is every write the
 * hub acknowledged before the query was asked.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from './database.js';
import type { QueryRequest, QueryReply, Row } from './queryThread.js';

const { path, maxStatements } = workerData as { path: string; maxStatements: number };
const port = parentPort!;
const db = open();
const statements = new Map<string, { all(...params: unknown[]): unknown[] }>();

function open(): ReturnType<typeof openDatabase> {
  try {
    return openDatabase(path, { readonly: true });
  } catch (e) {
    // An Error of its own: SqliteError reaches the hub's thread without its message.
    throw new Error(`the query thread cannot open the database: ${(e as Error).message}`);
  }
}

port.on('message', (m: QueryRequest | 'stop') => {
  if (m === 'stop') {
    db.close();
    port.close();
    return;
  }
  let reply: QueryReply;
  try {
    let stmt = statements.get(m.sql);
    if (!stmt) {
      stmt = db.prepare(m.sql);
      if (statements.size >= maxStatements) statements.delete(statements.keys().next().value!);
      statements.set(m.sql, stmt);
    }
    reply = { id: m.id, rows: stmt.all(...m.params) as Row[] };
  } catch (e) {
    const error = e as Error & { code?: string };
    reply = { id: m.id, error: { message: error.message, code: error.code } };
  }
  port.postMessage(reply);
});
