/**
 * One connection's ceiling on the MQTT packets the hub reads from it per second
 * (connections.packetsPerConnectionSecond, src/protocols/mqtt/ingestBudget.ts PacketRate): a device
 * pipelining publishes faster than that is read at that pace (TCP holds it back; nothing is
 * refused, everything is stored and acknowledged in order), while another device is answered at
 * once. Over AMQP a device's telemetry link is given credit at most at that rate. 0 sets no ceiling.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import mqttPacket from 'mqtt-packet';
import { defaults, loadConfig } from '../src/config/index.js';
import { PacketRate } from '../src/protocols/packetRate.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventsOf, eventually } from './support/devices.js';
import { deviceToken, RawConnection } from './support/rawMqtt.js';
import { connectAmqp, putToken } from './support/amqp.js';

const RATE = 500;
const N = 300;

describe('connections.packetsPerConnectionSecond: one connection read at most so many packets a second', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub({ connections: { ...defaults.connections, packetsPerConnectionSecond: RATE } });
  });
  after(() => t.close());

  test(`${N} publishes pipelined in one write at ${RATE}/s take their time, all stored and acknowledged in order; another device is answered meanwhile`, async () => {
    const burstKey = (await createDevice(t, 'paced')).key;
    const otherKey = (await createDevice(t, 'other')).key;
    const burst = await RawConnection.open(t.host);
    const other = await RawConnection.open(t.host);
    assert.equal(await burst.connect(t.host, 'paced', deviceToken(t.host, 'paced', burstKey)), 0);
    assert.equal(await other.connect(t.host, 'other', deviceToken(t.host, 'other', otherKey)), 0);
    const flood = Buffer.concat(
      Array.from({ length: N }, (_, i) => mqttPacket.generate({ cmd: 'publish', topic: 'devices/paced/messages/events/', payload: String(i), qos: 1, dup: false, retain: false, messageId: i + 1 })),
    );
    const started = performance.now();
    burst.socket.write(flood);
    await burst.next('puback').then((p) => burst.packets.unshift(p));
    // While the flood is being paced, the other device's publish is read and committed at once.
    const sent = performance.now();
    other.send({ cmd: 'publish', topic: 'devices/other/messages/events/', payload: 'one', qos: 1, dup: false, retain: false, messageId: 1 });
    await other.next('puback');
    const otherTook = performance.now() - sent;
    const acks: number[] = [];
    for (let i = 0; i < N; i++) acks.push((await burst.next('puback', 10_000)).messageId!);
    const took = performance.now() - started;
    burst.socket.destroy();
    other.socket.destroy();
    assert.deepEqual(acks, Array.from({ length: N }, (_, i) => i + 1));
    // 10 ms of packets at once, the rest at the rate: it cannot go faster than this.
    const least = ((N - RATE / 100) / RATE) * 1000;
    assert.ok(took >= least * 0.95, `${N} packets at ${RATE}/s read in ${took.toFixed(0)} ms (at least ${least.toFixed(0)} expected)`);
    assert.ok(otherTook < least / 2, `the other device waited ${otherTook.toFixed(0)} ms for its PUBACK while the flood took ${took.toFixed(0)} ms`);
    const events = await eventually(async () => {
      const e = await eventsOf(t, 'paced');
      return e.length === N && e;
    });
    assert.deepEqual(
      events.map((e) => Number(e.body.toString())),
      acks.map((id) => id - 1),
    );
  });
});

describe('connections.packetsPerConnectionSecond over AMQP: a telemetry link given credit at most so fast', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub({ connections: { ...defaults.connections, packetsPerConnectionSecond: RATE } });
  });
  after(() => t.close());

  test(`a device sending as fast as its credit allows: the first window (1,000) at once, the rest at ${RATE}/s; all accepted and stored in order`, async () => {
    const M = 1600;
    const key = (await createDevice(t, 'paced-amqp')).key;
    const c = await connectAmqp(t.host);
    try {
      assert.equal((await putToken(c, `${t.host}/devices/paced-amqp`, deviceToken(t.host, 'paced-amqp', key))).application_properties?.['status-code'], 200);
      const sender = await c.sender('/devices/paced-amqp/messages/events');
      const started = performance.now();
      await new Promise<void>((resolve, reject) => {
        let sent = 0;
        let accepted = 0;
        const pump = () => {
          while (sent < M && sender.sendable()) sender.send({ body: String(sent++) });
        };
        sender.on('sendable', pump);
        sender.on('accepted', () => {
          if (++accepted === M) resolve();
        });
        sender.on('rejected', (ctx) => reject(new Error(`rejected: ${JSON.stringify(ctx.delivery?.remote_state)}`)));
        sender.on('sender_close', () => reject(new Error(`link closed: ${JSON.stringify(sender.error)}`)));
        pump();
      });
      const took = performance.now() - started;
      // The first window without waiting, 10 ms of the rate at once, the rest at the rate.
      const least = ((M - 1000 - RATE / 100) / RATE) * 1000;
      assert.ok(took >= least * 0.95, `${M} messages, ${M - 1000} past the first window, at ${RATE}/s accepted in ${took.toFixed(0)} ms (at least ${least.toFixed(0)} expected)`);
      const events = await eventually(async () => {
        const e = await eventsOf(t, 'paced-amqp');
        return e.length === M && e;
      });
      assert.deepEqual(
        events.map((e) => Number(e.body.toString())),
        Array.from({ length: M }, (_, i) => i),
      );
    } finally {
      await c.close();
    }
  });
});

describe('PacketRate', () => {
  test('lets 10 ms of packets through at once, then one per 1/rate seconds; takes nothing until spent', async () => {
    const rate = new PacketRate(1000);
    for (let i = 0; i < 10; i++) {
      assert.equal(rate.wait(), 0, `packet ${i} of the first 10 ms`);
      rate.spend();
    }
    const wait = rate.wait();
    assert.ok(wait > 0 && wait <= 1, `then a wait of at most one packet's time (${wait} ms)`);
    assert.ok(rate.wait() > 0, 'asking again takes nothing');
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(rate.wait(), 0, 'refilled after the wait');
  });

  test('a rate of 0 or less is refused (0 means no PacketRate at all)', () => {
    assert.throws(() => new PacketRate(0), /above 0/);
    assert.throws(() => new PacketRate(-5), /above 0/);
    assert.throws(() => new PacketRate(Number.NaN), /above 0/);
  });

  test('the setting: 5,000 by default, 0 for none, never negative', () => {
    assert.equal(loadConfig({ cwd: tmpdir(), env: {} }).connections.packetsPerConnectionSecond, 2500);
    assert.equal(loadConfig({ cwd: tmpdir(), env: {}, flags: { connections: { packetsPerConnectionSecond: 0 } } }).connections.packetsPerConnectionSecond, 0);
    assert.throws(() => loadConfig({ cwd: tmpdir(), env: {}, flags: { connections: { packetsPerConnectionSecond: -1 } } }), /'connections.packetsPerConnectionSecond' must be a number of at least 0/);
  });
});
