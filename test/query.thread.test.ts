/**
 * The hub runs the statements of its queries in a thread of their own (src/store/sqlite/queryThread.ts)
 * with a read-only connection: a COUNT() ... GROUP BY over 100,000 twins held the hub's event loop
 * 160-180 ms (bench:query), every device's PUBACK waiting. Here on real SQLite: the thread gives the
 * same results as the store's own connection, the loop turns while it works, a write acknowledged
 * before a query is in its result, and a thread that fails leaves the queries to the store.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/index.js';
import { SqliteQueryStore } from '../src/store/sqlite/query.js';
import { QueryThread } from '../src/store/sqlite/queryThread.js';
import { Registry } from '../src/hub/registry/registry.js';
import { Twins } from '../src/hub/twins/twins.js';
import { Queries } from '../src/hub/query/queries.js';
import { countTurns } from './support/turns.js';
import { startTestHub } from './support/hub.js';

const DEVICES = 300;
const grouped = 'SELECT tags.zone AS zone, COUNT() AS n FROM devices GROUP BY tags.zone';

describe('query thread: the statements of queries off the event loop, same results', () => {
  let dir: string;
  let store: SqliteStore;
  let twins: Twins;
  const threadErrors: string[] = [];
  /** The same database through the store's own connection, as the hub ran queries before. */
  let inProcess: Queries;
  let threaded: Queries;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleethub-query-thread-'));
    store = openSqliteStore(join(dir, 'hub.db'), { queryThread: { onError: (m) => threadErrors.push(m) } });
    const registry = new Registry(store.devices, store.modules);
    twins = new Twins(store.twins, store.devices, store.modules);
    store.db.exec('BEGIN');
    for (let i = 0; i < DEVICES; i++) {
      // Ids in the forms IoT Hub allows, sorted apart from their numbers.
      const id = i % 10 === 0 ? `d:${i}.x-y_z'${i}` : `d${String(i).padStart(4, '0')}`;
      await registry.putDevice(id, { deviceId: id, status: i % 7 === 0 ? 'disabled' : 'enabled' }, undefined);
      await twins.updateTwin(id, undefined, { tags: { zone: `z${i % 3}`, floor: i % 11, ...(i % 5 === 0 ? { pilot: true } : {}), name: i % 13 === 0 ? null : `n${i}` } }, '*');
      if (i % 30 === 0) await registry.putModule(id, 'm1', { deviceId: id, moduleId: 'm1' }, undefined);
    }
    store.db.exec('COMMIT');
    threaded = new Queries(store.queries);
    inProcess = new Queries(new SqliteQueryStore(store.db));
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const everyPage = async (queries: Queries, text: string, size: number) => {
    const pages: unknown[][] = [];
    let token: string | undefined;
    do {
      const page = await queries.run(text, size, token);
      pages.push(page.items);
      token = page.continuationToken;
    } while (token);
    return pages;
  };

  for (const text of [
    'SELECT * FROM devices',
    "SELECT * FROM devices WHERE tags.zone = 'z1' AND tags.floor > 3",
    'SELECT deviceId, tags.name, tags.pilot FROM devices WHERE IS_DEFINED(tags.pilot)',
    "SELECT * FROM devices WHERE status = 'disabled'",
    grouped,
    'SELECT COUNT() AS n FROM devices WHERE tags.floor < 5',
    'SELECT * FROM devices.modules',
    'SELECT TOP 17 deviceId FROM devices',
    "SELECT * FROM devices WHERE tags.zone = 'nowhere'",
  ]) {
    test(`the same pages as the store's own connection: ${text}`, async () => {
      const expected = await everyPage(inProcess, text, 7);
      assert.ok(expected.flat().length > 0 || text.includes('nowhere'));
      assert.deepEqual(await everyPage(threaded, text, 7), expected);
    });
  }

  test('the event loop turns while the thread runs GROUP BYs over the fleet; on the store connection it does not', async () => {
    // A hundred of them (tens of milliseconds of SQLite), so that replies do not all come in one turn.
    const many = (queries: Queries) => Promise.all(Array.from({ length: 100 }, () => queries.run(grouped)));
    // If this thread is kept off the CPU for longer than the query thread needs for all of them (a
    // busy 2-core CI machine), every reply is waiting at its next poll and they do come in one turn:
    // up to three tries. Statements on the event loop give 0 turns every time.
    let clock = countTurns();
    let pages = await many(threaded);
    for (let tries = 1; clock.stop() === 0 && tries < 3; tries++) {
      clock = countTurns();
      pages = await many(threaded);
    }
    assert.ok(clock.stop() > 0, 'no turn of the event loop while the thread ran the queries, in three tries');
    for (const page of pages) {
      assert.deepEqual(page.items, [
        { zone: 'z0', n: 100 },
        { zone: 'z1', n: 100 },
        { zone: 'z2', n: 100 },
      ]);
    }
    clock = countTurns();
    await many(inProcess);
    assert.equal(clock.stop(), 0);
  });

  test('a write acknowledged before a query is in its result', async () => {
    for (let n = 1; n <= 20; n++) {
      await twins.updateTwin('d0001', undefined, { tags: { counter: n } }, '*');
      const page = await threaded.run("SELECT tags.counter FROM devices WHERE deviceId = 'd0001'");
      assert.deepEqual(page.items, [{ counter: n }]);
    }
  });

  test('many queries asked at once are each answered with their own result', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => i * 3 + 1)
      .filter((i) => i % 10 !== 0)
      .map((i) => `d${String(i).padStart(4, '0')}`);
    const pages = await Promise.all(ids.map((id) => threaded.run(`SELECT deviceId FROM devices WHERE deviceId = '${id}'`)));
    assert.deepEqual(
      pages.map((p) => p.items),
      ids.map((id) => [{ deviceId: id }]),
    );
    assert.deepEqual(threadErrors, []);
  });

  test('a statement SQLite refuses rejects with its message and code, and the thread goes on', async () => {
    const thread = new QueryThread(store.db.name, (m) => threadErrors.push(m), 4);
    try {
      await assert.rejects(thread.all('SELECT * FROM no_such_table', []), (e: Error & { code?: string }) => /no such table/.test(e.message) && e.code === 'SQLITE_ERROR');
      assert.deepEqual(await thread.all('SELECT COUNT(*) AS n FROM devices', []), [{ n: DEVICES }]);
      assert.ok(thread.available);
    } finally {
      thread.stop();
    }
    assert.equal(thread.available, false);
    assert.deepEqual(threadErrors, []);
  });

  test('a thread that cannot open the database is reported, and the store runs the queries itself', async () => {
    const errors: string[] = [];
    const thread = new QueryThread(join(dir, 'missing.db'), (m) => errors.push(m), 4);
    const queries = new Queries(new SqliteQueryStore(store.db, thread));
    // Asked before and after the thread has failed: answered either way.
    const first = queries.run(grouped);
    assert.deepEqual((await first).items.length, 3);
    while (thread.available) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual((await queries.run('SELECT COUNT() AS n FROM devices')).items, [{ n: DEVICES }]);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /unable to open|does not exist|no such file/i);
  });
});

describe('query thread: the hub runs its queries in it', () => {
  test('a query through the hub lets its event loop turn', async () => {
    const t = await startTestHub();
    try {
      await t.hub.registry.putDevice('q-1', { deviceId: 'q-1' }, undefined);
      const clock = countTurns();
      const page = await t.hub.queries.run('SELECT COUNT() AS n FROM devices');
      assert.ok(clock.stop() > 0);
      assert.deepEqual(page.items, [{ n: 1 }]);
    } finally {
      await t.close();
    }
  });
});
