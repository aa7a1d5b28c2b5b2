/**
 * A commit of the event log that holds the hub's thread for 250 ms or more is logged as 'slow
 * commit' (src/hub/messaging/eventLogWriter.ts): while it runs, every connection waits. Made slow
 * here the way a real one is: SQLite waits for the write lock, held by another connection to the
 * same database (a thread of its own, as the hub's checkpoint thread is), for a second.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/index.js';
import { EventLogWriter } from '../src/hub/messaging/eventLogWriter.js';

/** Well past the 250 ms threshold, so that a late start of the append on a busy machine still waits past it. */
const HOLD_MS = 1000;

describe('event log writer: slow commits are logged', () => {
  let dir: string;
  let store: SqliteStore;
  let writer: EventLogWriter;
  const lines: { msg: string; level: number; events?: number; ms?: number }[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleethub-slowcommit-'));
    store = openSqliteStore(join(dir, 'fleethub.db'));
    await store.eventLog.ensurePartitions(2);
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    writer = new EventLogWriter(store.eventLog, pino({ level: 'info' }, sink));
  });
  after(async () => {
    await writer.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const event = (partition: number) => ({ partition, enqueuedTime: Date.now(), body: Buffer.from('x'), systemProperties: {}, properties: {} });
  const slowCommits = () => lines.filter((l) => l.msg === 'slow commit');

  test('a commit that waited for the write lock is logged with its events and time; a quick one is not', async () => {
    await writer.append(event(0));
    assert.equal(slowCommits().length, 0, 'a quick commit is not logged');

    // Another connection takes the write lock and keeps it for HOLD_MS, in a thread of its own.
    const holder = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const Database = require('better-sqlite3');
       const db = new Database(workerData.path);
       db.exec('BEGIN IMMEDIATE');
       parentPort.postMessage('holding');
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, workerData.holdMs);
       db.exec('COMMIT');
       db.close();`,
      { eval: true, workerData: { path: join(dir, 'fleethub.db'), holdMs: HOLD_MS } },
    );
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    await new Promise((resolve, reject) => holder.once('message', resolve).once('error', reject));
    const started = performance.now();
    const stored = await Promise.all([writer.append(event(0)), writer.append(event(1))]);
    const took = performance.now() - started;
    await exited;

    assert.ok(took >= 250, `the commit waited for the lock (${took.toFixed(0)} ms)`);
    assert.deepEqual(
      stored.map((s) => [s.partition, s.sequenceNumber]),
      [
        [0, 1],
        [1, 0],
      ],
      'both committed, after the wait',
    );
    const logged = slowCommits();
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.level, 40, 'at warn');
    assert.equal(logged[0]!.events, 2);
    assert.ok(logged[0]!.ms! >= 250 && logged[0]!.ms! <= took + 1, `its time: ${logged[0]!.ms} ms of ${took.toFixed(0)}`);

    await writer.append(event(1));
    assert.equal(slowCommits().length, 1, 'the next, quick, commit is not logged');
  });
});
