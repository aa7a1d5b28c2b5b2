import type { Command } from 'commander';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { serviceBusArea } from '../namespaces/serviceBus/area.js';
import { extraHubConfig, hubInfo, readRuntime, type HubInfo } from '../info.js';
import { checkHubs } from '../config/index.js';
import { describeDps } from '../dps/setup.js';
import { openSqliteDpsStore } from '../store/sqlite/dps.js';
import { cliConfig, withStore, type GlobalOptions } from './context.js';
import { identityArea } from '../identity/index.js';
import { managementBaseUrl, withIdentityInfo } from '../identity/info.js';

export function infoCommand(program: Command): void {
  program
    .command('info')
    .description('print the hub host name, connection strings, CA path and ports (works while the hub runs)')
    .option('--json', 'one JSON object')
    .action(async (opts) => {
      const config = cliConfig(program.opts<GlobalOptions>());
      // A running hub's host name wins over the configured one, for the DPS as for the hub.
      const dpsView = { ...config, hostName: readRuntime(config.dataDir)?.hostName ?? config.hostName };
      checkHubs(config);
      // Every hub of the process, each from its own data directory (created, with its policies, on first use).
      const hubs: HubInfo[] = [];
      for (const hub of config.hubs) {
        const hubConfig = extraHubConfig(config, hub);
        mkdirSync(hubConfig.dataDir, { recursive: true, mode: 0o700 });
        // A hub without an address of its own is found by its host name (which must resolve to the primary's address).
        const byName = hub.bind === undefined;
        hubs.push(await withStore(hubConfig, async (s) => hubInfo(hubConfig, await s.policies.list(), undefined, { caDataDir: config.dataDir, byName })));
      }
      // Service Bus namespaces (keys made on first use, as the hub's policies are), from <dataDir>/servicebus.db.
      const serviceBus = config.serviceBusNamespaces.length || existsSync(join(config.dataDir, 'servicebus.db')) ? serviceBusArea({ dataDir: config.dataDir, namespaces: config.serviceBusNamespaces, timerMs: 60_000, logger: pino({ level: 'silent' }) }) : undefined;
      const basic = await withStore(config, async (s) =>
        hubInfo(config, await s.policies.list(), await describeDps(openSqliteDpsStore(s.db), dpsView), { hubs, ...(serviceBus ? { serviceBus: serviceBus.namespaces } : {}) }),
      ).finally(() => serviceBus?.close());
      const identity = await identityArea({ dataDir: config.dataDir });
      const baseUrl = managementBaseUrl(basic.hubHostName, basic.ports.https);
      const info = { ...(await withIdentityInfo(basic, identity, baseUrl).finally(() => identity.close())), portalUrl: `${baseUrl}/portal/` };
      if (opts.json) {
        process.stdout.write(JSON.stringify(info, null, 2) + '\n');
        return;
      }
      const print = (o: object, prefix = '') => {
        for (const [k, v] of Object.entries(o)) {
          if (k === 'hubs' || k === 'serviceBusNamespaces') continue;
          process.stdout.write(`${(prefix + k).padEnd(36)} ${typeof v === 'object' ? JSON.stringify(v) : v}\n`);
        }
      };
      print(info);
      (info.hubs ?? []).forEach((hub, i) => print(hub, `hubs[${i}].`));
      (info.serviceBusNamespaces ?? []).forEach((ns, i) => print(ns, `serviceBusNamespaces[${i}].`));
    });
}
