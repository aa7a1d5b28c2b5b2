/**
 * The CLI's top-level commands and the module that defines each, loaded on demand.
 *
 * Registering every command eagerly loaded the whole product (store, X.509, AMQP, Azure identity)
 * on every CLI call: about a second of CPU before any work. Now only the module of the command
 * being run is imported; `--help` and unknown commands load them all, so commander's help and
 * errors are unchanged. test/cli.commands.test.ts checks this table against what each module
 * actually registers.
 */
import type { Command } from 'commander';

export type Register = (program: Command) => void;

export const commandModules = {
  start: async () => (await import('./start.js')).startCommand,
  info: async () => (await import('./info.js')).infoCommand,
  device: async () => (await import('./device.js')).deviceCommand,
  policy: async () => (await import('./policy.js')).policyCommand,
  certificate: async () => (await import('./certificate.js')).certificateCommand,
  monitorEvents: async () => (await import('./monitorEvents.js')).monitorEventsCommand,
  c2d: async () => (await import('./c2d.js')).c2dCommand,
  importExport: async () => (await import('./importExport.js')).importExportCommands,
  dps: async () => (await import('./dps.js')).dpsCommand,
  consumerGroup: async () => (await import('./consumerGroup.js')).consumerGroupCommand,
  trust: async () => (await import('./trust.js')).trustCommand,
  control: async () => (await import('./control.js')).controlCommands,
  deployment: async () => (await import('./deployment.js')).deploymentCommand,
  hub: async () => (await import('./hub.js')).hubCommand,
  routing: async () => (await import('./routing.js')).routingCommand,
  namespaces: async () => (await import('./namespaces.js')).namespaceCommands,
} satisfies Record<string, () => Promise<Register>>;

/** Top-level command name → the module that registers it (in help order). */
export const topLevelCommands: Record<string, keyof typeof commandModules> = {
  start: 'start',
  info: 'info',
  device: 'device',
  policy: 'policy',
  certificate: 'certificate',
  'monitor-events': 'monitorEvents',
  c2d: 'c2d',
  export: 'importExport',
  import: 'importExport',
  dps: 'dps',
  'consumer-group': 'consumerGroup',
  trust: 'trust',
  resource: 'control',
  identity: 'control',
  role: 'control',
  deployment: 'deployment',
  hub: 'hub',
  routing: 'routing',
  eventhubs: 'namespaces',
  servicebus: 'namespaces',
};

/** Options of the program itself that take a value (they may come before the command). */
const VALUE_OPTIONS = new Set(['--data', '--config']);

/**
 * The modules to load for these arguments: the command's own, or undefined (load all) when there
 * is no command, it is unknown, or the top-level help is asked for.
 */
export function modulesFor(argv: string[]): (() => Promise<Register>)[] | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return undefined;
    if (arg.startsWith('-')) {
      if (VALUE_OPTIONS.has(arg)) i++;
      // --help or an unknown option before the command: commander answers with everything loaded.
      else if (!/^--(data|config)=/.test(arg)) return undefined;
      continue;
    }
    const name = topLevelCommands[arg];
    return name ? [commandModules[name]] : undefined;
  }
  return undefined;
}
