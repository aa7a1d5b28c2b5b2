/**
 * Checkpoints of the hub's database in a thread of their own (src/store/sqlite/checkpoints.ts):
 * the database file receives the log's pages while the hub's connection, whose own checkpoints
 * wait for a much longer log, checkpoints nothing; stop() hands checkpoints back to it. The thread
 * copies a batch of pages at a time (or pages that waited long enough), not at every tick: each
 * checkpoint that empties the log costs the hub's thread an fsync at its next write.
 */
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { startBackgroundCheckpoints } from '../src/store/sqlite/checkpoints.js';
import { eventually } from './support/devices.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A store with 4 partitions and ~2 MiB of events appended (~500 pages in the log). */
async function filledStore() {
  const dir = mkdtempSync(join(tmpdir(), 'fleethub-checkpoints-'));
  dirs.push(dir);
  const path = join(dir, 'fleethub.db');
  const store = openSqliteStore(path);
  await store.eventLog.ensurePartitions(4);
  return { store, path };
}

async function append(store: ReturnType<typeof openSqliteStore>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await store.eventLog.append(
      Array.from({ length: 50 }, (_, k) => ({ partition: k % 4, body: Buffer.alloc(800, k), enqueuedTime: Date.now(), systemProperties: {}, properties: {} })),
    );
  }
}

const fileSize = (path: string) => statSync(path).size;

describe('database checkpoints in a thread of their own', () => {
  test('the thread copies the log into the database file; the hub connection waits for a 10,000-page log', async () => {
    const { store, path } = await filledStore();
    const checkpoints = startBackgroundCheckpoints(store.db, (m) => assert.fail(m));
    try {
      assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 10_000);
      const before = fileSize(path);
      await append(store, 50);
      await eventually(() => fileSize(path) > before + 1024 * 1024, 5000).catch(() => assert.fail(`the database file stayed at ${fileSize(path)} bytes (was ${before})`));
      // Everything the thread copied reads back through the hub's connection.
      const read = await store.eventLog.read(0, { sequenceNumber: 0, inclusive: true }, 10_000);
      // 13 of each batch of 50 go to partition 0 (k % 4 === 0).
      assert.equal(read.length, 50 * 13);
    } finally {
      await checkpoints.stop();
      store.close();
    }
  });

  test('without the thread (and with the hub connection at 10,000 pages) the file does not grow: the growth above is the thread', async () => {
    const { store, path } = await filledStore();
    try {
      store.db.pragma('wal_autocheckpoint = 10000');
      const before = fileSize(path);
      await append(store, 50);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(fileSize(path), before);
    } finally {
      store.close();
    }
  });

  test('a log shorter than a batch is left alone until its pages have waited maxDelayMs', async () => {
    const { store, path } = await filledStore();
    const checkpoints = startBackgroundCheckpoints(store.db, (m) => assert.fail(m), { batchFrames: 100_000, maxDelayMs: 60_000 });
    try {
      const before = fileSize(path);
      await append(store, 50);
      // 25 of the thread's ticks: each one finds the log short and its pages recent.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(fileSize(path), before);
    } finally {
      await checkpoints.stop();
      store.close();
    }
  });

  test('a batch of pages is copied at once; a few pages once they have waited maxDelayMs', async () => {
    const batch = await filledStore();
    const byBatch = startBackgroundCheckpoints(batch.store.db, (m) => assert.fail(m), { batchFrames: 200, maxDelayMs: 60_000 });
    const waited = await filledStore();
    const byAge = startBackgroundCheckpoints(waited.store.db, (m) => assert.fail(m), { batchFrames: 100_000, maxDelayMs: 300 });
    try {
      const before = [fileSize(batch.path), fileSize(waited.path)];
      await append(batch.store, 50);
      await append(waited.store, 5);
      await eventually(() => fileSize(batch.path) > before[0]! + 1024 * 1024, 5000).catch(() => assert.fail(`a log of ~500 pages (batches of 200) stayed out of the file`));
      await eventually(() => fileSize(waited.path) > before[1]!, 5000).catch(() => assert.fail('~50 pages that waited 300 ms stayed out of the file'));
    } finally {
      await byBatch.stop();
      await byAge.stop();
      batch.store.close();
      waited.store.close();
    }
  });

  test('under a steady stream of commits the log is wholly copied now and then, so it starts over: its file stays small', async () => {
    const { store, path } = await filledStore();
    const checkpoints = startBackgroundCheckpoints(store.db, (m) => assert.fail(m), { batchFrames: 200, maxDelayMs: 60_000 });
    try {
      // A commit every few milliseconds for 3 s, ~6,000 pages: a checkpoint of 200 pages never
      // ends before the next commit, and the log starts over only at a write that finds it wholly copied.
      const until = Date.now() + 3000;
      let commits = 0;
      while (Date.now() < until) {
        await store.eventLog.append(Array.from({ length: 4 }, (_, k) => ({ partition: k, body: Buffer.alloc(300, k), enqueuedTime: Date.now(), systemProperties: {}, properties: {} })));
        commits++;
        await new Promise((r) => setTimeout(r, 2));
      }
      const wal = fileSize(`${path}-wal`);
      assert.ok(commits > 300, `only ${commits} commits`);
      // Without starting over it would hold every page of those commits: ~7 a commit (measured,
      // 39 MB for 1,294 commits with no checkpoint at all), 4,120 bytes each in the log.
      assert.ok(wal < commits * 2 * 4120, `the log's file is ${wal} bytes after ${commits} commits`);
    } finally {
      await checkpoints.stop();
      store.close();
    }
  });

  test('stop() ends the thread and hands checkpoints back to the hub connection (SQLite default, 1,000 pages); twice is harmless', async () => {
    const { store } = await filledStore();
    const checkpoints = startBackgroundCheckpoints(store.db, (m) => assert.fail(m));
    await checkpoints.stop();
    await checkpoints.stop();
    assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 1000);
    store.close();
  });
});
