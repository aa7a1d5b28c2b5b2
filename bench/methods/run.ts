/**
 * bench/methods: direct-method round trips at a fixed rate across many connected devices.
 *
 *   npm run bench:methods -- [--devices 1000] [--rate 200] [--seconds 15] [--warmup 2]
 *
 * Starts a hub in its own process (fresh data directory, loopback, ephemeral ports), creates the
 * devices over REST, connects each over MQTT/TLS with mqtt.js (answering every method at once),
 * then invokes `POST /twins/{id}/methods` open-loop at the given rate, round-robin over the
 * devices, and prints p50/p99/max of the REST round trip (service → hub → device → hub → service).
 *
 * To tell where a slow tail comes from on a shared machine it also prints, for the measured window:
 * the hub's CPU use (from /proc), its garbage-collection pauses (the hub runs with --trace-gc;
 * their total and the longest), the hub's event-loop delay (p50/p99/max, sampled by a preload in
 * the hub process), the bench process's own event-loop delay (its 1,000 mqtt.js devices and HTTPS
 * client share one loop: a stall there lengthens round trips the hub did not cause) and the
 * machine's load average.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { createSasToken } from '../../src/core/sas.js';
import { generateKey } from '../../src/core/ids.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { cpuMicros } from '../support/process.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const DEVICES = Number(args.get('devices') ?? 1000);
const RATE = Number(args.get('rate') ?? 200);
const SECONDS = Number(args.get('seconds') ?? 15);
/** Calls in the first seconds open the service's HTTPS connections and warm the JIT; not counted. */
const WARMUP = Number(args.get('warmup') ?? 2);
const HOST = '127.0.0.1';

const dataDir = mkdtempSync(join(tmpdir(), 'fleethub-bench-methods-'));
const cli = fileURLToPath(new URL('../../src/cli/index.js', import.meta.url));
// A preload that samples the hub's event-loop delay and prints it when asked (SIGUSR2), so the bench
// can tell the hub's stalls from its own.
const preload = join(dataDir, 'loop-delay.cjs');
writeFileSync(
  preload,
  `const h = require('node:perf_hooks').monitorEventLoopDelay({ resolution: 5 }); h.enable();
process.on('SIGUSR2', () => { const ms = (n) => (n / 1e6).toFixed(1); process.stdout.write('LOOPDELAY ' + ms(h.percentile(50)) + ' ' + ms(h.percentile(99)) + ' ' + ms(h.max) + '\\n'); h.reset(); });`,
);
let gcMs = 0;
let gcMax = 0;
let loopDelay = '';
const hub = spawn(process.execPath, ['--trace-gc', '--require', preload, cli, 'start', '--data', dataDir, '--bind', HOST, '--host-name', HOST, '--https-port', '0', '--log-level', 'warn'], {
  env: { ...process.env, FLEETHUB_MQTT_PORT: '0' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
// --trace-gc lines end "…, 1.23 / 0.00 ms" (pause / of which external); the preload's "LOOPDELAY p50 p99 max".
let hubOut = '';
hub.stdout!.on('data', (b: Buffer) => {
  hubOut += b;
  const lines = hubOut.split('\n');
  hubOut = lines.pop()!;
  for (const line of lines) {
    const gc = /MB, ([\d.]+) \/ [\d.]+ ms/.exec(line);
    if (gc) {
      gcMs += Number(gc[1]);
      gcMax = Math.max(gcMax, Number(gc[1]));
    }
    if (line.startsWith('LOOPDELAY ')) loopDelay = line.slice(10);
  }
});
const clients: mqtt.MqttClient[] = [];
try {
  const runtimePath = join(dataDir, 'runtime.json');
  await until(() => existsSync(runtimePath), 120_000, 'hub start'); // a loaded machine makes the first start (CA, keys) slow
  const runtime = JSON.parse(readFileSync(runtimePath, 'utf8')) as { ports: { https: number; mqtt: number } };
  const ca = readFileSync(join(dataDir, 'ca', 'ca-cert.pem'), 'utf8');
  const store = openSqliteStore(join(dataDir, 'fleethub.db'));
  const owner = (await store.policies.get('iothubowner'))!;
  store.close();
  const agent = new Agent({ keepAlive: true, maxSockets: 64, ca });
  const serviceToken = createSasToken(HOST, owner.primaryKey, Math.floor(Date.now() / 1000) + 3600, 'iothubowner');
  const call = (method: string, path: string, body: unknown) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const payload = JSON.stringify(body);
      const req = request(
        { host: HOST, port: runtime.ports.https, method, path: `${path}?api-version=2021-04-12`, agent, headers: { authorization: serviceToken, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, text }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });

  // Devices, 100 per bulk request.
  const keys: string[] = [];
  for (let i = 0; i < DEVICES; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(DEVICES, i + 100); j++) {
      keys[j] = generateKey();
      batch.push({ id: `bench-${j}`, importMode: 'create', authentication: { type: 'sas', symmetricKey: { primaryKey: keys[j], secondaryKey: generateKey() } } });
    }
    const res = await call('POST', '/devices', batch);
    if (res.status !== 200 || !JSON.parse(res.text).isSuccessful) throw new Error(`bulk create failed: ${res.status} ${res.text}`);
  }

  // Connect and subscribe, 50 at a time; every device answers methods immediately.
  const started = Date.now();
  for (let i = 0; i < DEVICES; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, DEVICES - i) }, async (_, k) => {
        const id = `bench-${i + k}`;
        const c = await mqtt.connectAsync(`mqtts://${HOST}:${runtime.ports.mqtt}`, {
          clientId: id,
          username: `${HOST}/${id}/?api-version=2021-04-12`,
          password: createSasToken(`${HOST}/devices/${id}`, keys[i + k]!, Math.floor(Date.now() / 1000) + 3600),
          protocolVersion: 4,
          reconnectPeriod: 0,
          keepalive: 300,
          ca,
        });
        c.on('message', (topic, payload) => {
          const rid = /\$rid=([^&]+)/.exec(topic)?.[1];
          if (rid) c.publish(`$iothub/methods/res/200/?$rid=${rid}`, payload, { qos: 0 });
        });
        await c.subscribeAsync('$iothub/methods/POST/#', { qos: 0 });
        clients.push(c);
      }),
    );
  }
  console.log(`${DEVICES} devices connected and listening in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  // Open loop: a call every 1/RATE s regardless of how long earlier calls take.
  const latencies: number[] = [];
  let failures = 0;
  const warmupCalls = RATE * WARMUP;
  const total = warmupCalls + RATE * SECONDS;
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  let measuredFrom = t0;
  const ownDelay = monitorEventLoopDelay({ resolution: 5 });
  let cpu0 = 0;
  for (let n = 0; n < total; n++) {
    const due = t0 + (n * 1000) / RATE;
    if (n === warmupCalls) {
      measuredFrom = performance.now();
      ownDelay.enable();
      cpu0 = cpuMicros(hub.pid!);
      [gcMs, gcMax] = [0, 0];
      hub.kill('SIGUSR2'); // resets the hub's loop-delay histogram
    }
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const id = `bench-${n % DEVICES}`;
    const sent = performance.now();
    pending.push(
      call('POST', `/twins/${id}/methods`, { methodName: 'ping', payload: { n }, responseTimeoutInSeconds: 30 }).then(
        (res) => {
          if (res.status !== 200 || JSON.parse(res.text).status !== 200) failures++;
          else if (n >= warmupCalls) latencies.push(performance.now() - sent);
        },
        () => void failures++,
      ),
    );
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - measuredFrom) / 1000;
  const hubCpu = (cpuMicros(hub.pid!) - cpu0) / 1e6 / elapsed;
  ownDelay.disable();
  const [gcTotal, gcLongest] = [gcMs, gcMax];
  loopDelay = '';
  hub.kill('SIGUSR2');
  await until(() => loopDelay !== '', 5000, 'the hub\'s event-loop delay');
  const [hubP50, hubP99, hubMax] = loopDelay.split(' ');
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(1);
  console.log(
    `direct methods: ${latencies.length} ok, ${failures} failed, target ${RATE}/s after ${WARMUP} s warm-up, achieved ${(latencies.length / elapsed).toFixed(0)}/s over ${elapsed.toFixed(1)} s; ` +
      `round trip p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`,
  );
  const ms = (ns: number) => (ns / 1e6).toFixed(1);
  console.log(
    `hub: CPU ${(hubCpu * 100).toFixed(0)}% of a core, GC pauses ${gcTotal.toFixed(0)} ms in all (longest ${gcLongest.toFixed(1)} ms), ` +
      `event-loop delay p50 ${hubP50} / p99 ${hubP99} / max ${hubMax} ms; ` +
      `bench process event-loop delay p50 ${ms(ownDelay.percentile(50))} / p99 ${ms(ownDelay.percentile(99))} / max ${ms(ownDelay.max)} ms; ` +
      `load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
  );
  agent.destroy();
} finally {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
  hub.kill('SIGTERM');
  await new Promise((r) => hub.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
