import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { freeLoopbackAddress } from './support/hub.js';
import { dataDirWithTestCa, seedDevices, spawnHub } from './support/process.js';
import { eventually } from './support/devices.js';
import { mqttDevice } from './support/rawMqtt.js';
import { databasePath } from '../src/info.js';
import { openEventLogReadOnly } from '../src/store/sqlite/eventLogReader.js';

const DEVICES = 20;
const WINDOW = 20;

describe('durability: every PUBACKed message survives SIGKILL of the hub', () => {
  let host: string;
  let dataDir: string;
  let hub: ChildProcess | undefined;
  const keys = new Map<string, string>();

  const startHub = () => spawnHub(dataDir, ['--host-name', host, '--bind', host, '--https-port', '443']);

  before(async () => {
    host = await freeLoopbackAddress();
    dataDir = dataDirWithTestCa('fleethub-durability-');
    for (const [id, key] of await seedDevices(dataDir, 'durable-', DEVICES)) keys.set(id, key);
  });
  after(() => {
    hub?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('devices publish at QoS 1, the hub is killed mid-stream, and after restart every acknowledged message is in the event log', async () => {
    hub = await startHub();
    const acked = new Set<string>();
    const clients: MqttClient[] = [];
    for (const [id, key] of keys) clients.push(await mqttDevice(host, id, key));
    let killed = false;
    const pumps = clients.map(async (client, d) => {
      let n = 0;
      const inFlight = new Set<Promise<void>>();
      client.on('error', () => undefined);
      while (!killed && client.connected) {
        const body = `durable-${d}:${n++}`;
        const p = client.publishAsync(`devices/durable-${d}/messages/events/`, body, { qos: 1 }).then(
          () => void acked.add(body),
          () => undefined,
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        if (inFlight.size >= WINDOW) await Promise.race(inFlight);
      }
    });
    await eventually(() => acked.size >= 3000, 30_000);
    hub.kill('SIGKILL');
    killed = true;
    await new Promise((r) => hub!.once('exit', r));
    const ackedAtKill = new Set(acked);
    for (const c of clients) c.end(true);
    await Promise.all(pumps);

    hub = await startHub();
    const opened = openEventLogReadOnly(databasePath(dataDir))!;
    const stored = new Set<string>();
    for (let p = 0; p < opened.partitions(); p++) {
      for (const e of await opened.log.read(p, { sequenceNumber: 0, inclusive: true }, 1_000_000)) stored.add(e.body.toString());
    }
    opened.close();
    const missing = [...ackedAtKill].filter((b) => !stored.has(b));
    assert.equal(missing.length, 0, `${missing.length} of ${ackedAtKill.size} acknowledged messages are missing, e.g. ${missing.slice(0, 5).join(', ')}`);
    assert.ok(ackedAtKill.size >= 3000);

    // The restarted hub accepts devices again.
    const again = await mqttDevice(host, 'durable-0', keys.get('durable-0')!);
    await again.publishAsync('devices/durable-0/messages/events/', 'after restart', { qos: 1 });
    await again.endAsync();
    hub.kill('SIGTERM');
    await new Promise((r) => hub!.once('exit', r));
    hub = undefined;
  });
});
