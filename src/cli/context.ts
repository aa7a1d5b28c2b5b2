import { request } from 'node:https';
import { existsSync, readFileSync } from 'node:fs';
import { loadConfig, type Config, type ConfigInput } from '../config/index.js';
import { createSasToken } from '../core/sas.js';
import { databasePath, readRuntime, type RuntimeFile } from '../info.js';
import { caPaths } from '../protocols/tls/paths.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/index.js';
import { ensureDefaultPolicies } from '../hub/auth/policies.js';
import { openSqliteDpsStore } from '../store/sqlite/dps.js';
import { prepareDps } from '../dps/setup.js';

export interface GlobalOptions {
  data?: string;
  config?: string;
}

export class CliError extends Error {
  override name = 'CliError';
}

export function cliConfig(opts: GlobalOptions, flags: ConfigInput = {}): Config {
  return loadConfig({ file: opts.config, flags: { ...flags, ...(opts.data ? { dataDir: opts.data } : {}) } });
}

/** Opens the data directory's store (creating the default policies on a fresh one). */
export async function withStore<T>(config: Config, fn: (store: SqliteStore) => Promise<T>): Promise<T> {
  const store = openSqliteStore(databasePath(config.dataDir));
  try {
    await ensureDefaultPolicies(store.policies);
    return await fn(store);
  } finally {
    store.close();
  }
}

/** A REST client for the running hub, authenticated as iothubowner, trusting the hub's CA. */
export class HubClient {
  private constructor(
    private readonly runtime: RuntimeFile,
    private readonly ca: string,
    private readonly keyName: string,
    private readonly key: string,
    private readonly apiVersion = '2021-04-12',
  ) {}

  /** A client of the provisioning service beside the running hub, as provisioningserviceowner. */
  static async connectDps(config: Config): Promise<HubClient> {
    const hub = await HubClient.connect(config);
    const policy = await withStore(config, async (s) => {
      const dps = openSqliteDpsStore(s.db);
      await prepareDps(dps, config);
      return dps.policies.get('provisioningserviceowner');
    });
    if (!policy) throw new CliError('The provisioningserviceowner policy is missing from the data directory');
    return new HubClient(hub.runtime, hub.ca, policy.keyName, policy.primaryKey, '2021-10-01');
  }

  static async connect(config: Config): Promise<HubClient> {
    const runtime = readRuntime(config.dataDir);
    if (!runtime) throw new CliError(`No hub is running on data directory ${config.dataDir}: start one with 'fleethub start'`);
    const caPath = caPaths(config.dataDir).cert;
    if (!existsSync(caPath)) throw new CliError(`No CA certificate at ${caPath}`);
    const policy = await withStore(config, async (s) => s.policies.get('iothubowner'));
    if (!policy) throw new CliError('The iothubowner policy is missing from the data directory');
    return new HubClient(runtime, readFileSync(caPath, 'utf8'), policy.keyName, policy.primaryKey);
  }

  get hostName(): string {
    return this.runtime.hostName;
  }

  async call<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T; headers: Record<string, string | string[] | undefined> }> {
    const token = createSasToken(this.runtime.hostName, this.key, Math.floor(Date.now() / 1000) + 3600, this.keyName);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const sep = path.includes('?') ? '&' : '?';
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.runtime.hostName,
          port: this.runtime.ports.https,
          method,
          path: `${path}${sep}api-version=${this.apiVersion}`,
          ca: this.ca,
          headers: {
            authorization: token,
            ...(payload ? { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) } : {}),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const parsed = text ? JSON.parse(text) : undefined;
            if ((res.statusCode ?? 500) >= 400) {
              const message = parsed?.Message
                ? String(parsed.Message).replace(/^ErrorCode:([^;]+);/, '$1: ')
                : parsed?.errorCode // DPS's error shape
                  ? `${parsed.errorCode}: ${parsed.message}`
                  : text;
              reject(new CliError(`${res.statusCode} ${message}`));
            } else resolve({ status: res.statusCode!, body: parsed as T, headers: res.headers });
          });
        },
      );
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }
}
