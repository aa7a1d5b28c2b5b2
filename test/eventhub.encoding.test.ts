import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import rhea from 'rhea';
import { encodeEvent } from '../src/protocols/amqp/eventhub/eventEncoding.js';
import { eventMessage } from '../src/protocols/amqp/eventhub/eventMessage.js';
import type { LoggedEvent } from '../src/hub/eventhub/types.js';

/**
 * Events are written to consumers by a direct encoder (src/protocols/amqp/eventhub/eventEncoding.ts);
 * its bytes must be exactly rhea's for `eventMessage(event)`, which the SDK tests read. Every
 * shape it takes is compared byte for byte; every shape it declines goes to rhea.
 */
describe('event encoding: the direct encoder writes rhea\'s bytes, or declines', () => {
  const rheaBytes = (e: LoggedEvent) => rhea.message.encode(eventMessage(e)) as Buffer;
  const base = (over: Partial<LoggedEvent> = {}): LoggedEvent => ({
    partition: 1,
    sequenceNumber: 42,
    offset: '12345',
    enqueuedTime: 1_764_000_000_123,
    body: Buffer.from('{"temperature":21.5}'),
    systemProperties: {
      'message-id': 'm-1',
      'iothub-connection-device-id': 'thermostat-1',
      'iothub-connection-auth-method': '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
      'iothub-connection-auth-generation-id': '638000000000000000',
      'iothub-enqueuedtime': '2025-11-24T16:00:00.123Z',
      'iothub-message-source': 'Telemetry',
    },
    properties: { level: 'critical' },
    ...over,
  });

  const same = (e: LoggedEvent, what: string) => {
    const direct = encodeEvent(e);
    assert.ok(direct, `${what}: encoded directly`);
    assert.deepEqual(direct.toString('hex'), rheaBytes(e).toString('hex'), what);
  };

  test('IoT Hub telemetry as MQTT and HTTP devices send it', () => {
    same(base(), 'the usual');
    same(base({ properties: {} }), 'no application properties');
    same(base({ body: Buffer.alloc(0) }), 'an empty body');
    same(base({ body: Buffer.alloc(255, 1) }), 'a body of 255 bytes (vbin8)');
    same(base({ body: Buffer.alloc(256, 1) }), 'a body of 256 bytes (vbin32)');
    same(base({ body: Buffer.alloc(256 * 1024, 7) }), 'a body of 256 KiB');
    same(base({ sequenceNumber: 0 }), 'sequence number 0');
    same(base({ sequenceNumber: 127 }), 'sequence number 127 (smalllong)');
    same(base({ sequenceNumber: 128 }), 'sequence number 128 (long)');
    same(base({ sequenceNumber: 2 ** 40 + 3 }), 'a sequence number past 32 bits');
    same(base({ enqueuedTime: 0 }), 'enqueued at the epoch');
    same(base({ systemProperties: {} }), 'no system properties at all (no partition key)');
  });

  test('with the runtime metric (trackLastEnqueuedEventProperties): the delivery annotations too', () => {
    for (const runtime of [
      { lastSequenceNumber: 42, lastOffset: '12345', lastEnqueuedTime: 1_764_000_000_123, retrievedAt: 1_764_000_000_999 },
      { lastSequenceNumber: 100_000, lastOffset: '99999999', lastEnqueuedTime: 1, retrievedAt: 2 },
    ]) {
      const e = base();
      const direct = encodeEvent(e, runtime);
      const message = eventMessage(e);
      message.delivery_annotations = {
        last_enqueued_sequence_number: rhea.types.wrap_long(runtime.lastSequenceNumber),
        last_enqueued_offset: runtime.lastOffset,
        last_enqueued_time_utc: rhea.types.wrap_timestamp(runtime.lastEnqueuedTime),
        runtime_info_retrieval_time_utc: rhea.types.wrap_timestamp(runtime.retrievedAt),
      };
      assert.equal(direct!.toString('hex'), (rhea.message.encode(message) as Buffer).toString('hex'));
    }
  });

  test('every AMQP properties field, alone and together, with the nulls between', () => {
    const all = {
      'message-id': 'mid',
      'user-id': 'ünïcode-user',
      to: '/devices/d/messages/events',
      subject: 'subj',
      'reply-to': 'reply',
      'correlation-id': 'cid',
      'content-type': 'application/json',
      'content-encoding': 'utf-8',
      'absolute-expiry-time': '2030-01-01T00:00:00.000Z',
      'creation-time': '2025-01-01T00:00:00.000Z',
      'group-id': 'g',
      'reply-to-group-id': 'rg',
    };
    same(base({ systemProperties: { ...all, 'iothub-connection-device-id': 'd' } }), 'all of them');
    for (const [k, v] of Object.entries(all)) same(base({ systemProperties: { [k]: v } }), `${k} alone`);
    same(base({ systemProperties: { 'absolute-expiry-time': 'not a time' } }), 'an expiry that is not a time is left out');
    same(base({ systemProperties: { 'iothub-enqueuedtime': 'not a time' } }), 'an enqueued time that is not a time stays a string');
  });

  test('text: long, unicode, empty, integer-like keys', () => {
    same(base({ properties: { long: 'x'.repeat(255), longer: 'y'.repeat(256), huge: 'z'.repeat(70_000) } }), 'str8, str32, a value past the scratch buffer');
    same(base({ properties: { 'ключ': 'значение 🌡️', '': '' } }), 'unicode and empty');
    same(base({ properties: { tail: 'x'.repeat(254) + 'é', wide: 'é'.repeat(200), del: '\x7f\x00', high: '\x80' } }), 'ASCII up to a last char that is not (str32 by UTF-8 length), DEL and NUL, U+0080');
    same(base({ properties: { b: '1', '10': 'ten', a: '2', '2': 'two' } }), 'integer-like keys (objects put them first)');
    same(base({ systemProperties: { ...base().systemProperties, ['k'.repeat(300)]: 'v' } }), 'a sym32 annotation key');
    same(base({ properties: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`p${i}`, `v${i}`])) }), 'many properties');
  });

  test('what it declines goes to rhea: typed values, body sections, group-sequence, a sender\'s x-opt-* keys', () => {
    assert.equal(encodeEvent(base({ properties: { n: 5 } })), undefined);
    assert.equal(encodeEvent(base({ properties: { t: new Date(5) } })), undefined);
    assert.equal(encodeEvent(base({ properties: { x: null } })), undefined);
    assert.equal(encodeEvent(base({ properties: { i: { type: 'int', value: 5 } } })), undefined);
    assert.equal(encodeEvent(base({ systemProperties: { 'message-id': { type: 'uuid', value: '0f8fad5b-d9cb-469f-a165-70867728950e' } } })), undefined);
    assert.equal(encodeEvent(base({ systemProperties: { '$body-sections': true } })), undefined);
    assert.equal(encodeEvent(base({ systemProperties: { 'group-sequence': '5' } })), undefined);
    assert.equal(encodeEvent(base({ systemProperties: { 'x-opt-partition-key': 'pk' } })), undefined);
  });

  test('symbols that are not ASCII (AMQP symbols are): each char\'s low byte, as rhea writes them', () => {
    same(base({ systemProperties: { ...base().systemProperties, 'clé': 'v' } }), 'a sym8 annotation key');
    same(base({ systemProperties: { ...base().systemProperties, ['ключ'.repeat(80)]: 'v' } }), 'a sym32 annotation key of 320 chars');
    same(base({ systemProperties: { ...base().systemProperties, ['ключ'.repeat(40)]: 'v' } }), 'a sym8 key of 160 chars (320 bytes of UTF-8)');
    same(base({ systemProperties: { 'message-id': 'm', 'content-type': 'text/plain; charset=ütf' } }), 'content-type is a symbol');
  });

  test('the bytes decode, with rhea, to the message eventMessage describes', () => {
    const e = base();
    const decoded = rhea.message.decode(encodeEvent(e)!) as unknown as Record<string, unknown>;
    assert.equal(decoded.message_id, 'm-1');
    assert.deepEqual((decoded.body as { content: Buffer }).content, e.body);
    assert.deepEqual(decoded.application_properties, { level: 'critical' });
    const annotations = decoded.message_annotations as Record<string, unknown>;
    assert.equal(annotations['x-opt-sequence-number'], 42);
    assert.equal(annotations['x-opt-offset'], '12345');
    assert.equal(new Date(annotations['x-opt-enqueued-time'] as number).getTime(), e.enqueuedTime);
    assert.equal(annotations['x-opt-partition-key'], 'thermostat-1');
  });
});
