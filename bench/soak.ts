/**
 * bench/soak: many devices at a steady rate for a long time, with a consumer reading the built-in
 * endpoint; is everything flat, and does every acknowledged message arrive?
 *
 *   npm run bench:soak -- [--devices 10000] [--rate-per-device 1] [--minutes 30] [--sample-seconds 10]
 *                         [--generators N] [--payload 256] [--host 127.0.77.30] [--retention-hours H] [--profile DIR]
 *                         [--nice-tools N]
 *
 * Processes (each its own file-descriptor limit and event loop):
 * - the hub: `fleethub start` in a child process (bench/support/brokers startFleethub, which
 *   registers `bench-0…N-1`); on SIGUSR2 it logs its event-loop delay (p99/max since the last
 *   signal) and heap (src/hosting/processStats.ts);
 * - N load generators (this file, `--role gen`): `LeanDevice`s over TLS, QoS 1, each device
 *   sending `rate` messages per second, the sends of all devices spread evenly over each second
 *   (round-robin on a 5 ms tick); every payload is JSON {d: device, s: sequence, t: send time};
 * - one consumer (this file, `--role consumer`): the unmodified `@azure/event-hubs`
 *   EventHubConsumerClient on the hub's `eventHubCompatibleConnectionString` (`fleethub info
 *   --json`; AMQP over TLS), trusting the bench CA through NODE_EXTRA_CA_CERTS, counting every
 *   (device, sequence) it receives.
 *
 * Every `--sample-seconds` a row: elapsed, hub RSS and heap, hub CPU % over the interval, hub
 * event-loop delay p99/max over the interval, messages sent / acknowledged / received in the
 * interval, PUBACK p99 in the interval, send→receipt p99, consumer lag (acknowledged so far −
 * received so far), load average. At the end: every acknowledged message received (missing and
 * duplicates per (device, sequence)), the RSS slope (mean of the first third of the rows against
 * the last third) and verdict lines.
 *
 * `--nice-tools N` runs the load generators and the consumer at niceness N (0 by default): they
 * stand for devices and a backend on other machines, and on a small machine they want more CPU
 * than is left beside the hub (10,000 devices on 2 cores: ~2.2 cores of demand), so the hub's
 * PUBACK and event-loop delays then measure the contention. With N > 0 the hub gets the CPU it
 * asks for first, and a machine too small for the load shows as the generators falling behind
 * (the sent column, the sustained-rate verdict) instead.
 */
import { fork, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { SubscribeOptions, SubscriptionEventHandlers } from '@azure/event-hubs';
import { createSasToken } from '../src/core/sas.js';
import { cpuMicros } from './support/process.js';
import { BENCH_KEY, benchTls, cli, LeanDevice, percentile, processStatsReader, rssKiB, sleep, startFleethub, type Broker } from './support/brokers.js';

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    devices: { type: 'string', default: '10000' },
    'rate-per-device': { type: 'string', default: '1' },
    minutes: { type: 'string', default: '30' },
    'sample-seconds': { type: 'string', default: '10' },
    generators: { type: 'string' },
    payload: { type: 'string', default: '256' },
    host: { type: 'string', default: '127.0.77.30' },
    'retention-hours': { type: 'string' },
    'connect-parallel': { type: 'string', default: '50' },
    /** Writes a V8 CPU profile of the hub into this directory (at its exit). */
    profile: { type: 'string' },
    /** Niceness of the load generators and the consumer (the hub keeps 0). */
    'nice-tools': { type: 'string', default: '0' },
    // gen role
    from: { type: 'string', default: '0' },
    count: { type: 'string', default: '0' },
    port: { type: 'string', default: '0' },
  },
});

type Msg = Record<string, unknown> & { type: string };
const send = (m: Msg): void => void process.send!(m);

// ───────────────────────────── load generator ─────────────────────────────

type GenSample = {
  type: 'sample';
  sent: number;
  acked: number;
  latencies: number[];
  connected: number;
  closed: number;
};

async function generator(): Promise<void> {
  const from = Number(args.from);
  const count = Number(args.count);
  const rate = Number(args['rate-per-device']);
  const payloadBytes = Number(args.payload);
  const host = args.host!;
  const expiry = Math.floor(Date.now() / 1000) + 24 * 3600;
  const broker: Broker = {
    name: 'Fleethub',
    host,
    port: Number(args.port),
    pid: 0,
    ca: process.env.SOAK_CA!,
    username: (id) => `${host}/${id}/?api-version=2021-04-12`,
    password: (id) => createSasToken(`${host}/devices/${id}`, BENCH_KEY, expiry),
    stop: async () => undefined,
  };
  const parallel = Number(args['connect-parallel']);
  const devices: (LeanDevice | undefined)[] = new Array(count);
  let closed = 0;
  let failed = 0;
  const connectStart = performance.now();
  for (let i = 0; i < count; i += parallel) {
    await Promise.all(
      Array.from({ length: Math.min(parallel, count - i) }, async (_, j) => {
        const k = i + j;
        for (let attempt = 0; attempt < 3 && !devices[k]; attempt++) {
          try {
            const d = await LeanDevice.connect(broker, `bench-${from + k}`);
            d.socket.once('close', () => closed++);
            devices[k] = d;
          } catch {
            await sleep(500);
          }
        }
        if (!devices[k]) failed++;
      }),
    );
  }
  const connectSeconds = (performance.now() - connectStart) / 1000;
  send({ type: 'connected', connected: count - failed, failed, seconds: connectSeconds });

  const latencies: number[] = [];
  const sentPerDevice = new Uint32Array(count);
  let sent = 0;
  let ackedBase = 0;
  let sentReported = 0;
  let timer: NodeJS.Timeout | undefined;
  const pad = ' '.repeat(payloadBytes);
  const acked = () => devices.reduce((n, d) => n + (d?.acked ?? 0), 0);

  process.on('message', async (m: Msg) => {
    if (m.type === 'start') {
      const startAt = m.at as number;
      const perMs = (count * rate) / 1000;
      // Round-robin over the devices at `count × rate` sends per second: device k sends at
      // k/count of each period, so the load is spread evenly rather than in bursts.
      timer = setInterval(() => {
        const due = Math.floor((Date.now() - startAt) * perMs);
        while (sent < due) {
          const k = sent % count;
          const d = devices[k];
          if (d && !d.socket.destroyed) {
            const s = sentPerDevice[k]!++;
            const body = `{"d":${from + k},"s":${s},"t":${Date.now()}}`;
            d.publishOne(Buffer.from(body + pad.slice(body.length)), latencies);
          }
          sent++;
        }
      }, 5);
    } else if (m.type === 'sample') {
      const a = acked();
      const totalSent = sentPerDevice.reduce((n, x) => n + x, 0);
      const sample: GenSample = {
        type: 'sample',
        sent: totalSent - sentReported,
        acked: a - ackedBase,
        latencies: latencies.splice(0).map((x) => Math.round(x * 100) / 100),
        connected: devices.filter((d) => d && !d.socket.destroyed).length,
        closed,
      };
      sentReported = totalSent;
      ackedBase = a;
      send(sample);
    } else if (m.type === 'stop') {
      clearInterval(timer);
      // Wait (bounded) for the PUBACKs still in flight.
      const until = Date.now() + 30_000;
      while (Date.now() < until && devices.some((d) => d && !d.socket.destroyed && d.outstanding > 0)) await sleep(100);
      // Sequences sent but never acknowledged, per device. LeanDevice numbers packets 1, 2, … so
      // (below 65,535 messages a device) packet id = sequence + 1.
      const unacked: Record<number, number[]> = {};
      devices.forEach((d, k) => {
        const pending = d ? [...((d as unknown as { sent: Map<number, number> }).sent.keys())] : [];
        if (pending.length) unacked[from + k] = pending.map((id) => id - 1);
      });
      send({ type: 'stopped', sentPerDevice: [...sentPerDevice], unacked, acked: acked() });
    } else if (m.type === 'close') {
      for (const d of devices) d?.close();
      setTimeout(() => process.exit(0), 500);
    }
  });
}

// ───────────────────────────── consumer ─────────────────────────────

async function consumer(): Promise<void> {
  const { EventHubConsumerClient, earliestEventPosition } = await import('@azure/event-hubs');
  const client = new EventHubConsumerClient('$Default', process.env.SOAK_EVENTHUB_CONNECTION_STRING!);
  const partitions = await client.getPartitionIds();
  /** Receipts per (device, sequence): counts[d][s]. */
  const counts: Uint8Array[] = [];
  let received = 0;
  let receivedReported = 0;
  let duplicates = 0;
  let unparsed = 0;
  const e2e: number[] = [];
  let initialized = 0;
  const lastEnqueued = new Map<string, number>();
  const lastSeen = new Map<string, number>();
  const handlers: SubscriptionEventHandlers = {
      processInitialize: async () => {
        if (++initialized === partitions.length) send({ type: 'ready', partitions: partitions.length });
      },
      processEvents: async (events, context) => {
        const now = Date.now();
        for (const e of events) {
          const body = e.body as Buffer;
          const m = /"d":(\d+),"s":(\d+),"t":(\d+)/.exec(Buffer.isBuffer(body) ? body.toString('latin1', 0, 80) : String(body));
          if (!m) {
            unparsed++;
            continue;
          }
          const d = Number(m[1]);
          const s = Number(m[2]);
          let c = counts[d];
          if (!c || c.length <= s) {
            const grown = new Uint8Array(Math.max(64, (s + 1) * 2));
            if (c) grown.set(c);
            counts[d] = c = grown;
          }
          if (c[s]! > 0) duplicates++;
          if (c[s]! < 255) c[s]!++;
          received++;
          e2e.push(now - Number(m[3]));
        }
        if (events.length) lastSeen.set(context.partitionId, events[events.length - 1]!.sequenceNumber);
        const info = context.lastEnqueuedEventProperties;
        if (info?.sequenceNumber !== undefined) lastEnqueued.set(context.partitionId, info.sequenceNumber);
      },
      processError: async (err) => void send({ type: 'error', message: err.message }),
  };
  const options: SubscribeOptions = { startPosition: earliestEventPosition, maxBatchSize: 1000, maxWaitTimeInSeconds: 1, prefetchCount: 3000, skipParsingBodyAsJson: true, trackLastEnqueuedEventProperties: true };
  const subscription = client.subscribe(handlers, options);

  process.on('message', async (m: Msg) => {
    if (m.type === 'sample') {
      // Events enqueued in a partition but not yet handed to processEvents (as the SDK last saw them).
      let behind = 0;
      for (const [p, seq] of lastEnqueued) behind += Math.max(0, seq - (lastSeen.get(p) ?? -1));
      send({ type: 'sample', received: received - receivedReported, totalReceived: received, duplicates, unparsed, e2e: e2e.splice(0), behind });
      receivedReported = received;
    } else if (m.type === 'verify') {
      const sentPerDevice = m.sentPerDevice as number[];
      const unacked = m.unacked as Record<string, number[]>;
      let missing = 0;
      let receivedUnacked = 0;
      let extra = 0;
      let duplicated = 0;
      const examples: string[] = [];
      for (let d = 0; d < sentPerDevice.length; d++) {
        const c = counts[d];
        const not = new Set(unacked[d] ?? []);
        for (let s = 0; s < sentPerDevice[d]!; s++) {
          const n = c && s < c.length ? c[s]! : 0;
          if (not.has(s)) {
            if (n > 0) receivedUnacked++;
            continue;
          }
          if (n === 0) {
            missing++;
            if (examples.length < 10) examples.push(`bench-${d}#${s}`);
          } else if (n > 1) duplicated++;
        }
        if (c) for (let s = sentPerDevice[d]!; s < c.length; s++) if (c[s]) extra++;
      }
      send({ type: 'verified', missing, duplicated, duplicates, receivedUnacked, extra, unparsed, examples, received });
    } else if (m.type === 'close') {
      // A hub still busy may time the AMQP close out: nothing is left to read anyway.
      await Promise.race([subscription.close().then(() => client.close()), sleep(5000)]).catch(() => undefined);
      process.exit(0);
    }
  });
}

// ───────────────────────────── main ─────────────────────────────

function request<T>(child: ChildProcess, message: Msg, answer: string, timeoutMs = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', on);
      reject(new Error(`no '${answer}' from child ${child.pid} within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (m: Msg) => {
      if (m.type !== answer) return;
      clearTimeout(timer);
      child.off('message', on);
      resolve(m as unknown as T);
    };
    child.on('message', on);
    if (message.type) child.send(message);
  });
}

async function main(): Promise<void> {
  const DEVICES = Number(args.devices);
  const RATE = Number(args['rate-per-device']);
  const MINUTES = Number(args.minutes);
  const SAMPLE = Number(args['sample-seconds']);
  const GENERATORS = Number(args.generators ?? (DEVICES > 2000 ? 2 : 1));
  const HOST = args.host!;
  const self = fileURLToPath(import.meta.url);
  const NICE = Number(args['nice-tools']);
  if (!Number.isInteger(NICE) || NICE < 0 || NICE > 19) throw new Error(`--nice-tools must be an integer from 0 to 19, not '${args['nice-tools']}'`);
  // Started through nice(1), so that every thread of the tool (V8's and libuv's too) runs at it.
  const toolOptions = NICE > 0 ? { execPath: 'nice', execArgv: ['-n', String(NICE), process.execPath] } : {};
  const work = mkdtempSync(join(tmpdir(), 'fleethub-soak-'));
  const children: ChildProcess[] = [];
  let finishing = false;
  process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));
  const watch = (c: ChildProcess, what: string) =>
    c.once('exit', (code, signal) => {
      if (finishing) return;
      console.error(`${what} (pid ${c.pid}) exited early: ${code ?? signal}`);
      process.exit(1);
    });
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  try {
    log(`soak: ${DEVICES} devices × ${RATE} msg/s for ${MINUTES} min, ${GENERATORS} load generator(s)${NICE > 0 ? ` and the consumer at nice ${NICE}` : ''}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const tls = await benchTls(work, HOST);
    const hub = await startFleethub({
      work,
      host: HOST,
      devices: DEVICES,
      logLevel: 'info',
      ...(args.profile ? { profile: args.profile } : {}),
      ...(args['retention-hours'] ? { env: { FLEETHUB_EVENT_LOG_RETENTION_HOURS: args['retention-hours'] } } : {}),
    });
    log(`hub pid ${hub.pid} on ${HOST}:${hub.port}, RSS ${(rssKiB(hub.pid) / 1024).toFixed(0)} MiB`);

    const hubStats = processStatsReader(hub);

    const info = JSON.parse(execFileSync(process.execPath, [cli, '--data', hub.dataDir, 'info', '--json'], { cwd: hub.dataDir, encoding: 'utf8' })) as { eventHubCompatibleConnectionString: string };
    const consumer = fork(self, ['--role', 'consumer'], { ...toolOptions, env: { ...process.env, NODE_EXTRA_CA_CERTS: tls.caPath, SOAK_EVENTHUB_CONNECTION_STRING: info.eventHubCompatibleConnectionString } });
    children.push(consumer);
    watch(consumer, 'consumer');
    consumer.on('message', (m: Msg) => m.type === 'error' && log(`consumer error: ${m.message}`));
    const ready = await request<{ partitions: number }>(consumer, { type: '' }, 'ready');
    log(`consumer (pid ${consumer.pid}) reading ${ready.partitions} partitions of the built-in endpoint over AMQPS`);

    const gens: ChildProcess[] = [];
    const per = Math.ceil(DEVICES / GENERATORS);
    const rssBeforeConnect = rssKiB(hub.pid);
    const cpuBeforeConnect = cpuMicros(hub.pid);
    const connectStart = performance.now();
    const connected = await Promise.all(
      Array.from({ length: GENERATORS }, (_, g) => {
        const count = Math.min(per, DEVICES - g * per);
        const child = fork(self, ['--role', 'gen', '--from', String(g * per), '--count', String(count), '--port', String(hub.port), '--host', HOST, '--rate-per-device', String(RATE), '--payload', args.payload!, '--connect-parallel', args['connect-parallel']!], { ...toolOptions, env: { ...process.env, SOAK_CA: hub.ca } });
        children.push(child);
        watch(child, `load generator ${g}`);
        gens.push(child);
        return request<{ connected: number; failed: number; seconds: number }>(child, { type: '' }, 'connected', 600_000);
      }),
    );
    const connectSeconds = (performance.now() - connectStart) / 1000;
    const nConnected = connected.reduce((n, c) => n + c.connected, 0);
    const nFailed = connected.reduce((n, c) => n + c.failed, 0);
    const connectCpu = cpuMicros(hub.pid) - cpuBeforeConnect;
    await sleep(1000);
    const rssConnected = rssKiB(hub.pid);
    log(
      `${nConnected} devices connected (${nFailed} failed) in ${connectSeconds.toFixed(1)} s = ${(nConnected / connectSeconds).toFixed(0)} connections/s; ` +
        `hub CPU ${(connectCpu / Math.max(1, nConnected)).toFixed(0)} µs/connection; hub RSS ${(rssBeforeConnect / 1024).toFixed(0)} -> ${(rssConnected / 1024).toFixed(0)} MiB ` +
        `(${((rssConnected - rssBeforeConnect) / Math.max(1, nConnected)).toFixed(1)} KiB/device); load ${loadavg()[0]!.toFixed(2)}`,
    );

    // ── steady load, sampled ──
    await hubStats(); // resets the hub's event-loop histogram
    const startAt = Date.now() + 200;
    for (const g of gens) g.send({ type: 'start', at: startAt });
    const rows: Row[] = [];
    const header = ['elapsed', 'RSS MiB', 'heap MiB', 'hub CPU%', 'loop p99 ms', 'loop max ms', 'sent', 'acked', 'received', 'PUBACK p99 ms', 'e2e p99 ms', 'lag', 'gen CPU%', 'cons CPU%', 'load1'];
    const widths = header.map((h) => Math.max(h.length, 8));
    const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join(' ');
    console.log(line(header));
    let cumAcked = 0;
    let cumReceived = 0;
    const pids = () => ({ hub: cpuMicros(hub.pid), gen: gens.reduce((n, g) => n + cpuMicros(g.pid!), 0), cons: cpuMicros(consumer.pid!) });
    let cpuPrev = pids();
    let tPrev = performance.now();
    const sampleOnce = async (): Promise<Row> => {
      const [gs, cs, hs] = await Promise.all([Promise.all(gens.map((g) => request<GenSample>(g, { type: 'sample' }, 'sample'))), request<{ received: number; totalReceived: number; e2e: number[]; behind: number; duplicates: number }>(consumer, { type: 'sample' }, 'sample'), hubStats()]);
      const now = performance.now();
      const cpu = pids();
      const wall = (now - tPrev) * 1000;
      const latencies = gs.flatMap((g) => g.latencies).sort((a, b) => a - b);
      const e2e = cs.e2e.sort((a, b) => a - b);
      const acked = gs.reduce((n, g) => n + g.acked, 0);
      cumAcked += acked;
      cumReceived += cs.received;
      const row: Row = {
        elapsed: (Date.now() - startAt) / 1000,
        rssMiB: rssKiB(hub.pid) / 1024,
        heapMiB: hs?.heapUsedMiB ?? NaN,
        hubCpu: ((cpu.hub - cpuPrev.hub) / wall) * 100,
        loopP99: hs?.eventLoopDelayMs.p99 ?? NaN,
        loopMax: hs?.eventLoopDelayMs.max ?? NaN,
        sent: gs.reduce((n, g) => n + g.sent, 0),
        acked,
        received: cs.received,
        pubackP99: percentile(latencies, 0.99),
        e2eP99: percentile(e2e, 0.99),
        lag: cumAcked - cumReceived,
        genCpu: ((cpu.gen - cpuPrev.gen) / wall) * 100,
        consCpu: ((cpu.cons - cpuPrev.cons) / wall) * 100,
        load: loadavg()[0]!,
        connected: gs.reduce((n, g) => n + g.connected, 0),
      };
      cpuPrev = cpu;
      tPrev = now;
      return row;
    };
    const print = (r: Row, label?: string) =>
      console.log(
        line(
          [
            label ?? fmtElapsed(r.elapsed),
            r.rssMiB.toFixed(0),
            Number.isNaN(r.heapMiB) ? '?' : r.heapMiB.toFixed(0),
            r.hubCpu.toFixed(0),
            // No answer to SIGUSR2 within 5 s: the hub's event loop was blocked at least that long.
            Number.isNaN(r.loopP99) ? '>5000' : r.loopP99.toFixed(1),
            Number.isNaN(r.loopMax) ? '>5000' : r.loopMax.toFixed(1),
            String(r.sent),
            String(r.acked),
            String(r.received),
            Number.isNaN(r.pubackP99) ? '-' : r.pubackP99.toFixed(1),
            Number.isNaN(r.e2eP99) ? '-' : r.e2eP99.toFixed(0),
            String(r.lag),
            r.genCpu.toFixed(0),
            r.consCpu.toFixed(0),
            r.load.toFixed(2),
          ],
        ) + (r.connected < nConnected ? `  (${nConnected - r.connected} devices disconnected)` : ''),
      );
    const endAt = startAt + MINUTES * 60_000;
    for (let next = startAt + SAMPLE * 1000; next <= endAt; next += SAMPLE * 1000) {
      await sleep(next - Date.now());
      const r = await sampleOnce();
      rows.push(r);
      print(r);
    }

    // ── drain: PUBACKs in flight, then the consumer catches up ──
    const stopped = await Promise.all(gens.map((g) => request<{ sentPerDevice: number[]; unacked: Record<string, number[]>; acked: number }>(g, { type: 'stop' }, 'stopped')));
    const sentPerDevice = stopped.flatMap((s) => s.sentPerDevice);
    const unacked = Object.assign({}, ...stopped.map((s) => s.unacked)) as Record<string, number[]>;
    const totalSent = sentPerDevice.reduce((n, x) => n + x, 0);
    const totalAcked = stopped.reduce((n, s) => n + s.acked, 0);
    const drainStart = Date.now();
    let lastReceived = -1;
    let stalledSince = Date.now();
    for (;;) {
      await sleep(1000);
      const r = await sampleOnce();
      print(r, 'drain');
      if (r.received > 0 || Date.now() - drainStart < 2000) stalledSince = Date.now();
      if (cumReceived >= totalAcked || Date.now() - stalledSince > 20_000 || Date.now() - drainStart > 300_000) break;
      lastReceived = cumReceived;
    }
    void lastReceived;
    log(`drained ${((Date.now() - drainStart) / 1000).toFixed(1)} s after the last send: sent ${totalSent}, acknowledged ${totalAcked}, received ${cumReceived}`);
    const v = await request<{ missing: number; duplicated: number; duplicates: number; receivedUnacked: number; extra: number; unparsed: number; examples: string[]; received: number }>(consumer, { type: 'verify', sentPerDevice, unacked }, 'verified', 120_000);
    const unackedCount = Object.values(unacked).reduce((n, l) => n + l.length, 0);

    // ── summary ──
    const third = Math.max(1, Math.floor(rows.length / 3));
    // Rows where the hub did not answer SIGUSR2 have no heap figure: left out of its means.
    const mean = (all: number[]) => {
      const xs = all.filter((x) => !Number.isNaN(x));
      return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    };
    const first = rows.slice(0, third);
    const last = rows.slice(-third);
    const rssFirst = mean(first.map((r) => r.rssMiB));
    const rssLast = mean(last.map((r) => r.rssMiB));
    const heapFirst = mean(first.map((r) => r.heapMiB));
    const heapLast = mean(last.map((r) => r.heapMiB));
    const minutesBetween = (mean(last.map((r) => r.elapsed)) - mean(first.map((r) => r.elapsed))) / 60;
    const p = (xs: number[], q: number) => percentile(xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b), q);
    const pubFirst = p(first.map((r) => r.pubackP99), 0.5);
    const pubLast = p(last.map((r) => r.pubackP99), 0.5);
    const loopP99s = rows.map((r) => (Number.isNaN(r.loopP99) ? 5000 : r.loopP99));
    const rate = mean(rows.map((r) => r.acked)) / SAMPLE;
    const lagMax = Math.max(...rows.map((r) => r.lag));
    console.log('');
    console.log(`Messages: sent ${totalSent}, acknowledged ${totalAcked} (${unackedCount} never acknowledged), received ${v.received} (${v.receivedUnacked} of them unacknowledged), missing ${v.missing}, duplicated ${v.duplicated} (${v.duplicates} extra copies), unknown ${v.extra + v.unparsed}${v.examples.length ? `; missing e.g. ${v.examples.join(', ')}` : ''}`);
    console.log(`Throughput: ${rate.toFixed(0)} acknowledged msgs/s on average (target ${DEVICES * RATE}); devices connected at the end ${rows.at(-1)?.connected ?? 0}/${nConnected}`);
    console.log(`RSS: first third ${rssFirst.toFixed(0)} MiB, last third ${rssLast.toFixed(0)} MiB: ${(rssLast - rssFirst).toFixed(1)} MiB over ${minutesBetween.toFixed(1)} min (${((rssLast - rssFirst) / Math.max(1e-9, minutesBetween)).toFixed(2)} MiB/min); heap ${heapFirst.toFixed(0)} -> ${heapLast.toFixed(0)} MiB`);
    console.log(`PUBACK p99 (median of the interval p99s): first third ${pubFirst.toFixed(1)} ms, last third ${pubLast.toFixed(1)} ms; event-loop delay p99 median ${p(loopP99s, 0.5).toFixed(1)} ms, worst ${Math.max(...loopP99s).toFixed(1)} ms; max consumer lag ${lagMax}`);
    console.log(`Hub CPU ${mean(rows.map((r) => r.hubCpu)).toFixed(0)} % on average (${((mean(rows.map((r) => r.hubCpu)) * 10_000) / Math.max(1, rate)).toFixed(0)} µs per message); load generators ${mean(rows.map((r) => r.genCpu)).toFixed(0)} %, consumer ${mean(rows.map((r) => r.consCpu)).toFixed(0)} %; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const verdicts = [
      [v.missing === 0 && unackedCount === 0, `every message sent was acknowledged (${unackedCount} not) and every acknowledged one received (${v.missing} missing)`],
      [v.duplicated === 0, `no duplicates (${v.duplicated})`],
      [rate >= 0.98 * DEVICES * RATE, `sustained ${DEVICES * RATE} msgs/s (${rate.toFixed(0)})`],
      [rssLast - rssFirst <= Math.max(20, 0.1 * rssFirst), `RSS flat: +${(rssLast - rssFirst).toFixed(1)} MiB first→last third (limit max(20 MiB, 10 %))`],
      [pubLast <= Math.max(2 * pubFirst, pubFirst + 20), `PUBACK p99 flat: ${pubFirst.toFixed(1)} → ${pubLast.toFixed(1)} ms`],
      [pubLast < 1000, `PUBACK p99 under 1 s in the last third (${pubLast.toFixed(1)} ms)`],
      [lagMax <= DEVICES * RATE * SAMPLE, `consumer keeps up: max lag ${lagMax} (limit ${DEVICES * RATE * SAMPLE}, one interval)`],
    ] as const;
    for (const [ok, text] of verdicts) console.log(`${ok ? 'PASS' : 'FAIL'}  ${text}`);

    finishing = true;
    for (const g of gens) g.send({ type: 'close' });
    consumer.send({ type: 'close' });
    await sleep(1000);
    await Promise.race([hub.stop(), sleep(10_000)]);
    try {
      process.kill(hub.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  } catch (e) {
    console.error(e);
    process.exitCode = 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

interface Row {
  elapsed: number;
  rssMiB: number;
  heapMiB: number;
  hubCpu: number;
  loopP99: number;
  loopMax: number;
  sent: number;
  acked: number;
  received: number;
  pubackP99: number;
  e2eP99: number;
  lag: number;
  genCpu: number;
  consCpu: number;
  load: number;
  connected: number;
}

function fmtElapsed(seconds: number): string {
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return `${m}:${String(s - m * 60).padStart(2, '0')}`;
}

const role = args.role;
(role === 'gen' ? generator() : role === 'consumer' ? consumer() : main()).catch((e) => {
  console.error(e);
  process.exit(1);
});
