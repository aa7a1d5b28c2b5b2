import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { extraHubConfigs, hubInfo, readRuntime, type HubInfo } from '../info.js';
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
      for (const hubConfig of extraHubConfigs(config)) {
        mkdirSync(hubConfig.dataDir, { recursive: true, mode: 0o700 });
        hubs.push(await withStore(hubConfig, async (s) => hubInfo(hubConfig, await s.policies.list(), undefined, { caDataDir: config.dataDir })));
      }
      const basic = await withStore(config, async (s) =>
        hubInfo(config, await s.policies.list(), await describeDps(openSqliteDpsStore(s.db), dpsView), { hubs }),
      );
      const identity = await identityArea({ dataDir: config.dataDir });
      const info = await withIdentityInfo(basic, identity, managementBaseUrl(basic.hubHostName, basic.ports.https)).finally(() => identity.close());
      if (opts.json) {
        process.stdout.write(JSON.stringify(info, null, 2) + '\n');
        return;
      }
      const print = (o: object, prefix = '') => {
        for (const [k, v] of Object.entries(o)) {
          if (k === 'hubs') continue;
          process.stdout.write(`${(prefix + k).padEnd(36)} ${typeof v === 'object' ? JSON.stringify(v) : v}\n`);
        }
      };
      print(info);
      (info.hubs ?? []).forEach((hub, i) => print(hub, `hubs[${i}].`));
    });
}
