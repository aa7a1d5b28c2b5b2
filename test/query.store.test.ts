/** The SQLite query store on a fleet big enough for it to index the paths queries filter on. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/index.js';
import { Registry } from '../src/hub/registry/registry.js';
import { Twins } from '../src/hub/twins/twins.js';
import { Queries } from '../src/hub/query/queries.js';
import { AUTO_INDEX } from '../src/store/sqlite/query.js';

describe('query store: automatic expression indexes change speed, never results', () => {
  let dir: string;
  let store: SqliteStore;
  let queries: Queries;
  const N = AUTO_INDEX.minTwins + 500;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleethub-query-store-'));
    store = openSqliteStore(join(dir, 'hub.db'));
    const registry = new Registry(store.devices, store.modules);
    const twins = new Twins(store.twins, store.devices, store.modules);
    store.db.exec('BEGIN');
    for (let i = 0; i < N; i++) {
      const id = `d${String(i).padStart(5, '0')}`;
      await registry.putDevice(id, { deviceId: id }, undefined);
      // floor: a number for most, the string '7' for some, true for one (true is 1 inside SQLite).
      const floor = i % 1000 === 0 ? '7' : i === 1 ? true : i % 50;
      await twins.updateTwin(id, undefined, { tags: { floor, zone: `z${i % 3}` } }, '*');
    }
    store.db.exec('COMMIT');
    queries = new Queries(store.queries);
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ids = async (text: string) => {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await queries.run(text, 1000, token);
      out.push(...page.items.map((x) => (x as { deviceId: string }).deviceId));
      token = page.continuationToken;
    } while (token);
    return out;
  };
  const indexes = () => store.db.prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'twins_path_%'`).all();

  test('a path filtered on repeatedly gets an index; results before and after are identical and type-strict', async () => {
    assert.equal(indexes().length, 0);
    const q = 'SELECT deviceId FROM devices WHERE tags.floor = 7';
    const before = await ids(q);
    assert.equal(before.length, N / 50 - 0, 'number 7 only');
    for (let i = 0; i < AUTO_INDEX.afterUses; i++) await ids(q);
    assert.equal(indexes().length, 1);
    const plan = store.db.prepare(`EXPLAIN QUERY PLAN SELECT 1 FROM twin_query_docs q WHERE json_extract(q.doc, '$."tags"."floor"') = 7`).all() as { detail: string }[];
    assert.match(plan.map((p) => p.detail).join(' '), /twins_path_/);
    assert.deepEqual(await ids(q), before);
    assert.deepEqual(await ids("SELECT deviceId FROM devices WHERE tags.floor = '7'"), Array.from({ length: Math.ceil(N / 1000) }, (_, k) => `d${String(k * 1000).padStart(5, '0')}`));
    assert.deepEqual(await ids('SELECT deviceId FROM devices WHERE tags.floor = 1'), (await ids('SELECT deviceId FROM devices WHERE tags.floor = 1 AND IS_NUMBER(tags.floor)')));
    assert.ok(!(await ids('SELECT deviceId FROM devices WHERE tags.floor = 1')).includes('d00001'), 'true is not 1');
    assert.deepEqual(await ids('SELECT deviceId FROM devices WHERE tags.floor = true'), ['d00001']);
    assert.deepEqual(await ids("SELECT deviceId FROM devices WHERE tags.floor IN [7, 8] AND tags.zone = 'z1'"), (await ids("SELECT deviceId FROM devices WHERE (tags.floor = 7 OR tags.floor = 8) AND tags.zone = 'z1'")));
  });

  test('a broad equality is answered without the index (a scan in key order pages faster) and gives the same rows', async () => {
    const q = "SELECT deviceId FROM devices WHERE tags.zone = 'z2'";
    const first = await ids(q);
    for (let i = 0; i < AUTO_INDEX.afterUses; i++) await ids(q);
    assert.equal(indexes().length, 2);
    assert.deepEqual(await ids(q), first);
    assert.equal(first.length, Math.floor(N / 3));
  });
});
