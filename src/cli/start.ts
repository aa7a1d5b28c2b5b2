import type { Command } from 'commander';
import { cliConfig, type GlobalOptions } from './context.js';
import { logProcessStatsOn } from '../hosting/processStats.js';

export function startCommand(program: Command): void {
  program
    .command('start')
    .description('run the hub (creates the data directory, CA, certificates and keys on first start)')
    .option('--hub-name <name>', 'hub name')
    .option('--host-name <host>', 'host name devices and services use')
    .option('--https-port <port>', "HTTPS port, or 'auto' (443, else 8443)")
    .option('--bind <address>', 'address to listen on')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
    .action(async (opts) => {
      const global = program.opts<GlobalOptions>();
      const config = cliConfig(global, {
        hubName: opts.hubName,
        hostName: opts.hostName,
        bind: opts.bind,
        logLevel: opts.logLevel,
        ports: opts.httpsPort === undefined ? undefined : { https: opts.httpsPort === 'auto' ? 'auto' : Number(opts.httpsPort) },
      });
      const { startFleethub } = await import('../main.js');
      const hub = await startFleethub(config);
      const info = await hub.info();
      const httpsUrl = `https://${info.hubHostName}${hub.ports.https === 443 ? '' : `:${hub.ports.https}`}`;
      process.stdout.write(
        [
          '',
          `Fleethub hub '${info.hubName}' is running at ${httpsUrl}`,
          `  data directory       ${info.dataDir}`,
          `  CA certificate       ${info.caCertificatePath}`,
          `  devices (MQTT)       mqtts://${info.hubHostName}:${hub.ports.mqtt}, wss://${info.hubHostName}:${hub.ports.https}/$iothub/websocket`,
          `  devices (AMQP)       amqps://${info.hubHostName}:${hub.ports.amqp}, wss://${info.hubHostName}:${hub.ports.https}/$iothub/websocket`,
          `  event hub endpoint   ${info.eventHubCompatibleConnectionString}`,
          `  trust it (Node)      export NODE_EXTRA_CA_CERTS=${info.caCertificatePath}`,
          `  iothubowner          ${info.iothubownerConnectionString}`,
          `  service              ${info.serviceConnectionString}`,
          `  registryReadWrite    ${info.registryReadWriteConnectionString}`,
          `  device (policy)      ${info.deviceConnectionString}`,
          ...(info.hubs ?? []).flatMap((h, i) => [
            `  hub '${h.hubName}'`.padEnd(23) + ` https://${h.hubHostName}${hub.hubs[i]!.ports.https === 443 ? '' : `:${hub.hubs[i]!.ports.https}`} (mqtts :${hub.hubs[i]!.ports.mqtt}, amqps :${hub.hubs[i]!.ports.amqp}) on ${hub.hubs[i]!.config.bind}`,
            `    iothubowner        ${h.iothubownerConnectionString}`,
          ]),
          `  portal               ${httpsUrl}/portal/`,
          ...(hub.portal?.signInLink(httpsUrl) ? [`  portal sign-in link  ${hub.portal.signInLink(httpsUrl)}  (works once)`] : []),
          `  all of it as JSON    npx fleethub info --json${global.data ? ` --data ${global.data}` : ''}`,
          '',
        ].join('\n') + '\n',
      );
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        hub.logger.info(`${signal} received, shutting down`);
        hub.close().then(
          () => process.exit(0),
          (e) => {
            hub.logger.error({ err: e }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      logProcessStatsOn(hub.logger);
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
}
