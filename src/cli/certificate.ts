import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { CertificateDescription } from '../hub/certificates/certificates.js';
import { cliConfig, CliError, HubClient, type GlobalOptions } from './context.js';

const enc = encodeURIComponent;

/** Hub CA certificates for X.509 CA device authentication, as `az iot hub certificate` manages them. */
export function certificateCommand(program: Command): void {
  const certificate = program.command('certificate').description('CA certificates for X.509 CA device authentication (talks to the running hub)');
  const client = () => HubClient.connect(cliConfig(program.opts<GlobalOptions>()));
  const readPem = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new CliError(`Cannot read ${path}: ${(e as Error).message}`);
    }
  };
  const line = (c: CertificateDescription) =>
    `${c.name.padEnd(32)} ${c.properties.isVerified ? 'verified  ' : 'unverified'} ${c.properties.thumbprint} ${c.properties.subject} (expires ${c.properties.expiry})`;
  const print = (value: unknown, json: boolean, text: () => string) =>
    process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text() + '\n');

  certificate
    .command('add <name>')
    .description('upload a CA certificate (PEM); it must be verified before devices it signed can connect')
    .requiredOption('--path <file>', 'the CA certificate, PEM')
    .option('--etag <etag>', 'replace only this version of an existing certificate')
    .option('--json', 'print JSON')
    .action(async (name: string, opts) => {
      const hub = await client();
      const { body } = await hub.call<CertificateDescription>('PUT', `/fleethub/certificates/${enc(name)}`, { certificate: readPem(opts.path) }, opts.etag ? { 'if-match': `"${opts.etag}"` } : {});
      print(body, !!opts.json, () => line(body));
    });

  certificate
    .command('verify <name>')
    .description('without --path: print a verification code; with --path: upload the proof (a certificate the CA signed whose CN is the code)')
    .option('--path <file>', 'the verification certificate, PEM')
    .option('--json', 'print JSON')
    .action(async (name: string, opts) => {
      const hub = await client();
      if (!opts.path) {
        const { body } = await hub.call<CertificateDescription>('POST', `/fleethub/certificates/${enc(name)}/generateVerificationCode`);
        print(body, !!opts.json, () =>
          `Verification code: ${body.properties.verificationCode}\nSign a certificate with CN=${body.properties.verificationCode} with this CA's key, then run: fleethub certificate verify ${name} --path <file>`,
        );
        return;
      }
      const { body } = await hub.call<CertificateDescription>('POST', `/fleethub/certificates/${enc(name)}/verify`, { certificate: readPem(opts.path) });
      print(body, !!opts.json, () => line(body));
    });

  certificate
    .command('list')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const hub = await client();
      const { body } = await hub.call<{ value: CertificateDescription[] }>('GET', '/fleethub/certificates');
      print(body.value, !!opts.json, () => body.value.map(line).join('\n') || '(no certificates)');
    });

  certificate
    .command('delete <name>')
    .option('--etag <etag>', 'delete only this version')
    .action(async (name: string, opts) => {
      const hub = await client();
      await hub.call('DELETE', `/fleethub/certificates/${enc(name)}`, undefined, opts.etag ? { 'if-match': `"${opts.etag}"` } : {});
      process.stdout.write(`Deleted certificate ${name}\n`);
    });
}
