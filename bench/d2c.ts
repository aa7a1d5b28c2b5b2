/**
 * bench/d2c: device-to-cloud throughput, Fleethub against Mosquitto with the same load generator.
 *
 * N devices connect over TLS and each publishes 256-byte QoS 1 messages as fast as its PUBACKs
 * allow (one in flight per device by default). Prints msgs/s, the ratio, p50/p99
 * publish-to-PUBACK latency, the broker's CPU time per message (the fairer figure on a shared
 * machine, where msgs/s also measures the load generator's share of the CPU), the kernel's part
 * of that CPU (system time) and its resident memory per connected device.
 *
 *   npm run bench:d2c -- [--devices 1000] [--seconds 10] [--inflight 1] [--only fleethub|mosquitto|floor] [--route [--drain-seconds 120]] [--floor] [--rounds 1]
 *
 * `--rounds N` runs the whole lineup N times, the brokers taking turns, and ends with the median of
 * each figure and of each ratio over the rounds: on a shared machine a single run's ratios vary by
 * a third.
 *
 * `--floor` adds a bare Node TLS server that only frames MQTT (CONNACK, PUBACK; same certificate):
 * its CPU per message and RSS per device are what any Node broker pays before doing any work.
 *
 * `--route` runs Fleethub twice in the same run: without routes, then with one route (set through
 * ARM, as a user would) to an event hub of a local Event Hubs namespace with the condition
 * `level = 'critical'` on an application property, and the fallback to `events`; half the messages
 * carry `level=critical`. The table then shows what routing costs per message at ingest (the
 * routing decision and the second append in the same commit) plus the delivery to the local event
 * hub (src/egress/routing's Event Hubs sink, in the same process). After the window it waits for
 * the endpoint's backlog to drain (`--drain-seconds`, 120 by default) and prints the delivered
 * rate over window + drain (≥ the routed rate: delivery keeps up) and the CPU per delivered message.
 *
 * Fleethub reads each connection at most `connections.packetsPerConnectionSecond` packets a second
 * (2,500 by default): the default lineup (1,000 devices, one in flight) stays far below it, but few
 * devices with a deep `--inflight` meet it (4 devices × 200 in flight: 9,970 msgs/s, 55,300 with
 * the ceiling lifted through a `FLEETHUB_CONFIG` file holding `{"connections":{"packetsPerConnectionSecond":0}}`).
 *
 * Fleethub commits every message to its event log before the PUBACK; Mosquitto (default
 * settings, no persistence) acks from memory. Both run as child processes on a loopback
 * address of their own; the load generator is a lean mqtt-packet client in this process.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuMicros, cpuSplitMicros } from './support/process.js';
import { startFloor } from './support/tlsFloor.js';
import { benchTls, cli, LeanDevice, median, percentile, rssKiB, sleep, startFleethub, startMosquitto, table, type Broker } from './support/brokers.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    inflight: { type: 'string', default: '1' },
    only: { type: 'string' },
    route: { type: 'boolean', default: false },
    /** With --route: how long to wait after publishing for the endpoint's backlog to reach 0. */
    'drain-seconds': { type: 'string', default: '120' },
    /** Also measures a bare Node TLS server that only frames MQTT (bench/support/tlsFloor.ts): the floor of any Node broker. */
    floor: { type: 'boolean', default: false },
    /** Runs the lineup this many times, the brokers taking turns, and prints the medians (a shared machine's noise). */
    rounds: { type: 'string', default: '1' },
    host: { type: 'string', default: '127.0.77.1' },
    /** Writes a V8 CPU profile of the Fleethub process into this directory. */
    profile: { type: 'string' },
    /** Extra arguments for Fleethub's node, comma-separated (V8 flags: `--node-args=--max-semi-space-size=32`). */
    'node-args': { type: 'string' },
  },
});
const DEVICES = Number(args.devices);
const SECONDS = Number(args.seconds);
const INFLIGHT = Number(args.inflight);
const ROUNDS = Math.max(1, Number(args.rounds));
const HOST = args.host!;
const PAYLOAD = Buffer.alloc(256, 'x');

interface Target extends Broker {
  /** What to print after the measured window (the routed run: what its endpoint got by then, and how fast it drains). */
  report?(window: { seconds: number; messages: number }): Promise<string>;
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
  /** The kernel's part of it (system time: socket writes and reads, TCP, fsync). */
  kernelMicrosPerMessage: number;
}

const work = mkdtempSync(join(tmpdir(), 'fleethub-bench-'));
const tls = await benchTls(work, HOST);

async function main(): Promise<void> {
  try {
    const rounds: Result[][] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      if (ROUNDS > 1) console.log(`\nround ${round} of ${ROUNDS}`);
      // Each round's hub starts from an empty event log, as the first did.
      for (const dir of ['fleethub', 'fleethub-routed']) rmSync(join(work, dir), { recursive: true, force: true });
      const results: Result[] = [];
      const only = (name: string) => args.only === undefined || args.only === name;
      if (only('fleethub')) results.push(await run(await fleethub(false)));
      if (only('fleethub') && args.route) results.push(await run(await fleethub(true)));
      if (only('mosquitto')) results.push(await run(await startMosquitto(work, HOST)));
      if (args.floor || args.only === 'floor') results.push(await run(await startFloor(work, HOST)));
      console.log('\n' + resultTable(results));
      printRatios(results);
      rounds.push(results);
    }
    if (ROUNDS > 1) {
      // On a shared machine one run's ratios move by a third from run to run; the brokers took
      // turns, so the medians compare them under the same conditions.
      const medians = rounds[0]!.map((first, i): Result => {
        const of = (pick: (r: Result) => number) => median(rounds.map((results) => pick(results[i]!)));
        return {
          name: first.name,
          messages: of((r) => r.messages),
          seconds: of((r) => r.seconds),
          p50: of((r) => r.p50),
          p99: of((r) => r.p99),
          rssPerDeviceKiB: of((r) => r.rssPerDeviceKiB),
          rssMiB: of((r) => r.rssMiB),
          cpuMicrosPerMessage: of((r) => r.cpuMicrosPerMessage),
          kernelMicrosPerMessage: of((r) => r.kernelMicrosPerMessage),
        };
      });
      console.log(`\nmedians over ${ROUNDS} rounds (the brokers in turn)\n` + resultTable(medians));
      const per = rounds.map(ratios).filter((r) => r.length > 0);
      if (per.length > 0) {
        console.log('');
        per[0]!.forEach(([label], i) => {
          const values = per.map((r) => r[i]![1]);
          console.log(`${label}: median ${median(values).toFixed(2)} (rounds: ${values.map((v) => v.toFixed(2)).join(', ')})`);
        });
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Fleethub against Mosquitto and the floor, as [label, ratio] pairs (routed/unrouted too with --route). */
function ratios(results: Result[]): [string, number][] {
  const out: [string, number][] = [];
  const rate = (r: Result) => r.messages / r.seconds;
  if (args.route && results.length >= 2) out.push(['Routed / unrouted throughput ratio', rate(results[1]!) / rate(results[0]!)]);
  const f = results[0]?.name === 'Fleethub' ? results[0] : undefined;
  const m = results.find((r) => r.name === 'Mosquitto');
  const n = results.find((r) => r.name === 'Node TLS floor');
  if (f && m) {
    out.push(['Fleethub / Mosquitto throughput ratio', rate(f) / rate(m)]);
    out.push(['Fleethub / Mosquitto CPU per message ratio', f.cpuMicrosPerMessage / m.cpuMicrosPerMessage]);
    out.push(['Fleethub / Mosquitto RSS per device ratio', f.rssPerDeviceKiB / m.rssPerDeviceKiB]);
  }
  if (f && n) {
    out.push(['Fleethub / floor CPU per message ratio', f.cpuMicrosPerMessage / n.cpuMicrosPerMessage]);
    out.push(['Fleethub / floor RSS per device ratio', f.rssPerDeviceKiB / n.rssPerDeviceKiB]);
  }
  return out;
}

function printRatios(results: Result[]): void {
  if (args.route && results.length >= 2) {
    const [plain, routed] = results as [Result, Result];
    console.log(`\nCPU per message unrouted -> routed: ${plain.cpuMicrosPerMessage.toFixed(1)} -> ${routed.cpuMicrosPerMessage.toFixed(1)} µs`);
  }
  const list = ratios(results);
  if (list.length > 0) console.log('\n' + list.map(([label, value]) => `${label}: ${value.toFixed(2)}`).join('\n'));
}

async function fleethub(routed: boolean): Promise<Target> {
  // The routed run gets a local Event Hubs namespace to route to (read from fleethub.json in its cwd).
  const hub = await startFleethub({
    work,
    host: HOST,
    devices: DEVICES,
    dir: routed ? 'fleethub-routed' : 'fleethub',
    name: routed ? 'Fleethub (route)' : 'Fleethub',
    ...(routed ? { config: { eventHubsNamespaces: [{ name: 'bench-routing', eventHubs: [{ name: 'routed', partitionCount: 4 }] }] } } : {}),
    ...(args.profile ? { profile: args.profile } : {}),
    ...(args['node-args'] ? { nodeArgs: args['node-args'].split(',') } : {}),
  });
  if (!routed) return hub;
  const arm = await routeToEventHub(hub.dataDir);
  return { ...hub, report: (window) => routedReport(arm, hub.pid, window) };
}

interface RoutingStats {
  routes?: { route?: string; name?: string; matched?: number }[];
  endpoints?: { endpoint: string; delivered?: number; backlog?: number; dropped?: number }[];
}

/** The hub's routing counters (`fleethub routing stats`: ARM's `{hub}/routing/stats`), read over HTTPS without a CLI process per poll. */
async function routingStats(arm: ArmHub): Promise<{ matched?: number; delivered?: number; backlog?: number; dropped?: number }> {
  const url = new URL(arm.hubUrl);
  url.pathname += '/routing/stats';
  const stats = JSON.parse(await call('GET', url, undefined, arm.auth)) as RoutingStats;
  const e = stats.endpoints?.find((x) => x.endpoint === 'bench-eh');
  const matched = stats.routes?.find((r) => (r.route ?? r.name) === 'critical')?.matched;
  return { matched, delivered: e?.delivered, backlog: e?.backlog, dropped: e?.dropped };
}

/**
 * The route's matches and its endpoint's delivered count and backlog when the window closed; then
 * the drain: the time until the backlog is 0 (publishing has stopped), the delivered rate over
 * window + drain (what the endpoint keeps up with), and the hub's CPU per message delivered
 * during the drain alone (the delivery's own cost, no ingest running).
 */
async function routedReport(arm: ArmHub, pid: number, window: { seconds: number; messages: number }): Promise<string> {
  try {
    const atEnd = await routingStats(arm);
    let out = `routed ${atEnd.matched ?? '?'}, delivered to the event hub ${atEnd.delivered ?? '?'} (backlog ${atEnd.backlog ?? '?'}, dropped ${atEnd.dropped ?? '?'}). `;
    const drainStart = performance.now();
    const cpuStart = cpuMicros(pid);
    const limit = Number(args['drain-seconds']) * 1000;
    let now = atEnd;
    while ((now.backlog ?? 0) > 0 && performance.now() - drainStart < limit) {
      await sleep(200);
      now = await routingStats(arm);
    }
    const drain = (performance.now() - drainStart) / 1000;
    const cpu = cpuMicros(pid) - cpuStart;
    const deliveredInDrain = (now.delivered ?? 0) - (atEnd.delivered ?? 0);
    const total = now.delivered ?? 0;
    out +=
      `\n  drain: backlog ${now.backlog ?? '?'} after ${drain.toFixed(1)} s; delivered ${total} in ${(window.seconds + drain).toFixed(1)} s = ` +
      `${(total / (window.seconds + drain)).toFixed(0)} msgs/s (routed at ${((atEnd.matched ?? 0) / window.seconds).toFixed(0)} msgs/s during the window); ` +
      `drain alone ${(deliveredInDrain / Math.max(drain, 0.001)).toFixed(0)} msgs/s at ${(cpu / Math.max(1, deliveredInDrain)).toFixed(1)} µs CPU per delivered message\n  `;
    return out;
  } catch (err) {
    return `(routing stats unavailable: ${(err as Error).message.split('\n')[0]}) `;
  }
}

async function run(target: Target): Promise<Result> {
  process.stdout.write(`${target.name}: connecting ${DEVICES} devices... `);
  const rssBefore = rssKiB(target.pid);
  const devices = await LeanDevice.connectMany(target, DEVICES);
  // With --route, every other message carries the property the route's condition tests.
  if (args.route) for (const d of devices) d.topics((n) => `devices/${d.id}/messages/events/level=${n % 2 ? 'info' : 'critical'}`);
  await sleep(1000);
  const rssConnected = rssKiB(target.pid);
  process.stdout.write(`RSS ${(rssBefore / 1024).toFixed(0)} -> ${(rssConnected / 1024).toFixed(0)} MiB. Publishing for ${SECONDS} s... `);

  const latencies: number[] = [];
  let running = true;
  const cpuBefore = cpuSplitMicros(target.pid);
  const start = performance.now();
  for (const d of devices) d.pump(INFLIGHT, () => running, latencies, PAYLOAD);
  setTimeout(() => (running = false), SECONDS * 1000);
  await Promise.all(devices.map((d) => d.drained()));
  const seconds = (performance.now() - start) / 1000;
  const cpuAfter = cpuSplitMicros(target.pid);
  const cpu = cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system;
  if (target.report) process.stdout.write(await target.report({ seconds, messages: latencies.length }));
  for (const d of devices) d.close();
  await target.stop();
  latencies.sort((a, b) => a - b);
  const result: Result = {
    name: target.name,
    messages: latencies.length,
    seconds,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    rssPerDeviceKiB: (rssConnected - rssBefore) / DEVICES,
    rssMiB: rssConnected / 1024,
    cpuMicrosPerMessage: cpu / Math.max(1, latencies.length),
    kernelMicrosPerMessage: (cpuAfter.system - cpuBefore.system) / Math.max(1, latencies.length),
  };
  console.log(`${(result.messages / seconds).toFixed(0)} msgs/s`);
  return result;
}

interface ArmHub {
  hubUrl: URL;
  auth: Record<string, string>;
}

/** Sets the hub resource's routing through ARM REST, with the administrator's client secret (`fleethub info --json`). */
async function routeToEventHub(dataDir: string): Promise<ArmHub> {
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
  return { hubUrl, auth };
}

function call(method: string, url: URL, body: string | undefined, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method, headers, ca: tls.caPem }, (res) => {
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

function resultTable(results: Result[]): string {
  return table([
    ['broker', 'msgs/s', 'messages', 'p50 ms', 'p99 ms', 'CPU µs/msg', 'of it kernel', 'RSS MiB', 'KiB/device'],
    ...results.map((r) => [
      r.name,
      (r.messages / r.seconds).toFixed(0),
      String(r.messages),
      r.p50.toFixed(2),
      r.p99.toFixed(2),
      r.cpuMicrosPerMessage.toFixed(1),
      r.kernelMicrosPerMessage.toFixed(1),
      r.rssMiB.toFixed(0),
      r.rssPerDeviceKiB.toFixed(1),
    ]),
  ]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
