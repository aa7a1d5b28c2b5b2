import type { Command } from 'commander';
import type { Device } from '../hub/registry/types.js';
import { deviceConnectionString } from '../info.js';
import { cliConfig, CliError, HubClient, type GlobalOptions } from './context.js';

const enc = encodeURIComponent;

export function deviceCommand(program: Command): void {
  const device = program.command('device').description('device identities (talks to the running hub)');
  const client = () => HubClient.connect(cliConfig(program.opts<GlobalOptions>()));
  const print = (value: unknown, json: boolean, text: () => string) =>
    process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text() + '\n');

  device
    .command('create <deviceId>')
    .option('--edge', 'an IoT Edge device')
    .option('--disabled', 'create it disabled')
    .option('--primary-key <key>', 'base64 primary key (generated when omitted)')
    .option('--secondary-key <key>', 'base64 secondary key (generated when omitted)')
    .option('--x509-thumbprint <primary[,secondary]>', 'self-signed X.509 thumbprints instead of keys')
    .option('--ca', 'authenticate with a CA-signed X.509 certificate')
    .option('--json', 'print JSON')
    .action(async (deviceId: string, opts) => {
      const hub = await client();
      const [primaryThumbprint, secondaryThumbprint] = (opts.x509Thumbprint ?? '').split(',');
      const authentication = opts.ca
        ? { type: 'certificateAuthority' }
        : opts.x509Thumbprint
          ? { type: 'selfSigned', x509Thumbprint: { primaryThumbprint, secondaryThumbprint } }
          : { type: 'sas', symmetricKey: { primaryKey: opts.primaryKey ?? '', secondaryKey: opts.secondaryKey ?? '' } };
      const body = { deviceId, status: opts.disabled ? 'disabled' : 'enabled', capabilities: { iotEdge: !!opts.edge }, authentication };
      const { body: created } = await hub.call<Device>('PUT', `/devices/${enc(deviceId)}`, body);
      print(created, !!opts.json, () => `Created device ${created.deviceId} (${created.authentication.type})`);
    });

  device
    .command('list')
    .option('--top <n>', 'at most this many', '1000')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const hub = await client();
      const { body: devices } = await hub.call<Device[]>('GET', `/devices?top=${enc(opts.top)}`);
      print(devices, !!opts.json, () =>
        devices.map((d) => `${d.deviceId.padEnd(40)} ${d.status.padEnd(9)} ${d.connectionState.padEnd(13)} ${d.authentication.type}`).join('\n'),
      );
    });

  device
    .command('show <deviceId>')
    .option('--json', 'print JSON (the default)')
    .action(async (deviceId: string) => {
      const hub = await client();
      const { body } = await hub.call<Device>('GET', `/devices/${enc(deviceId)}`);
      print(body, true, () => '');
    });

  device
    .command('delete <deviceId>')
    .option('--etag <etag>', 'delete only if the device still has this etag')
    .action(async (deviceId: string, opts) => {
      const hub = await client();
      await hub.call('DELETE', `/devices/${enc(deviceId)}`, undefined, { 'if-match': opts.etag ? `"${opts.etag}"` : '*' });
      process.stdout.write(`Deleted device ${deviceId}\n`);
    });

  device
    .command('connection-string <deviceId>')
    .option('--secondary', 'use the secondary key')
    .option('--json', 'print JSON')
    .action(async (deviceId: string, opts) => {
      const hub = await client();
      const { body: d } = await hub.call<Device>('GET', `/devices/${enc(deviceId)}`);
      const key = opts.secondary ? d.authentication.symmetricKey.secondaryKey : d.authentication.symmetricKey.primaryKey;
      const cs =
        d.authentication.type === 'sas' && key
          ? deviceConnectionString(hub.hostName, deviceId, key)
          : `HostName=${hub.hostName};DeviceId=${deviceId};x509=true`;
      if (d.authentication.type !== 'sas' && !['selfSigned', 'certificateAuthority'].includes(d.authentication.type)) {
        throw new CliError(`Device ${deviceId} has no connection string (authentication ${d.authentication.type})`);
      }
      print({ connectionString: cs }, !!opts.json, () => cs);
    });
}
