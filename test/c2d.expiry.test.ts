import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/index.js';
import { EXPIRE_SLICE } from '../src/store/sqlite/cloudToDevice.js';
import { Registry } from '../src/hub/registry/registry.js';
import { countTurns } from './support/turns.js';

/**
 * The cloud-to-device expiry sweep on real SQLite (it runs every second). A command sent to a
 * fleet of offline devices expires all at once: 100,000 messages in one transaction held the
 * event loop 1.1 s, so they go EXPIRE_SLICE at a time with turns between. And a sweep with nothing
 * to expire read every queued message (6 ms a second with 100,000 queued): it now looks them up by
 * expiry time. End to end with the SDK (feedback, counts): c2d.admin.test.ts.
 */
describe('cloud-to-device expiry: by an index, in slices with turns of the event loop between', () => {
  let dir: string;
  let store: SqliteStore;
  const DEVICES = 40;
  const EXPIRED = EXPIRE_SLICE * 2 + 100;
  const LIVE = 30;
  const NOW = 1_700_000_000_000;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleethub-c2d-expiry-'));
    store = openSqliteStore(join(dir, 'hub.db'));
    const registry = new Registry(store.devices, store.modules);
    for (let d = 0; d < DEVICES; d++) await registry.putDevice(`dev-${d}`, { deviceId: `dev-${d}` }, undefined);
    store.db.exec('BEGIN');
    for (let i = 0; i < EXPIRED + LIVE; i++) {
      const live = i >= EXPIRED;
      const result = await store.cloudToDevice.enqueue(
        {
          deviceId: `dev-${i % DEVICES}`,
          messageId: `m-${i}`,
          // Feedback asked for every other message: only those leave an Expired outcome.
          ack: i % 2 ? 'full' : 'none',
          enqueuedTime: NOW - 10_000,
          expiryTime: live ? NOW + 60_000 : NOW - 1 - (i % 1000),
          body: Buffer.from(`body-${i}`),
          properties: {},
        },
        10_000,
        NOW - 10_000,
      );
      assert.equal(result, 'ok');
    }
    store.db.exec('COMMIT');
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the sweep finds expired messages by their expiry time, not by reading every queued one', () => {
    const plan = store.db
      .prepare<[], { detail: string }>('EXPLAIN QUERY PLAN SELECT * FROM c2d_messages WHERE expiry_time <= 1 ORDER BY expiry_time LIMIT 10')
      .all()
      .map((r) => r.detail)
      .join('; ');
    assert.match(plan, /USING INDEX c2d_messages_by_expiry/);
  });

  test(`${EXPIRED} expired messages go in ${Math.ceil(EXPIRED / EXPIRE_SLICE)} slices, a turn between; the unexpired stay`, async () => {
    const clock = countTurns();
    const expired = await store.cloudToDevice.expire(NOW);
    const turns = clock.stop();
    assert.equal(expired, EXPIRED);
    assert.ok(turns >= Math.ceil(EXPIRED / EXPIRE_SLICE) - 1, `the event loop turned ${turns} times while it expired`);
    const count = (sql: string) => store.db.prepare<[], { n: number }>(sql).get()!.n;
    assert.equal(count('SELECT COUNT(*) AS n FROM c2d_messages'), LIVE);
    assert.equal(count(`SELECT COUNT(*) AS n FROM c2d_outcomes WHERE outcome = 'Expired'`), EXPIRED / 2);
    // Each device's count is that of what it still has queued.
    for (let d = 0; d < DEVICES; d++) {
      const device = await store.devices.get(`dev-${d}`);
      assert.equal(device?.cloudToDeviceMessageCount, await store.cloudToDevice.depth(`dev-${d}`, NOW), `dev-${d}`);
    }
    assert.equal(await store.cloudToDevice.expire(NOW), 0);
  });

  test('a message that expires at the very instant of the sweep goes; one a millisecond later stays', async () => {
    for (const [id, expiryTime] of [['at', NOW + 100], ['after', NOW + 101]] as const) {
      await store.cloudToDevice.enqueue({ deviceId: 'dev-0', messageId: id, ack: 'full', enqueuedTime: NOW, expiryTime, body: Buffer.alloc(0), properties: {} }, 10_000, NOW);
    }
    assert.equal(await store.cloudToDevice.expire(NOW + 100), 1);
    const left = store.db.prepare<[], { message_id: string }>(`SELECT message_id FROM c2d_messages WHERE message_id IN ('at', 'after')`).all();
    assert.deepEqual(left, [{ message_id: 'after' }]);
  });
});
