/**
 * bench/device-http: device-to-cloud telemetry over HTTPS with the unmodified azure-iot-device
 * `Http` transport. Starts a hub in-process on a loopback address, then one device sends N
 * messages one after another (sendEvent awaited each time), and C devices send N messages
 * between them concurrently. Prints msgs/s and p50/p99 latency. Every 204 means committed.
 *
 *   npm run bench:device-http -- [--messages 2000] [--concurrency 16]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import device from 'azure-iot-device';
import deviceHttp from 'azure-iot-device-http';
import { defaults, type Config } from '../src/config/index.js';
import { startFleethub } from '../src/main.js';
import { freeLoopbackAddress } from '../test/support/hub.js';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '2000' }, concurrency: { type: 'string', default: '16' } } });
const total = Number(values.messages);
const concurrency = Number(values.concurrency);

const host = await freeLoopbackAddress();
const dataDir = mkdtempSync(join(tmpdir(), 'fleethub-bench-'));
const config: Config = { ...defaults, hostName: host, bind: host, dataDir, logLevel: 'silent', ports: { ...defaults.ports, https: 443 } };
const hub = await startFleethub(config, pino({ level: 'silent' }));
// The Http transport uses Node's global https agent: trust the hub's CA there (as NODE_EXTRA_CA_CERTS would).
https.globalAgent.options.ca = hub.tls.caCertificatePem;
let handshakes = 0;
hub.http.server.on('secureConnection', () => handshakes++);

async function deviceClient(deviceId: string): Promise<device.Client> {
  const created = await hub.registry.putDevice(deviceId, { deviceId }, undefined as never);
  const key = (created.authentication as { symmetricKey: { primaryKey: string } }).symmetricKey.primaryKey;
  const client = device.Client.fromConnectionString(`HostName=${host};DeviceId=${deviceId};SharedAccessKey=${key}`, deviceHttp.Http);
  return client;
}

async function phase(name: string, clients: device.Client[]) {
  const latencies: number[] = [];
  let next = 0;
  const payload = JSON.stringify({ temperature: 21.5, humidity: 40, note: 'x'.repeat(64) });
  const started = performance.now();
  await Promise.all(
    clients.map(async (client) => {
      while (next < total) {
        const i = next++;
        const m = new device.Message(payload);
        m.properties.add('seq', String(i));
        const t0 = performance.now();
        await client.sendEvent(m);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!.toFixed(2);
  console.log(
    `${name.padEnd(22)} ${String(total).padStart(6)} msgs  ${(total / seconds).toFixed(0).padStart(6)} msgs/s  p50 ${pct(0.5)} ms  p99 ${pct(0.99)} ms  ${handshakes} TLS handshakes so far`,
  );
}

console.log(`device HTTPS bench: ${total} messages per phase with azure-iot-device Http, hub on ${host}:443`);
console.log(`(SDK clients and hub share one process and event loop: the figures are a floor)`);
const single = await deviceClient('bench-http-0');
await phase('sequential, 1 device', [single]);
const many = await Promise.all(Array.from({ length: concurrency }, (_, i) => deviceClient(`bench-http-${i + 1}`)));
await phase(`concurrent, ${concurrency} devices`, many);
for (const c of [single, ...many]) await c.close();
await hub.close();
rmSync(dataDir, { recursive: true, force: true });
