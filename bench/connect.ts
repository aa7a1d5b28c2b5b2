/**
 * bench/connect: a connect storm. N devices open TLS and send an MQTT 3.1.1 CONNECT (SAS token for
 * Fleethub) as fast as the brokers answer, `--parallel` handshakes in flight at a time, against
 * Fleethub, Mosquitto and a bare Node TLS server (the floor: it answers CONNECT with CONNACK and
 * does nothing else), each in its own child process, one after the other in the same run.
 *
 *   npm run bench:connect -- [--devices 10000] [--parallel 500] [--settle 5] [--only fleethub,mosquitto,floor] [--profile DIR]
 *
 * Prints per broker: connections/s (first connect to last CONNACK), p50/p99 connect latency (TCP
 * connect to CONNACK), the broker's CPU time per connection (/proc, robust on a shared machine),
 * its peak RSS while connecting and its settled RSS (`--settle` seconds after the last CONNACK),
 * settled RSS per connection, and the ratios of Fleethub to Mosquitto and to the floor.
 *
 * File descriptors: this process holds N client sockets and each broker N server sockets, so
 * `ulimit -n` must exceed N plus a few hundred (`ulimit -n 20000` before `npm run` for 10,000).
 * The brokers inherit the limit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuMicros } from './support/process.js';
import { startFloor } from './support/tlsFloor.js';
import { benchTls, LeanDevice, percentile, rssKiB, sleep, startFleethub, startMosquitto, table, type Broker } from './support/brokers.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '10000' },
    parallel: { type: 'string', default: '500' },
    settle: { type: 'string', default: '5' },
    only: { type: 'string', default: 'fleethub,mosquitto,floor' },
    host: { type: 'string', default: '127.0.113.7' },
    /** Writes a V8 CPU profile of the Fleethub process into this directory. */
    profile: { type: 'string' },
    /** Extra node flags for the Fleethub child (comma-separated), e.g. --expose-gc. */
    'node-args': { type: 'string' },
  },
});
const DEVICES = Number(args.devices);
const PARALLEL = Number(args.parallel);
const SETTLE_MS = Number(args.settle) * 1000;
const HOST = args.host!;
const only = new Set(args.only!.split(',').map((s) => s.trim().toLowerCase()));

interface Result {
  name: string;
  connected: number;
  seconds: number;
  p50: number;
  p99: number;
  cpuMicrosPerConnection: number;
  baseMiB: number;
  peakMiB: number;
  settledMiB: number;
  kibPerConnection: number;
}

const work = mkdtempSync(join(tmpdir(), 'fleethub-bench-connect-'));
await benchTls(work, HOST);

async function main(): Promise<void> {
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${DEVICES} devices, ${PARALLEL} in parallel`);
  try {
    const results: Result[] = [];
    if (only.has('fleethub')) {
      const t = performance.now();
      const hub = await startFleethub({
        work,
        host: HOST,
        devices: DEVICES,
        ...(args.profile ? { profile: args.profile } : {}),
        ...(args['node-args'] ? { nodeArgs: args['node-args'].split(',') } : {}),
      });
      console.log(`Fleethub: ${DEVICES} devices registered and hub started in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      results.push(await run(hub));
    }
    if (only.has('mosquitto')) results.push(await run(await startMosquitto(work, HOST)));
    if (only.has('floor')) results.push(await run(await startFloor(work, HOST)));
    console.log(`\nload average ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n` + resultTable(results));
    const [f, m, b] = ['Fleethub', 'Mosquitto', 'Node TLS floor'].map((n) => results.find((r) => r.name === n));
    for (const [other, label] of [
      [m, 'Mosquitto'],
      [b, 'the Node TLS floor'],
    ] as const) {
      if (!f || !other) continue;
      console.log(
        `Fleethub / ${label}: connections/s ${(f.connected / f.seconds / (other.connected / other.seconds)).toFixed(2)}, ` +
          `CPU per connection ${(f.cpuMicrosPerConnection / other.cpuMicrosPerConnection).toFixed(2)}, ` +
          `RSS per connection ${(f.kibPerConnection / other.kibPerConnection).toFixed(2)}, peak RSS ${(f.peakMiB / other.peakMiB).toFixed(2)}`,
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function run(broker: Broker): Promise<Result> {
  process.stdout.write(`${broker.name}: `);
  await sleep(500);
  const base = rssKiB(broker.pid);
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(broker.pid))), 50);
  const devices: LeanDevice[] = [];
  const latencies: number[] = [];
  let failures = 0;
  let next = 0;
  const cpuBefore = cpuMicros(broker.pid);
  const start = performance.now();
  // A sliding window: a new handshake starts as soon as one finishes.
  const worker = async (): Promise<void> => {
    while (next < DEVICES) {
      const id = `bench-${next++}`;
      const t = performance.now();
      try {
        devices.push(await LeanDevice.connect(broker, id));
        latencies.push(performance.now() - t);
      } catch (e) {
        if (failures++ < 3) console.error(`${id}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, DEVICES) }, worker));
  const seconds = (performance.now() - start) / 1000;
  const cpu = cpuMicros(broker.pid) - cpuBefore;
  peak = Math.max(peak, rssKiB(broker.pid));
  process.stdout.write(`${devices.length} connected in ${seconds.toFixed(1)} s (${failures} failed); settling ${SETTLE_MS / 1000} s... `);
  await sleep(SETTLE_MS);
  clearInterval(sampler);
  const settled = rssKiB(broker.pid);
  peak = Math.max(peak, settled);
  console.log(`RSS ${(base / 1024).toFixed(0)} -> peak ${(peak / 1024).toFixed(0)}, settled ${(settled / 1024).toFixed(0)} MiB`);
  for (const d of devices) d.socket.destroy();
  await broker.stop();
  latencies.sort((a, b) => a - b);
  return {
    name: broker.name,
    connected: devices.length,
    seconds,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    cpuMicrosPerConnection: cpu / Math.max(1, devices.length),
    baseMiB: base / 1024,
    peakMiB: peak / 1024,
    settledMiB: settled / 1024,
    kibPerConnection: (settled - base) / Math.max(1, devices.length),
  };
}

function resultTable(results: Result[]): string {
  return table([
    ['broker', 'conn/s', 'connected', 'p50 ms', 'p99 ms', 'CPU µs/conn', 'base MiB', 'peak MiB', 'settled MiB', 'KiB/conn'],
    ...results.map((r) => [
      r.name,
      (r.connected / r.seconds).toFixed(0),
      String(r.connected),
      r.p50.toFixed(1),
      r.p99.toFixed(1),
      r.cpuMicrosPerConnection.toFixed(0),
      r.baseMiB.toFixed(0),
      r.peakMiB.toFixed(0),
      r.settledMiB.toFixed(0),
      r.kibPerConnection.toFixed(1),
    ]),
  ]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
