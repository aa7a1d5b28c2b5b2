import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket from 'mqtt-packet';
import { defaults } from '../src/config/index.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, createModule, eventsOf, eventually } from './support/devices.js';
import { closed, closesWithin, deviceToken, mqttDevice, RawConnection } from './support/rawMqtt.js';

describe('MQTT protocol edges, as IoT Hub handles them (mqtt.js and raw TLS)', () => {
  let t: TestHub;
  let bystanderKey: string;
  before(async () => {
    t = await startTestHub();
    bystanderKey = (await createDevice(t, 'bystander')).key;
  });
  after(() => t.close());

  /** A second device keeps working through every bad input. */
  async function bystanderStillWorks(): Promise<void> {
    const client = await mqttDevice(t.host, 'bystander', bystanderKey);
    const before = (await eventsOf(t, 'bystander')).length;
    await client.publishAsync('devices/bystander/messages/events/', 'ok', { qos: 1 });
    assert.equal((await eventsOf(t, 'bystander')).length, before + 1);
    await client.endAsync();
  }

  test('QoS 0 and QoS 1 telemetry from a plain MQTT client, property bag decoded', async () => {
    const { key } = await createDevice(t, 'plain');
    const client = await mqttDevice(t.host, 'plain', key);
    await client.publishAsync('devices/plain/messages/events/$.mid=m%201&$.ct=text%2Fplain&k%26=v%3D1&empty', 'q1', { qos: 1 });
    client.publish('devices/plain/messages/events', 'q0', { qos: 0 });
    const events = await eventually(async () => {
      const e = await eventsOf(t, 'plain');
      return e.length === 2 && e;
    });
    assert.equal(events[0]!.systemProperties['message-id'], 'm 1');
    assert.equal(events[0]!.systemProperties['content-type'], 'text/plain');
    assert.deepEqual(events[0]!.properties, { 'k&': 'v=1', empty: '' });
    assert.equal(events[1]!.body.toString(), 'q0');
    await client.endAsync();
  });

  test("publishing to another device's topic closes the connection and stores nothing", async () => {
    const { key } = await createDevice(t, 'intruder');
    const client = await mqttDevice(t.host, 'intruder', key);
    const gone = closed(client);
    client.publish('devices/bystander/messages/events/', 'spoofed', { qos: 1 });
    await gone;
    assert.equal((await eventsOf(t, 'bystander')).filter((e) => e.body.toString() === 'spoofed').length, 0);
    await bystanderStillWorks();
  });

  test("subscribing to another device's topics, or a device to its module's, closes the connection", async () => {
    const { key } = await createDevice(t, 'snoop');
    for (const topic of ['devices/bystander/messages/devicebound/#', 'devices/snoop/modules/m1/inputs/#', '#']) {
      const client = await mqttDevice(t.host, 'snoop', key);
      const gone = closed(client);
      client.subscribe(topic, { qos: 1 });
      await gone;
    }
    await bystanderStillWorks();
  });

  test('a module may not publish on its device’s topics', async () => {
    await createDevice(t, 'modhost');
    const { key } = await createModule(t, 'modhost', 'm1');
    const client = await mqttDevice(t.host, 'modhost/m1', key, {
      username: `${t.host}/modhost/m1/?api-version=2021-04-12`,
      password: deviceToken(t.host, 'modhost', key, 'm1'),
    });
    await client.publishAsync('devices/modhost/modules/m1/messages/events/', 'mine', { qos: 1 });
    const gone = closed(client);
    client.publish('devices/modhost/messages/events/', 'not mine', { qos: 1 });
    await gone;
    assert.deepEqual((await eventsOf(t, 'modhost', 'm1')).map((e) => e.body.toString()), ['mine']);
    assert.equal((await eventsOf(t, 'modhost')).length, 0);
  });

  test('a message over 256 KB closes the connection and is not stored; 256 KB exactly is accepted', async () => {
    const { key } = await createDevice(t, 'big');
    const client = await mqttDevice(t.host, 'big', key);
    await client.publishAsync('devices/big/messages/events/', Buffer.alloc(256 * 1024, 1), { qos: 1 });
    const gone = closed(client);
    client.publish('devices/big/messages/events/', Buffer.alloc(256 * 1024 + 1, 2), { qos: 1 });
    await gone;
    const huge = await RawConnection.open(t.host);
    assert.equal(await huge.connect(t.host, 'big', deviceToken(t.host, 'big', key)), 0);
    huge.send({ cmd: 'publish', topic: 'devices/big/messages/events/', payload: Buffer.alloc(4 * 1024 * 1024), qos: 1, messageId: 1, dup: false, retain: false });
    await closesWithin(huge, 5000);
    const events = await eventsOf(t, 'big');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.body.length, 256 * 1024);
    await bystanderStillWorks();
  });

  test('malformed packets close the connection; the hub stays up', async () => {
    const { key } = await createDevice(t, 'garbage');
    // Not MQTT at all.
    const a = await RawConnection.open(t.host);
    a.socket.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await closesWithin(a, 5000);
    // Reserved packet type 0 after a good CONNECT.
    const b = await RawConnection.open(t.host);
    assert.equal(await b.connect(t.host, 'garbage', deviceToken(t.host, 'garbage', key)), 0);
    b.socket.write(Buffer.from([0x00, 0x00]));
    await closesWithin(b, 5000);
    // A PUBLISH whose topic length runs past the packet.
    const c = await RawConnection.open(t.host);
    assert.equal(await c.connect(t.host, 'garbage', deviceToken(t.host, 'garbage', key)), 0);
    c.socket.write(Buffer.from([0x30, 0x03, 0xff, 0xff, 0x61]));
    await closesWithin(c, 5000);
    // A packet before CONNECT.
    const d = await RawConnection.open(t.host);
    d.send({ cmd: 'pingreq' });
    await closesWithin(d, 5000);
    // QoS 2, which IoT Hub does not support.
    const e = await RawConnection.open(t.host);
    assert.equal(await e.connect(t.host, 'garbage', deviceToken(t.host, 'garbage', key)), 0);
    e.send({ cmd: 'publish', topic: 'devices/garbage/messages/events/', payload: 'x', qos: 2, messageId: 7, dup: false, retain: false });
    await closesWithin(e, 5000);
    assert.equal((await eventsOf(t, 'garbage')).length, 0);
    await bystanderStillWorks();
  });

  test('PUBLISHes pipelined in one write and split mid-packet at any byte are all stored and acknowledged in order', async () => {
    const { key } = await createDevice(t, 'pipeline');
    const c = await RawConnection.open(t.host);
    assert.equal(await c.connect(t.host, 'pipeline', deviceToken(t.host, 'pipeline', key)), 0);
    // QoS 1 and QoS 0, short and long (two-byte remaining length), a property bag, a RETAIN flag.
    const packets = [
      { qos: 1, topic: 'devices/pipeline/messages/events/', body: 'a', retain: false },
      { qos: 1, topic: 'devices/pipeline/messages/events/k=v', body: 'b'.repeat(300), retain: false },
      { qos: 0, topic: 'devices/pipeline/messages/events/', body: 'c', retain: false },
      { qos: 1, topic: 'devices/pipeline/messages/events/', body: 'd', retain: true },
      { qos: 1, topic: 'devices/pipeline/messages/events/', body: 'e'.repeat(20_000), retain: false },
    ] as const;
    let messageId = 1;
    const round = () =>
      Buffer.concat(
        packets.map((p) =>
          mqttPacket.generate({ cmd: 'publish', topic: p.topic, payload: p.body, qos: p.qos, dup: false, retain: p.retain, ...(p.qos ? { messageId: messageId++ } : {}) }),
        ),
      );
    const whole = round();
    c.socket.write(whole);
    // Then the same again, cut at a few points (inside the fixed header, the topic, the payload).
    const cut = round();
    for (const [from, to] of [[0, 1], [1, 30], [30, 45], [45, 400], [400, 20_100], [20_100, cut.length]] as const) {
      c.socket.write(cut.subarray(from, to));
      await new Promise((r) => setTimeout(r, 20));
    }
    const acks: number[] = [];
    for (let i = 0; i < 8; i++) acks.push((await c.next('puback').catch(() => ({ messageId: -1 }))).messageId!);
    c.socket.destroy();
    assert.deepEqual(acks, [1, 2, 3, 4, 5, 6, 7, 8]);
    const events = await eventually(async () => {
      const e = await eventsOf(t, 'pipeline');
      return e.length === 10 && e;
    });
    assert.deepEqual(
      events.map((e) => e.body.toString()),
      [...packets, ...packets].map((p) => p.body),
    );
    assert.deepEqual(events[1]!.properties, { k: 'v' });
    assert.deepEqual(events[3]!.properties, { 'x-opt-retain': 'true' });
  });

  test('a device that pipelines 1,000 publishes in one write does not hold up another device: its publishes are committed a share per turn (connections.packetsPerConnectionTurn), all stored and acknowledged in order', async () => {
    // Without a share per turn, the flood's reads (~450 publishes per 16 KiB TLS record) are all
    // committed before the other device's one message. With it, the other device's publish is
    // read in the turn after the flood's first share: two shares of the flood at most come first.
    const share = defaults.connections.packetsPerConnectionTurn;
    const before = await floodBeside(t);
    assert.ok(before <= 3 * share, `the other device's PUBACK came after ${before} of the flood's (share per turn: ${share})`);
  });

  test('connections.packetsPerConnectionTurn sets the share: at 100, the other device waits for more of the flood', async () => {
    // The per-second ceiling lifted: its 10 ms bucket (25 packets at the default 2,500/s) would end the turn first.
    const wide = await startTestHub({ connections: { ...defaults.connections, packetsPerConnectionTurn: 100, packetsPerConnectionSecond: 0 } });
    try {
      const before = await floodBeside(wide);
      assert.ok(before >= 100 && before <= 300, `the other device's PUBACK came after ${before} of the flood's (share per turn: 100)`);
    } finally {
      await wide.close();
    }
  });

  test('CONNACK return codes: protocol version, client id, user name, password', async () => {
    const { key } = await createDevice(t, 'codes');
    const token = deviceToken(t.host, 'codes', key);
    const cases: [string, (c: RawConnection) => Promise<number>, number][] = [
      ['MQTT 3.1', (c) => c.connect(t.host, 'codes', token, { protocolId: 'MQIsdp', protocolVersion: 3 }), 1],
      ['bad client id', (c) => c.connect(t.host, 'a/b/c', token), 2],
      ['user name for another client', (c) => c.connect(t.host, 'codes', token, { username: `${t.host}/other/?api-version=1` }), 4],
      ['user name for another host', (c) => c.connect(t.host, 'codes', token, { username: `example.com/codes/?api-version=1` }), 4],
      ['password not a token', (c) => c.connect(t.host, 'codes', 'hunter2'), 4],
      ['no password, no certificate', (c) => c.connect(t.host, 'codes', undefined), 5],
      ['token of another device', (c) => c.connect(t.host, 'codes', deviceToken(t.host, 'bystander', bystanderKey)), 5],
      ['expired token', (c) => c.connect(t.host, 'codes', token.replace(/se=\d+/, 'se=1')), 5],
    ];
    for (const [name, run, expected] of cases) {
      const c = await RawConnection.open(t.host);
      assert.equal(await run(c), expected, name);
      await closesWithin(c, 5000);
    }
    assert.equal((await t.hub.registry.getDevice('codes')).connectionState, 'Disconnected');
  });

  test('the hub closes a connection after 1.5 keep-alive periods of silence, and answers PINGREQ', async () => {
    const { key } = await createDevice(t, 'sleepy');
    const c = await RawConnection.open(t.host);
    assert.equal(await c.connect(t.host, 'sleepy', deviceToken(t.host, 'sleepy', key), { keepalive: 1 }), 0);
    c.send({ cmd: 'pingreq' });
    await c.next('pingresp');
    const took = await closesWithin(c, 4000);
    assert.ok(took >= 1200, `closed after ${took} ms`);
    await eventually(async () => (await t.hub.registry.getDevice('sleepy')).connectionState === 'Disconnected');
  });

  test('a Will is sent as telemetry (iothub-MessageType: Will) when the connection drops, not after DISCONNECT; RETAIN becomes x-opt-retain', async () => {
    const { key } = await createDevice(t, 'mortal');
    const will = { topic: 'devices/mortal/messages/events/cause=power', payload: Buffer.from('gone'), qos: 1 as const, retain: false };
    const graceful = await RawConnection.open(t.host);
    assert.equal(await graceful.connect(t.host, 'mortal', deviceToken(t.host, 'mortal', key), { will }), 0);
    graceful.send({ cmd: 'publish', topic: 'devices/mortal/messages/events/', payload: 'kept', qos: 1, messageId: 1, dup: false, retain: true });
    await graceful.next('puback');
    graceful.send({ cmd: 'disconnect' });
    await closesWithin(graceful, 5000);

    const dropped = await RawConnection.open(t.host);
    assert.equal(await dropped.connect(t.host, 'mortal', deviceToken(t.host, 'mortal', key), { will }), 0);
    dropped.socket.destroy();
    const events = await eventually(async () => {
      const e = await eventsOf(t, 'mortal');
      return e.length >= 2 && e;
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await eventsOf(t, 'mortal')).length, 2, 'no Will after DISCONNECT');
    assert.deepEqual(events[0]!.properties, { 'x-opt-retain': 'true' });
    assert.equal(events[1]!.body.toString(), 'gone');
    assert.deepEqual(events[1]!.properties, { cause: 'power', 'iothub-MessageType': 'Will' });
  });

  test('the hub closes a SAS connection when its token expires', async () => {
    const { key } = await createDevice(t, 'expiring');
    const { createSasToken } = await import('../src/core/sas.js');
    const token = createSasToken(`${t.host}/devices/expiring`, key, Math.floor(Date.now() / 1000) + 2);
    const c = await RawConnection.open(t.host);
    assert.equal(await c.connect(t.host, 'expiring', token), 0);
    const took = await closesWithin(c, 4000);
    assert.ok(took >= 500, `closed after ${took} ms`);
  });

  test('fault injection: KillTcp drops the connection after the requested delay', async () => {
    const { key } = await createDevice(t, 'faulty');
    const client = await mqttDevice(t.host, 'faulty', key);
    const gone = closed(client);
    const start = Date.now();
    await client.publishAsync(
      'devices/faulty/messages/events/AzIoTHub_FaultOperationType=KillTcp&AzIoTHub_FaultOperationCloseReason=boom&AzIoTHub_FaultOperationDelayInSecs=1&AzIoTHub_FaultOperationDurationInSecs=5',
      'fault',
      { qos: 1 },
    );
    await gone;
    assert.ok(Date.now() - start >= 900);
    const again = await mqttDevice(t.host, 'faulty', key);
    await again.endAsync();
  });
});

/**
 * Device `burst` pipelines 1,000 publishes in one write; once the hub has begun on them, device
 * `steady` publishes one. Checks that every publish of the flood is stored and acknowledged in
 * order, and returns how many of the flood's PUBACKs came before the other device's.
 */
async function floodBeside(t: TestHub): Promise<number> {
  const burstKey = (await createDevice(t, 'burst')).key;
  const steadyKey = (await createDevice(t, 'steady')).key;
  const burst = await RawConnection.open(t.host);
  const steady = await RawConnection.open(t.host);
  assert.equal(await burst.connect(t.host, 'burst', deviceToken(t.host, 'burst', burstKey)), 0);
  assert.equal(await steady.connect(t.host, 'steady', deviceToken(t.host, 'steady', steadyKey)), 0);
  const N = 1000;
  const flood = Buffer.concat(
    Array.from({ length: N }, (_, i) => mqttPacket.generate({ cmd: 'publish', topic: 'devices/burst/messages/events/', payload: String(i), qos: 1, dup: false, retain: false, messageId: i + 1 })),
  );
  burst.socket.write(flood);
  // Once the hub has begun on the flood, the other device publishes one message.
  await burst.next('puback').then((p) => burst.packets.unshift(p));
  steady.send({ cmd: 'publish', topic: 'devices/steady/messages/events/', payload: 'one', qos: 1, dup: false, retain: false, messageId: 1 });
  await steady.next('puback');
  const floodAckedBefore = burst.packets.length;
  const acks: number[] = [];
  for (let i = 0; i < N; i++) acks.push((await burst.next('puback')).messageId!);
  burst.socket.destroy();
  steady.socket.destroy();
  assert.deepEqual(acks, Array.from({ length: N }, (_, i) => i + 1));
  const events = await eventually(async () => {
    const e = await eventsOf(t, 'burst');
    return e.length === N && e;
  });
  assert.deepEqual(
    events.map((e) => Number(e.body.toString())),
    acks.map((id) => id - 1),
  );
  return floodAckedBefore;
}
