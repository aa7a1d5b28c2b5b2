/**
 * bench/dps: device registrations per second and time to `assigned`, symmetric keys over MQTT.
 *
 *   npm run bench:dps -- [--devices 1000] [--concurrency 10,50,100] [--groups 1] [--retry-after 1] [--profile DIR]
 *
 * Starts Fleethub as a child process on a loopback address of its own (its DPS shares the MQTT
 * listener on 8883), creates a symmetric-key enrollment group over DPS's REST API, then for each
 * concurrency level registers `--devices` new devices with the unmodified
 * azure-iot-provisioning-device + -mqtt + azure-iot-security-symmetric-key, each with its key
 * derived from the group key (HMAC-SHA256(groupKey, registrationId)), C registrations in flight
 * at a time. Every registration is what a device does: TLS connect, CONNECT, SUBSCRIBE, PUT,
 * wait retry-after, poll, disconnect. Prints registrations/s, p50/p99 from the register() call to
 * `assigned`, the hub's CPU time per registration, and the ratio to DPS's documented rate limit.
 *
 * `--retry-after S` starts the hub with `dps.retryAfterSeconds` S (default 1, the hub's default;
 * 0 measures registration without the wait Fleethub tells devices to make before polling).
 *
 * `--groups G` enrolls G-1 more symmetric-key groups ahead of the bench group (DPS allows 100),
 * so attestation has to look through them, as a DPS with several groups does.
 *
 * DPS's limit (Azure docs, "Azure IoT Hub Device Provisioning Service limits", rate limits table:
 * "Device registrations 1,000/min/service", adjustable; polling 5/10 sec/device):
 * https://github.com/MicrosoftDocs/azure-docs/blob/43e37e202071af7b4c5c0d5b8ee9b72e1d700bd5/includes/iot-dps-limits.md
 * (An older revision of the same page said 200/min/service.)
 */
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import symmetricKey from 'azure-iot-security-symmetric-key';
import { createSasToken } from '../../src/core/sas.js';
import { databasePath } from '../../src/info.js';
import { ensureTlsMaterial } from '../../src/protocols/tls/ca.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { openSqliteDpsStore } from '../../src/store/sqlite/dps.js';
import { freeLoopbackAddress } from '../../test/support/hub.js';
import { cpuMicros, waitFor } from '../support/process.js';

/** Documented default: Device registrations 1,000/min/service (see the header for the source). */
const DPS_REGISTRATIONS_PER_MINUTE = 1000;
const DPS_LIMIT_SOURCE = 'Azure docs, IoT Hub DPS limits: "Device registrations 1,000/min/service" (adjustable)';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '10,50,100' },
    groups: { type: 'string', default: '1' },
    'retry-after': { type: 'string', default: '1' },
    /** Writes a V8 CPU profile of the Fleethub process into this directory. */
    profile: { type: 'string' },
  },
});
const DEVICES = Number(args.devices);
const LEVELS = args.concurrency!.split(',').map(Number);
const GROUPS = Math.max(1, Number(args.groups));
const RETRY_AFTER = String(Number(args['retry-after']));
const cli = fileURLToPath(new URL('../../src/cli/index.js', import.meta.url));

// The SDK trusts only the system CAs plus NODE_EXTRA_CA_CERTS, read at start: the launcher makes
// the hub's CA first and runs the bench again with it trusted.
if (!process.env.FLEETHUB_BENCH_DPS_WORK) {
  const host = await freeLoopbackAddress();
  const work = mkdtempSync(join(tmpdir(), 'fleethub-bench-dps-'));
  try {
    const tls = await ensureTlsMaterial(join(work, 'hub'), [host]);
    const child = spawn(process.execPath, process.argv.slice(1), {
      stdio: 'inherit',
      env: { ...process.env, FLEETHUB_BENCH_DPS_WORK: work, FLEETHUB_BENCH_DPS_HOST: host, NODE_EXTRA_CA_CERTS: tls.caCertificatePath },
    });
    process.exitCode = await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
} else {
  await bench(process.env.FLEETHUB_BENCH_DPS_WORK, process.env.FLEETHUB_BENCH_DPS_HOST!);
}

async function bench(work: string, host: string): Promise<void> {
  const dataDir = join(work, 'hub');
  const profile = args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile] : [];
  const hub = spawn(process.execPath, [...profile, cli, '--data', dataDir, 'start', '--host-name', host, '--bind', host, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, FLEETHUB_DPS_RETRY_AFTER_SECONDS: RETRY_AFTER },
  });
  process.on('exit', () => hub.kill('SIGKILL'));
  try {
    await waitFor(hub, 'is running');
    const { idScope, serviceKey } = await dpsFacts(dataDir);
    const token = createSasToken(host, serviceKey, Math.floor(Date.now() / 1000) + 3600, 'provisioningserviceowner');
    const dps = (method: string, path: string, body: unknown) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const payload = JSON.stringify(body);
        const req = request(
          { host, port: 443, method, path: `${path}?api-version=2021-10-01`, agent: false, headers: { authorization: token, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
          (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode!, text }));
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
    const enrollGroup = async (id: string, key: string) => {
      const res = await dps('PUT', `/enrollmentGroups/${id}`, { enrollmentGroupId: id, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } } });
      if (res.status !== 200) throw new Error(`enrolling ${id}: ${res.status} ${res.text}`);
    };
    // Groups are listed by id: the fillers come first, so attestation looks through all of them.
    for (let g = 1; g < GROUPS; g++) await enrollGroup(`a-filler-${String(g).padStart(3, '0')}`, Buffer.alloc(32, g).toString('base64'));
    const groupKey = Buffer.alloc(32, 200).toString('base64');
    await enrollGroup('z-bench', groupKey);

    console.log(`dps bench: ${DEVICES} new devices per level, symmetric-key group (${GROUPS} group${GROUPS > 1 ? 's' : ''} enrolled), MQTT, hub pid ${hub.pid} on ${host}`);
    console.log(`each registration: TLS + CONNECT + SUBSCRIBE + PUT, wait retry-after (Fleethub sends ${RETRY_AFTER} s), poll, disconnect`);
    console.log(`DPS limit: ${DPS_REGISTRATIONS_PER_MINUTE}/min = ${(DPS_REGISTRATIONS_PER_MINUTE / 60).toFixed(2)}/s per service (${DPS_LIMIT_SOURCE})\n`);
    const header = ['concurrency', 'devices', 'failed', 'reg/s', 'reg/min', 'x DPS limit', 'p50 ms', 'p99 ms', 'hub CPU ms/reg'];
    const print = (row: string[]) => console.log(row.map((cell, i) => cell.padStart(header[i]!.length)).join('  '));
    print(header);
    for (const c of LEVELS) {
      const r = await level(host, idScope, groupKey, c, hub.pid!);
      print([
        String(c),
        String(r.ok),
        String(r.failed),
        r.perSecond.toFixed(1),
        (r.perSecond * 60).toFixed(0),
        ((r.perSecond * 60) / DPS_REGISTRATIONS_PER_MINUTE).toFixed(2),
        r.p50.toFixed(0),
        r.p99.toFixed(0),
        r.cpuMsPerRegistration.toFixed(2),
      ]);
      if (r.firstError) console.log(`  c=${c}: first error: ${r.firstError}`);
    }
    console.log(`\n(load generator and hub are separate processes on one machine; reg/s also measures the SDK's share of the CPU)`);
  } finally {
    hub.kill('SIGTERM');
    await new Promise((resolve) => (hub.exitCode !== null ? resolve(undefined) : hub.once('exit', resolve)));
  }
}

async function level(host: string, idScope: string, groupKey: string, concurrency: number, hubPid: number) {
  const latencies: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const cpuBefore = cpuMicros(hubPid);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < DEVICES) {
        const registrationId = `bench-c${concurrency}-${next++}`;
        const key = createHmac('sha256', Buffer.from(groupKey, 'base64')).update(registrationId).digest('base64');
        const client = provisioningDevice.ProvisioningDeviceClient.create(
          host,
          idScope,
          new provisioningMqtt.Mqtt(),
          new symmetricKey.SymmetricKeySecurityClient(registrationId, key) as any,
        );
        const t0 = performance.now();
        try {
          const result: any = await client.register();
          if (result.status !== 'assigned') throw new Error(`status ${result.status}`);
          latencies.push(performance.now() - t0);
        } catch (e) {
          failed++;
          firstError ??= `${registrationId}: ${(e as Error).message}`;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpuMs = (cpuMicros(hubPid) - cpuBefore) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return {
    ok: latencies.length,
    failed,
    firstError,
    perSecond: latencies.length / seconds,
    p50: pct(0.5),
    p99: pct(0.99),
    cpuMsPerRegistration: cpuMs / Math.max(1, latencies.length + failed),
  };
}

/** The id scope and the provisioningserviceowner key, read from the hub's database. */
async function dpsFacts(dataDir: string): Promise<{ idScope: string; serviceKey: string }> {
  const path = databasePath(dataDir);
  if (!existsSync(path)) throw new Error(`no database at ${path}`);
  const store = openSqliteStore(path);
  try {
    const dps = openSqliteDpsStore(store.db);
    const idScope = await dps.settings.get('idScope');
    const owner = await dps.policies.get('provisioningserviceowner');
    if (!idScope || !owner) throw new Error('the hub has not prepared its DPS');
    return { idScope, serviceKey: owner.primaryKey };
  } finally {
    store.close();
  }
}

