import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { SqliteRoutingCheckpoints } from '../src/store/sqlite/routing.js';
import { DELETE_SLICE as TRIM_SLICE } from '../src/store/sqlite/eventLog.js';
import { backlogEntity } from '../src/store/routing.js';
import { BATCH_READ_PAGE, EndpointDrainer, HUB_PARTITION_PROPERTY } from '../src/hub/routing/delivery.js';
import { ENCODE_SLICE, encodeRecords } from '../src/egress/routing/storageRecords.js';
import type { RoutedMessage } from '../src/hub/routing/types.js';
import { countTurns } from './support/turns.js';
import { decodeAvro } from './support/avro.js';

/**
 * A storage endpoint's batch holds up to 100,000 messages: read from its backlog at once it held
 * the hub's event loop a second, encoded at once another 0.7-1 s (Avro or JSON), and trimmed from
 * the backlog in one DELETE (0.4 s), every device's PUBACK waiting. All three go a slice per turn
 * of the loop now. On real SQLite and avsc; the
 * blobs written to Azurite: routing.sinks.test.ts.
 */
describe("a storage endpoint's batch is read and encoded a slice per turn of the event loop", () => {
  test(`a batch of 3,500 backlog messages is read ${BATCH_READ_PAGE} at a time with turns between, and delivered whole and in order`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleethub-batch-turns-'));
    const store = openSqliteStore(join(dir, 'hub.db'));
    const backlog = store.eventLogs.entity(backlogEntity('archive'));
    await backlog.ensurePartitions(1);
    const N = 3500;
    const appended = await backlog.append(
      Array.from({ length: N }, (_, i) => ({
        partition: 0,
        enqueuedTime: Date.now() - 1000,
        body: Buffer.from(`m-${i}`),
        systemProperties: { 'message-id': `m-${i}`, [HUB_PARTITION_PROPERTY]: i % 4 },
        properties: {},
      })),
    );
    const batches: { messages: RoutedMessage[]; turns: number }[] = [];
    let clock: ReturnType<typeof countTurns> | undefined;
    const drainer = new EndpointDrainer('archive', { kind: 'storageContainers', name: 'archive' }, {
      backlog,
      checkpoints: new SqliteRoutingCheckpoints(store.db),
      createSink: async () => ({
        // A window already closed (the oldest message waited longer), bodies far below maxBytes.
        batching: { frequencyMs: 0, maxBytes: 1_000_000 },
        deliver: async (messages) => {
          batches.push({ messages, turns: clock?.stop() ?? -1 });
        },
        close: async () => undefined,
      }),
      options: { deadAfterMs: 60_000, retryMinMs: 10, retryMaxMs: 20, deadProbeMs: 1000 },
      logger: pino({ level: 'silent' }),
    });
    try {
      clock = countTurns();
      await drainer.start();
      drainer.appended(appended[appended.length - 1]!.sequenceNumber);
      for (let i = 0; i < 200 && drainer.counters().delivered < N; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(batches.length, 1);
      const [batch] = batches;
      assert.deepEqual(
        batch!.messages.map((m) => m.body.toString()),
        Array.from({ length: N }, (_, i) => `m-${i}`),
      );
      assert.equal(batch!.messages[5]!.partition, 1);
      assert.ok(!(HUB_PARTITION_PROPERTY in batch!.messages[5]!.systemProperties));
      assert.ok(batch!.turns >= Math.ceil(N / BATCH_READ_PAGE) - 1, `the event loop turned ${batch!.turns} times while the batch was read`);
      assert.equal(drainer.counters().backlog, 0);
    } finally {
      clock?.stop();
      await drainer.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`delivered messages leave the backlog ${TRIM_SLICE} per statement with turns between, after the checkpoint has moved`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleethub-trim-turns-'));
    const store = openSqliteStore(join(dir, 'hub.db'));
    try {
      const checkpoints = new SqliteRoutingCheckpoints(store.db);
      await checkpoints.ensure('Trimmed');
      const backlog = store.eventLogs.entity(backlogEntity('trimmed'));
      await backlog.ensurePartitions(1);
      const N = TRIM_SLICE * 2 + 700;
      await backlog.append(Array.from({ length: N }, (_, i) => ({ partition: 0, enqueuedTime: 1, body: Buffer.from(`m-${i}`), systemProperties: {}, properties: {} })));
      const rows = () => store.db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM events WHERE entity = '${backlogEntity('trimmed')}'`).get()!.n;
      const through = N - 201;
      const clock = countTurns();
      const advancing = checkpoints.advance('Trimmed', through);
      // The first slice went at once, with the checkpoint already past everything it covers.
      assert.equal(await new SqliteRoutingCheckpoints(store.db).checkpoint('trimmed'), through);
      assert.equal(rows(), N - TRIM_SLICE);
      await advancing;
      assert.ok(clock.stop() >= 2);
      assert.equal(rows(), 200);
      const [next] = await backlog.read(0, { sequenceNumber: -1 }, 1);
      assert.equal(next?.body.toString(), `m-${through + 1}`);
      // Nothing more to trim: no statement, no turn.
      await checkpoints.advance('trimmed', through);
      assert.equal(rows(), 200);
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const messages = (n: number): RoutedMessage[] =>
    Array.from({ length: n }, (_, i) => ({
      sequenceNumber: i,
      partition: 0,
      enqueuedTime: Date.UTC(2026, 11, 3, 12, 0, 0, i % 1000),
      body: Buffer.from(JSON.stringify({ i })),
      systemProperties: { 'message-id': `m-${i}`, 'content-type': 'application/json', 'content-encoding': 'utf-8' },
      properties: { n: String(i) },
    }));

  for (const encoding of ['avro', 'avroDeflate'] as const) {
    test(`${encoding}: 2,500 records are encoded ${ENCODE_SLICE} per turn, and read back whole`, async () => {
      const clock = countTurns();
      const { chunks } = await encodeRecords(messages(2500), encoding);
      const turns = clock.stop();
      // (Deflate's blocks go through zlib's thread pool, which turns the loop anyway.)
      if (encoding === 'avro') assert.ok(turns >= 2, `the event loop turned ${turns} times`);
      const { records } = await decodeAvro(Buffer.concat(chunks));
      assert.equal(records.length, 2500);
      const last = records[2499] as { Properties: Record<string, string>; SystemProperties: Record<string, string>; Body: Buffer };
      assert.deepEqual(last.Properties, { n: '2499' });
      assert.equal(last.SystemProperties['messageId'], 'm-2499');
      assert.deepEqual(JSON.parse(last.Body.toString()), { i: 2499 });
    });
  }

  test(`json: 2,500 lines are encoded ${ENCODE_SLICE} per turn, one object per line in order`, async () => {
    const clock = countTurns();
    const { chunks } = await encodeRecords(messages(2500), 'json');
    assert.ok(clock.stop() >= 2);
    const lines = Buffer.concat(chunks).toString('utf8').split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, 2500);
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { Body: { i: number } }).Body.i),
      Array.from({ length: 2500 }, (_, i) => i),
    );
  });
});
