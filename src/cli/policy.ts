import type { Command } from 'commander';
import { regeneratePolicyKey } from '../hub/auth/policies.js';
import { cliConfig, CliError, withStore, type GlobalOptions } from './context.js';

export function policyCommand(program: Command): void {
  const policy = program.command('policy').description('shared access policies');
  policy
    .command('list')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const config = cliConfig(program.opts<GlobalOptions>());
      const policies = await withStore(config, (s) => s.policies.list());
      if (opts.json) return void process.stdout.write(JSON.stringify(policies, null, 2) + '\n');
      for (const p of policies) process.stdout.write(`${p.keyName.padEnd(20)} ${p.rights.join(', ')}\n`);
    });
  policy
    .command('regenerate-key <keyName>')
    .description('replace a policy key (tokens signed with the old key stop working at once)')
    .option('--key <which>', 'primary or secondary', 'primary')
    .option('--json', 'print JSON')
    .action(async (keyName: string, opts) => {
      if (opts.key !== 'primary' && opts.key !== 'secondary') throw new CliError("--key must be 'primary' or 'secondary'");
      const config = cliConfig(program.opts<GlobalOptions>());
      const updated = await withStore(config, (s) => regeneratePolicyKey(s.policies, keyName, opts.key));
      if (opts.json) return void process.stdout.write(JSON.stringify(updated, null, 2) + '\n');
      process.stdout.write(`Regenerated the ${opts.key} key of ${keyName}\n`);
    });
}
