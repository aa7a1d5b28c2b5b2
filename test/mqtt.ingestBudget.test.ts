/**
 * connections.ingestBufferBytes: what all MQTT connections together have read and not yet
 * committed is bounded. Two devices each pipeline a burst of 4 KiB QoS 1 publishes; with a budget
 * of 1 byte the hub reads about one TLS record per connection between commits, without one it reads
 * whatever the kernel has. Either way every publish is committed and acknowledged in order.
 * The in-process hub's IngestBudget is watched (not replaced) to see the most it held at once.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaults } from '../src/config/index.js';
import { IngestBudget } from '../src/protocols/mqtt/ingestBudget.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventsOf } from './support/devices.js';
import { deviceToken, RawConnection } from './support/rawMqtt.js';

const BURST = 300;
const PAYLOAD = Buffer.alloc(4096, 'p');

let most = 0;
const take = IngestBudget.prototype.take;
IngestBudget.prototype.take = function (this: IngestBudget, payloadBytes: number) {
  const cost = take.call(this, payloadBytes);
  most = Math.max(most, this.bytes);
  return cost;
};

async function burst(ingestBufferBytes: number): Promise<{ most: number; t: TestHub }> {
  const t = await startTestHub({ connections: { ...defaults.connections, ingestBufferBytes } });
  const devices = ['burst-a', 'burst-b'];
  const connections = await Promise.all(
    devices.map(async (id) => {
      const { key } = await createDevice(t, id);
      const c = await RawConnection.open(t.host);
      assert.equal(await c.connect(t.host, id, deviceToken(t.host, id, key)), 0);
      return c;
    }),
  );
  most = 0;
  // Each device writes its whole burst at once.
  connections.forEach((c, d) => {
    const packets = [];
    for (let i = 1; i <= BURST; i++) packets.push({ cmd: 'publish' as const, topic: `devices/${devices[d]}/messages/events/n=${i}`, payload: PAYLOAD, qos: 1 as const, messageId: i, dup: false, retain: false });
    for (const p of packets) c.send(p);
  });
  for (const c of connections) {
    for (let i = 1; i <= BURST; i++) {
      const ack = await c.next('puback', 20_000);
      assert.equal(ack.messageId, i, 'PUBACKs in order');
    }
  }
  for (const id of devices) {
    const stored = await eventsOf(t, id);
    assert.equal(stored.length, BURST, `${id}: every acknowledged publish is stored`);
  }
  for (const c of connections) c.socket.destroy();
  return { most, t };
}

describe('the ingest budget bounds what all MQTT connections hold uncommitted', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const t of hubs) await t.close();
  });

  test('with a budget of 1 byte, at most about a TLS record per connection is held; all is committed and acknowledged', async () => {
    const { most: held, t } = await burst(1);
    hubs.push(t);
    // Two connections, each stopped after the record it was reading (16 KiB: four 4 KiB publishes, five with a split one).
    const bound = 2 * 6 * (PAYLOAD.length + IngestBudget.PER_MESSAGE_BYTES);
    assert.ok(held <= bound, `held ${held} bytes at once, bound ${bound}`);
  });

  test('without a budget that binds, the same bursts are read as fast as they arrive (so the bound above is the budget\'s doing)', async () => {
    const { most: held, t } = await burst(defaults.connections.ingestBufferBytes);
    hubs.push(t);
    const bound = 2 * 6 * (PAYLOAD.length + IngestBudget.PER_MESSAGE_BYTES);
    assert.ok(held > bound, `held ${held} bytes at once (more than ${bound})`);
  });
});
