import type { Command } from 'commander';
import { hubInfo, readRuntime } from '../info.js';
import { describeDps } from '../dps/setup.js';
import { openSqliteDpsStore } from '../store/sqlite/dps.js';
import { cliConfig, withStore, type GlobalOptions } from './context.js';

export function infoCommand(program: Command): void {
  program
    .command('info')
    .description('print the hub host name, connection strings, CA path and ports (works while the hub runs)')
    .option('--json', 'one JSON object')
    .action(async (opts) => {
      const config = cliConfig(program.opts<GlobalOptions>());
      // A running hub's host name wins over the configured one, for the DPS as for the hub.
      const dpsView = { ...config, hostName: readRuntime(config.dataDir)?.hostName ?? config.hostName };
      const info = await withStore(config, async (s) =>
        hubInfo(config, await s.policies.list(), await describeDps(openSqliteDpsStore(s.db), dpsView)),
      );
      if (opts.json) {
        process.stdout.write(JSON.stringify(info, null, 2) + '\n');
        return;
      }
      for (const [k, v] of Object.entries(info)) process.stdout.write(`${k.padEnd(36)} ${typeof v === 'object' ? JSON.stringify(v) : v}\n`);
    });
}
