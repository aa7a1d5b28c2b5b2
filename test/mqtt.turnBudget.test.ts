/**
 * connections.packetsPerTurn: the MQTT packets all connections together are handled per
 * event-loop turn. Past it a connection's read waits, reading paused, in a first-come-first-served
 * queue served at the start of the next turns. The class on its own, then three devices flooding
 * a hub whose budget is 20 packets a turn while a fourth publishes one message.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket from 'mqtt-packet';
import { defaults } from '../src/config/index.js';
import { TurnBudget } from '../src/protocols/mqtt/ingestBudget.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventsOf, eventually } from './support/devices.js';
import { deviceToken, RawConnection } from './support/rawMqtt.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('TurnBudget', () => {
  test('perTurn packets a turn; held reads resume first come, first served, each taking from its turn', async () => {
    const budget = new TurnBudget(3);
    assert.deepEqual([budget.take(), budget.take(), budget.take(), budget.take()], [true, true, true, false]);
    const order: string[] = [];
    // Each held read needs two packets; the budget of a turn serves one and a half of them.
    const read = (name: string, packets: number) => {
      const resume = () => {
        while (packets > 0 && budget.take()) {
          packets--;
          order.push(name);
        }
        if (packets > 0) budget.wait(resume);
      };
      budget.wait(resume);
    };
    read('a', 2);
    read('b', 2);
    read('c', 2);
    await nextTurn();
    assert.deepEqual(order, ['a', 'a', 'b']);
    await nextTurn();
    assert.deepEqual(order, ['a', 'a', 'b', 'c', 'c', 'b']);
    assert.equal(budget.queued, 0);
    await nextTurn();
    assert.equal(budget.take(), true);
    // Not while reads are queued ahead: with budget left, a new read still waits behind them.
    const fresh = new TurnBudget(5);
    let resumed = false;
    fresh.wait(() => (resumed = fresh.take()));
    assert.equal(fresh.take(), false);
    await nextTurn();
    assert.equal(resumed, true);
    assert.equal(fresh.take(), true);
  });
});

describe('a hub that handles 20 packets a turn', () => {
  let t: TestHub;
  const keys: Record<string, string> = {};
  before(async () => {
    t = await startTestHub({ connections: { ...defaults.connections, packetsPerTurn: 20 } });
    for (const id of ['flood-1', 'flood-2', 'flood-3', 'steady']) keys[id] = (await createDevice(t, id)).key;
  });
  after(() => t.close());

  test('three devices flooding 500 publishes each, their reads held and resumed 20 packets a turn: a fourth is not held up, and every publish is stored and acknowledged in order', async () => {
    const N = 500;
    const open = async (id: string) => {
      const c = await RawConnection.open(t.host);
      assert.equal(await c.connect(t.host, id, deviceToken(t.host, id, keys[id]!)), 0);
      return c;
    };
    const floods = await Promise.all(['flood-1', 'flood-2', 'flood-3'].map(open));
    const steady = await open('steady');
    floods.forEach((c, f) =>
      c.socket.write(
        Buffer.concat(
          Array.from({ length: N }, (_, i) => mqttPacket.generate({ cmd: 'publish', topic: `devices/flood-${f + 1}/messages/events/`, payload: String(i), qos: 1, dup: false, retain: false, messageId: i + 1 })),
        ),
      ),
    );
    await floods[0]!.next('puback').then((p) => floods[0]!.packets.unshift(p));
    steady.send({ cmd: 'publish', topic: 'devices/steady/messages/events/', payload: 'one', qos: 1, dup: false, retain: false, messageId: 7 });
    assert.equal((await steady.next('puback')).messageId, 7);
    const floodAckedBefore = floods.reduce((n, c) => n + c.packets.length, 0);
    for (const c of floods) {
      const acks: number[] = [];
      for (let i = 0; i < N; i++) acks.push((await c.next('puback')).messageId!);
      assert.deepEqual(acks, Array.from({ length: N }, (_, i) => i + 1));
      c.socket.destroy();
    }
    steady.socket.destroy();
    assert.ok(floodAckedBefore < (3 * N) / 2, `the steady device's PUBACK came after ${floodAckedBefore} of the floods' ${3 * N}`);
    for (let f = 1; f <= 3; f++) {
      const events = await eventually(async () => {
        const e = await eventsOf(t, `flood-${f}`);
        return e.length === N && e;
      });
      assert.deepEqual(
        events.map((e) => Number(e.body.toString())),
        Array.from({ length: N }, (_, i) => i),
      );
    }
  });

  test('the setting: at least 1', async () => {
    const { loadConfig } = await import('../src/config/index.js');
    const { tmpdir } = await import('node:os');
    assert.equal(loadConfig({ cwd: tmpdir(), env: {} }).connections.packetsPerTurn, 1000);
    assert.throws(() => loadConfig({ cwd: tmpdir(), env: {}, flags: { connections: { packetsPerTurn: 0 } } }), /'connections.packetsPerTurn' must be a number of at least 1/);
  });
});
