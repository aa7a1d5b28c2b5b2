/**
 * bench/ingest: what the hub's own work costs per device-to-cloud message, without sockets, TLS or
 * a load generator competing for the CPU. Each message goes the way an MQTT PUBLISH goes once
 * parsed: the telemetry topic handler (topic, property bag), Telemetry (IoT Hub's system
 * properties), the event log writer's group commit and SQLite (WAL, synchronous NORMAL), with the
 * background checkpoint thread as `fleethub start` runs it. For each batch size it publishes that
 * many messages per turn of the event loop (one commit each, as one turn's worth of devices would)
 * and prints the process's CPU per message, user and system, and the wall time.
 *
 *   npm run bench:ingest -- [--per-commit 1,10,20,50,100,500] [--messages 100000] [--devices 1000] [--rounds 3] [--no-thread]
 *
 * What it is for: bench:d2c's CPU per message on a 2-core machine moves by a third between runs;
 * this one by about 5%, so a change to the ingest path shows here first. The
 * difference between batch sizes is the fixed cost of a commit (its WAL frames: each commit
 * writes the pages it touched, two pwrite calls a page). Not the socket side: PUBACK writes, TLS
 * and stream reads are bench:d2c's (against the bare TLS floor).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { EventLogWriter } from '../src/hub/messaging/eventLogWriter.js';
import { Telemetry } from '../src/hub/messaging/telemetry.js';
import type { DeviceSession } from '../src/protocols/mqtt/handler.js';
import { telemetryTopics } from '../src/protocols/mqtt/telemetry.js';
import { startBackgroundCheckpoints } from '../src/store/sqlite/checkpoints.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { table } from './support/brokers.js';

const { values: args } = parseArgs({
  options: {
    'per-commit': { type: 'string', default: '1,10,20,50,100,500' },
    messages: { type: 'string', default: '100000' },
    devices: { type: 'string', default: '1000' },
    /** Each batch size this many times, in turn; the median is printed. */
    rounds: { type: 'string', default: '3' },
    /** Without the checkpoint thread: SQLite's own checkpoints, in the committing connection. */
    'no-thread': { type: 'boolean', default: false },
  },
});
const SIZES = args['per-commit']!.split(',').map(Number);
const MESSAGES = Number(args.messages);
const DEVICES = Number(args.devices);
const ROUNDS = Math.max(1, Number(args.rounds));
const PARTITIONS = 4;
// bench:d2c's payload.
const PAYLOAD = Buffer.alloc(256, 'x');

const dir = mkdtempSync(join(tmpdir(), 'fleethub-bench-ingest-'));
const store = openSqliteStore(join(dir, 'fleethub.db'));
await store.eventLog.ensurePartitions(PARTITIONS);
const checkpoints = args['no-thread'] ? undefined : startBackgroundCheckpoints(store.db, (message) => console.error(`checkpoint thread: ${message}`));
const writer = new EventLogWriter(store.eventLog, pino({ level: 'silent' }));
const handler = telemetryTopics(new Telemetry(writer, PARTITIONS));
const publish = handler.publish!.bind(handler);

// Sessions as an authenticated SAS device's MQTT session presents itself to topic handlers.
const sessions: { session: DeviceSession; topic: string }[] = Array.from({ length: DEVICES }, (_, i) => {
  const deviceId = `bench-${i}`;
  const session: DeviceSession = {
    deviceId,
    authMethod: 'sas',
    generationId: '638000000000000000',
    identity: { deviceId, generationId: '638000000000000000', authMethod: { scope: 'device', type: 'sas', issuer: 'iothub' } },
    publish: async () => {},
    close: () => {},
    onClose: () => {},
  };
  return { session, topic: `devices/${deviceId}/messages/events/` };
});

/** Publishes MESSAGES, `perCommit` a turn; CPU and wall time per message. */
async function run(perCommit: number): Promise<{ cpu: number; user: number; system: number; wall: number }> {
  let sent = 0;
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  while (sent < MESSAGES) {
    const n = Math.min(perCommit, MESSAGES - sent);
    const acks: Promise<void>[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const { session, topic } = sessions[(sent + i) % DEVICES]!;
      // A fresh buffer each, as a socket read gives.
      acks[i] = publish(session, { topic, payload: Buffer.from(PAYLOAD), qos: 1 });
    }
    await Promise.all(acks);
    sent += n;
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = Number(process.hrtime.bigint() - wall0) / 1000;
  return { cpu: (cpu.user + cpu.system) / MESSAGES, user: cpu.user / MESSAGES, system: cpu.system / MESSAGES, wall: wall / MESSAGES };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`ingest: ${MESSAGES} messages per run, ${DEVICES} devices, ${PARTITIONS} partitions, 256-byte bodies, checkpoint thread ${checkpoints ? 'on' : 'off'}, ${ROUNDS} round(s)`);
await run(100); // warm-up: JIT, statements, the log's first pages
const results = new Map<number, { cpu: number[]; user: number[]; system: number[]; wall: number[] }>(SIZES.map((s) => [s, { cpu: [], user: [], system: [], wall: [] }]));
for (let r = 0; r < ROUNDS; r++) {
  for (const size of SIZES) {
    const m = await run(size);
    const x = results.get(size)!;
    x.cpu.push(m.cpu);
    x.user.push(m.user);
    x.system.push(m.system);
    x.wall.push(m.wall);
  }
}
const largest = Math.max(...SIZES);
const floorCpu = median(results.get(largest)!.cpu);
console.log(
  table([
    ['per commit', 'CPU µs/msg', 'user', 'system', 'wall µs/msg', `above ${largest}/commit: µs per commit`],
    ...SIZES.map((size) => {
      const x = results.get(size)!;
      const cpu = median(x.cpu);
      return [String(size), cpu.toFixed(2), median(x.user).toFixed(2), median(x.system).toFixed(2), median(x.wall).toFixed(2), size === largest ? '-' : ((cpu - floorCpu) * size).toFixed(0)];
    }),
  ]),
);

await writer.close();
await checkpoints?.stop();
store.close();
rmSync(dir, { recursive: true, force: true });
