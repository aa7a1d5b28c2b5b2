import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { startTestHub, type TestHub } from './support/hub.js';
import { ConfigurationEvaluation } from '../src/hub/configurations/evaluation.js';
import { countTurns } from './support/turns.js';
import { SqliteQueryStore } from '../src/store/sqlite/query.js';
import { Queries } from '../src/hub/query/queries.js';

/**
 * Automatic device management's background run goes over every twin; it reads and decides on a
 * page of them per turn of the event loop, so that a large fleet's run does not hold the hub's
 * one thread (20,000 twins held it 207 ms in one go). On the hub's real store, twins and query
 * engine, with the queries' statements run on the store's own connection (the hub runs them in a
 * thread, where waiting for the answer turns the loop anyway: query.thread.test.ts); end to end
 * with the SDK: configurations.sdk.test.ts.
 */
describe('configuration evaluation: a page of twins per turn of the event loop', () => {
  let t: TestHub;
  const DEVICES = 2500;
  const KEY = Buffer.alloc(32, 7).toString('base64');

  before(async () => {
    t = await startTestHub({ configurations: { evaluationIntervalSeconds: 3600 } });
    // One transaction for them all (nothing else uses the store meanwhile).
    t.hub.store.db.exec('BEGIN');
    for (let i = 0; i < DEVICES; i++) {
      await t.hub.registry.putDevice(`ev-${i}`, { deviceId: `ev-${i}`, authentication: { symmetricKey: { primaryKey: KEY, secondaryKey: KEY } } }, undefined);
    }
    t.hub.store.db.exec('COMMIT');
    await t.hub.configurations.put(
      'every-tenth',
      {
        id: 'every-tenth',
        content: { deviceContent: { 'properties.desired.mode': 'eco' } },
        targetCondition: "deviceId IN ['ev-0', 'ev-10', 'ev-20']",
        priority: 1,
        metrics: { queries: { all: 'SELECT deviceId FROM devices' } },
      },
      undefined,
    );
  });
  after(() => t.close());

  test(`a run over ${DEVICES} twins lets the event loop turn between pages, and counts what it targets`, async () => {
    const records = new SqliteQueryStore(t.hub.store.db);
    const evaluation = new ConfigurationEvaluation(t.hub.store.configurations, records, t.hub.twins, new Queries(records), pino({ level: 'silent' }), 3600);
    const clock = countTurns();
    await evaluation.runOnce();
    const turns = clock.stop();
    // 10 pages of 250 twins (9 turns between them) and 10 pages of the metric query (9 more).
    assert.ok(turns >= 18, `the event loop turned ${turns} times during the run`);
    const stored = await t.hub.configurations.get('every-tenth');
    assert.equal(stored.systemMetrics.results['targetedCount'], 3);
    assert.equal(stored.metrics.results['all'], DEVICES);
    const twin = await t.hub.twins.getTwin('ev-10');
    assert.equal((twin.properties.desired as Record<string, unknown>)['mode'], 'eco');
  });
});
