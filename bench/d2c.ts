/**
 * bench/d2c: device-to-cloud throughput, Fleethub against Mosquitto with the same load generator.
 *
 * N devices connect over TLS and each publishes 256-byte QoS 1 messages as fast as its PUBACKs
 * allow (one in flight per device by default). Prints msgs/s, the ratio, p50/p99
 * publish-to-PUBACK latency, the broker's CPU time per message (the fairer figure on a shared
 * machine, where msgs/s also measures the load generator's share of the CPU) and its resident
 * memory per connected device.
 *
 *   npm run bench:d2c -- [--devices 1000] [--seconds 10] [--inflight 1] [--only fleethub|mosquitto] [--route]
 *
 * `--route` runs Fleethub twice in the same run: without routes, then with one route (set through
 * ARM, as a user would) to an event hub of a local Event Hubs namespace with the condition
 * `level = 'critical'` on an application property, and the fallback to `events`; half the messages
 * carry `level=critical`. The table then shows what routing costs per message at ingest (the
 * routing decision and the second append in the same commit) plus the delivery to the local event
 * hub (src/egress/routing's Event Hubs sink, in the same process).
 *
 * Fleethub commits every message to its event log before the PUBACK; Mosquitto (default
 * settings, no persistence) acks from memory. Both run as child processes on a loopback
 * address of their own; the load generator is a lean mqtt-packet client in this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { request as httpsRequest } from 'node:https';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { createSasToken } from '../src/core/sas.js';
import { databasePath } from '../src/info.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { Registry } from '../src/hub/registry/registry.js';
import { ensureTlsMaterial } from '../src/protocols/tls/ca.js';
import { cpuMicros, waitFor } from './support/process.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    inflight: { type: 'string', default: '1' },
    only: { type: 'string' },
    route: { type: 'boolean', default: false },
    host: { type: 'string', default: '127.0.77.1' },
    /** Writes a V8 CPU profile of the Fleethub process into this directory. */
    profile: { type: 'string' },
  },
});
const DEVICES = Number(args.devices);
const SECONDS = Number(args.seconds);
const INFLIGHT = Number(args.inflight);
const HOST = args.host!;
const PAYLOAD = Buffer.alloc(256, 'x');
const KEY = Buffer.alloc(32, 42).toString('base64');
const cli = fileURLToPath(new URL('../src/cli/index.js', import.meta.url));

interface Target {
  name: string;
  port: number;
  pid: number;
  username: (id: string) => string;
  password: (id: string) => string | undefined;
  stop(): Promise<void>;
  /** What to print after the measured window (the routed run: what its endpoint got by then). */
  report?(): string;
}

interface Result {
  name: string;
  messages: number;
  seconds: number;
  p50: number;
  p99: number;
  rssPerDeviceKiB: number;
  rssMiB: number;
  /** Broker CPU time (user + system) per message while publishing: robust to a shared machine. */
  cpuMicrosPerMessage: number;
}

const work = mkdtempSync(join(tmpdir(), 'fleethub-bench-'));
const tls = await ensureTlsMaterial(work, [HOST]);
/** Brokers this run started, stopped however the run ends. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

async function main(): Promise<void> {
  try {
    const results: Result[] = [];
    if (args.only !== 'mosquitto') results.push(await run(await startFleethub(false)));
    if (args.only !== 'mosquitto' && args.route) results.push(await run(await startFleethub(true)));
    if (args.only !== 'fleethub') results.push(await run(await startMosquitto()));
    console.log('\n' + table(results));
    if (args.route && results.length >= 2) {
      const [plain, routed] = results as [Result, Result];
      console.log(
        `\nRouted / unrouted throughput ratio: ${(routed.messages / routed.seconds / (plain.messages / plain.seconds)).toFixed(2)}; ` +
          `CPU per message ${plain.cpuMicrosPerMessage.toFixed(1)} -> ${routed.cpuMicrosPerMessage.toFixed(1)} µs`,
      );
    }
    const mosquitto = results.find((r) => r.name === 'Mosquitto');
    if (results[0]?.name === 'Fleethub' && mosquitto) {
      const [f, m] = [results[0], mosquitto];
      console.log(`\nFleethub / Mosquitto throughput ratio: ${(f.messages / f.seconds / (m.messages / m.seconds)).toFixed(2)}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function startFleethub(routed: boolean): Promise<Target> {
  const dataDir = join(work, routed ? 'fleethub-routed' : 'fleethub');
  mkdirSync(dataDir, { recursive: true });
  // The routed run gets a local Event Hubs namespace to route to (read from fleethub.json in its cwd).
  if (routed) writeFileSync(join(dataDir, 'fleethub.json'), JSON.stringify({ eventHubsNamespaces: [{ name: 'bench-routing', eventHubs: [{ name: 'routed', partitionCount: 4 }] }] }));
  // Same CA (and so the same kind of server certificate) as Mosquitto gets, so TLS costs are alike.
  cpSync(join(work, 'ca'), join(dataDir, 'ca'), { recursive: true });
  const store = openSqliteStore(databasePath(dataDir));
  const registry = new Registry(store.devices, store.modules);
  for (let i = 0; i < DEVICES; i++) {
    await registry.putDevice(`bench-${i}`, { deviceId: `bench-${i}`, authentication: { symmetricKey: { primaryKey: KEY, secondaryKey: KEY } } }, undefined);
  }
  store.close();
  const port = await freePort(HOST);
  const profile = args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile] : [];
  const child = spawn(process.execPath, [...profile, cli, '--data', dataDir, 'start', '--host-name', HOST, '--bind', HOST, '--https-port', String(await freePort(HOST)), '--log-level', 'warn'], {
    env: { ...process.env, FLEETHUB_MQTT_PORT: String(port), FLEETHUB_AMQP_PORT: String(await freePort(HOST)), FLEETHUB_AMQP_EMULATOR_PORT: '0' },
    cwd: dataDir,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  await waitFor(child, 'is running');
  if (routed) await routeToEventHub(dataDir);
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  return {
    name: routed ? 'Fleethub (route)' : 'Fleethub',
    port,
    pid: child.pid!,
    username: (id) => `${HOST}/${id}/?api-version=2021-04-12`,
    password: (id) => createSasToken(`${HOST}/devices/${id}`, KEY, expiry),
    stop: () => stop(child),
    ...(routed ? { report: () => routedReport(dataDir) } : {}),
  };
}

/** The route's matches and its endpoint's delivered count and backlog when the window closed (`fleethub routing stats`). */
function routedReport(dataDir: string): string {
  try {
    const stats = JSON.parse(execFileSync(process.execPath, [cli, '--data', dataDir, 'routing', 'stats'], { cwd: dataDir, encoding: 'utf8' })) as {
      routes?: { route?: string; name?: string; matched?: number }[];
      endpoints?: { endpoint: string; delivered?: number; backlog?: number; dropped?: number }[];
    };
    const e = stats.endpoints?.find((x) => x.endpoint === 'bench-eh');
    const matched = stats.routes?.find((r) => (r.route ?? r.name) === 'critical')?.matched;
    return `routed ${matched ?? '?'}, delivered to the event hub ${e?.delivered ?? '?'} (backlog ${e?.backlog ?? '?'}, dropped ${e?.dropped ?? '?'}). `;
  } catch (err) {
    return `(routing stats unavailable: ${(err as Error).message.split('\n')[0]}) `;
  }
}

async function startMosquitto(): Promise<Target> {
  const dir = join(work, 'mosquitto');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(work, 0o755);
  // Mosquitto drops root privileges to its own user; give it readable copies.
  for (const [from, to] of [
    [join(work, 'tls', 'server-cert.pem'), 'cert.pem'],
    [join(work, 'tls', 'server-key.pem'), 'key.pem'],
    [tls.caCertificatePath, 'ca.pem'],
  ] as const) {
    copyFileSync(from, join(dir, to));
    chmodSync(join(dir, to), 0o644);
  }
  const port = await freePort(HOST);
  // Defaults apart from what a TLS listener needs; anonymous allowed since it checks no tokens.
  writeFileSync(
    join(dir, 'mosquitto.conf'),
    [`listener ${port} ${HOST}`, `certfile ${dir}/cert.pem`, `keyfile ${dir}/key.pem`, `cafile ${dir}/ca.pem`, 'allow_anonymous true', 'log_type error', ''].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'inherit', 'inherit'] });
  children.add(child);
  await waitForPort(HOST, port);
  return { name: 'Mosquitto', port, pid: child.pid!, username: (id) => id, password: () => undefined, stop: () => stop(child) };
}

async function run(target: Target): Promise<Result> {
  process.stdout.write(`${target.name}: connecting ${DEVICES} devices... `);
  const rssBefore = rss(target.pid);
  const devices: Device[] = [];
  for (let i = 0; i < DEVICES; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(DEVICES, i + 50); j++) batch.push(Device.connect(target, `bench-${j}`));
    devices.push(...(await Promise.all(batch)));
  }
  await sleep(1000);
  const rssConnected = rss(target.pid);
  process.stdout.write(`RSS ${(rssBefore / 1024).toFixed(0)} -> ${(rssConnected / 1024).toFixed(0)} MiB. Publishing for ${SECONDS} s... `);

  const latencies: number[] = [];
  let running = true;
  const cpuBefore = cpuMicros(target.pid);
  const start = performance.now();
  await Promise.all(devices.map((d) => d.pump(INFLIGHT, () => running, latencies)));
  setTimeout(() => (running = false), SECONDS * 1000);
  await Promise.all(devices.map((d) => d.drained()));
  const seconds = (performance.now() - start) / 1000;
  const cpu = cpuMicros(target.pid) - cpuBefore;
  if (target.report) process.stdout.write(target.report());
  for (const d of devices) d.close();
  await target.stop();
  latencies.sort((a, b) => a - b);
  const result: Result = {
    name: target.name,
    messages: latencies.length,
    seconds,
    p50: latencies[Math.floor(latencies.length * 0.5)] ?? NaN,
    p99: latencies[Math.floor(latencies.length * 0.99)] ?? NaN,
    rssPerDeviceKiB: (rssConnected - rssBefore) / DEVICES,
    rssMiB: rssConnected / 1024,
    cpuMicrosPerMessage: cpu / Math.max(1, latencies.length),
  };
  console.log(`${(result.messages / seconds).toFixed(0)} msgs/s`);
  return result;
}

/** A lean MQTT 3.1.1 client: CONNECT, then QoS 1 PUBLISH with a window, timing each PUBACK. */
class Device {
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });
  private readonly sent = new Map<number, number>();
  private nextId = 1;
  private onAck?: () => void;
  private idle?: () => void;
  private running = () => false;
  private latencies: number[] = [];
  private window = 1;

  private sentCount = 0;

  private constructor(
    private readonly socket: TLSSocket,
    private readonly topic: string,
  ) {
    socket.on('data', (b: Buffer) => this.parser.parse(b));
    socket.on('error', () => undefined);
    this.parser.on('packet', (p: Packet) => {
      if (p.cmd === 'puback') {
        const t = this.sent.get(p.messageId!);
        if (t === undefined) return;
        this.sent.delete(p.messageId!);
        this.latencies.push(performance.now() - t);
        this.onAck?.();
      }
    });
  }

  static connect(target: Target, id: string): Promise<Device> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: HOST, port: target.port, ca: tls.caCertificatePem }, () => {
        const device = new Device(socket, `devices/${id}/messages/events/`);
        const password = target.password(id);
        socket.write(
          mqttPacket.generate({
            cmd: 'connect',
            protocolId: 'MQTT',
            protocolVersion: 4,
            clean: true,
            clientId: id,
            keepalive: 300,
            username: target.username(id),
            ...(password ? { password: Buffer.from(password) } : {}),
          }),
        );
        device.parser.once('packet', (p: Packet) => {
          if (p.cmd === 'connack' && p.returnCode === 0) resolve(device);
          else reject(new Error(`${id}: CONNACK ${(p as { returnCode?: number }).returnCode}`));
        });
      });
      socket.setNoDelay(true);
      socket.once('error', reject);
    });
  }

  /** Starts publishing; resolves at once. */
  async pump(window: number, running: () => boolean, latencies: number[]): Promise<void> {
    this.window = window;
    this.running = running;
    this.latencies = latencies;
    this.onAck = () => this.fill();
    this.fill();
  }

  private fill(): void {
    while (this.running() && this.sent.size < this.window) {
      const messageId = this.nextId;
      this.nextId = messageId === 65535 ? 1 : messageId + 1;
      this.sent.set(messageId, performance.now());
      // With --route, every other message carries the property the route's condition tests.
      const topic = args.route ? `${this.topic}level=${this.sentCount++ % 2 ? 'info' : 'critical'}` : this.topic;
      this.socket.write(mqttPacket.generate({ cmd: 'publish', topic, payload: PAYLOAD, qos: 1, messageId, dup: false, retain: false }));
    }
    if (this.sent.size === 0) this.idle?.();
  }

  drained(): Promise<void> {
    return new Promise((resolve) => {
      this.idle = resolve;
      const check = setInterval(() => {
        if (!this.running() && this.sent.size === 0) {
          clearInterval(check);
          resolve();
        }
      }, 50);
    });
  }

  close(): void {
    this.socket.end();
  }
}

/** Sets the hub resource's routing through ARM REST, with the administrator's client secret (`fleethub info --json`). */
async function routeToEventHub(dataDir: string): Promise<void> {
  const info = JSON.parse(execFileSync(process.execPath, [cli, '--data', dataDir, 'info', '--json'], { cwd: dataDir, encoding: 'utf8' })) as {
    hubName: string;
    management: { endpoint: string; authorityHost: string; tenantId: string; subscriptionId: string; resourceGroup: string; clientId: string; clientSecret: string };
    eventHubsNamespaces: { name: string; connectionString: string }[];
  };
  const m = info.management;
  const tokenUrl = new URL(`${m.tenantId}/oauth2/v2.0/token`, m.authorityHost.endsWith('/') ? m.authorityHost : `${m.authorityHost}/`);
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: m.clientId, client_secret: m.clientSecret, scope: 'https://management.azure.com/.default' }).toString();
  const token = (JSON.parse(await call('POST', tokenUrl, form, { 'content-type': 'application/x-www-form-urlencoded' })) as { access_token: string }).access_token;
  const hubUrl = new URL(`subscriptions/${m.subscriptionId}/resourceGroups/${m.resourceGroup}/providers/Microsoft.Devices/IotHubs/${info.hubName}?api-version=2023-06-30`, m.endpoint.endsWith('/') ? m.endpoint : `${m.endpoint}/`);
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const hub = JSON.parse(await call('GET', hubUrl, undefined, auth)) as { properties: { routing: unknown } };
  const connectionString = `${info.eventHubsNamespaces[0]!.connectionString.replace(/;EntityPath=[^;]*/, '')};EntityPath=routed`;
  hub.properties.routing = {
    endpoints: { eventHubs: [{ name: 'bench-eh', connectionString }], serviceBusQueues: [], serviceBusTopics: [], storageContainers: [] },
    routes: [{ name: 'critical', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['bench-eh'], isEnabled: true }],
    fallbackRoute: { name: '$fallback', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true },
    enrichments: [],
  };
  await call('PUT', hubUrl, JSON.stringify(hub), auth);
}

function call(method: string, url: URL, body: string | undefined, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method, headers, ca: tls.caCertificatePem }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} ${url.pathname}: ${res.statusCode} ${text.slice(0, 300)}`));
        else resolve(text);
      });
    });
    req.once('error', reject);
    req.end(body);
  });
}

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function table(results: Result[]): string {
  const rows = [
    ['broker', 'msgs/s', 'messages', 'p50 ms', 'p99 ms', 'CPU µs/msg', 'RSS MiB', 'KiB/device'],
    ...results.map((r) => [
      r.name,
      (r.messages / r.seconds).toFixed(0),
      String(r.messages),
      r.p50.toFixed(2),
      r.p99.toFixed(2),
      r.cpuMicrosPerMessage.toFixed(1),
      r.rssMiB.toFixed(0),
      r.rssPerDeviceKiB.toFixed(1),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n');
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host, port: 0 }, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}


async function waitForPort(host: string, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tlsConnect({ host, port, ca: tls.caCertificatePem }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on ${host}:${port}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
