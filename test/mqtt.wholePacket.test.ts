/**
 * decodeWholePacket: the one mqtt-packet parser of the process, for the packets MqttSession
 * frames itself and hands over whole. Whatever one connection hands it (a malformed packet, one
 * cut short, bytes past its end) is that packet's error and leaves nothing for the next one.
 * (The sessions that use it: mqtt.protocol.test.ts and the SDK suites.)
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { decodeWholePacket } from '../src/protocols/mqtt/wholePacket.js';

const subscribe = mqttPacket.generate({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'devices/d1/messages/devicebound/#', qos: 1 }] });
const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'd1', keepalive: 60, username: 'h/d1/?api-version=2021-04-12', password: Buffer.from('p') });

function packet(bytes: Buffer): Packet {
  const p = decodeWholePacket(bytes);
  if (p instanceof Error) assert.fail(`expected a packet, got: ${p.message}`);
  return p;
}

describe('decodeWholePacket', () => {
  test('decodes whole packets as mqtt-packet does', () => {
    const c = packet(connect);
    assert.equal(c.cmd, 'connect');
    assert.equal(c.cmd === 'connect' && c.clientId, 'd1');
    const s = packet(subscribe);
    assert.deepEqual(s.cmd === 'subscribe' && [s.messageId, s.subscriptions], [7, [{ topic: 'devices/d1/messages/devicebound/#', qos: 1 }]]);
    assert.equal(packet(Buffer.from([0xc0, 0x00])).cmd, 'pingreq');
  });

  test('a malformed packet is an error, and the next packet decodes', () => {
    // SUBSCRIBE with reserved flags 0000 (must be 0010).
    const bad = Buffer.from(subscribe);
    bad[0] = 0x80;
    assert.ok(decodeWholePacket(bad) instanceof Error);
    // CONNECT with a protocol name other than MQTT.
    const wrongName = Buffer.from(connect);
    wrongName.write('MQTX', 4);
    assert.ok(decodeWholePacket(wrongName) instanceof Error);
    assert.equal(packet(subscribe).cmd, 'subscribe');
  });

  test('a packet cut short or with bytes past its end is an error that carries nothing over to the next packet', () => {
    const short = decodeWholePacket(subscribe.subarray(0, subscribe.length - 3));
    assert.ok(short instanceof Error);
    assert.match(short.message, /ends early/);
    assert.deepEqual(packet(Buffer.from([0xc0, 0x00])).cmd, 'pingreq');
    const long = decodeWholePacket(Buffer.concat([Buffer.from([0xc0, 0x00]), Buffer.from([0xc0])]));
    assert.ok(long instanceof Error);
    assert.match(long.message, /after the end/);
    assert.equal(packet(subscribe).cmd, 'subscribe');
    assert.equal(packet(connect).cmd, 'connect');
  });
});
