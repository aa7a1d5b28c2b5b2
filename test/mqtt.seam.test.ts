import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import pino from 'pino';
import mqtt from 'mqtt';
import { HubError } from '../src/core/errors.js';
import type { DeviceSession, TopicHandler } from '../src/protocols/mqtt/handler.js';
import { startMqttEndpoint, type MqttEndpoint } from '../src/protocols/mqtt/server.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventually } from './support/devices.js';
import { deviceToken, RawConnection } from './support/rawMqtt.js';

/**
 * The TopicHandler seam that the twin, method and cloud-to-device handlers plug into, exercised
 * through a real MQTT endpoint (the hub's connections, TLS material, session layer) with a small
 * request/response handler and real clients.
 */
describe('MQTT session layer: the TopicHandler seam', () => {
  let t: TestHub;
  let endpoint: MqttEndpoint;
  let port: number;
  let key: string;
  const sessions: DeviceSession[] = [];
  const closedSessions: DeviceSession[] = [];

  const testTopics: TopicHandler = {
    owns: (topic) => topic.startsWith('$iothub/test/'),
    async subscribe(session, filter, qos) {
      if (filter === '$iothub/test/refused/#') return 0x80;
      sessions.push(session);
      session.onClose(() => closedSessions.push(session));
      return qos;
    },
    async unsubscribe() {},
    async publish(session, { topic, payload }) {
      if (topic.startsWith('$iothub/test/fail')) throw new HubError('ArgumentInvalid', 'refused by the handler');
      if (topic.startsWith('$iothub/test/slow')) await new Promise((r) => setTimeout(r, 150));
      const rid = /\$rid=(\w+)/.exec(topic)?.[1];
      if (rid) void session.publish(`$iothub/test/res/200/?$rid=${rid}`, payload, 1);
    },
  };

  before(async () => {
    t = await startTestHub();
    key = (await createDevice(t, 'seam')).key;
    port = await new Promise<number>((resolve) => {
      const s = createServer().listen({ host: t.host, port: 0 }, () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    endpoint = await startMqttEndpoint({
      key: t.hub.tls.serverKeyPem,
      cert: t.hub.tls.serverCertificatePem,
      host: t.host,
      port,
      connections: t.hub.connections,
      handlers: [testTopics],
      hostNames: new Set([t.host]),
      logger: pino({ level: 'silent' }),
    });
  });
  after(async () => {
    await endpoint.close();
    await t.close();
  });

  const connect = () =>
    mqtt.connectAsync(`mqtts://${t.host}:${port}`, {
      clientId: 'seam',
      username: `${t.host}/seam/?api-version=2021-04-12`,
      password: deviceToken(t.host, 'seam', key),
      protocolVersion: 4,
      reconnectPeriod: 0,
    });

  test('SUBSCRIBE reaches the handler (granted QoS, 0x80 refusals, unknown families refused), and QoS 1 publishes to the device resolve on PUBACK', async () => {
    const raw = await RawConnection.open(t.host, port);
    assert.equal(await raw.connect(t.host, 'seam', deviceToken(t.host, 'seam', key)), 0);
    raw.send({
      cmd: 'subscribe',
      messageId: 9,
      subscriptions: [
        { topic: '$iothub/test/res/#', qos: 2 },
        { topic: '$iothub/test/refused/#', qos: 1 },
        { topic: '$iothub/unknown/#', qos: 0 },
      ],
    });
    const suback = (await raw.next('suback')) as { messageId: number; granted: number[] };
    assert.deepEqual([suback.messageId, suback.granted], [9, [1, 128, 128]], 'QoS 2 is granted as 1; refusals are 0x80');
    raw.socket.end();

    const client = await connect();
    const granted = await client.subscribeAsync({ '$iothub/test/res/#': { qos: 1 } });
    assert.deepEqual(granted.map((g) => g.qos), [1]);
    const answer = new Promise<[string, Buffer]>((resolve) => client.once('message', (topic, payload) => resolve([topic, payload])));
    await client.publishAsync('$iothub/test/echo/?$rid=42', 'ping', { qos: 1 });
    const [topic, payload] = await answer;
    assert.equal(topic, '$iothub/test/res/200/?$rid=42');
    assert.equal(payload.toString(), 'ping');
    const session = sessions.at(-1)!;
    assert.equal(session.deviceId, 'seam');
    assert.equal(session.authMethod, 'sas');
    assert.equal(session.identity?.authMethod.scope, 'device');
    // A QoS 1 publish from the hub resolves once the device acknowledges it.
    await session.publish('$iothub/test/res/200/?$rid=direct', 'hello', 1);
    await client.unsubscribeAsync('$iothub/test/res/#');
    await client.endAsync();
    await eventually(() => closedSessions.includes(session));
    await assert.rejects(session.publish('$iothub/test/res/x', 'too late', 1), /not connected/);
  });

  test('a handler rejecting a publish closes the connection', async () => {
    const client = await connect();
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish('$iothub/test/fail', 'x', { qos: 1 });
    await closed;
  });

  test('PUBACKs go out in the order the PUBLISHes came in, even when the first commits last', async () => {
    const c = await RawConnection.open(t.host, port);
    assert.equal(await c.connect(t.host, 'seam', deviceToken(t.host, 'seam', key)), 0);
    c.send({ cmd: 'publish', topic: '$iothub/test/slow', payload: 'a', qos: 1, messageId: 1, dup: false, retain: false });
    c.send({ cmd: 'publish', topic: '$iothub/test/fast', payload: 'b', qos: 1, messageId: 2, dup: false, retain: false });
    const first = await c.next('puback');
    const second = await c.next('puback');
    assert.deepEqual([first.messageId, second.messageId], [1, 2]);
    c.socket.end();
  });
});
