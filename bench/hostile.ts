/**
 * bench/hostile: what hostile clients cost the devices that behave, Fleethub against Mosquitto.
 *
 * 100 devices (LeanDevice, SAS) publish QoS 1 at a fixed rate; their publish-to-PUBACK p50/p99 is
 * measured without an attack, then during each attack, run from a process of its own (as a load
 * generator of its own would be: a worker thread shares the devices' process, its memory map
 * and its allocator):
 *
 *   stall      1,000 sockets open TCP, send a partial ClientHello (or nothing) and stall; each
 *              one the broker closes is opened again
 *   garbage    connections that complete TLS and send 64 random bytes, 64 at a time, as fast as
 *              they go
 *   badauth    connections that complete TLS and CONNECT with a wrong SAS token (Fleethub only:
 *              the Mosquitto here accepts anonymous clients)
 *   nonreader  one device publishing QoS 1 as fast as its socket takes it and never reading its
 *              PUBACKs (the broker's RSS shows whether it buffers them)
 *   amqpflood  one device sending telemetry over AMQP as fast as its link credit allows (Fleethub
 *              only: Mosquitto has no AMQP)
 *
 * The attacker dials from an address of its own (`--attacker-address`, 127.0.0.2, the next one for each following attack), as an attacker
 * on the network would; Fleethub refuses an address whose connections keep failing
 * (connections.addressFailureLimit) at accept, before TLS. Attempts so refused are counted apart.
 *
 * Prints per broker and attack: attack rate, p50/p99, p99 / baseline p99, broker CPU and RSS, and
 * the longest event-loop delay in the phase of the broker (Fleethub's, from its process stats, with
 * its longest garbage-collection pause) and
 * of the devices' own process: a p99 that moves with the devices' loop and not the broker's was
 * delayed on the devices' side of a shared machine. And the CPU of the devices' process and the
 * attacker's: on two cores, the broker, the devices and the attacker share them.
 *
 * Also how long the hypervisor took the busiest CPU away in the phase (steal, /proc/stat): on a
 * shared VM a phase whose CPU was stolen for hundreds of milliseconds has that in its p99, whichever
 * broker runs. A 'slow commit' the hub logged in the phase (≥ 250 ms) is printed with the phase.
 * `--rounds N` runs the attacks N times over (each attack from a fresh address) and prints the
 * medians: one phase's p99 on this kind of machine moves by several times between runs.
 *
 * `--attacker-nice N` runs the attacker's process at that nice value (0 to 19): it still goes as
 * fast as the CPU the others leave it allows (its rate is printed), but no longer takes its turn
 * ahead of the devices and the broker, as an attacker on another machine would not. On two cores
 * the garbage and badauth attackers otherwise take a whole core of the two.
 *
 * `--attacker-cpu N` goes further: the attacker runs on CPU N alone, and the broker and the devices
 * on the others, in every phase (the attack-free ones too, so the baseline is measured as pinned).
 * The attacker then takes nothing from the broker's CPU but what the broker itself spends on it,
 * as an attacker on another machine would; the kernel's loopback work for its packets runs mostly
 * on its own CPU too (the sender's). The price on 2 cores: broker and devices share CPU 0, so the
 * broker's garbage collector has no second core for its helper threads, and a pause the broker
 * takes for the attack (stall: 1,000 TLS sockets made within a second, ~25 ms of collection) is
 * all in the devices' p99. Read both layouts; a phase's p99 moves by 2-3x between rounds in either.
 *
 *   npm run bench:hostile -- [--devices 100] [--rate 10] [--seconds 10] [--rounds 1] [--only fleethub|mosquitto] [--attacks stall,garbage,badauth,nonreader,amqpflood] [--attacker-address 127.0.0.2] [--attacker-nice 0] [--attacker-cpu N] [--profile DIR]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { availableParallelism, tmpdir, loadavg, setPriority } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { parseArgs } from 'node:util';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import mqttPacket from 'mqtt-packet';
import rhea from 'rhea';
import { cpuMicros, pinToCpus } from './support/process.js';
import { benchTls, connectPacket, LeanDevice, median, percentile, processStatsReader, rssKiB, sleep, startFleethub, stealMsPerCpu, startMosquitto, table, type Broker, type HubStats } from './support/brokers.js';
import { createSasToken } from '../src/core/sas.js';

/** The loop-delay histograms' timer period, ms: the hub's (src/hosting/processStats.ts) and this process's. */
const LOOP_RESOLUTION_MS = 10;

type Attack = 'none' | 'stall' | 'garbage' | 'badauth' | 'nonreader' | 'amqpflood';
/** Attacks only Fleethub can take (bad SAS tokens; AMQP). */
const FLEETHUB_ONLY: Attack[] = ['badauth', 'amqpflood'];
interface AttackJob {
  attack: Attack;
  host: string;
  port: number;
  ca: string;
  seconds: number;
  username: string;
  /** The attacker's own source address. */
  from: string;
  /** The broker's AMQPS port (amqpflood). */
  amqpPort?: number;
  /** The attacker process's nice value. */
  nice: number;
}

interface AttackCount {
  /** Attempts the broker took up (handshakes done, sockets opened) or, for nonreader, bytes sent. */
  count: number;
  /** Connections closed before a TLS handshake (the address refused for its failures). */
  refused: number;
}

/** Set in the attacker's process: its job, as JSON. */
const ATTACK_ENV = 'FLEETHUB_HOSTILE_ATTACK';
const attackJob = process.env[ATTACK_ENV];
if (attackJob !== undefined) {
  const job = JSON.parse(attackJob) as AttackJob;
  // The main thread's (on Linux a nice value is a thread's): the one that attacks.
  if (job.nice !== 0) setPriority(0, job.nice);
  const count = await runAttack(job);
  // Exits once the count is sent: sockets still open (stall) close with the process.
  process.send!(count satisfies AttackCount, () => process.exit(0));
} else {
  await main();
}

/** The attacker (in a process of its own): runs `job.attack` for `job.seconds`; returns how many attempts (or bytes, for nonreader) it made. */
async function runAttack(job: AttackJob): Promise<AttackCount> {
  const until = Date.now() + job.seconds * 1000;
  let attempts = 0;
  let refused = 0;
  const tlsOpen = () =>
    new Promise<ReturnType<typeof tlsConnect> | undefined>((resolve) => {
      const s = tlsConnect({ host: job.host, port: job.port, localAddress: job.from, rejectUnauthorized: false } as never, () => resolve(s));
      s.once('error', () => {
        refused++;
        resolve(undefined);
      });
    });
  const closed = (s: { once(e: 'close', f: () => void): unknown; destroyed: boolean }, ms: number) =>
    new Promise<void>((resolve) => {
      if (s.destroyed) return resolve();
      const t = setTimeout(resolve, ms);
      s.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  if (job.attack === 'stall') {
    const partial = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
    const open = new Set<Socket>();
    const openOne = (i: number) => {
      if (Date.now() >= until) return;
      const s = netConnect({ host: job.host, port: job.port, localAddress: job.from }, () => {
        attempts++;
        if (i % 2 === 0) s.write(partial);
      });
      open.add(s);
      s.on('error', () => undefined);
      s.once('close', () => {
        open.delete(s);
        setTimeout(() => openOne(i), 10);
      });
    };
    for (let i = 0; i < 1000; i++) {
      openOne(i);
      if (i % 50 === 49) await sleep(5);
    }
    await sleep(Math.max(0, until - Date.now()));
    for (const s of open) s.destroy();
    return { count: attempts, refused: 0 };
  }
  if (job.attack === 'garbage' || job.attack === 'badauth') {
    const wrong = Buffer.alloc(32, 7).toString('base64');
    const one = async (n: number) => {
      const s = await tlsOpen();
      if (!s) return;
      s.on('error', () => undefined);
      s.resume();
      if (job.attack === 'garbage') {
        const b = randomBytes(64);
        if (b[0] === 0x10) b[0] = 0x30;
        s.write(b);
      } else {
        const id = `bench-${n % 100}`;
        s.write(connectPacket(id, job.username.replace('{id}', id), createSasToken(`${job.host}/devices/${id}`, wrong, Math.floor(Date.now() / 1000) + 3600), 60));
      }
      await closed(s, 2000);
      s.destroy();
      attempts++;
    };
    await Promise.all(
      Array.from({ length: 64 }, async (_, lane) => {
        for (let n = lane; Date.now() < until; n += 64) await one(n);
      }),
    );
    return { count: attempts, refused };
  }
  if (job.attack === 'nonreader') {
    // bench-100: a device of its own, publishing without ever reading.
    const id = 'bench-100';
    const s = await tlsOpen();
    if (!s) return { count: 0, refused };
    s.on('error', () => undefined);
    const password = job.username.includes('api-version') ? createSasToken(`${job.host}/devices/${id}`, Buffer.alloc(32, 42).toString('base64'), Math.floor(Date.now() / 1000) + 3600) : undefined;
    s.write(connectPacket(id, job.username.replace('{id}', id), password, 600));
    await sleep(500);
    s.pause();
    let bytes = 0;
    let i = 0;
    while (Date.now() < until && !s.destroyed) {
      if (s.writableLength < 1024 * 1024) {
        const batch = Buffer.concat(
          Array.from({ length: 200 }, () => mqttPacket.generate({ cmd: 'publish', topic: `devices/${id}/messages/events/`, payload: Buffer.alloc(32, 1), qos: 1, messageId: (i++ % 65535) + 1, dup: false, retain: false })),
        );
        s.write(batch);
        bytes += batch.length;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    s.destroy();
    return { count: bytes, refused };
  }
  if (job.attack === 'amqpflood') return { count: await amqpFlood(job, until), refused };
  await sleep(job.seconds * 1000);
  return { count: 0, refused: 0 };
}

/**
 * bench-101 (a device of its own) authenticates over CBS (put-token, SASL ANONYMOUS, as the Azure
 * SDK does) and sends 32-byte telemetry messages as fast as its link credit allows until `until`,
 * never waiting for dispositions; returns how many it sent.
 */
async function amqpFlood(job: AttackJob, until: number): Promise<number> {
  const id = 'bench-101';
  const container = rhea.create_container();
  container.on('error', () => undefined);
  const connection = container.connect({ host: job.host, port: job.amqpPort!, transport: 'tls', rejectUnauthorized: false, localAddress: job.from, reconnect: false } as never);
  connection.on('connection_error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    connection.once('connection_open', () => resolve());
    connection.once('disconnected', () => reject(new Error('amqpflood: disconnected before open')));
  });
  const token = createSasToken(`${job.host}/devices/${id}`, Buffer.alloc(32, 42).toString('base64'), Math.floor(Date.now() / 1000) + 3600);
  const replies = connection.open_receiver({ source: { address: '$cbs' }, target: { address: 'cbs-reply' } } as never);
  const cbs = connection.open_sender({ target: { address: '$cbs' } } as never);
  const status = await new Promise<unknown>((resolve) => {
    replies.once('message', (ctx) => resolve(ctx.message?.application_properties?.['status-code']));
    cbs.once('sendable', () =>
      cbs.send({ application_properties: { operation: 'put-token', type: 'servicebus.windows.net:sastoken', name: `${job.host}/devices/${id}` }, body: token, reply_to: 'cbs-reply', message_id: 'put-token' }),
    );
  });
  if (status !== 200) throw new Error(`amqpflood: put-token answered ${String(status)}`);
  const sender = connection.open_sender({ target: { address: `/devices/${id}/messages/events` } } as never);
  const body = Buffer.alloc(32, 1);
  let sent = 0;
  const pump = () => {
    while (Date.now() < until && sender.sendable()) {
      sender.send({ body });
      sent++;
    }
  };
  sender.on('sendable', pump);
  await sleep(Math.max(0, until - Date.now()));
  connection.close();
  return sent;
}

interface Row {
  broker: string;
  attack: Attack;
  attackRate: string;
  messages: number;
  p50: number;
  p99: number;
  cpuPercent: number;
  rssMiB: number;
  /** How late the broker's event loop ran at worst in the phase (Fleethub only), ms. */
  brokerLoopLate?: number;
  /** The broker's longest garbage-collection pause in the phase (Fleethub only), ms. */
  brokerGcMax?: number;
  /** How late this process's (the devices') event loop ran at worst in the phase, ms. */
  benchLoopLate: number;
  /** The most any one CPU of the machine was stolen by the hypervisor in the phase, ms. */
  stealMs: number;
  /** CPU of this process (the devices, and the attacker's thread) in the phase, % of one core. */
  benchCpuPercent: number;
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      devices: { type: 'string', default: '100' },
      rate: { type: 'string', default: '10' },
      seconds: { type: 'string', default: '10' },
      only: { type: 'string' },
      attacks: { type: 'string', default: 'stall,garbage,badauth,nonreader,amqpflood' },
      host: { type: 'string', default: '127.0.78.1' },
      'attacker-address': { type: 'string', default: '127.0.0.2' },
      'attacker-nice': { type: 'string', default: '0' },
      /** Runs the attacker on this CPU alone, the broker and the devices on the others. */
      'attacker-cpu': { type: 'string' },
      /** The attacks (each followed by an attack-free phase) this many times over; a summary of medians. */
      rounds: { type: 'string', default: '1' },
      /** Writes a V8 CPU profile of the Fleethub process into this directory. */
      profile: { type: 'string' },
    },
  });
  const DEVICES = Number(args.devices);
  const RATE = Number(args.rate);
  const SECONDS = Number(args.seconds);
  const HOST = args.host!;
  const ROUNDS = Math.max(1, Number(args.rounds));
  const NICE = Number(args['attacker-nice']);
  if (!Number.isInteger(NICE) || NICE < 0 || NICE > 19) throw new Error(`--attacker-nice ${args['attacker-nice']}: 0 to 19`);
  const attacks = args.attacks!.split(',').filter(Boolean) as Attack[];
  const cpus = availableParallelism();
  const ATTACKER_CPU = args['attacker-cpu'] === undefined ? undefined : Number(args['attacker-cpu']);
  if (ATTACKER_CPU !== undefined && !(Number.isInteger(ATTACKER_CPU) && ATTACKER_CPU >= 0 && ATTACKER_CPU < cpus && cpus > 1)) {
    throw new Error(`--attacker-cpu ${args['attacker-cpu']}: a CPU from 0 to ${cpus - 1}, leaving the others to the broker and the devices`);
  }
  /** CPUs pinned to: the attacker's, and everyone else's. */
  const pin = ATTACKER_CPU === undefined ? undefined : { attacker: [ATTACKER_CPU], others: Array.from({ length: cpus }, (_, i) => i).filter((i) => i !== ATTACKER_CPU) };
  if (pin) pinToCpus(process.pid, pin.others);
  const work = mkdtempSync(join(tmpdir(), 'fleethub-hostile-'));
  await benchTls(work, HOST);
  const rows: Row[] = [];
  try {
    if (args.only !== 'mosquitto') {
      // At info: it logs its event-loop delay when asked (SIGUSR2).
      const hub = await startFleethub({ work, host: HOST, devices: DEVICES + 2, logLevel: 'info', ...(args.profile ? { profile: args.profile } : {}) });
      try {
        rows.push(...(await runBroker(hub, attacks, { devices: DEVICES, rate: RATE, seconds: SECONDS, username: `${HOST}/{id}/?api-version=2021-04-12`, from: args['attacker-address']!, nice: NICE, rounds: ROUNDS, stats: processStatsReader(hub), amqpPort: hub.amqpPort, ...(pin ? { pin } : {}) })));
      } finally {
        await hub.stop();
      }
    }
    if (args.only !== 'fleethub') {
      const mosquitto = await startMosquitto(work, HOST);
      try {
        rows.push(...(await runBroker(mosquitto, attacks.filter((a) => !FLEETHUB_ONLY.includes(a)), { devices: DEVICES, rate: RATE, seconds: SECONDS, username: '{id}', from: args['attacker-address']!, nice: NICE, rounds: ROUNDS, ...(pin ? { pin } : {}) })));
      } finally {
        await mosquitto.stop();
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  // The baseline: the better (lower) p99 of the two attack-free phases around the attacks; over
  // several rounds, the median of the attack-free phases.
  const baseline = new Map<string, number>();
  for (const broker of new Set(rows.map((r) => r.broker))) {
    const free = rows.filter((r) => r.broker === broker && r.attack === 'none').map((r) => r.p99);
    baseline.set(broker, ROUNDS === 1 ? Math.min(...free) : median(free));
  }
  console.log(
    `\n${DEVICES} devices × ${RATE} QoS 1 msgs/s, ${SECONDS} s per phase; the attacker at nice ${NICE}${pin ? ` on CPU ${pin.attacker.join(',')}, broker and devices on CPU ${pin.others.join(',')}` : ''}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`,
  );
  console.log(
    table([
      ['broker', 'attack', 'attack rate', 'msgs', 'p50 ms', 'p99 ms', 'p99 / no attack', 'broker CPU', 'RSS MiB', 'broker loop late ms', 'broker GC pause ms', 'devices + attacker CPU', 'devices loop late ms', 'CPU stolen ms'],
      ...rows.map((r) => [
        r.broker,
        r.attack,
        r.attackRate,
        String(r.messages),
        r.p50.toFixed(1),
        r.p99.toFixed(1),
        (r.p99 / baseline.get(r.broker)!).toFixed(2),
        `${r.cpuPercent.toFixed(0)}%`,
        r.rssMiB.toFixed(0),
        r.brokerLoopLate === undefined ? '-' : r.brokerLoopLate.toFixed(1),
        r.brokerGcMax === undefined ? '-' : r.brokerGcMax.toFixed(1),
        `${r.benchCpuPercent.toFixed(0)}%`,
        r.benchLoopLate.toFixed(1),
        r.stealMs.toFixed(0),
      ]),
    ]),
  );
  if (ROUNDS > 1) {
    console.log(`\nMedians over ${ROUNDS} rounds:\n`);
    const summary: string[][] = [['broker', 'attack', 'p99 ms', 'p99 / no attack', 'broker CPU', 'CPU stolen ms']];
    for (const [broker, base] of baseline) {
      for (const attack of ['none', ...attacks] as Attack[]) {
        const of = rows.filter((r) => r.broker === broker && r.attack === attack);
        if (of.length === 0) continue;
        const p99 = median(of.map((r) => r.p99));
        summary.push([broker, attack, p99.toFixed(1), (p99 / base).toFixed(2), `${median(of.map((r) => r.cpuPercent)).toFixed(0)}%`, median(of.map((r) => r.stealMs)).toFixed(0)]);
      }
    }
    console.log(table(summary));
  }
}

async function runBroker(
  broker: Broker,
  attacks: Attack[],
  o: { devices: number; rate: number; seconds: number; username: string; from: string; nice: number; rounds: number; stats?: () => Promise<HubStats | undefined>; amqpPort?: number; pin?: { attacker: number[]; others: number[] } },
): Promise<Row[]> {
  if (o.pin) pinToCpus(broker.pid, o.pin.others);
  const devices = await LeanDevice.connectMany(broker, o.devices, 25);
  // How late this process's own timers ran: a p99 that moves with it was delayed on the devices' side, not the broker's.
  const ownLoop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  ownLoop.enable();
  const rows: Row[] = [];
  // A warm-up phase (not reported), the baseline, each attack, and the baseline again (the machine is
  // shared: it brackets the attacks); with rounds, the baseline and attacks again before the last.
  const phases = ['warmup', ...Array.from({ length: o.rounds }, () => ['none', ...attacks]).flat(), 'none'] as (Attack | 'warmup')[];
  let attacked = 0;
  for (const phase of phases) {
    const attack: Attack = phase === 'warmup' ? 'none' : phase;
    await sleep(attack === 'stall' ? 500 : 200);
    const latencies: number[] = [];
    // Each attack from an address of its own: one refused for an earlier attack's failures would
    // make the next attack look cheap.
    const from = o.from.replace(/\d+$/, (last) => String(Number(last) + (attack === 'none' ? 0 : attacked++)));
    const job: AttackJob = { attack, host: broker.host, port: broker.port, ca: broker.ca, seconds: o.seconds, username: o.username, from, nice: o.nice, ...(o.amqpPort ? { amqpPort: o.amqpPort } : {}) };
    const attacker = attack === 'none' ? undefined : fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, [ATTACK_ENV]: JSON.stringify(job) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const attempts = attacker
      ? new Promise<AttackCount>((resolve, reject) =>
          attacker
            .once('message', (m) => resolve(m as AttackCount))
            .once('error', reject)
            .once('exit', (code) => reject(new Error(`the ${attack} attacker exited (${code}) before its count`))),
        )
      : Promise.resolve({ count: 0, refused: 0 });
    if (attacker && o.pin) pinToCpus(attacker.pid!, o.pin.attacker);
    // The attack gets a head start (its process starts, stalled sockets pile up, the flood reaches its pace).
    if (attacker) await sleep(1000);
    await o.stats?.(); // starts the broker's loop-delay window
    ownLoop.reset();
    const steal0 = stealMsPerCpu();
    const cpu0 = cpuMicros(broker.pid);
    const ownCpu0 = process.cpuUsage();
    const attackerCpu0 = attacker ? cpuMicros(attacker.pid!) : 0;
    const t0 = Date.now();
    const period = 1000 / o.rate;
    const timers = devices.map((d, i) =>
      setTimeout(() => {
        timers[i] = setInterval(() => d.publishOne(Buffer.alloc(256, 'x'), latencies), period) as unknown as NodeJS.Timeout;
      }, (i * period) / devices.length),
    );
    await sleep(Math.max(0, o.seconds * 1000 - 1500));
    for (const t of timers) clearInterval(t);
    const seconds = (Date.now() - t0) / 1000;
    const cpu = (cpuMicros(broker.pid) - cpu0) / 1e4 / seconds;
    const ownCpu = process.cpuUsage(ownCpu0);
    const attackerCpu = attacker ? cpuMicros(attacker.pid!) - attackerCpu0 : 0;
    const benchCpuPercent = (ownCpu.user + ownCpu.system + attackerCpu) / 1e4 / seconds;
    const rss = rssKiB(broker.pid) / 1024;
    // The histograms hold the time between two ticks of a timer of this resolution: the rest is lateness.
    const brokerStats = await o.stats?.();
    const brokerMax = brokerStats?.eventLoopDelayMs.max;
    const brokerLoopLate = brokerMax === undefined ? undefined : Math.max(0, brokerMax - LOOP_RESOLUTION_MS);
    const benchLoopLate = Math.max(0, ownLoop.max / 1e6 - LOOP_RESOLUTION_MS);
    const stealMs = Math.max(0, ...stealMsPerCpu().map((ms, i) => ms - steal0[i]!));
    await Promise.race([Promise.all(devices.map((d) => (d.outstanding === 0 ? undefined : new Promise((r) => setTimeout(r, 3000))))), sleep(3000)]);
    const { count: n, refused } = await attempts;
    attacker?.kill('SIGKILL');
    latencies.sort((a, b) => a - b);
    const refusedNote = refused > 0 ? `, ${Math.round(refused / o.seconds)}/s refused` : '';
    const attackRate =
      attack === 'none'
        ? '-'
        : attack === 'nonreader'
          ? `${(n / 2 ** 20).toFixed(1)} MiB sent`
          : attack === 'stall'
            ? `${n} opened`
            : attack === 'amqpflood'
              ? `${Math.round(n / o.seconds)} msgs/s sent`
              : `${Math.round(n / o.seconds)}/s${refusedNote}`;
    if (phase === 'warmup') continue;
    rows.push({ broker: broker.name, attack, attackRate, messages: latencies.length, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), cpuPercent: cpu, rssMiB: rss, ...(brokerLoopLate === undefined ? {} : { brokerLoopLate }), ...(brokerStats ? { brokerGcMax: brokerStats.gc.maxMs } : {}), benchLoopLate, stealMs, benchCpuPercent });
    console.log(`${broker.name} ${phase}: ${latencies.length} msgs, p99 ${percentile(latencies, 0.99).toFixed(1)} ms, attack ${attackRate}, RSS ${rss.toFixed(0)} MiB${brokerStats ? `, heap ${brokerStats.heapUsedMiB.toFixed(0)} MiB, longest GC ${brokerStats.gc.maxMs} ms (${brokerStats.gc.maxKind})` : ''}${brokerStats?.slowestCommitMs ? `, a commit took ${brokerStats.slowestCommitMs} ms` : ''}`);
  }
  ownLoop.disable();
  for (const d of devices) d.close();
  return rows;
}
