import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/index.js';
import { logPump } from '../src/protocols/amqp/eventhub/logPump.js';
import type { LoggedEvent } from '../src/hub/eventhub/types.js';
import { countTurns } from './support/turns.js';

/**
 * The pump that feeds an Event Hub receiver link from the log (src/protocols/amqp/eventhub/
 * logPump.ts), on real SQLite: a consumer catching up with thousands of credits is handed its
 * backlog a batch per turn of the event loop (the hub's one thread is not held for the whole
 * backlog), in order, nothing skipped or sent twice, appends during the catch-up included.
 * End to end with the SDK: test/eventhub.flow.test.ts and eventhub.sdk.test.ts.
 */
describe('Event Hub receivers: the log pump hands a backlog over a batch per turn', () => {
  let dir: string;
  let store: SqliteStore;
  const PARTITION = 1;
  const append = async (from: number, count: number) => {
    const events = Array.from({ length: count }, (_, i) => ({
      partition: PARTITION,
      enqueuedTime: Date.now(),
      body: Buffer.from(`e-${from + i}`),
      systemProperties: { 'message-id': `e-${from + i}` },
      properties: {},
    }));
    await store.eventLog.append(events);
  };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleethub-logpump-'));
    store = openSqliteStore(join(dir, 'fleethub.db'));
    await store.eventLog.ensurePartitions(4);
    await append(0, 1000);
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('1,000 events with 5,000 credits: at most one batch per turn, all of them in order', async () => {
    const sent: { id: string; turn: number }[] = [];
    const clock = countTurns();
    let credit = 5000;
    let failure: unknown;
    const pump = logPump({
      log: store.eventLog,
      partition: PARTITION,
      from: { sequenceNumber: 0, inclusive: true },
      room: () => credit,
      ended: () => false,
      send: (events: LoggedEvent[]) => {
        credit -= events.length;
        for (const e of events) sent.push({ id: String(e.systemProperties['message-id']), turn: clock.now() });
      },
      failed: (e) => (failure = e),
      perTurn: 64,
    });
    pump();
    while (sent.length < 1000 && failure === undefined) await new Promise((r) => setTimeout(r, 5));
    clock.stop();
    assert.equal(failure, undefined);
    assert.deepEqual(
      sent.map((s) => s.id),
      Array.from({ length: 1000 }, (_, i) => `e-${i}`),
    );
    const perTurn = new Map<number, number>();
    for (const s of sent) perTurn.set(s.turn, (perTurn.get(s.turn) ?? 0) + 1);
    assert.ok(Math.max(...perTurn.values()) <= 64, `at most 64 events in one turn, not ${Math.max(...perTurn.values())}`);
    assert.ok(perTurn.size >= Math.ceil(1000 / 64), `spread over ${perTurn.size} turns`);
  });

  test('appends and credit during a catch-up: the pump goes round again, nothing skipped or repeated', async () => {
    const sent: string[] = [];
    let credit = 250;
    const pump = logPump({
      log: store.eventLog,
      partition: PARTITION,
      from: { sequenceNumber: 899 },
      room: () => credit,
      ended: () => false,
      send: async (events: LoggedEvent[]) => {
        credit -= events.length;
        for (const e of events) sent.push(String(e.systemProperties['message-id']));
      },
      failed: (e) => assert.fail(String(e)),
      perTurn: 32,
    });
    const settle = () => new Promise((r) => setTimeout(r, 100));
    pump();
    // While it runs, 200 more events (each append triggers, as the append notifier does).
    await append(1000, 100);
    pump();
    await append(1100, 100);
    pump();
    await settle();
    // It stops where its credit ends (e-900 to e-1149), whatever is left.
    assert.equal(sent.length, 250);
    credit += 150;
    pump(); // as rhea's 'sendable' on a flow: the rest of the log (50)
    await settle();
    assert.equal(sent.length, 300);
    await append(1200, 100);
    pump();
    await settle();
    assert.deepEqual(
      sent,
      Array.from({ length: 400 }, (_, i) => `e-${900 + i}`),
    );
  });
});
