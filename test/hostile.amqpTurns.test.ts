/**
 * AMQP connections get a share per event-loop turn, as MQTT connections do
 * (connections.packetsPerConnectionTurn; src/protocols/amqp/inputPacing.ts): a device that sends
 * its whole credit window at once does not hold up the other devices, and every one of its
 * messages is still accepted and stored in order.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaults } from '../src/config/index.js';
import { FrameCounter } from '../src/protocols/amqp/inputPacing.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventsOf, eventually } from './support/devices.js';
import { deviceToken, RawConnection } from './support/rawMqtt.js';
import { connectAmqp, putToken } from './support/amqp.js';

/** An AMQP frame of `size` bytes (its size field first; the rest filler). */
function frame(size: number): Buffer {
  const b = Buffer.alloc(size, 0xab);
  b.writeUInt32BE(size, 0);
  return b;
}
const HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x03, 0x01, 0x00, 0x00]);

describe('FrameCounter: whole frames in a byte stream', () => {
  test('cuts after so many frames; protocol headers count as one; the rest is counted on', () => {
    const stream = Buffer.concat([HEADER, frame(8), frame(30), frame(12), frame(200)]);
    const c = new FrameCounter();
    assert.deepEqual(c.cut(stream, 2), { end: 16, frames: 2 });
    assert.deepEqual(c.cut(stream.subarray(16), 2), { end: 42, frames: 2 });
    assert.deepEqual(c.cut(stream.subarray(58), 5), { end: 200, frames: 1 });
  });

  test('frames and size fields split across reads, down to a byte a read', () => {
    const stream = Buffer.concat([HEADER, frame(9), HEADER, frame(1000), frame(8)]);
    const c = new FrameCounter();
    let frames = 0;
    for (let i = 0; i < stream.length; i++) {
      const r = c.cut(stream.subarray(i, i + 1), 100);
      assert.equal(r.end, 1);
      frames += r.frames;
    }
    assert.equal(frames, 5);
    // And in reads of 7 bytes, cut after one frame at a time: every cut at a frame's end.
    const d = new FrameCounter();
    const ends: number[] = [];
    let at = 0;
    let read = stream.subarray(0, 7);
    let readAt = 0;
    while (at < stream.length) {
      const r = d.cut(read, 1);
      at = readAt + r.end;
      if (r.frames === 1) ends.push(at);
      read = r.end < read.length ? read.subarray(r.end) : stream.subarray(at, at + 7);
      readAt = at;
    }
    assert.deepEqual(ends, [8, 17, 25, 1025, 1033]);
  });

  test('a size that is no frame (under 8) stops the counting: the read goes whole to rhea, which refuses it', () => {
    const c = new FrameCounter();
    const bad = Buffer.concat([frame(8), Buffer.from([0, 0, 0, 3]), frame(8), frame(8)]);
    assert.deepEqual(c.cut(bad, 100), { end: bad.length, frames: 1 });
    assert.deepEqual(c.cut(frame(8), 1), { end: 8, frames: 0 });
  });
});

describe('connections.packetsPerConnectionTurn over AMQP', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub();
  });
  after(() => t.close());

  test('a device sending its 1,000 credits at once does not hold up an MQTT device: the flood is handled a share per turn, all accepted and stored in order', async () => {
    const N = 1000;
    const share = defaults.connections.packetsPerConnectionTurn;
    const floodKey = (await createDevice(t, 'amqp-burst')).key;
    const steadyKey = (await createDevice(t, 'amqp-steady')).key;
    const steady = await RawConnection.open(t.host);
    assert.equal(await steady.connect(t.host, 'amqp-steady', deviceToken(t.host, 'amqp-steady', steadyKey)), 0);
    const c = await connectAmqp(t.host);
    try {
      assert.equal((await putToken(c, `${t.host}/devices/amqp-burst`, deviceToken(t.host, 'amqp-burst', floodKey))).application_properties?.['status-code'], 200);
      const sender = await c.sender('/devices/amqp-burst/messages/events');
      let accepted = 0;
      let acceptedBefore = -1;
      const all = new Promise<void>((resolve, reject) => {
        sender.on('accepted', () => {
          if (++accepted === 1) {
            // Once the hub has begun on the flood, the other device publishes one message.
            steady.send({ cmd: 'publish', topic: 'devices/amqp-steady/messages/events/', payload: 'one', qos: 1, dup: false, retain: false, messageId: 1 });
            void steady.next('puback').then(() => (acceptedBefore = accepted), reject);
          }
          if (accepted === N) resolve();
        });
        sender.on('rejected', (ctx) => reject(new Error(`rejected: ${JSON.stringify(ctx.delivery?.remote_state)}`)));
        sender.on('sender_close', () => reject(new Error(`link closed: ${JSON.stringify(sender.error)}`)));
      });
      await eventually(() => sender.sendable());
      let sent = 0;
      while (sent < N && sender.sendable()) sender.send({ body: String(sent++) });
      assert.equal(sent, N, `the hub's first credit window lets ${N} go at once`);
      await all;
      await eventually(() => acceptedBefore >= 0);
      // Without a share per turn, the hub decoded and committed the whole burst (a read or two)
      // before it read the other device's publish: all 1,000 came first. With it, 17-25 did here; the
      // flood keeps its share each turn while that publish is on its way, so the bound leaves room
      // for a test process kept off the CPU for a few milliseconds.
      assert.ok(acceptedBefore <= 8 * share, `the MQTT device's PUBACK came after ${acceptedBefore} of the flood's ${N} (share per turn: ${share})`);
      const events = await eventually(async () => {
        const e = await eventsOf(t, 'amqp-burst');
        return e.length === N && e;
      });
      assert.deepEqual(
        events.map((e) => Number(e.body.toString())),
        Array.from({ length: N }, (_, i) => i),
      );
    } finally {
      steady.socket.destroy();
      await c.close();
    }
  });
});
