/**
 * bench/query: the query language over a large fleet, through the REST API as the SDKs call it.
 *
 *   npm run bench:query -- [--devices 100000] [--seconds 3]
 *
 * Seeds the fleet straight into a fresh data directory through the store (one transaction, with
 * varied tags and reported properties), starts a hub on it in its own process (loopback,
 * ephemeral ports), then times over HTTPS (`POST /devices/query`):
 *   - a selective query (about 100 matches out of the fleet), repeated for --seconds, by one
 *     client and then by 4 concurrent clients;
 *   - a COUNT() with GROUP BY over the whole fleet;
 *   - paging through every result of a broad query, 1000 per page (x-ms-continuation).
 * After each phase it prints how late the hub's event loop ran meanwhile (its SIGUSR2 process
 * stats): what every device's PUBACK, method call and twin update would have waited for then.
 * Queries/s is printed beside IoT Hub's documented query throttle (S3: 1000 queries/min per unit,
 * at most 10 units = 166.7 queries/s) as a ratio.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSasToken } from '../../src/core/sas.js';
import { processStatsReader } from '../support/brokers.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { Registry } from '../../src/hub/registry/registry.js';
import { mergeMetadata, withMetadata } from '../../src/hub/twins/document.js';
import { twinEtag } from '../../src/hub/twins/twins.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const DEVICES = Number(args.get('devices') ?? 100_000);
const SECONDS = Number(args.get('seconds') ?? 3);
const HOST = '127.0.0.1';
/** IoT Hub S3: 1000 queries/min/unit, at most 10 units. */
const IOT_HUB_MAX_QPS = (1000 * 10) / 60;

const REGIONS = ['eu-west', 'eu-north', 'us-east', 'us-west', 'ap-south'];
const FIRMWARE = ['1.0.0', '1.1.0', '1.2.3', '2.0.0', '2.1.0-beta'];

const dataDir = args.get('keep') ?? mkdtempSync(join(tmpdir(), 'fleethub-bench-query-'));
let hub: ReturnType<typeof spawn> | undefined;
try {
  // ---- seed ----
  const seedStart = performance.now();
  const store = openSqliteStore(join(dataDir, 'fleethub.db'));
  const registry = new Registry(store.devices, store.modules);
  store.db.exec('BEGIN');
  const stamp = new Date().toISOString();
  for (let i = 0; i < DEVICES; i++) {
    const deviceId = `device-${String(i).padStart(6, '0')}`;
    await registry.putDevice(deviceId, { deviceId, status: i % 50 === 0 ? 'disabled' : 'enabled' }, undefined);
    const twin = (await store.twins.get(deviceId))!;
    const reported = { firmware: FIRMWARE[Math.floor(i / 3) % 5]!, temperature: 10 + (i % 300) / 10, battery: (i * 7) % 101, telemetryConfig: { status: i % 7 === 0 ? 'Pending' : 'Success' } };
    await store.twins.replace(
      {
        ...twin,
        version: 2,
        etag: twinEtag(2),
        tags: { region: REGIONS[i % 5]!, floor: Math.floor(i / 5) % 20, building: `b${i % 37}`, ...(i % 3 === 0 ? { pilot: true } : {}) },
        reported: withMetadata(reported, mergeMetadata(twin.reported.$metadata, reported, stamp), 2),
      },
      1,
    );
  }
  store.db.exec('COMMIT');
  store.close();
  const seedSeconds = (performance.now() - seedStart) / 1000;

  // ---- hub ----
  const cli = fileURLToPath(new URL('../../src/cli/index.js', import.meta.url));
  hub = spawn(process.execPath, [cli, 'start', '--data', dataDir, '--bind', HOST, '--host-name', HOST, '--https-port', '0', '--log-level', 'info'], {
    env: { ...process.env, FLEETHUB_MQTT_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const hubStats = processStatsReader({ pid: hub.pid!, stdout: hub.stdout! });
  /** The hub's event-loop lateness since the previous call (p99 / max): its histogram holds the time between ticks of a 10 ms timer. */
  const loopLate = async () => {
    const stats = await hubStats();
    const late = (ms: number) => Math.max(0, ms - 10).toFixed(1);
    return stats ? `hub event loop late p99 ${late(stats.eventLoopDelayMs.p99)} / max ${late(stats.eventLoopDelayMs.max)} ms` : 'hub event loop: no answer in 5 s';
  };
  const runtimePath = join(dataDir, 'runtime.json');
  await until(() => existsSync(runtimePath), 30_000);
  const runtime = JSON.parse(readFileSync(runtimePath, 'utf8')) as { ports: { https: number } };
  const ca = readFileSync(join(dataDir, 'ca', 'ca-cert.pem'), 'utf8');
  const policies = openSqliteStore(join(dataDir, 'fleethub.db'));
  const owner = (await policies.policies.get('iothubowner'))!;
  policies.close();
  const token = createSasToken(HOST, owner.primaryKey, Math.floor(Date.now() / 1000) + 3600, 'iothubowner');
  const agent = new Agent({ keepAlive: true, maxSockets: 4, ca });

  const query = (text: string, pageSize?: number, continuation?: string) =>
    new Promise<{ items: unknown[]; continuation?: string }>((resolve, reject) => {
      const body = JSON.stringify({ query: text });
      const headers: Record<string, string | number> = { authorization: token, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      if (pageSize) headers['x-ms-max-item-count'] = pageSize;
      if (continuation) headers['x-ms-continuation'] = continuation;
      const req = request({ host: HOST, port: runtime.ports.https, method: 'POST', path: '/devices/query?api-version=2021-04-12', agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) return reject(new Error(`${res.statusCode}: ${text}`));
          resolve({ items: JSON.parse(text) as unknown[], continuation: res.headers['x-ms-continuation'] as string | undefined });
        });
      });
      req.on('error', reject);
      req.end(body);
    });

  const selective = "SELECT * FROM devices WHERE tags.region = 'eu-north' AND tags.floor = 7 AND properties.reported.firmware = '1.2.3' AND properties.reported.battery < 30";
  const grouped = 'SELECT properties.reported.firmware AS firmware, COUNT() AS numberOfDevices FROM devices GROUP BY properties.reported.firmware';
  const broad = "SELECT deviceId, properties.reported.temperature FROM devices WHERE tags.region IN ['eu-west', 'us-east'] AND status = 'enabled'";

  // Warm up connections, statement cache and JIT.
  for (let i = 0; i < 3; i++) await query(selective);
  await loopLate();

  const latencies: number[] = [];
  let matches = 0;
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    matches = (await query(selective)).items.length;
    latencies.push(performance.now() - t0);
  }
  const qps = latencies.length / SECONDS;
  const selectiveLate = await loopLate();

  // The same query from 4 clients at once: what the hub sustains rather than one caller's pace.
  let concurrentCount = 0;
  const concurrentEnd = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (performance.now() < concurrentEnd) {
        await query(selective);
        concurrentCount++;
      }
    }),
  );
  const concurrentQps = concurrentCount / SECONDS;
  const concurrentLate = await loopLate();

  const groupTimes: number[] = [];
  let groups: unknown[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    groups = (await query(grouped)).items;
    groupTimes.push(performance.now() - t0);
  }
  const groupLate = await loopLate();

  const pageStart = performance.now();
  let pages = 0;
  let rows = 0;
  let continuation: string | undefined;
  do {
    const page = await query(broad, 1000, continuation);
    pages++;
    rows += page.items.length;
    continuation = page.continuation;
  } while (continuation);
  const pagingMs = performance.now() - pageStart;
  const pagingLate = await loopLate();

  const ms = (v: number) => `${v.toFixed(1)} ms`;
  console.log(`fleet: ${DEVICES} devices seeded through the store in ${seedSeconds.toFixed(1)} s`);
  console.log(`selective query (${matches} matches): p50 ${ms(pct(latencies, 50))}, p99 ${ms(pct(latencies, 99))}, ${qps.toFixed(1)} queries/s sequential over ${SECONDS} s; ${selectiveLate}`);
  console.log(`  vs IoT Hub S3 x10 units throttle (${IOT_HUB_MAX_QPS.toFixed(1)} queries/s): ${(qps / IOT_HUB_MAX_QPS).toFixed(2)}x; vs one S3 unit (16.7/s): ${(qps / (1000 / 60)).toFixed(1)}x`);
  console.log(`  4 concurrent clients: ${concurrentQps.toFixed(1)} queries/s = ${(concurrentQps / IOT_HUB_MAX_QPS).toFixed(2)}x the S3 x10 throttle; ${concurrentLate}`);
  console.log(`COUNT() GROUP BY firmware over the fleet: p50 ${ms(pct(groupTimes, 50))}, max ${ms(Math.max(...groupTimes))} -> ${JSON.stringify(groups)}; ${groupLate}`);
  console.log(`paging a broad query: ${rows} rows in ${pages} pages of 1000 in ${ms(pagingMs)} (${ms(pagingMs / pages)} per page, ${(rows / (pagingMs / 1000)).toFixed(0)} rows/s); ${pagingLate}`);
  agent.destroy();
} finally {
  if (hub) {
    hub.kill('SIGTERM');
    await new Promise((r) => hub!.once('exit', r));
  }
  if (!args.has('keep')) rmSync(dataDir, { recursive: true, force: true });
}

function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function until(check: () => boolean, ms: number): Promise<void> {
  const stop = Date.now() + ms;
  while (!check()) {
    if (Date.now() > stop) throw new Error('the hub did not start in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
