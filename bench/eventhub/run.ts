/**
 * bench/eventhub: devices → Fleethub → the built-in Event Hub-compatible endpoint → an
 * `@azure/event-hubs` consumer, end to end.
 *
 * The hub runs as users start it (`fleethub start`, a child process, as in bench/d2c); the devices
 * are bench/support's lean MQTT/TLS load generator in this process (QoS 1, 256-byte bodies, the
 * message id in the topic's property bag); the consumer is `EventHubConsumerClient.subscribe` on
 * every partition, in a worker thread of its own, reading the plain-AMQP emulator endpoint on
 * loopback. Each phase publishes `messages` per device and waits for the consumer to have them all.
 *
 * Per phase it prints the publish rate, the end-to-end rate, how far the consumer lagged when the
 * last PUBACK came (events not yet received, and how long until they were), and where the time
 * between the device's PUBACK and the SDK's `processEvents` goes:
 *   enqueued → PUBACK   the hub's commit and PUBACK (x-opt-enqueued-time is taken before the commit)
 *   PUBACK → transfer   the hub waking the partition's receiver link, reading the log and writing
 *                       the transfer, as far as the link's credit allows, until rhea decoded it in
 *                       the consumer
 *   transfer → callback the SDK's own batching: its receive queue, `maxWaitTimeInSeconds`, its
 *                       20 ms settle delay after the first event of a batch, and credit top-ups
 * and the consumer's flow control: flow frames (credit top-ups) and the time its links held no
 * credit at all. The hub's CPU time per message (ingest and delivery) comes from /proc; whose
 * stall a tail is, from the event loops: the hub's longest lateness and GC pause (its process
 * stats, SIGUSR2), this process's (the devices') and the consumer thread's.
 *
 *   npm run bench:eventhub -- [devices=1000] [messagesPerDevice=20] [inflight=1]
 *     [--consumer defaults|batched|both] [--batch 500] [--wait 1] [--prefetch N] [--rate N] [--profile DIR]
 *
 * Without `--rate` every device publishes as fast as its PUBACKs allow: the hub, the devices and
 * the consumer saturate both cores, and the latencies are mostly queueing behind that. `--rate N`
 * paces the same messages at N a second in all (the devices in turn), the latency at a load the
 * machine carries.
 *
 * `defaults` is `subscribe(handlers, { startPosition })` with nothing else: the SDK's maxBatchSize 1,
 * maxWaitTimeInSeconds 60, prefetch 3 × maxBatchSize. `batched` sets maxBatchSize (`--batch`),
 * maxWaitTimeInSeconds (`--wait`) and, if given, prefetchCount. `both` (the default) runs the two
 * phases one after the other against the same hub and devices.
 *
 * PUBACKs are matched to messages by order per device, exact with one in flight (the default).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { cpuMicros } from '../support/process.js';
import { benchTls, cli, freePort, LeanDevice, processStatsReader, startFleethub, table } from '../support/brokers.js';
import type { ConsumerResult, ConsumerSettings } from './consumer.js';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    consumer: { type: 'string', default: 'both' },
    batch: { type: 'string', default: '500' },
    wait: { type: 'string', default: '1' },
    prefetch: { type: 'string' },
    rate: { type: 'string' },
    host: { type: 'string', default: '127.0.91.7' },
    profile: { type: 'string' },
  },
});
const [DEVICES = 1000, PER_DEVICE = 20, INFLIGHT = 1] = positionals.map(Number);
/** Messages per second in all, paced; absent: every device publishes as fast as its PUBACKs allow (the machine saturates). */
const RATE = args.rate === undefined ? undefined : Number(args.rate);
const HOST = args.host!;
const PAYLOAD = Buffer.alloc(256, 'x');
const TOTAL = DEVICES * PER_DEVICE;

interface Phase {
  name: string;
  settings: Omit<ConsumerSettings, 'connectionString' | 'total'>;
}
const batched: Phase = {
  name: `batched (maxBatchSize ${args.batch}, maxWait ${args.wait} s${args.prefetch ? `, prefetch ${args.prefetch}` : ''})`,
  settings: { maxBatchSize: Number(args.batch), maxWaitTimeInSeconds: Number(args.wait), ...(args.prefetch ? { prefetchCount: Number(args.prefetch) } : {}) },
};
const defaults: Phase = { name: 'SDK defaults (maxBatchSize 1, maxWait 60 s, prefetch 3)', settings: {} };
const phases = args.consumer === 'defaults' ? [defaults] : args.consumer === 'batched' ? [batched] : [defaults, batched];

const header = [
  'consumer',
  'publish/s',
  'end-to-end/s',
  'behind at last PUBACK',
  'caught up after',
  'PUBACK→receipt p50/p99/max',
  'enqueued→PUBACK p50/p99',
  'PUBACK→transfer p50/p99',
  'transfer→callback p50/p99',
  'events/callback',
  'credit/flow',
  'no-credit ms/s/link',
  'hub µs/msg',
  'hub loop late p99/max ms',
  'hub GC max ms',
  'devices / consumer loop late max ms',
];

const work = mkdtempSync(join(tmpdir(), 'fleethub-bench-eh-'));
await benchTls(work, HOST);
const hub = await startFleethub({
  work,
  host: HOST,
  devices: DEVICES,
  env: { FLEETHUB_AMQP_EMULATOR_PORT: String(await freePort(HOST)), FLEETHUB_STORAGE_PORT: String(await freePort(HOST)) },
  // At info: it logs its process stats (event-loop delay, GC pauses) when asked (SIGUSR2).
  logLevel: 'info',
  ...(args.profile ? { profile: args.profile } : {}),
});
const hubStats = processStatsReader(hub);
/** This process's event loop (the devices): a late PUBACK may be this side's stall. */
const ownLoop = monitorEventLoopDelay({ resolution: 10 });
ownLoop.enable();
const devices: LeanDevice[] = [];
const rows: string[][] = [];
try {
  const info = JSON.parse(execFileSync(process.execPath, [cli, '--data', hub.dataDir, 'info', '--json'], { cwd: hub.dataDir, encoding: 'utf8' })) as {
    eventHubCompatibleEmulatorConnectionString: string;
  };
  devices.push(...(await LeanDevice.connectMany(hub, DEVICES)));
  console.log(`${DEVICES} devices connected; ${PER_DEVICE} messages each, ${RATE === undefined ? `${INFLIGHT} in flight per device` : `${RATE} messages/s in all, paced`}`);
  // `fleethub info` reads the bind address from the config, not from `start --bind`: the listener is on HOST.
  const connectionString = info.eventHubCompatibleEmulatorConnectionString.replace(/sb:\/\/[^:/]+/, `sb://${HOST}`);
  for (const phase of phases) rows.push(await run(phase, connectionString, rows.length));
  console.log('\n' + table([header, ...rows]));
  console.log('\n' + (await replay(connectionString, TOTAL * phases.length)));
} finally {
  for (const d of devices) d.close();
  await hub.stop();
  rmSync(work, { recursive: true, force: true });
}


/**
 * The delivery path alone: a batched consumer reads everything the phases wrote, from the start of
 * each partition, while no device publishes. The hub's CPU time per event read is what the Event
 * Hub-compatible endpoint costs (log read, AMQP encoding, writes), without ingest in the figure.
 */
async function replay(connectionString: string, events: number): Promise<string> {
  await hubStats(); // starts the hub's window
  const cpu0 = cpuMicros(hub.pid);
  const started = Date.now();
  const worker = new Worker(new URL('./consumer.js', import.meta.url), {
    workerData: { ...batched.settings, connectionString, total: events, fromStart: true } satisfies ConsumerSettings,
  });
  const result = await new Promise<ConsumerResult>((resolve, reject) => {
    worker.on('message', (m: { ready?: boolean; result?: ConsumerResult }) => {
      if (m.ready) worker.postMessage({ stop: 60_000 });
      if (m.result) resolve(m.result);
    });
    worker.on('error', reject);
  });
  const seconds = (Math.max(...result.events.map((e) => e[2])) - started) / 1000;
  const cpu = cpuMicros(hub.pid) - cpu0;
  const stats = await hubStats();
  await worker.terminate();
  // A consumer catching up is handed its backlog as fast as its credit allows: how long the hub's
  // event loop was held meanwhile is what every device's PUBACK would have waited.
  const late = stats ? `, hub event loop late p99 ${Math.max(0, stats.eventLoopDelayMs.p99 - 10).toFixed(0)} / max ${Math.max(0, stats.eventLoopDelayMs.max - 10).toFixed(0)} ms` : '';
  return (
    `replay (${batched.name}, from the start, no ingest): ${result.events.length} of ${events} events in ${seconds.toFixed(1)} s ` +
    `(${Math.round(result.events.length / seconds)}/s, connect included), hub CPU ${(cpu / result.events.length).toFixed(1)} µs per event delivered${late}`
  );
}

async function run(phase: Phase, connectionString: string, round: number): Promise<string[]> {
  const worker = new Worker(new URL('./consumer.js', import.meta.url), { workerData: { ...phase.settings, connectionString, total: TOTAL } satisfies ConsumerSettings });
  const messages = new Map<unknown, unknown>();
  worker.on('message', (m: { ready?: boolean; result?: ConsumerResult }) => messages.set(m.ready ? 'ready' : 'result', m));
  worker.on('error', (e) => console.error('consumer worker', e));
  const until = async (key: string) => {
    while (!messages.has(key)) await new Promise((r) => setTimeout(r, 20));
    return messages.get(key) as { result?: ConsumerResult };
  };
  await until('ready');
  await new Promise((r) => setTimeout(r, 500));

  const ackAt = new Map<string, number>();
  await hubStats(); // starts the hub's window
  ownLoop.reset();
  const cpu0 = cpuMicros(hub.pid);
  const started = Date.now();
  const senders = devices.map((device, d) => {
    const ids: string[] = [];
    let sent = 0;
    device.topics((n) => {
      sent++;
      const id = `${round}-${d}-${n}`;
      ids.push(id);
      return `devices/bench-${d}/messages/events/$.mid=${id}`;
    });
    // LeanDevice reports each PUBACK's latency to `push`: the k-th PUBACK is the k-th message's (in order per device).
    const acks = { push: () => ackAt.set(ids[acked++]!, Date.now()) } as unknown as number[];
    let acked = 0;
    return { device, acks, more: () => sent < PER_DEVICE };
  });
  if (RATE === undefined) {
    await Promise.all(
      senders.map(({ device, acks, more }) => {
        device.pump(INFLIGHT, more, acks, PAYLOAD);
        return device.drained();
      }),
    );
  } else {
    // Paced: RATE messages a second in all, the devices in turn (each sends every DEVICES / RATE s).
    await new Promise<void>((resolve) => {
      let sent = 0;
      const timer = setInterval(() => {
        const due = Math.min(TOTAL, Math.floor(((Date.now() - started) / 1000) * RATE));
        for (; sent < due; sent++) {
          const s = senders[sent % senders.length]!;
          s.device.publishOne(PAYLOAD, s.acks);
        }
        if (sent === TOTAL && senders.every((x) => x.device.outstanding === 0)) {
          clearInterval(timer);
          resolve();
        }
      }, 5);
    });
  }
  const published = Date.now();
  worker.postMessage({ stop: 60_000 });
  const { result } = (await until('result')) as { result: ConsumerResult };
  const cpu = cpuMicros(hub.pid) - cpu0;
  const stats = await hubStats();
  const late = (ms: number) => Math.max(0, ms - 10).toFixed(0);
  await worker.terminate();

  const events = result.events.filter(([id]) => ackAt.has(id));
  const finished = Math.max(...events.map((e) => e[2]));
  const stage = (f: (e: [string, number, number, number], ack: number) => number) => {
    const v = events.map((e) => f(e, ackAt.get(e[0])!)).sort((a, b) => a - b);
    return (p: number) => v[Math.min(v.length - 1, Math.floor(p * v.length))]!;
  };
  const total = stage((e, ack) => e[2] - ack);
  const ingest = stage((e, ack) => ack - e[3]);
  const delivery = stage((e, ack) => e[1] - ack);
  const sdk = stage((e) => e[2] - e[1]);
  const behind = events.filter((e) => e[2] > published).length + (TOTAL - events.length);
  const seconds = (finished - started) / 1000;
  const partitions = 4; // the event log's default
  const row = [
    phase.name,
    String(Math.round(ackAt.size / ((published - started) / 1000))),
    String(Math.round(events.length / seconds)),
    String(behind),
    `${finished - published} ms`,
    `${total(0.5)} / ${total(0.99)} / ${total(1)} ms`,
    `${ingest(0.5)} / ${ingest(0.99)} ms`,
    `${delivery(0.5)} / ${delivery(0.99)} ms`,
    `${sdk(0.5)} / ${sdk(0.99)} ms`,
    (events.length / result.batches).toFixed(1),
    (result.creditAdded / result.flows).toFixed(1),
    (result.zeroCreditMs / seconds / partitions).toFixed(0),
    (cpu / ackAt.size).toFixed(0),
    // The histograms hold the time between two ticks of a 10 ms timer: the rest is lateness.
    stats ? `${late(stats.eventLoopDelayMs.p99)} / ${late(stats.eventLoopDelayMs.max)}` : 'no answer',
    stats ? `${stats.gc.maxMs.toFixed(0)} (${stats.gc.maxKind})` : '-',
    `${late(ownLoop.max / 1e6)} / ${result.loopLateMaxMs.toFixed(0)}`,
  ];
  console.log(`${phase.name}: received ${events.length} of ${TOTAL}`);
  console.log(table([header, row].map((r) => r.slice(1))));
  return row;
}
