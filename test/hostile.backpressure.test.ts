/**
 * Clients that never read: a device flooding QoS 1 publishes without reading its PUBACKs, and a
 * device whose method calls pile up unread. The hub's unsent output per connection stays bounded
 * (connections.writeBufferHighBytes: reading pauses; connections.writeBufferMaxBytes: the
 * connection is closed), measured on the hub's own sockets.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import mqttPacket from 'mqtt-packet';
import { defaults } from '../src/config/index.js';
import { rawRequest, serviceToken, startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventsOf, eventually } from './support/devices.js';
import { deviceToken, mqttDevice, RawConnection } from './support/rawMqtt.js';

const HIGH = 32 * 1024;
/** Above what one read can set in motion: a 16 KiB TLS record holds ~400 twin GETs, each answered with the 1 KiB twin. */
const MAX = 2 * 1024 * 1024;

/**
 * The hub's side of its TLS connections (the hub runs in this process). Node lists only the raw
 * TCP sockets under a TLS socket as active handles, so the listeners' 'secureConnection' is watched.
 */
const hubSockets = new Set<TLSSocket>();
const emit = TlsServer.prototype.emit;
TlsServer.prototype.emit = function (this: TlsServer, event: string | symbol, ...args: unknown[]) {
  if (event === 'secureConnection') {
    const socket = args[0] as TLSSocket;
    hubSockets.add(socket);
    socket.once('close', () => hubSockets.delete(socket));
  }
  return (emit as (...a: unknown[]) => boolean).apply(this, [event, ...args]);
} as typeof emit;

function hubSideUnsent(host: string, port: number): number[] {
  return [...hubSockets].filter((s) => s.localPort === port && s.localAddress === host).map((s) => s.writableLength);
}

/** Samples the largest unsent output of any hub-side connection to `port` until stopped. */
function sampleMax(host: string, port: number): { stop(): number } {
  let max = 0;
  const timer = setInterval(() => {
    for (const n of hubSideUnsent(host, port)) max = Math.max(max, n);
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      for (const n of hubSideUnsent(host, port)) max = Math.max(max, n);
      return max;
    },
  };
}

async function connectedRaw(t: TestHub, deviceId: string, key: string): Promise<RawConnection> {
  const c = await RawConnection.open(t.host);
  assert.equal(await c.connect(t.host, deviceId, deviceToken(t.host, deviceId, key)), 0);
  return c;
}

describe('clients that do not read: the hub-side buffer stays bounded', () => {
  let t: TestHub;
  let keys: Record<string, string>;
  before(async () => {
    t = await startTestHub({ connections: { ...defaults.connections, writeBufferHighBytes: HIGH, writeBufferMaxBytes: MAX } });
    keys = {};
    for (const id of ['flooder', 'deaf', 'steady']) keys[id] = (await createDevice(t, id)).key;
  });
  after(() => t.close());

  test('a device that floods twin GETs and QoS 1 publishes without reading the answers: the hub stops reading it, its unsent output stays under the high-water mark', async () => {
    // A 1 KiB twin: each GET is answered with it, so the kernel's socket buffers fill in seconds
    // (a 4-byte PUBACK alone takes minutes to fill them: bench:hostile floods PUBACKs for that long).
    const token = await serviceToken(t);
    const patched = await rawRequest(t.host, 'PATCH', '/twins/flooder?api-version=2021-04-12', {
      headers: { authorization: token, 'content-type': 'application/json' },
      body: JSON.stringify({ properties: { desired: { blob: 'x'.repeat(1000) } } }),
    });
    assert.equal(patched.status, 200, patched.text);
    const c = await connectedRaw(t, 'flooder', keys.flooder!);
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$iothub/twin/res/#', qos: 0 }] });
    await c.next('suback');
    c.socket.pause(); // never reads again
    const request = (i: number) =>
      i % 2
        ? mqttPacket.generate({ cmd: 'publish', topic: `$iothub/twin/GET/?$rid=${i}`, payload: Buffer.alloc(0), qos: 0, dup: false, retain: false })
        : mqttPacket.generate({ cmd: 'publish', topic: 'devices/flooder/messages/events/', payload: Buffer.alloc(16, i), qos: 1, messageId: (i % 65535) + 1, dup: false, retain: false });
    const sampler = sampleMax(t.host, 8883);
    let sent = 0;
    let i = 0;
    const until = Date.now() + 20_000;
    let stalledSince = 0;
    // Write as fast as the socket takes it; stop once the hub has not taken anything for a second
    // (back-pressure reached the device) or after 20 s.
    while (Date.now() < until) {
      if (c.socket.writableLength < 256 * 1024) {
        const batch = Buffer.concat(Array.from({ length: 100 }, () => request(i++)));
        c.socket.write(batch);
        sent += batch.length;
        stalledSince = 0;
      } else {
        stalledSince ||= Date.now();
        if (Date.now() - stalledSince > 1000) break;
      }
      await new Promise((r) => setImmediate(r));
    }
    const max = sampler.stop();
    const stored = (await eventsOf(t, 'flooder')).length;
    if (process.env.HOSTILE_VERBOSE) console.log({ sentKiB: sent / 1024, requests: i, stored, maxUnsent: max, stalled: stalledSince > 0 });
    assert.ok(stalledSince > 0, `the hub kept reading: ${i} requests (${(sent / 2 ** 20).toFixed(1)} MiB) in 20 s`);
    // The bound: the high-water mark plus the answers to what was read before reading paused.
    assert.ok(max <= HIGH + 1024 * 1024, `the hub held ${max} unsent bytes for one connection (high-water mark ${HIGH})`);
    assert.ok(!c.socket.destroyed, 'still connected');
    // Another device is served meanwhile.
    const steady = await mqttDevice(t.host, 'steady', keys.steady!);
    await steady.publishAsync('devices/steady/messages/events/', 'ok', { qos: 1 });
    await steady.endAsync();
    // Once the device reads, the hub reads again: its publishes go on being stored and acknowledged.
    c.socket.resume();
    await eventually(async () => (await eventsOf(t, 'flooder')).length > stored, 10_000);
    c.socket.destroy();
  });

  test('a device that never reads its method calls is closed once its unsent output passes the limit; the buffer never grows past it', async () => {
    const c = await connectedRaw(t, 'deaf', keys.deaf!);
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$iothub/methods/POST/#', qos: 0 }] });
    await c.next('suback');
    c.socket.pause();
    // The device, not reading, would not even notice its connection closing: watch the hub's side.
    const hubSide = [...hubSockets].find((s) => s.remotePort === c.socket.localPort)!;
    assert.ok(hubSide, "the hub's side of the connection");
    const token = await serviceToken(t);
    const sampler = sampleMax(t.host, 8883);
    const payload = { blob: 'x'.repeat(100 * 1024) };
    // 100 calls of 100 KiB: 10 MiB for a device that reads none of it (the kernel's socket buffers take a few).
    const calls = Array.from({ length: 100 }, () =>
      rawRequest(t.host, 'POST', '/twins/deaf/methods?api-version=2021-04-12', {
        headers: { authorization: token, 'content-type': 'application/json' },
        body: JSON.stringify({ methodName: 'm', payload, responseTimeoutInSeconds: 5, connectTimeoutInSeconds: 0 }),
      }),
    );
    const gone = await Promise.race([new Promise<boolean>((r) => hubSide.once('close', () => r(true))), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000))]);
    const max = sampler.stop();
    if (process.env.HOSTILE_VERBOSE) console.log({ maxUnsent: max, closed: gone, statuses: (await Promise.all(calls)).map((r) => r.status).join(',') });
    assert.ok(gone, 'the hub closed the connection of the device that does not read');
    assert.ok(max <= MAX + 128 * 1024, `the hub held ${max} unsent bytes for one connection (limit ${MAX})`);
    const statuses = (await Promise.all(calls)).map((r) => r.status);
    assert.ok(statuses.every((s) => s >= 400), `every call failed: ${statuses.join(',')}`);
  });
});
