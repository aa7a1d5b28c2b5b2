/**
 * Telemetry hands the event log its system properties' JSON, built beside the map with the
 * connection's part encoded once (src/hub/messaging/telemetry.ts). The log stores that text as it
 * is, so it must be exactly the map's own JSON, as the log would have encoded it, whatever the
 * message and the identity carry: checked here on the rows a real SQLite log stored.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/index.js';
import { encodeProperties } from '../src/store/sqlite/propertyJson.js';
import { EventLogWriter } from '../src/hub/messaging/eventLogWriter.js';
import { Telemetry, type DeviceToCloudMessage } from '../src/hub/messaging/telemetry.js';
import type { ConnectedIdentity } from '../src/hub/connections/deviceConnections.js';

describe('telemetry: the system properties the event log stores', () => {
  let dir: string;
  let store: SqliteStore;
  let writer: EventLogWriter;
  let telemetry: Telemetry;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleethub-telemetry-'));
    store = openSqliteStore(join(dir, 'fleethub.db'));
    await store.eventLog.ensurePartitions(4);
    writer = new EventLogWriter(store.eventLog, pino({ level: 'silent' }));
    telemetry = new Telemetry(writer, 4);
  });
  after(async () => {
    await writer.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const storedText = (partition: number, sequenceNumber: number): string =>
    store.db
      .prepare<[number, number], { s: string }>("SELECT system_properties AS s FROM events WHERE entity = '$builtin' AND partition = ? AND sequence_number = ?")
      .get(partition, sequenceNumber)!.s;

  // Every character IoT Hub allows in a device or module id, and text that JSON must escape.
  const awkward = 'quote " backslash \\ newline \n tab \t nul \u0000 del \u007f é 😀 \u2028 lone \ud800 end';
  const identities: ConnectedIdentity[] = [
    { deviceId: 'd1', generationId: '638000000000000000', authMethod: { scope: 'device', type: 'sas', issuer: 'iothub' } },
    { deviceId: "a-.+%_#*?!(),:=@$'z", generationId: '1', authMethod: { scope: 'device', type: 'x509Certificate', issuer: 'iothub' } },
    { deviceId: 'd1', moduleId: "m-.+%_#*?!(),:=@$'z", generationId: '2', authMethod: { scope: 'module', type: 'sas', issuer: 'iothub' } },
    { deviceId: 'd2', moduleId: 'edge', generationId: '3', authMethod: { scope: 'hub', type: 'sas', issuer: 'iothub' } },
  ];
  const messages: DeviceToCloudMessage[] = [
    { body: Buffer.from('none'), properties: {} },
    { body: Buffer.from('id'), messageId: 'm1', properties: { a: 'b' } },
    { body: Buffer.from('empty strings'), messageId: '', correlationId: '', userId: '', to: '', contentType: '', contentEncoding: '', expiryTimeUtc: '', properties: { '': '' } },
    {
      body: Buffer.from('all'),
      messageId: awkward,
      correlationId: awkward,
      userId: 'user',
      to: '/devices/d1/messages/events',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      expiryTimeUtc: '2030-01-01T00:00:00.000Z',
      properties: { [awkward]: awkward },
    },
    { body: Buffer.alloc(0), correlationId: 'c only', contentEncoding: 'utf-16', properties: {} },
  ];

  test('is the map\'s own JSON for every identity and every mix of properties, and reads back as the map', async () => {
    let checked = 0;
    for (const identity of identities) {
      for (const message of messages) {
        const { event } = await telemetry.send(identity, message);
        assert.ok(event);
        const text = storedText(event.partition, event.sequenceNumber);
        assert.equal(text, JSON.stringify(event.systemProperties), `${identity.deviceId}/${identity.moduleId ?? ''} ${message.body.toString()}`);
        assert.equal(text, encodeProperties(event.systemProperties));
        const [read] = await store.eventLog.read(event.partition, { sequenceNumber: event.sequenceNumber, inclusive: true }, 1);
        assert.deepEqual(read!.systemProperties, event.systemProperties);
        assert.equal(event.systemProperties['iothub-connection-device-id'], identity.deviceId);
        assert.equal(event.systemProperties['iothub-connection-module-id'], identity.moduleId);
        checked++;
      }
    }
    assert.equal(checked, identities.length * messages.length);
  });

  test("a connection's part is its own: the same device connecting again with another generation id", async () => {
    const first: ConnectedIdentity = { deviceId: 'again', generationId: '10', authMethod: { scope: 'device', type: 'sas', issuer: 'iothub' } };
    const second: ConnectedIdentity = { deviceId: 'again', generationId: '11', authMethod: { scope: 'device', type: 'x509Certificate', issuer: 'iothub' } };
    const a = (await telemetry.send(first, { body: Buffer.from('a'), properties: {} })).event!;
    const b = (await telemetry.send(second, { body: Buffer.from('b'), properties: {} })).event!;
    const c = (await telemetry.send(first, { body: Buffer.from('c'), properties: {} })).event!;
    const stored = [a, b, c].map((e) => JSON.parse(storedText(e.partition, e.sequenceNumber)) as Record<string, string>);
    assert.deepEqual(
      stored.map((s) => s['iothub-connection-auth-generation-id']),
      ['10', '11', '10'],
    );
    assert.match(stored[1]!['iothub-connection-auth-method']!, /x509Certificate/);
    assert.equal(new Set(stored.map((s) => s['message-id'])).size, 3);
  });
});
