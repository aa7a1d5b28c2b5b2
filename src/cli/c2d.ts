import type { Command } from 'commander';
import { cliConfig, CliError, HubClient, type GlobalOptions } from './context.js';

const enc = encodeURIComponent;

/** `fleethub c2d send`: queues a cloud-to-device message through the running hub's admin route. */
export function c2dCommand(program: Command): void {
  const c2d = program.command('c2d').description('cloud-to-device messages (talks to the running hub)');
  c2d
    .command('send <deviceId> <body>')
    .option('--property <k=v>', 'an application property (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--message-id <id>', 'message id (generated when omitted)')
    .option('--correlation-id <id>', 'correlation id')
    .option('--content-type <type>', 'content type, e.g. application/json')
    .option('--content-encoding <enc>', 'content encoding, e.g. utf-8')
    .option('--ack <mode>', 'feedback requested: none, positive, negative, full', 'none')
    .option('--ttl <seconds>', 'time to live in seconds (default 3600, at most 172800)')
    .option('--json', 'print JSON')
    .action(async (deviceId: string, body: string, opts) => {
      const properties: Record<string, string> = {};
      for (const p of opts.property as string[]) {
        const i = p.indexOf('=');
        if (i <= 0) throw new CliError(`--property expects k=v, got '${p}'`);
        properties[p.slice(0, i)] = p.slice(i + 1);
      }
      const ttlSeconds = opts.ttl === undefined ? undefined : Number(opts.ttl);
      if (ttlSeconds !== undefined && !Number.isInteger(ttlSeconds)) throw new CliError('--ttl expects whole seconds');
      const hub = await HubClient.connect(cliConfig(program.opts<GlobalOptions>()));
      const { body: result } = await hub.call<{ messageId: string; expiryTimeUtc: string; queueDepth: number }>(
        'POST',
        `/fleethub/devices/${enc(deviceId)}/messages/devicebound`,
        {
          body,
          messageId: opts.messageId,
          correlationId: opts.correlationId,
          contentType: opts.contentType,
          contentEncoding: opts.contentEncoding,
          ack: opts.ack,
          ttlSeconds,
          properties,
        },
      );
      process.stdout.write(
        opts.json
          ? JSON.stringify(result, null, 2) + '\n'
          : `Queued message ${result.messageId} for ${deviceId} (expires ${result.expiryTimeUtc}; ${result.queueDepth} queued)\n`,
      );
    });
}
