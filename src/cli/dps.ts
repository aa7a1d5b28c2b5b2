import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { cliConfig, CliError, HubClient, type GlobalOptions } from './context.js';

const enc = encodeURIComponent;
type Json = Record<string, any>;

/** `fleethub dps …`: the provisioning service beside the running hub, over its REST API. */
export function dpsCommand(program: Command): void {
  const dps = program.command('dps').description('Device Provisioning Service: enrollments, groups, CA certificates');
  const client = () => HubClient.connectDps(cliConfig(program.opts<GlobalOptions>()));
  const print = (value: unknown, json: boolean, text: () => string) =>
    process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text() + '\n');
  const readFile = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new CliError(`Cannot read ${path}: ${(e as Error).message}`);
    }
  };
  const parseJson = (text: string, what: string) => {
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw new CliError(`${what} is not valid JSON: ${(e as Error).message}`);
    }
  };

  // ---- CA certificates (Fleethub's admin API; Azure does this through ARM)
  const certificate = dps.command('certificate').description('CA certificates with proof of possession');
  const certs = '/fleethub/dps/certificates';
  const certLine = (c: Json) => `${c.name.padEnd(30)} ${c.properties.isVerified ? 'verified  ' : 'unverified'} ${c.properties.subject}`;
  certificate
    .command('add <name>')
    .requiredOption('--file <pem>', 'the CA certificate (PEM)')
    .option('--json', 'print JSON')
    .action(async (name: string, opts) => {
      const { body } = await (await client()).call<Json>('PUT', `${certs}/${enc(name)}`, { certificate: readFile(opts.file) });
      print(body, !!opts.json, () => `Uploaded ${certLine(body)}\nNext: fleethub dps certificate verify ${name} (prints the verification code)`);
    });
  certificate
    .command('verify <name>')
    .description('without --file: print a verification code; with --file: verify a certificate signed by the CA whose CN is that code')
    .option('--file <pem>', 'the verification certificate (PEM)')
    .option('--json', 'print JSON')
    .action(async (name: string, opts) => {
      const dpsClient = await client();
      if (!opts.file) {
        const { body } = await dpsClient.call<Json>('POST', `${certs}/${enc(name)}/generateVerificationCode`);
        print(body, !!opts.json, () =>
          `Verification code: ${body.properties.verificationCode}\nIssue a certificate with CN=<code> from the CA, then: fleethub dps certificate verify ${name} --file proof.pem`,
        );
        return;
      }
      const { body } = await dpsClient.call<Json>('POST', `${certs}/${enc(name)}/verify`, { certificate: readFile(opts.file) });
      print(body, !!opts.json, () => `Verified ${certLine(body)}`);
    });
  certificate
    .command('list')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const { body } = await (await client()).call<{ value: Json[] }>('GET', certs);
      print(body.value, !!opts.json, () => body.value.map(certLine).join('\n'));
    });
  certificate
    .command('delete <name>')
    .option('--etag <etag>', 'delete only if the certificate still has this etag')
    .action(async (name: string, opts) => {
      await (await client()).call('DELETE', `${certs}/${enc(name)}`, undefined, opts.etag ? { 'if-match': `"${opts.etag}"` } : {});
      process.stdout.write(`Deleted certificate ${name}\n`);
    });

  // ---- individual enrollments and groups share their options
  const withEnrollmentOptions = (c: Command, group: boolean) =>
    c
      .option('--attestation <type>', group ? 'x509 | symmetricKey' : 'tpm | x509 | symmetricKey')
      .option('--primary-key <key>', 'symmetric key (generated when omitted)')
      .option('--secondary-key <key>', 'symmetric key (generated when omitted)')
      .option('--certificate <pem>', group ? 'signing certificate file (root or intermediate)' : 'client certificate file')
      .option('--secondary-certificate <pem>', 'secondary certificate file')
      .option('--device-id <id>', 'device id in the hub (individual enrollments)')
      .option('--endorsement-key <base64>', 'TPM endorsement key')
      .option('--storage-root-key <base64>', 'TPM storage root key')
      .option('--ca-reference <name>', 'a verified CA certificate instead of --certificate (groups)')
      .option('--iot-hub <host...>', 'linked hubs this enrollment may be assigned to')
      .option('--allocation-policy <policy>', 'hashed | geoLatency | static | custom')
      .option('--webhook-url <url>', 'custom allocation webhook')
      .option('--webhook-api-version <v>', 'custom allocation api version', '2021-10-01')
      .option('--initial-twin <json>', 'initial twin: {"tags":{…},"properties":{"desired":{…}}}')
      .option('--edge', 'IoT Edge device(s)')
      .option('--disabled', 'provisioningStatus disabled')
      .option('--enabled', 'provisioningStatus enabled (update)')
      .option('--json', 'print JSON');

  const attestationFrom = (opts: Json, group: boolean): Json | undefined => {
    const type = opts.attestation ?? (opts.certificate || opts.caReference ? 'x509' : opts.endorsementKey ? 'tpm' : undefined);
    if (!type) return undefined;
    const certs = (key: string) => ({
      [key]: {
        primary: { certificate: readFile(opts.certificate) },
        ...(opts.secondaryCertificate ? { secondary: { certificate: readFile(opts.secondaryCertificate) } } : {}),
      },
    });
    switch (type) {
      case 'symmetricKey':
        return { type, symmetricKey: { primaryKey: opts.primaryKey, secondaryKey: opts.secondaryKey } };
      case 'tpm':
        return { type, tpm: { endorsementKey: opts.endorsementKey, storageRootKey: opts.storageRootKey } };
      case 'x509':
        if (opts.caReference) return { type, x509: { caReferences: { primary: opts.caReference } } };
        if (!opts.certificate) throw new CliError('x509 attestation needs --certificate FILE' + (group ? ' or --ca-reference NAME' : ''));
        return { type, x509: certs(group ? 'signingCertificates' : 'clientCertificates') };
      default:
        throw new CliError(`Unknown attestation '${type}'`);
    }
  };

  /** Applies the options to an enrollment body (a new one, or one read back for update). */
  const applyOptions = (body: Json, opts: Json, group: boolean): Json => {
    const attestation = attestationFrom(opts, group);
    if (attestation) body.attestation = attestation;
    if (opts.deviceId) body.deviceId = opts.deviceId;
    if (opts.iotHub) body.iotHubs = opts.iotHub;
    if (opts.allocationPolicy) body.allocationPolicy = opts.allocationPolicy;
    if (opts.webhookUrl) body.customAllocationDefinition = { webhookUrl: opts.webhookUrl, apiVersion: opts.webhookApiVersion };
    if (opts.initialTwin) body.initialTwin = parseJson(opts.initialTwin, '--initial-twin');
    if (opts.edge) body.capabilities = { iotEdge: true };
    if (opts.disabled) body.provisioningStatus = 'disabled';
    if (opts.enabled) body.provisioningStatus = 'enabled';
    return body;
  };

  const enrollmentCommands = (name: string, path: string, idField: string, group: boolean) => {
    const cmd = dps.command(name).description(group ? 'enrollment groups' : 'individual enrollments');
    const line = (e: Json) => `${String(e[idField]).padEnd(40)} ${e.attestation.type.padEnd(12)} ${e.provisioningStatus}`;

    withEnrollmentOptions(cmd.command('create <id>'), group).action(async (id: string, opts) => {
      if (!attestationFrom(opts, group)) opts.attestation = 'symmetricKey';
      const body = applyOptions({ [idField]: id }, opts, group);
      const { body: created } = await (await client()).call<Json>('PUT', `${path}/${enc(id)}`, body);
      print(created, !!opts.json, () => `Created ${line(created)}`);
    });

    cmd
      .command('show <id>')
      .option('--keys', 'include the attestation mechanism (symmetric keys)')
      .option('--json', 'print JSON (the default)')
      .action(async (id: string, opts) => {
        const c = await client();
        const { body } = await c.call<Json>('GET', `${path}/${enc(id)}`);
        if (opts.keys) body.attestation = (await c.call<Json>('POST', `${path}/${enc(id)}/attestationmechanism`)).body;
        print(body, true, () => '');
      });

    cmd
      .command('list')
      .option('--json', 'print JSON')
      .action(async (opts) => {
        const c = await client();
        const all: Json[] = [];
        let continuation: string | undefined;
        do {
          const res = await c.call<Json[]>('POST', `${path}/query`, { query: `SELECT * FROM ${group ? 'enrollmentGroups' : 'enrollments'}` }, {
            'x-ms-max-item-count': '100',
            ...(continuation ? { 'x-ms-continuation': continuation } : {}),
          });
          all.push(...res.body);
          const next = res.headers['x-ms-continuation'];
          continuation = Array.isArray(next) ? next[0] : next;
        } while (continuation);
        print(all, !!opts.json, () => all.map(line).join('\n'));
      });

    withEnrollmentOptions(cmd.command('update <id>'), group).action(async (id: string, opts) => {
      // Get, modify, write back with the etag: a concurrent change makes this fail, not vanish.
      const c = await client();
      const { body: current } = await c.call<Json>('GET', `${path}/${enc(id)}`);
      const body = applyOptions(current, opts, group);
      const { body: updated } = await c.call<Json>('PUT', `${path}/${enc(id)}`, body, { 'if-match': `"${current.etag}"` });
      print(updated, !!opts.json, () => `Updated ${line(updated)}`);
    });

    cmd
      .command('delete <id>')
      .option('--etag <etag>', 'delete only if it still has this etag')
      .action(async (id: string, opts) => {
        await (await client()).call('DELETE', `${path}/${enc(id)}`, undefined, opts.etag ? { 'if-match': `"${opts.etag}"` } : {});
        process.stdout.write(`Deleted ${group ? 'enrollment group' : 'enrollment'} ${id}\n`);
      });
  };
  enrollmentCommands('enrollment', '/enrollments', 'registrationId', false);
  enrollmentCommands('enrollment-group', '/enrollmentGroups', 'enrollmentGroupId', true);

  dps
    .command('bulk')
    .description('run a bulk operation over individual enrollments')
    .requiredOption('--mode <mode>', 'create | update | updateIfMatchETag | delete')
    .requiredOption('--file <json>', 'a JSON list of enrollments (or {"enrollments": [...]})')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const parsed = parseJson(readFile(opts.file), opts.file) as Json;
      const enrollments = Array.isArray(parsed) ? parsed : parsed?.enrollments;
      if (!Array.isArray(enrollments)) throw new CliError(`${opts.file} must hold a list of enrollments`);
      const { body } = await (await client()).call<Json>('POST', '/enrollments', { mode: opts.mode, enrollments });
      print(body, !!opts.json, () =>
        body.isSuccessful
          ? `All ${enrollments.length} enrollments: ${opts.mode} succeeded`
          : body.errors.map((e: Json) => `${e.registrationId}: ${e.errorCode} ${e.errorStatus}`).join('\n'),
      );
      if (!body.isSuccessful) process.exitCode = 3;
    });
}
