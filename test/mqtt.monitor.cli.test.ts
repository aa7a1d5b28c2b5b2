import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventually } from './support/devices.js';

const cli = fileURLToPath(new URL('../src/cli/index.js', import.meta.url));

describe('fleethub monitor-events', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub();
  });
  after(() => t.close());

  test('tails telemetry live with system and application properties, filtered by device', async () => {
    const watched = await createDevice(t, 'watched');
    const other = await createDevice(t, 'other');
    const child = spawn(process.execPath, [cli, '--data', t.dataDir, 'monitor-events', '--device', 'watched', '--properties', '--timeout', '20'], {
      cwd: t.dataDir,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await eventually(() => stderr.includes('Monitoring'), 10_000);
      for (const [id, cs] of [['other', other.connectionString], ['watched', watched.connectionString]] as const) {
        const client = device.Client.fromConnectionString(cs, deviceMqtt.Mqtt);
        await client.open();
        const m = new device.Message(JSON.stringify({ from: id }));
        m.messageId = `${id}-1`;
        m.properties.add('level', 'warning');
        await client.sendEvent(m);
        await client.close();
      }
      await eventually(() => stdout.includes('"watched"'), 10_000);
      const event = JSON.parse(stdout).event;
      assert.equal(event.origin, 'watched');
      assert.deepEqual(event.payload, { from: 'watched' });
      assert.equal(event.properties.system['message-id'], 'watched-1');
      assert.deepEqual(event.properties.application, { level: 'warning' });
      assert.equal(event.annotations['iothub-connection-device-id'], 'watched');
      assert.ok(!stdout.includes('"other"'));
    } finally {
      child.kill('SIGINT');
      await exited;
    }
  });
});
