/**
 * Starts a real Fleethub in the test process, on a loopback address of its own (127.a.b.c).
 * The Azure service SDK always dials port 443, so every hub needs 443; giving each test file
 * its own address lets files run in parallel without racing for the port.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import pino from 'pino';
import { defaults, type Config, type ConfigInput } from '../../src/config/index.js';
import { startFleethub, type RunningHub } from '../../src/main.js';
import { createSasToken } from '../../src/core/sas.js';
import { addHostResolver } from './resolve.js';

export interface TestHub {
  hub: RunningHub;
  host: string;
  dataDir: string;
  connectionString(policy?: string): Promise<string>;
  /** The extra hubs of the process (config `hubs`), each on a loopback address of its own (its host name). */
  hubs: TestHub[];
  /** Stops and starts the hub (with its extra hubs) on the same data directory and addresses. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** A loopback address no other test process is using (the port checked is 443). */
export async function freeLoopbackAddress(): Promise<string> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const n = 1 + ((process.pid * 7919 + attempt * 104729 + Math.floor(Math.random() * 1e6)) % 250000);
    const host = `127.${(n >> 16) & 255 || 1}.${(n >> 8) & 255}.${(n & 255) || 1}`;
    if (await canBind(host, 443)) return host;
  }
  throw new Error(
    'Port 443 is taken on every loopback address tried: is a Fleethub (npm start) or another server listening on *:443? Stop it, then run the tests again.',
  );
}

function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * A hub on a free loopback address (host name = that address). `extraHubs`: that many more hubs
 * in the same process (config `hubs`, named hub1, hub2, …), each on another free loopback
 * address that is also its host name.
 */
export async function startTestHub(
  settings: ConfigInput | ((hosts: { host: string; extraHosts: string[] }) => ConfigInput) = {},
  /** `logger`: the hub's logger instead of a silent one (a test that counts log lines). */
  options: { extraHubs?: number; logger?: pino.Logger } = {},
): Promise<TestHub> {
  const caDir = process.env.FLEETHUB_TEST_CA_DIR;
  if (!caDir) throw new Error('FLEETHUB_TEST_CA_DIR is not set: run the tests with `npm test`');
  const host = await freeLoopbackAddress();
  const extraHosts: string[] = [];
  while (extraHosts.length < (options.extraHubs ?? 0)) {
    const h = await freeLoopbackAddress();
    if (h !== host && !extraHosts.includes(h)) extraHosts.push(h);
  }
  const overrides = typeof settings === 'function' ? settings({ host, extraHosts }) : settings;
  const dataDir = mkdtempSync(join(tmpdir(), 'fleethub-test-'));
  cpSync(join(caDir, 'ca'), join(dataDir, 'ca'), { recursive: true });
  const config: Config = {
    ...defaults,
    hostName: host,
    bind: host,
    logLevel: 'silent',
    ...(extraHosts.length ? { hubs: extraHosts.map((h, i) => ({ hubName: `hub${i + 1}`, hostName: h, bind: h })) } : {}),
    ...overrides,
    // The embedded storage (Azurite) is off unless a test asks for it: it costs a second per hub.
    ports: { https: 443, mqtt: 8883, amqp: 5671, amqpEmulator: 5672, storage: 0, ...overrides.ports },
    // Merged with the defaults as loadConfig merges a settings file: `{ partitions: 2 }` keeps the retention.
    eventLog: { ...defaults.eventLog, ...overrides.eventLog },
    dataDir,
  } as Config;
  const logger = options.logger ?? pino({ level: process.env.FLEETHUB_TEST_LOG ?? 'silent' });
  let hub = await startFleethub(config, logger);
  // Hubs created at run time (`{name}.{hubDomain}`, through the control plane) share the test hub's
  // listeners: their names resolve to its address, as an /etc/hosts line would.
  // So do the local namespaces' names ({namespace}.servicebus.{hubDomain}), as a wildcard DNS entry would.
  const namespaceSuffix = `.servicebus.${config.hubDomain.toLowerCase()}`;
  const removeResolver = addHostResolver((name) => (hub.host.list().some((h) => h.config.hostName.toLowerCase() === name) || name.endsWith(namespaceSuffix) ? host : undefined));
  const testHub: TestHub = {
    get hub() {
      return hub;
    },
    host,
    dataDir,
    async connectionString(policy = 'iothubowner') {
      return (await hub.info())[`${policy}ConnectionString` as 'iothubownerConnectionString'] ?? '';
    },
    hubs: extraHosts.map((h, i) => ({
      get hub() {
        return hub.hubs[i]!;
      },
      host: h,
      dataDir: hub.hubs[i]!.config.dataDir,
      hubs: [],
      async connectionString(policy = 'iothubowner') {
        return (await hub.hubs[i]!.info())[`${policy}ConnectionString` as 'iothubownerConnectionString'] ?? '';
      },
      restart: () => testHub.restart(),
      close: () => testHub.close(),
    })),
    async restart() {
      await hub.close();
      hub = await startFleethub(config, logger);
    },
    async close() {
      removeResolver();
      await hub.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return testHub;
}

/** A raw HTTPS call, for what the SDK cannot send (bad input, missing auth). */
export function rawRequest(
  host: string,
  method: string,
  path: string,
  /** `fresh`: a new connection, not a pooled one (pooled sockets do not survive a hub restart). */
  options: { body?: string | Buffer; headers?: Record<string, string | number>; fresh?: boolean } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port: 443, method, path, headers: options.headers, ...(options.fresh ? { agent: false } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** A service token for `policy` on this hub. */
export async function serviceToken(t: TestHub, policy = 'iothubowner', ttlSeconds = 3600): Promise<string> {
  const p = await t.hub.store.policies.get(policy);
  return createSasToken(t.host, p!.primaryKey, Math.floor(Date.now() / 1000) + ttlSeconds, policy);
}
