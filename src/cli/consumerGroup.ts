import type { Command } from 'commander';
import { HubError } from '../core/errors.js';
import { ConsumerGroups } from '../hub/eventhub/consumerGroups.js';
import { cliConfig, CliError, withStore, type GlobalOptions } from './context.js';

/**
 * Consumer groups of the built-in Event Hub-compatible endpoint. Like `policy`, it works on the
 * data directory; a running hub sees the change at the next receiver attach.
 */
export function consumerGroupCommand(program: Command): void {
  const group = program.command('consumer-group').description('consumer groups of the built-in Event Hub-compatible endpoint');
  const run = async <T>(fn: (groups: ConsumerGroups) => Promise<T>): Promise<T> => {
    const config = cliConfig(program.opts<GlobalOptions>());
    try {
      return await withStore(config, (s) => fn(new ConsumerGroups(config.consumerGroups, s.consumerGroups)));
    } catch (e) {
      if (e instanceof HubError) throw new CliError(e.message);
      throw e;
    }
  };
  group
    .command('list')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const names = await run((g) => g.list());
      process.stdout.write(opts.json ? JSON.stringify(names, null, 2) + '\n' : names.map((n) => `${n}\n`).join(''));
    });
  group
    .command('add <name>')
    .action(async (name: string) => {
      await run((g) => g.add(name));
      process.stdout.write(`Added consumer group ${name}\n`);
    });
  group
    .command('delete <name>')
    .action(async (name: string) => {
      await run((g) => g.delete(name));
      process.stdout.write(`Deleted consumer group ${name}\n`);
    });
}
