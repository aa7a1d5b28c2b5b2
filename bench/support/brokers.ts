/**
 * The brokers the MQTT benches compare, and their lean load generator.
 *
 * Fleethub and Mosquitto run as child processes on one loopback address, with the same CA and the
 * same kind of server certificate, so TLS costs are alike. `LeanDevice` is an mqtt-packet client
 * over TLS with no library overhead of its own, so the load generator's share of a 2-core machine
 * stays small. Used by bench/d2c, bench/connect, bench/soak and bench/hostile.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { createSasToken } from '../../src/core/sas.js';
import { databasePath } from '../../src/info.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { Registry } from '../../src/hub/registry/registry.js';
import { ensureTlsMaterial } from '../../src/protocols/tls/ca.js';
import { waitFor } from './process.js';

export const cli = fileURLToPath(new URL('../../src/cli/index.js', import.meta.url));
/** Every bench device's symmetric key (both slots). */
export const BENCH_KEY = Buffer.alloc(32, 42).toString('base64');

export interface Broker {
  name: string;
  host: string;
  port: number;
  pid: number;
  ca: string;
  username: (id: string) => string;
  password: (id: string) => string | undefined;
  stop(): Promise<void>;
}

/** A bench's working directory with TLS material for `host` (server certificate and CA). */
export async function benchTls(work: string, host: string): Promise<{ caPem: string; caPath: string }> {
  const tls = await ensureTlsMaterial(work, [host]);
  return { caPem: tls.caCertificatePem, caPath: tls.caCertificatePath };
}

/** Brokers started by this process, killed however it exits. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export interface FleethubOptions {
  work: string;
  host: string;
  /** Devices `bench-0` … `bench-{n-1}` registered (SAS, BENCH_KEY) before the hub starts. */
  devices: number;
  /** Directory name under `work` (default `fleethub`). */
  dir?: string;
  /** Written as `fleethub.json` in the hub's working directory. */
  config?: unknown;
  /** Writes a V8 CPU profile of the hub into this directory. */
  profile?: string;
  /** Extra environment (settings) for the hub. */
  env?: Record<string, string>;
  name?: string;
  nodeArgs?: string[];
  /** The hub's `--log-level` (default warn). */
  logLevel?: string;
}

/** Fleethub as users start it (`fleethub start`), in a child process, with the bench devices registered. */
export async function startFleethub(o: FleethubOptions): Promise<Broker & { dataDir: string; httpsPort: number; amqpPort: number; stdout: NodeJS.ReadableStream }> {
  const dataDir = join(o.work, o.dir ?? 'fleethub');
  mkdirSync(dataDir, { recursive: true });
  if (o.config !== undefined) writeFileSync(join(dataDir, 'fleethub.json'), JSON.stringify(o.config));
  cpSync(join(o.work, 'ca'), join(dataDir, 'ca'), { recursive: true });
  const store = openSqliteStore(databasePath(dataDir));
  const registry = new Registry(store.devices, store.modules);
  // One transaction for all of them (10,000 devices: seconds instead of a commit each). Nothing
  // else uses this connection meanwhile, so the awaits inside it interleave with nothing.
  store.db.exec('BEGIN');
  for (let i = 0; i < o.devices; i++) {
    await registry.putDevice(`bench-${i}`, { deviceId: `bench-${i}`, authentication: { symmetricKey: { primaryKey: BENCH_KEY, secondaryKey: BENCH_KEY } } }, undefined);
  }
  store.db.exec('COMMIT');
  store.close();
  const port = await freePort(o.host);
  const httpsPort = await freePort(o.host);
  const amqpPort = await freePort(o.host);
  const profile = o.profile ? ['--cpu-prof', '--cpu-prof-dir', o.profile] : [];
  const child = spawn(
    process.execPath,
    [...(o.nodeArgs ?? []), ...profile, cli, '--data', dataDir, 'start', '--host-name', o.host, '--bind', o.host, '--https-port', String(httpsPort), '--log-level', o.logLevel ?? 'warn'],
    {
      env: { ...process.env, FLEETHUB_MQTT_PORT: String(port), FLEETHUB_AMQP_PORT: String(amqpPort), FLEETHUB_AMQP_EMULATOR_PORT: '0', ...o.env },
      cwd: dataDir,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.add(child);
  await waitFor(child, 'is running');
  const expiry = Math.floor(Date.now() / 1000) + 24 * 3600;
  const host = o.host;
  return {
    name: o.name ?? 'Fleethub',
    host,
    port,
    httpsPort,
    amqpPort,
    pid: child.pid!,
    dataDir,
    stdout: child.stdout!,
    ca: readFileSync(join(o.work, 'ca', 'ca-cert.pem'), 'utf8'),
    username: (id) => `${host}/${id}/?api-version=2021-04-12`,
    password: (id) => createSasToken(`${host}/devices/${id}`, BENCH_KEY, expiry),
    stop: () => stopChild(child),
  };
}

/** What Fleethub logs on SIGUSR2 (src/hosting/processStats.ts), as a bench reads it. */
export interface HubStats {
  eventLoopDelayMs: { p50: number; p99: number; max: number; mean: number };
  gc: { count: number; maxMs: number; maxKind: string; totalMs: number };
  heapUsedMiB: number;
  rssMiB: number;
  /** The longest 'slow commit' (≥ 250 ms, src/hub/messaging/eventLogWriter.ts) it logged since the previous ask, ms. */
  slowestCommitMs?: number;
}

/**
 * Asks a Fleethub started with `logLevel: 'info'` for its process stats (SIGUSR2) and reads the
 * 'process stats' line it logs: event-loop delay since the previous ask, heap, RSS. Undefined when
 * no answer comes within 5 s (the hub's event loop was blocked at least that long).
 */
export function processStatsReader(hub: { pid: number; stdout: NodeJS.ReadableStream }): () => Promise<HubStats | undefined> {
  let waiter: ((s: HubStats) => void) | undefined;
  let buffered = '';
  let slowest: number | undefined;
  hub.stdout.on('data', (b: Buffer) => {
    buffered += b.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.includes('"slow commit"')) slowest = Math.max(slowest ?? 0, (JSON.parse(line) as { ms: number }).ms);
      if (line.includes('"process stats"')) {
        const stats = (JSON.parse(line) as { processStats: HubStats }).processStats;
        if (slowest !== undefined) stats.slowestCommitMs = slowest;
        slowest = undefined;
        waiter?.(stats);
      }
    }
  });
  return () =>
    new Promise<HubStats | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), 5000);
      waiter = (s) => {
        clearTimeout(t);
        waiter = undefined;
        resolve(s);
      };
      process.kill(hub.pid, 'SIGUSR2');
    });
}

/** Mosquitto with its defaults apart from what a TLS listener needs (anonymous: it checks no tokens). */
export async function startMosquitto(work: string, host: string, extraConf: string[] = []): Promise<Broker> {
  const dir = join(work, 'mosquitto');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(work, 0o755);
  // Mosquitto drops root privileges to its own user; give it readable copies.
  for (const [from, to] of [
    [join(work, 'tls', 'server-cert.pem'), 'cert.pem'],
    [join(work, 'tls', 'server-key.pem'), 'key.pem'],
    [join(work, 'ca', 'ca-cert.pem'), 'ca.pem'],
  ] as const) {
    copyFileSync(from, join(dir, to));
    chmodSync(join(dir, to), 0o644);
  }
  const port = await freePort(host);
  writeFileSync(
    join(dir, 'mosquitto.conf'),
    [`listener ${port} ${host}`, `certfile ${dir}/cert.pem`, `keyfile ${dir}/key.pem`, `cafile ${dir}/ca.pem`, 'allow_anonymous true', 'log_type error', ...extraConf, ''].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'inherit', 'inherit'] });
  children.add(child);
  const ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
  await waitForTlsPort(host, port, ca);
  return { name: 'Mosquitto', host, port, pid: child.pid!, ca, username: (id) => id, password: () => undefined, stop: () => stopChild(child) };
}

/** A lean MQTT 3.1.1 client over TLS: CONNECT, then QoS 1 PUBLISH with a window, timing each PUBACK. */
export class LeanDevice {
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });
  private readonly sent = new Map<number, number>();
  private nextId = 1;
  private onAck?: () => void;
  private idle?: () => void;
  private running = () => false;
  private latencies: number[] = [];
  private window = 1;
  private topicFor: (n: number) => string;
  private sentCount = 0;
  /** PUBACKs received. */
  acked = 0;

  private constructor(
    readonly socket: TLSSocket,
    readonly id: string,
  ) {
    const topic = `devices/${id}/messages/events/`;
    this.topicFor = () => topic;
    socket.on('data', (b: Buffer) => this.parser.parse(b));
    socket.on('error', () => undefined);
    this.parser.on('packet', (p: Packet) => {
      if (p.cmd === 'puback') {
        const t = this.sent.get(p.messageId!);
        if (t === undefined) return;
        this.sent.delete(p.messageId!);
        this.acked++;
        this.latencies.push(performance.now() - t);
        this.onAck?.();
      }
    });
  }

  static connect(broker: Broker, id: string): Promise<LeanDevice> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: broker.host, port: broker.port, ca: broker.ca }, () => {
        const device = new LeanDevice(socket, id);
        const password = broker.password(id);
        socket.write(connectPacket(id, broker.username(id), password, 300));
        device.parser.once('packet', (p: Packet) => {
          if (p.cmd === 'connack' && p.returnCode === 0) resolve(device);
          else reject(new Error(`${id}: CONNACK ${(p as { returnCode?: number }).returnCode}`));
        });
      });
      socket.setNoDelay(true);
      socket.once('error', reject);
    });
  }

  /** Connects `count` devices `bench-{from}` …, `parallel` at a time. */
  static async connectMany(broker: Broker, count: number, parallel = 50, from = 0): Promise<LeanDevice[]> {
    const devices: LeanDevice[] = [];
    for (let i = from; i < from + count; i += parallel) {
      const batch = [];
      for (let j = i; j < Math.min(from + count, i + parallel); j++) batch.push(LeanDevice.connect(broker, `bench-${j}`));
      devices.push(...(await Promise.all(batch)));
    }
    return devices;
  }

  /** Topic per message number (for application properties in the topic). */
  topics(topicFor: (n: number) => string): this {
    this.topicFor = topicFor;
    return this;
  }

  /** Starts publishing `payload` with up to `window` PUBACKs outstanding while `running()`; resolves at once. */
  pump(window: number, running: () => boolean, latencies: number[], payload: Buffer): void {
    this.window = window;
    this.running = running;
    this.latencies = latencies;
    this.onAck = () => this.fill(payload);
    this.fill(payload);
  }

  /** Publishes one QoS 1 message; its PUBACK latency goes to `latencies`. */
  publishOne(payload: Buffer, latencies: number[]): void {
    this.latencies = latencies;
    this.send(payload);
  }

  /** Messages sent and not yet acknowledged. */
  get outstanding(): number {
    return this.sent.size;
  }

  private fill(payload: Buffer): void {
    while (this.running() && this.sent.size < this.window) this.send(payload);
    if (this.sent.size === 0) this.idle?.();
  }

  private send(payload: Buffer): void {
    const messageId = this.nextId;
    this.nextId = messageId === 65535 ? 1 : messageId + 1;
    this.sent.set(messageId, performance.now());
    this.socket.write(mqttPacket.generate({ cmd: 'publish', topic: this.topicFor(this.sentCount++), payload, qos: 1, messageId, dup: false, retain: false }));
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

/** An MQTT 3.1.1 CONNECT (clean session) for `id`. */
export function connectPacket(id: string, username: string, password: string | undefined, keepalive: number): Buffer {
  return mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    clientId: id,
    keepalive,
    username,
    ...(password ? { password: Buffer.from(password) } : {}),
  });
}

/** Resident set size of a process, KiB. */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/**
 * Time the hypervisor ran something else on each of this machine's CPUs (steal, from /proc/stat),
 * ms since boot. On a shared VM a CPU taken away for a while stops whatever runs on it: a latency
 * outlier with steal in its phase was the host's, not the process's.
 */
export function stealMsPerCpu(): number[] {
  const ticksPerSecond = 100; // USER_HZ, 100 on Linux
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d+ /.test(l))
    .map((l) => (Number(l.trim().split(/\s+/)[8]) * 1000) / ticksPerSecond);
}

/** Right-aligned text table, first row the header. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n');
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host, port: 0 }, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitForTlsPort(host: string, port: number, ca: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tlsConnect({ host, port, ca }, () => {
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

export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
