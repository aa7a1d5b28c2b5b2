/**
 * bench/registry: identity-registry throughput and latency over HTTPS, as a back-end sees it.
 * Starts a hub in-process on a loopback address, then C concurrent keep-alive clients create N
 * devices (PUT /devices/{id}) and read them back (GET). Prints ops/s and p50/p99 per operation.
 *
 *   npm run bench:registry -- [--devices 5000] [--concurrency 32]
 */
import { Agent, request } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { defaults, type Config } from '../src/config/index.js';
import { startFleethub } from '../src/main.js';
import { createSasToken } from '../src/core/sas.js';
import { freeLoopbackAddress } from '../test/support/hub.js';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '5000' }, concurrency: { type: 'string', default: '32' } } });
const total = Number(values.devices);
const concurrency = Number(values.concurrency);

const host = await freeLoopbackAddress();
const dataDir = mkdtempSync(join(tmpdir(), 'fleethub-bench-'));
const config: Config = { ...defaults, hostName: host, bind: host, dataDir, logLevel: 'silent', ports: { ...defaults.ports, https: 443 } };
const hub = await startFleethub(config, pino({ level: 'silent' }));
const policy = (await hub.store.policies.get('iothubowner'))!;
const token = createSasToken(host, policy.primaryKey, Math.floor(Date.now() / 1000) + 3600, 'iothubowner');
const agent = new Agent({ keepAlive: true, maxSockets: concurrency, ca: hub.tls.caCertificatePem });

function call(method: string, path: string, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port: 443, method, path: `${path}?api-version=2021-04-12`, agent, headers: { authorization: token, 'content-type': 'application/json', ...(body ? { 'content-length': Buffer.byteLength(body) } : {}) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

async function phase(name: string, op: (i: number) => Promise<number>) {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        const status = await op(i);
        if (status >= 300) throw new Error(`${name} ${i}: HTTP ${status}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!.toFixed(2);
  console.log(`${name.padEnd(8)} ${String(total).padStart(6)} ops  ${(total / seconds).toFixed(0).padStart(6)} ops/s  p50 ${pct(0.5)} ms  p99 ${pct(0.99)} ms`);
}

console.log(`registry bench: ${total} devices, ${concurrency} concurrent HTTPS keep-alive clients, hub on ${host}:443`);
console.log(`(load generator and hub share one process and event loop: the figures are a floor)`);
await phase('create', (i) => call('PUT', `/devices/bench-${i}`, JSON.stringify({ deviceId: `bench-${i}` })));
await phase('get', (i) => call('GET', `/devices/bench-${i}`));
await phase('delete', (i) => call('DELETE', `/devices/bench-${i}`));
agent.destroy();
await hub.close();
rmSync(dataDir, { recursive: true, force: true });
