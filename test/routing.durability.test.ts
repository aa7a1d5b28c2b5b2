import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { ClientSecretCredential } from '@azure/identity';
import { IotHubClient } from '@azure/arm-iothub';
import { freeLoopbackAddress } from './support/hub.js';
import { dataDirWithTestCa, spawnHub } from './support/process.js';
import { eventually } from './support/devices.js';
import { mqttDevice } from './support/rawMqtt.js';
import { databasePath } from '../src/info.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { openDatabase } from '../src/store/sqlite/database.js';
import { SqliteEventLogs } from '../src/store/sqlite/eventLog.js';
import { Registry } from '../src/hub/registry/registry.js';

const cli = fileURLToPath(new URL('../src/cli/index.js', import.meta.url));
const DEVICES = 10;
const WINDOW = 10;

/**
 * Routing's half of "nothing acknowledged is lost": the hub, a child process, routes every device
 * message to `events` and to a custom endpoint that is down (an event hub on a host that does not
 * exist, so its backlog only grows); it is killed while devices publish, and every acknowledged
 * message is then in both the built-in endpoint and the endpoint's backlog, which a restart drains from.
 */
describe('routing durability: every PUBACKed message is in every routed endpoint after SIGKILL', () => {
  let host: string;
  let dataDir: string;
  let hub: ChildProcess | undefined;
  const keys = new Map<string, string>();

  const startHub = () => spawnHub(dataDir, ['--host-name', host, '--bind', host, '--https-port', '443']);

  before(async () => {
    host = await freeLoopbackAddress();
    dataDir = dataDirWithTestCa('fleethub-routing-durability-');
    const store = openSqliteStore(databasePath(dataDir));
    const registry = new Registry(store.devices, store.modules);
    for (let i = 0; i < DEVICES; i++) {
      const d = await registry.putDevice(`routed-${i}`, { deviceId: `routed-${i}` }, undefined);
      keys.set(d.deviceId, d.authentication.symmetricKey.primaryKey!);
    }
    store.close();
  });
  after(() => {
    hub?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('routes set through ARM; SIGKILL mid-stream; every acknowledged message is in events and in the down endpoint\'s backlog', async () => {
    hub = await startHub();
    const info = JSON.parse(execFileSync(process.execPath, [cli, '--data', dataDir, 'info', '--json'], { cwd: dataDir, encoding: 'utf8' })) as {
      hubName: string;
      management: { endpoint: string; authorityHost: string; tenantId: string; subscriptionId: string; resourceGroup: string; clientId: string; clientSecret: string };
    };
    const m = info.management;
    const arm = new IotHubClient(new ClientSecretCredential(m.tenantId, m.clientId, m.clientSecret, { authorityHost: m.authorityHost, disableInstanceDiscovery: true }), m.subscriptionId, {
      endpoint: m.endpoint,
      credentialScopes: ['https://management.azure.com/.default'],
    });
    const resource = await arm.iotHubResource.get(m.resourceGroup, info.hubName);
    resource.properties!.routing = {
      endpoints: {
        eventHubs: [{ name: 'down', connectionString: 'Endpoint=sb://down.example/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0;EntityPath=down' }],
        serviceBusQueues: [],
        serviceBusTopics: [],
        storageContainers: [],
      },
      routes: [
        { name: 'to-down', source: 'DeviceMessages', condition: 'true', endpointNames: ['down'], isEnabled: true },
        { name: 'to-events', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true },
      ],
      fallbackRoute: { name: '$fallback', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true },
      enrichments: [],
    };
    await arm.iotHubResource.beginCreateOrUpdateAndWait(m.resourceGroup, info.hubName, resource);

    const acked = new Set<string>();
    const clients: MqttClient[] = [];
    for (const [id, key] of keys) clients.push(await mqttDevice(host, id, key));
    let killed = false;
    const pumps = clients.map(async (client, d) => {
      let n = 0;
      const inFlight = new Set<Promise<void>>();
      client.on('error', () => undefined);
      while (!killed && client.connected) {
        const body = `routed-${d}:${n++}`;
        const p = client.publishAsync(`devices/routed-${d}/messages/events/`, body, { qos: 1 }).then(
          () => void acked.add(body),
          () => undefined,
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        if (inFlight.size >= WINDOW) await Promise.race(inFlight);
      }
    });
    await eventually(() => acked.size >= 1000, 30_000);
    hub.kill('SIGKILL');
    killed = true;
    await new Promise((r) => hub!.once('exit', r));
    const ackedAtKill = new Set(acked);
    for (const c of clients) c.end(true);
    await Promise.all(pumps);

    hub = await startHub();
    const db = openDatabase(databasePath(dataDir), { readonly: true });
    try {
      const logs = new SqliteEventLogs(db);
      const bodies = async (entity: string, partitions: number) => {
        const out = new Set<string>();
        for (let p = 0; p < partitions; p++) for (const e of await logs.entity(entity).read(p, { sequenceNumber: 0, inclusive: true }, 1_000_000)) out.add(e.body.toString());
        return out;
      };
      const events = await bodies('$builtin', 4);
      const backlog = await bodies('$endpoint/down', 1);
      const missingEvents = [...ackedAtKill].filter((b) => !events.has(b));
      const missingBacklog = [...ackedAtKill].filter((b) => !backlog.has(b));
      assert.equal(missingEvents.length, 0, `${missingEvents.length} of ${ackedAtKill.size} acknowledged messages are missing from events`);
      assert.equal(missingBacklog.length, 0, `${missingBacklog.length} of ${ackedAtKill.size} acknowledged messages are missing from the endpoint's backlog`);
      // Routed in the same commit: the two hold the same messages.
      assert.deepEqual([...backlog].sort(), [...events].sort());
    } finally {
      db.close();
    }
    hub.kill('SIGTERM');
    await new Promise((r) => hub!.once('exit', r));
    hub = undefined;
  });
});
