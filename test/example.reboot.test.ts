import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice } from './support/devices.js';

const example = (file: string) => fileURLToPath(new URL(`../examples/device-management-reboot/${file}`, import.meta.url));

/** Runs a program, collecting its output; resolves when it exits. */
function run(file: string, env: Record<string, string>): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [example(file)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exit };
}

describe('examples/device-management-reboot runs unmodified against Fleethub', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub();
  });
  after(() => t.close());

  test('the back end reboots the device and follows it through the twin', async () => {
    const { connectionString } = await createDevice(t, 'myDeviceId');
    const device = run('device.js', { DEVICE_CONNECTION_STRING: connectionString });
    try {
      const until = Date.now() + 10_000;
      while (!device.output().includes('waiting for the reboot')) {
        if (Date.now() > until) throw new Error(`device did not start:\n${device.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const backend = run('backend.js', { IOTHUB_CONNECTION_STRING: await t.connectionString('service'), DEVICE_ID: 'myDeviceId', TIMEOUT_SECONDS: '15' });
      assert.equal(await backend.exit, 0, backend.output());
      assert.match(backend.output(), /reboot method returned status 200: "Reboot started"/);
      assert.match(backend.output(), /Device rebooted; lastReboot = \d{4}-/);
      assert.match(device.output(), /Rebooting!/);
      const twin = await t.hub.twins.getTwin('myDeviceId');
      assert.ok(Date.parse((twin.properties.reported as any).iothubDM.reboot.lastReboot) > 0);
    } finally {
      device.child.kill('SIGTERM');
      await device.exit;
    }
  });
});
