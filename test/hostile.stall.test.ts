/**
 * Slow clients: sockets that open TCP and stall in the TLS handshake, and sockets that finish TLS
 * and never say anything (no MQTT CONNECT, no AMQP header, no HTTP request). The hub cuts each
 * after its configured timeout (connections.handshakeTimeoutMs, connections.connectTimeoutMs),
 * shortened here, and a device keeps publishing meanwhile.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { defaults } from '../src/config/index.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventsOf } from './support/devices.js';
import { mqttDevice } from './support/rawMqtt.js';

const HANDSHAKE_MS = 600;
const CONNECT_MS = 800;

/** The first bytes of a TLS ClientHello record (handshake, TLS 1.0 record version, 512-byte length), and no more. */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

function openStalled(host: string, port: number, partial: boolean): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port }, () => {
      if (partial) s.write(PARTIAL_CLIENT_HELLO);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Resolves with the time until every socket was closed by the hub; rejects with the count still open after `ms`. */
function allClosed(sockets: Socket[], ms: number): Promise<number> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    let open = sockets.length;
    const timer = setTimeout(() => reject(new Error(`${open} of ${sockets.length} sockets still open after ${ms} ms`)), ms);
    for (const s of sockets) {
      s.on('error', () => undefined);
      const done = () => {
        if (--open === 0) {
          clearTimeout(timer);
          resolve(Date.now() - start);
        }
      };
      if (s.destroyed) done();
      else s.once('close', done);
    }
  });
}

describe('slow and stalled clients are cut after the configured timeouts', () => {
  let t: TestHub;
  let key: string;
  before(async () => {
    // The flood comes from one address: the per-address limit (hostile.addressFailures) would cut it
    // at accept, before the bound this file is about.
    t = await startTestHub({ connections: { ...defaults.connections, handshakeTimeoutMs: HANDSHAKE_MS, connectTimeoutMs: CONNECT_MS, addressFailureLimit: 0 } });
    key = (await createDevice(t, 'steady')).key;
  });
  after(() => t.close());

  test('1,000 sockets stalled in the TLS handshake on 8883 are closed after the handshake timeout while a device keeps publishing', async () => {
    const sockets: Socket[] = [];
    for (let i = 0; i < 1000; i++) sockets.push(await openStalled(t.host, 8883, i % 2 === 0));
    const opened = Date.now();
    const closing = allClosed(sockets, HANDSHAKE_MS + 5000);
    // Meanwhile a device connects and its QoS 1 publishes are acknowledged.
    const device = await mqttDevice(t.host, 'steady', key);
    const before = (await eventsOf(t, 'steady')).length;
    for (let i = 0; i < 20; i++) await device.publishAsync('devices/steady/messages/events/', `m${i}`, { qos: 1 });
    assert.equal((await eventsOf(t, 'steady')).length, before + 20);
    await closing;
    const took = Date.now() - opened;
    assert.ok(took >= HANDSHAKE_MS - 100, `closed after ${took} ms: not before the timeout`);
    // The device's connection, past its handshake, is not touched by the timeout.
    assert.ok(device.connected);
    await device.publishAsync('devices/steady/messages/events/', 'after', { qos: 1 });
    await device.endAsync();
  });

  for (const [name, port] of [
    ['AMQP 5671', 5671],
    ['HTTPS 443', 443],
  ] as const) {
    test(`200 sockets stalled in the TLS handshake on ${name} are closed after the handshake timeout`, async () => {
      const sockets: Socket[] = [];
      for (let i = 0; i < 200; i++) sockets.push(await openStalled(t.host, port, i % 2 === 0));
      await allClosed(sockets, HANDSHAKE_MS + 5000);
    });
  }

  for (const [name, port] of [
    ['MQTT CONNECT', 8883],
    ['AMQP protocol header', 5671],
    ['HTTP request', 443],
  ] as const) {
    test(`a connection that completes TLS and never sends its ${name} is closed after the connect timeout`, async () => {
      const sockets = await Promise.all(
        Array.from({ length: 20 }, () => new Promise<Socket>((resolve, reject) => {
          // Reading, as any client does: the hub may answer before it closes (Node's HTTP server sends a
          // 408 when its own headers check comes first), and a paused socket with unread bytes never sees the end.
          const s = tlsConnect({ host: t.host, port, ...(port === 443 ? { ALPNProtocols: ['http/1.1'] } : {}) }, () => resolve(s.resume()));
          s.once('error', reject);
        })),
      );
      const start = Date.now();
      await allClosed(sockets, CONNECT_MS + 3000);
      assert.ok(Date.now() - start >= CONNECT_MS - 300, 'not closed before the connect timeout');
    });
  }
});
