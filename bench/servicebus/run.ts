/**
 * Service Bus queue throughput through the unmodified @azure/service-bus: senders send batches to
 * one queue while a peek-lock receiver (subscribe, autoCompleteMessages off) completes each
 * message. Plain AMQP on loopback (UseDevelopmentEmulator=true). Reports send and
 * send+receive+complete messages/s, and the send-accepted→received latency (p50/p99).
 *
 *   npm run bench:servicebus -- [messages=2000] [batch=50] [senders=4]
 *
 * First figures (2 shared cores, other test runs alongside): 2000 messages, batches of 50, 4
 * senders: send 448 msg/s, send+receive+complete 226 msg/s, accepted→received p50 3.5 s / p99
 * 5.2 s (a backlog: sends outrun the receiver); at 4000 messages the receiver stalled for good
 * after ~2000 (rhea kept every peek-lock delivery in the session's 2048-slot buffer, as the
 * client never settles after our disposition in rcv-settle-mode second).
 *
 * After the fixes (deliveries finished on our side, group commit of sends and settlements,
 * statements prepared once, TCP_NODELAY on AMQP sockets), same machine, load 6-9:
 *   npm run bench:servicebus -- 4000: send 1612-2831 msg/s, send+receive+complete 1012-1812
 *   msg/s, p50 0.8-1.5 s / p99 0.8-1.8 s, 0.67-0.80 ms CPU per message (hub and SDK together).
 * Before (stalled at 4000), at 2000 on the same load: 169-180 msg/s, 1.18-1.32 ms CPU/message.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ServiceBusClient } from '@azure/service-bus';
import { defaults, type Config } from '../../src/config/index.js';
import { startFleethub } from '../../src/main.js';

const [total = 2000, batchSize = 50, senders = 4] = process.argv.slice(2).map(Number);
const host = '127.0.0.1';
const dataDir = mkdtempSync(join(tmpdir(), 'fleethub-bench-'));
const emulatorPort = 20000 + Math.floor(Math.random() * 20000);
const config: Config = {
  ...defaults,
  hostName: host,
  bind: host,
  dataDir,
  logLevel: 'silent',
  ports: { https: 0, mqtt: 0, amqp: 0, amqpEmulator: emulatorPort, storage: 0 },
  serviceBusNamespaces: [{ name: 'bench-ns', queues: [{ name: 'work' }] }],
};
const hub = await startFleethub(config, pino({ level: 'silent' }));
const info = await hub.info();
const cs = info.serviceBusNamespaces![0]!.emulatorConnectionString;

const acceptedAt = new Map<number, number>();
const latencies: number[] = [];
const client = new ServiceBusClient(cs);
const receiver = client.createReceiver('work');
let completed = 0;
let resolveAll!: () => void;
const allDone = new Promise<void>((r) => (resolveAll = r));
const subscription = receiver.subscribe(
  {
    processMessage: async (m) => {
      const n = m.body as number;
      await receiver.completeMessage(m);
      const at = acceptedAt.get(n);
      if (at !== undefined) latencies.push(Date.now() - at);
      if (++completed >= total) resolveAll();
    },
    processError: async (args) => console.error('receiver error', args.error.message),
  },
  { autoCompleteMessages: false, maxConcurrentCalls: 100 },
);

const start = Date.now();
const cpuStart = process.cpuUsage();
let next = 0;
let sent = 0;
const progress = setInterval(() => console.error(`sent ${sent}, completed ${completed}`), 2000);
progress.unref();
await Promise.all(
  Array.from({ length: senders }, async () => {
    const sender = client.createSender('work');
    while (next < total) {
      const ids: number[] = [];
      while (ids.length < batchSize && next < total) ids.push(next++);
      await sender.sendMessages(ids.map((n) => ({ body: n })));
      sent += ids.length;
      const now = Date.now();
      for (const n of ids) acceptedAt.set(n, now);
    }
    await sender.close();
  }),
);
const sentIn = Date.now() - start;
await allDone;
const doneIn = Date.now() - start;
const cpu = process.cpuUsage(cpuStart);
await subscription.close();
await client.close();
await hub.close();
rmSync(dataDir, { recursive: true, force: true });

latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
console.log(
  JSON.stringify(
    {
      messages: total,
      batch: batchSize,
      senders,
      sendPerSecond: Math.round((total / sentIn) * 1000),
      sendReceiveCompletePerSecond: Math.round((total / doneIn) * 1000),
      // CPU of the whole process (hub and SDK clients) per message: steadier than rates on a shared machine.
      cpuMsPerMessage: +((cpu.user + cpu.system) / 1000 / total).toFixed(3),
      latencyMs: { p50: pct(50), p99: pct(99), max: latencies[latencies.length - 1] },
    },
    null,
    2,
  ),
);
