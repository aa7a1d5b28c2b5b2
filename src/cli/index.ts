#!/usr/bin/env node
import { Command } from 'commander';
import { ConfigError } from '../config/index.js';
import { StartupError } from '../main.js';
import { CliError } from './context.js';
import { startCommand } from './start.js';
import { infoCommand } from './info.js';
import { deviceCommand } from './device.js';
import { policyCommand } from './policy.js';
import { certificateCommand } from './certificate.js';
import { monitorEventsCommand } from './monitorEvents.js';
import { c2dCommand } from './c2d.js';
import { importExportCommands } from './importExport.js';
import { dpsCommand } from './dps.js';
import { consumerGroupCommand } from './consumerGroup.js';
import { trustCommand } from './trust.js';
import { controlCommands } from './control.js';
import { deploymentCommand } from './deployment.js';
import { hubCommand } from './hub.js';
import { routingCommand } from './routing.js';
import { namespaceCommands } from './namespaces.js';

const program = new Command('fleethub')
  .description('A self-hosted IoT hub that speaks the Azure IoT protocols')
  .option('--data <dir>', 'data directory (default ./.fleethub, or $FLEETHUB_DATA)')
  .option('--config <file>', 'config file (default ./fleethub.json|yaml if present, or $FLEETHUB_CONFIG)');

startCommand(program);
infoCommand(program);
deviceCommand(program);
policyCommand(program);
certificateCommand(program);
monitorEventsCommand(program);
c2dCommand(program);
importExportCommands(program);
dpsCommand(program);
consumerGroupCommand(program);
trustCommand(program);
controlCommands(program);
deploymentCommand(program);
hubCommand(program);
routingCommand(program);
namespaceCommands(program);

program.parseAsync().catch((e: unknown) => {
  const known = e instanceof ConfigError || e instanceof StartupError || e instanceof CliError;
  process.stderr.write(`fleethub: ${known ? (e as Error).message : (e as Error).stack ?? String(e)}\n`);
  process.exit(known ? 2 : 1);
});
