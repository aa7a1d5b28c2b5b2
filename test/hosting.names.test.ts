import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import iothub from 'azure-iothub';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceAmqp from 'azure-iot-device-amqp';
import { EventHubConsumerClient } from '@azure/event-hubs';
import rhea from 'rhea';
import type { RunningHub } from '../src/main.js';
import { partitionFor } from '../src/hub/messaging/eventLogWriter.js';
import { createSasToken } from '../src/core/sas.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { addHostEntry } from './support/resolve.js';
import { eventually } from './support/devices.js';

const { Client, Message } = device;
const { Mqtt, MqttWs } = deviceMqtt;
const { Amqp, AmqpWs } = deviceAmqp;

const ALPHA = 'alpha.localhost';
const BETA = 'beta.localhost';
const NOBODY = 'nobody.localhost';

/** Telemetry of a device in a hub's event log (message ids, in order). */
async function messageIds(hub: RunningHub, deviceId: string): Promise<string[]> {
  const partition = partitionFor(deviceId, hub.config.eventLog.partitions);
  const events = await hub.store.eventLog.read(partition, { sequenceNumber: 0, inclusive: true }, 10_000);
  return events.filter((e) => e.systemProperties['iothub-connection-device-id'] === deviceId).map((e) => String(e.systemProperties['message-id']));
}

/** An HTTPS request that does not check the certificate (unknown names get the default hub's). */
function insecureGet(options: { host: string; servername?: string; headers?: Record<string, string>; path: string }): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ ...options, port: 443, method: 'GET', rejectUnauthorized: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The DNS names of the certificate a TLS listener presents for `servername`. */
function certificateNames(host: string, port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port, servername, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().subjectaltname ?? '');
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('two hubs on one address, told apart by host name (SNI, HTTP Host, AMQP hostname)', () => {
  let t: TestHub;
  let beta: RunningHub;
  let alphaCs: string;
  let betaCs: string;
  let betaDeviceCs: string;

  before(async () => {
    t = await startTestHub({ hubName: 'alpha', hostName: ALPHA, hubs: [{ hubName: 'beta', hostName: BETA }] });
    for (const name of [ALPHA, BETA, NOBODY]) addHostEntry(name, t.host);
    beta = t.hub.hubs[0]!;
    alphaCs = await t.connectionString();
    betaCs = (await beta.info()).iothubownerConnectionString;
    assert.match(betaCs, new RegExp(`^HostName=${BETA};`));
  });
  after(async () => {
    await t.close();
  });

  test('each name gets its own certificate from the one CA, on every TLS port', async () => {
    for (const port of [443, 8883, 5671]) {
      const names = await certificateNames(t.host, port, BETA);
      assert.match(names, /DNS:beta\.localhost/, `port ${port}`);
      assert.doesNotMatch(names, /alpha/, `port ${port}`);
      assert.match(await certificateNames(t.host, port, ALPHA), /DNS:alpha\.localhost/);
      // 'localhost' is the primary's (every hub's certificate covers it, but the primary answers to it).
      assert.match(await certificateNames(t.host, port, 'localhost'), /DNS:alpha\.localhost/);
    }
  });

  test('azure-iothub Registry (HTTPS): a device created in one hub is not in the other', async () => {
    const betaRegistry = iothub.Registry.fromConnectionString(betaCs);
    const alphaRegistry = iothub.Registry.fromConnectionString(alphaCs);
    const { responseBody } = await betaRegistry.create({ deviceId: 'only-in-beta' } as any);
    betaDeviceCs = `HostName=${BETA};DeviceId=only-in-beta;SharedAccessKey=${responseBody.authentication!.symmetricKey!.primaryKey}`;
    assert.equal((await betaRegistry.get('only-in-beta')).responseBody.deviceId, 'only-in-beta');
    await assert.rejects(alphaRegistry.get('only-in-beta'), (e: any) => e.constructor.name === 'DeviceNotFoundError');
    // A beta token is no good on alpha, even over beta's connection: the hub is told by the name, not the key.
    await alphaRegistry.create({ deviceId: 'only-in-alpha' } as any);
    await assert.rejects(betaRegistry.get('only-in-alpha'), (e: any) => e.constructor.name === 'DeviceNotFoundError');
  });

  for (const [name, transport] of [['Mqtt', Mqtt], ['MqttWs', MqttWs], ['Amqp', Amqp], ['AmqpWs', AmqpWs]] as const) {
    test(`azure-iot-device ${name}: a device of beta connects by beta's name and its telemetry lands in beta`, async () => {
      const client = Client.fromConnectionString(betaDeviceCs, transport as any);
      await client.open();
      try {
        const m = new Message('{}');
        m.messageId = `${name}-1`;
        await client.sendEvent(m);
      } finally {
        await client.close();
      }
      await eventually(async () => (await messageIds(beta, 'only-in-beta')).includes(`${name}-1`));
      assert.deepEqual(await messageIds(t.hub, 'only-in-beta'), []);
    });
  }

  test("a device of beta dialing alpha's name is refused (it is not registered there)", async () => {
    const client = Client.fromConnectionString(betaDeviceCs.replace(BETA, ALPHA), Mqtt as any);
    await assert.rejects(client.open(), (e: any) => /Unauthorized|NotConnected|refused/i.test(`${e.constructor.name} ${e.message}`));
    await client.close().catch(() => undefined);
  });

  test('azure-iothub Client (AMQP) reaches the hub its connection string names', async () => {
    const betaService = iothub.Client.fromConnectionString(betaCs);
    const alphaService = iothub.Client.fromConnectionString(alphaCs);
    try {
      await betaService.send('only-in-beta', new Message('to beta') as any);
      await assert.rejects(alphaService.send('only-in-beta', new Message('to alpha') as any), (e: any) => e.constructor.name === 'DeviceNotFoundError');
    } finally {
      await betaService.close();
      await alphaService.close();
    }
  });

  test("@azure/event-hubs reads each hub's built-in endpoint by its name (AMQPS, and plain AMQP by the open frame's hostname)", async () => {
    const betaInfo = await beta.info();
    const alphaInfo = await t.hub.info();
    assert.match(betaInfo.eventHubCompatibleEmulatorConnectionString, new RegExp(`^Endpoint=sb://${BETA}/;`));
    // The primary's emulator string names its loopback address, which its SAS audience does not name here (alpha's host name is a name): dial by name.
    const emulator = (cs: string) => cs.replace(`sb://${t.host}/`, `sb://${ALPHA}/`);
    for (const [cs, hubName] of [
      [betaInfo.eventHubCompatibleConnectionString, 'beta'],
      [alphaInfo.eventHubCompatibleConnectionString, 'alpha'],
      [betaInfo.eventHubCompatibleEmulatorConnectionString, 'beta'],
      [emulator(alphaInfo.eventHubCompatibleEmulatorConnectionString), 'alpha'],
    ] as const) {
      const client = new EventHubConsumerClient('$Default', cs, { retryOptions: { maxRetries: 0, timeoutInMs: 10_000 } });
      try {
        assert.equal((await client.getEventHubProperties()).name, hubName, cs.replace(/SharedAccessKey=[^;]+/, ''));
        const partition = String(partitionFor('only-in-beta', beta.config.eventLog.partitions));
        const info = await client.getPartitionProperties(partition);
        // Beta's partition holds the four messages sent above; alpha's holds none of them.
        assert.equal(info.isEmpty, hubName === 'alpha', `${hubName} partition ${partition}`);
      } finally {
        await client.close();
      }
    }
  });

  test('without SNI, HTTP goes by the Host header', async () => {
    const policy = (await beta.store.policies.get('iothubowner'))!;
    const token = createSasToken(BETA, policy.primaryKey, Math.floor(Date.now() / 1000) + 600, policy.keyName);
    const res = await insecureGet({ host: t.host, path: '/devices/only-in-beta?api-version=2021-04-12', headers: { host: BETA, authorization: token } });
    // Beta answers with its device (alpha has no such device, and would refuse beta's token).
    assert.equal(res.status, 200, res.body);
    assert.equal(JSON.parse(res.body).deviceId, 'only-in-beta');
    const unknown = await insecureGet({ host: t.host, path: '/devices?api-version=2021-04-12', headers: { host: NOBODY } });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers['iothub-errorcode'], 'IotHubNotFound');
  });

  test('a name no hub has: TLS completes with the default certificate, then HTTP 404 IotHubNotFound, AMQP amqp:not-found, MQTT closed', async () => {
    const res = await insecureGet({ host: NOBODY, servername: NOBODY, path: '/devices?api-version=2021-04-12' });
    assert.equal(res.status, 404);
    assert.equal(res.headers['iothub-errorcode'], 'IotHubNotFound');
    assert.match(JSON.parse(res.body).Message, /^ErrorCode:IotHubNotFound;/);

    const closed = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: t.host, port: 8883, servername: NOBODY, rejectUnauthorized: false });
      socket.on('secureConnect', () => socket.write(Buffer.from([0x10, 0x00])));
      socket.on('close', () => resolve('closed'));
      socket.on('error', reject);
    });
    assert.equal(closed, 'closed');

    for (const options of [
      { host: t.host, port: 5671, transport: 'tls' as const, servername: NOBODY, hostname: NOBODY, rejectUnauthorized: false },
      { host: t.host, port: 5672, hostname: NOBODY },
    ]) {
      const error = await new Promise<{ condition?: string }>((resolve) => {
        const container = rhea.create_container();
        const connection = container.connect({ ...options, reconnect: false } as any);
        connection.on('connection_close', (context) => resolve(context.connection.error as { condition?: string }));
        connection.on('connection_error', (context) => resolve(context.connection.error as { condition?: string }));
        connection.on('disconnected', () => resolve({ condition: 'disconnected' }));
      });
      assert.equal(error?.condition, 'amqp:not-found', JSON.stringify(options.port));
    }
  });
});
