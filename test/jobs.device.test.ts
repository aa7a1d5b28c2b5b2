import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventually } from './support/devices.js';

const { Client } = device;
const { Mqtt } = deviceMqtt;

async function queryAll(registry: iothub.Registry, text: string): Promise<any[]> {
  const q = registry.createQuery(text);
  const items: any[] = [];
  while (q.hasMoreResults) items.push(...((await q.next((q.continuationToken ?? undefined) as string)).result as any[]));
  return items;
}

describe('a reboot method job reaches real devices over MQTT (azure-iothub JobClient → hub → azure-iot-device)', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  let jobs: iothub.JobClient;
  const clients: device.Client[] = [];
  const rebooted: string[] = [];

  before(async () => {
    t = await startTestHub();
    const cs = await t.connectionString();
    registry = iothub.Registry.fromConnectionString(cs);
    jobs = iothub.JobClient.fromConnectionString(cs);
    // Three connected gateways, one gateway that stays offline, one connected sensor the job must not touch.
    for (const [id, role, connect] of [['gw-1', 'gateway', true], ['gw-2', 'gateway', true], ['gw-3', 'gateway', true], ['gw-off', 'gateway', false], ['sensor-1', 'sensor', true]] as const) {
      const { connectionString } = await createDevice(t, id);
      await registry.updateTwin(id, { tags: { role } }, '*');
      if (!connect) continue;
      const client = Client.fromConnectionString(connectionString, Mqtt);
      await client.open();
      client.onDeviceMethod('reboot', (request, response) => {
        rebooted.push(id);
        response.send(200, { rebooting: id, delay: request.payload.delay }, () => undefined);
        void client.getTwin().then((twin) => twin.properties.reported.update({ iothubDM: { reboot: { lastReboot: new Date().toISOString() } } }, () => undefined));
      });
      clients.push(client);
      await eventually(() => t.hub.methods.isOnline(id));
    }
  });
  after(async () => {
    for (const c of clients) await c.close();
    await t.close();
  });

  test('every matching connected device is rebooted, with per-device results; the offline one fails', async () => {
    const { jobStatus } = await jobs.scheduleDeviceMethod('reboot-gateways', "tags.role = 'gateway'", { methodName: 'reboot', payload: { delay: 5 }, responseTimeoutInSeconds: 10 });
    assert.equal((jobStatus as any).type, 'scheduleDeviceMethod');
    const done = await eventually(async () => {
      const j = (await jobs.getJob('reboot-gateways')).jobStatus as any;
      return j.status === 'completed' && j;
    }, 20000);
    assert.deepEqual(done.deviceJobStatistics, { deviceCount: 4, failedCount: 1, succeededCount: 3, runningCount: 0, pendingCount: 0 });
    assert.deepEqual([...rebooted].sort(), ['gw-1', 'gw-2', 'gw-3']);

    const records = await queryAll(registry, "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'reboot-gateways'");
    const byDevice = Object.fromEntries(records.map((r) => [r.deviceId, r]));
    assert.deepEqual(Object.keys(byDevice).sort(), ['gw-1', 'gw-2', 'gw-3', 'gw-off']);
    for (const id of ['gw-1', 'gw-2', 'gw-3']) {
      assert.equal(byDevice[id].status, 'completed');
      assert.deepEqual(byDevice[id].outcome.deviceMethodResponse, { status: 200, payload: { rebooting: id, delay: 5 } });
    }
    assert.equal(byDevice['gw-off'].status, 'failed');
    assert.equal(byDevice['gw-off'].error.code, 'DeviceNotOnline');

    // Follow the reboot with a query over reported properties, as the scenario does.
    const reported = await eventually(async () => {
      const rows = await queryAll(registry, 'SELECT deviceId FROM devices WHERE IS_DEFINED(properties.reported.iothubDM.reboot.lastReboot)');
      return rows.length === 3 && rows;
    });
    assert.deepEqual(reported.map((r: any) => r.deviceId), ['gw-1', 'gw-2', 'gw-3']);
    const connected = await queryAll(registry, "SELECT deviceId FROM devices WHERE connectionState = 'Connected' AND tags.role = 'gateway'");
    assert.deepEqual(connected.map((r) => r.deviceId), ['gw-1', 'gw-2', 'gw-3']);
  });
});
