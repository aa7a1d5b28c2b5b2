import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import iothub from 'azure-iothub';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import type { RunningFleethub } from '../src/main.js';
import type { HubHost } from '../src/hosting/types.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { addHostEntry } from './support/resolve.js';

const { Client, Message } = device;
const { Mqtt } = deviceMqtt;

const PRIMARY = 'primary.localhost';
const GAMMA = 'gamma.localhost';

/** An HTTPS GET that does not check the certificate: a removed hub's name gets the default one. */
function insecureStatus(host: string, path: string): Promise<{ status: number; code: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, servername: host, port: 443, path, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, code: res.headers['iothub-errorcode'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function sendOne(deviceCs: string, messageId: string): Promise<void> {
  const client = Client.fromConnectionString(deviceCs, Mqtt as any);
  await client.open();
  try {
    const m = new Message('{}');
    m.messageId = messageId;
    await client.sendEvent(m);
  } finally {
    await client.close();
  }
}

describe('HubHost: hubs created and removed at run time, on the shared listeners', () => {
  let t: TestHub;
  const host = (): HubHost => (t.hub as RunningFleethub).host;
  let deviceCs: string;

  before(async () => {
    t = await startTestHub({ hubName: 'primary', hostName: PRIMARY });
    addHostEntry(PRIMARY, t.host);
    addHostEntry(GAMMA, t.host);
  });
  after(async () => {
    await t.close();
  });

  test('create serves at once: its own database and certificate, a device connects by its name', async () => {
    const gamma = await host().create({ hubName: 'gamma', hostName: GAMMA });
    assert.equal(gamma.config.dataDir, join(t.dataDir, 'hubs', 'gamma'));
    assert.ok(existsSync(join(gamma.config.dataDir, 'fleethub.db')));
    assert.equal(host().get('GAMMA'), gamma, 'by name, case-insensitively');
    assert.deepEqual(host().list().map((h) => h.config.hubName), ['primary', 'gamma']);
    assert.deepEqual((await t.hub.info()).hubs?.map((h) => h.hubHostName), [GAMMA]);

    const info = await gamma.info();
    assert.match(info.iothubownerConnectionString, new RegExp(`^HostName=${GAMMA};`));
    const registry = iothub.Registry.fromConnectionString(info.iothubownerConnectionString);
    const { responseBody } = await registry.create({ deviceId: 'runtime-device' } as any);
    deviceCs = `HostName=${GAMMA};DeviceId=runtime-device;SharedAccessKey=${responseBody.authentication!.symmetricKey!.primaryKey}`;
    await sendOne(deviceCs, 'first');
    assert.equal((await gamma.registry.getDevice('runtime-device')).connectionState, 'Disconnected');
    assert.equal((await t.hub.registry.listDevices()).length, 0, 'nothing in the primary hub');
  });

  test('create is idempotent; bad names, a taken host name and removing a configured hub are refused', async () => {
    const gamma = host().get('gamma');
    assert.equal(await host().create({ hubName: 'gamma', hostName: GAMMA.toUpperCase() }), gamma);
    const refused = async (p: Promise<unknown>, message: RegExp) => assert.rejects(p, (e: Error) => message.test(e.message));
    await refused(host().create({ hubName: 'gamma', hostName: 'other.localhost' }), /already runs with host name/);
    await refused(host().create({ hubName: 'x', hostName: 'x.localhost' }), /not a hub name/);
    await refused(host().create({ hubName: 'delta', hostName: 'bad host' }), /not a host name/);
    await refused(host().create({ hubName: 'delta', hostName: '127.0.0.5' }), /not a host name/);
    await refused(host().create({ hubName: 'delta', hostName: PRIMARY }), /already hub 'primary'/);
    await refused(host().remove('primary'), /only hubs created at run time/);
    assert.deepEqual(host().list().map((h) => h.config.hubName), ['primary', 'gamma'], 'nothing half-created');
  });

  test('after a restart (same data directory), creating it again finds its devices', async () => {
    await t.restart();
    assert.equal(host().get('gamma'), undefined, 'the control plane, not the host, keeps the list');
    const gamma = await host().create({ hubName: 'gamma', hostName: GAMMA });
    assert.equal((await gamma.registry.getDevice('runtime-device')).deviceId, 'runtime-device');
    await sendOne(deviceCs, 'after-restart');
  });

  test('remove stops it, deletes its data, and its name is no hub any more', async () => {
    const dataDir = host().get('gamma')!.config.dataDir;
    await host().remove('gamma');
    assert.equal(host().get('gamma'), undefined);
    assert.equal(existsSync(dataDir), false);
    assert.deepEqual(await insecureStatus(GAMMA, '/devices?api-version=2021-04-12'), { status: 404, code: 'IotHubNotFound' });
    // A device that checks the certificate (as the SDKs do) goes no further than TLS: the name is no longer covered.
    await assert.rejects(
      new Promise((resolve, reject) => {
        const socket = tlsConnect({ host: GAMMA, port: 8883, servername: GAMMA }, () => resolve(socket.end()));
        socket.on('error', reject);
      }),
      /altnames|ERR_TLS_CERT_ALTNAME_INVALID/,
    );
    // The primary hub is untouched.
    assert.equal((await insecureStatus(PRIMARY, '/devices?api-version=2021-04-12')).status, 401);
  });
});
