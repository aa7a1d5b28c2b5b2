/**
 * The hub under fuzz: a real Fleethub in this process (so that an unhandled throw in it is seen
 * here), on a loopback address of its own, with its devices: `control-*` (real SDK clients that
 * must keep working), `fuzz` (whose credentials the fuzzer uses) and `recorder-*` (whose real SDK
 * sessions are captured and then mutated).
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import iothub from 'azure-iothub';
import { defaults, type Config } from '../../src/config/index.js';
import { startFleethub, type RunningFleethub } from '../../src/main.js';
import { createSasToken } from '../../src/core/sas.js';
import { freeLoopbackAddress } from '../../test/support/hub.js';

export const PORTS = { https: 443, mqtt: 8883, amqp: 5671, amqpEmulator: 5672 } as const;

export interface LoggedError {
  at: number;
  level: number;
  msg: string;
  err?: string;
}

export const DEVICE_NAMES = ['controlMqtt', 'controlAmqp', 'fuzz', 'recorderMqtt', 'recorderAmqp'] as const;
export type DeviceName = (typeof DEVICE_NAMES)[number];

export interface FuzzHub {
  hub: RunningFleethub;
  host: string;
  /** Error and fatal log lines of the hub, in order (each a finding: bad input must not cause one). */
  errors: LoggedError[];
  devices: Record<DeviceName, { id: string; key: string; connectionString: string }>;
  serviceToken: string;
  deviceToken(id: string): string;
  /** Device and module identities the hub counts as connected (a session it forgot to end stays here). */
  liveSessions(): number;
  close(): Promise<void>;
}

export async function startFuzzHub(): Promise<FuzzHub> {
  const caDir = process.env.FLEETHUB_TEST_CA_DIR;
  if (!caDir) throw new Error('FLEETHUB_TEST_CA_DIR is not set: run through `npm run fuzz` (or `npm test`)');
  const host = await freeLoopbackAddress();
  const dataDir = mkdtempSync(join(tmpdir(), 'fleethub-fuzz-'));
  cpSync(join(caDir, 'ca'), join(dataDir, 'ca'), { recursive: true });
  const config = {
    ...defaults,
    hostName: host,
    bind: host,
    logLevel: 'error',
    ports: { ...PORTS, storage: 0 },
    // Every fuzz input comes from this machine's one address: the per-address failure limit would
    // soon refuse them all at accept, and the parsers behind it would go unfuzzed.
    connections: { ...defaults.connections, addressFailureLimit: 0 },
    dataDir,
  } as Config;
  const errors: LoggedError[] = [];
  // A synchronous destination: the line is recorded before the call that logged it returns.
  const logger = pino({ level: 'error' }, {
    write(line: string) {
      if (process.env.FUZZ_VERBOSE) process.stderr.write(line);
      try {
        const o = JSON.parse(line) as { level: number; msg: string; err?: { message?: string; stack?: string } };
        errors.push({ at: Date.now(), level: o.level, msg: o.msg, err: o.err?.stack ?? o.err?.message });
      } catch {
        errors.push({ at: Date.now(), level: 50, msg: line });
      }
    },
  });
  const hub = await startFleethub(config, logger);
  const info = await hub.info();
  const registry = iothub.Registry.fromConnectionString(info.iothubownerConnectionString!);
  const devices = {} as FuzzHub['devices'];
  for (const name of DEVICE_NAMES) {
    const id = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const { responseBody } = await registry.create({ deviceId: id } as never);
    const key = (responseBody as { authentication: { symmetricKey: { primaryKey: string } } }).authentication.symmetricKey.primaryKey;
    devices[name] = { id, key, connectionString: `HostName=${host};DeviceId=${id};SharedAccessKey=${key}` };
  }
  const policy = await hub.store.policies.get('iothubowner');
  const expiry = Math.floor(Date.now() / 1000) + 24 * 3600;
  return {
    hub,
    host,
    errors,
    devices,
    serviceToken: createSasToken(host, policy!.primaryKey, expiry, 'iothubowner'),
    deviceToken(id) {
      const key = Object.values(devices).find((d) => d.id === id)?.key ?? devices.fuzz.key;
      return createSasToken(`${host}/devices/${id}`, key, expiry);
    },
    liveSessions() {
      return (hub.connections as unknown as { live: Map<string, unknown> }).live.size;
    },
    async close() {
      await hub.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
