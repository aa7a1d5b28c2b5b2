#!/usr/bin/env node
import { Command } from 'commander';
import { ConfigError } from '../config/index.js';
// Light imports only: every CLI call loads this file. A command's module (and what it imports:
// the store, X.509, AMQP, Azure identity...) is loaded only when that command runs, so a CLI call
// costs what its own command needs (`start` alone loads the server).
import { StartupError } from '../core/startupError.js';
import { CliError } from './context.js';
import { commandModules, modulesFor } from './commands.js';

const program = new Command('fleethub')
  .description('A self-hosted IoT hub that speaks the Azure IoT protocols')
  .option('--data <dir>', 'data directory (default ./.fleethub, or $FLEETHUB_DATA)')
  .option('--config <file>', 'config file (default ./fleethub.json|yaml if present, or $FLEETHUB_CONFIG)');

async function main(): Promise<void> {
  for (const load of modulesFor(process.argv.slice(2)) ?? Object.values(commandModules)) (await load())(program);
  await program.parseAsync();
}

main().catch((e: unknown) => {
  const known = e instanceof ConfigError || e instanceof StartupError || e instanceof CliError;
  process.stderr.write(`fleethub: ${known ? (e as Error).message : (e as Error).stack ?? String(e)}\n`);
  process.exit(known ? 2 : 1);
});
