import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestHub, type TestHub } from './support/hub.js';
import { issue, rootCa } from './support/certs.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'index.js');

describe('fleethub dps CLI against a running hub', () => {
  let t: TestHub;
  const run = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string; json: any }>((resolve) => {
      execFile(process.execPath, [cli, '--data', t.dataDir, ...args], { cwd: t.dataDir }, (err, stdout, stderr) => {
        let json: unknown;
        try {
          json = JSON.parse(stdout);
        } catch {
          json = undefined;
        }
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, json });
      });
    });
  const file = (name: string, content: string) => {
    const path = join(t.dataDir, name);
    writeFileSync(path, content);
    return path;
  };

  before(async () => {
    t = await startTestHub();
  });
  after(() => t.close());

  test('certificates: add, verify with proof of possession, list, delete', async () => {
    const ca = await rootCa('cli-ca');
    const added = await run('dps', 'certificate', 'add', 'cli-ca', '--file', file('ca.pem', ca.pem), '--json');
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.json.properties.isVerified, false);
    const coded = await run('dps', 'certificate', 'verify', 'cli-ca', '--json');
    const code = coded.json.properties.verificationCode;
    assert.ok(code);
    const proof = await issue(ca, code);
    const verified = await run('dps', 'certificate', 'verify', 'cli-ca', '--file', file('proof.pem', proof.pem), '--json');
    assert.equal(verified.code, 0, verified.stderr);
    assert.equal(verified.json.properties.isVerified, true);
    const listed = await run('dps', 'certificate', 'list', '--json');
    assert.deepEqual(listed.json.map((c: any) => c.name), ['cli-ca']);

    const group = await run('dps', 'enrollment-group', 'create', 'cli-ca-group', '--ca-reference', 'cli-ca', '--json');
    assert.equal(group.code, 0, group.stderr);
    assert.deepEqual(group.json.attestation.x509.caReferences, { primary: 'cli-ca' });
    const refused = await run('dps', 'certificate', 'delete', 'cli-ca');
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /409\d{3}/);
    assert.equal((await run('dps', 'enrollment-group', 'delete', 'cli-ca-group')).code, 0);
    assert.equal((await run('dps', 'certificate', 'delete', 'cli-ca')).code, 0);
    assert.deepEqual((await run('dps', 'certificate', 'list', '--json')).json, []);
  });

  test('enrollments: create, show with keys, update, list, delete; groups from a certificate file', async () => {
    const created = await run('dps', 'enrollment', 'create', 'cli-device', '--device-id', 'cli-thermostat', '--initial-twin', '{"tags":{"site":"lab"}}', '--json');
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.json.deviceId, 'cli-thermostat');
    assert.deepEqual(created.json.initialTwin.tags, { site: 'lab' });
    const shown = await run('dps', 'enrollment', 'show', 'cli-device', '--keys');
    assert.equal(Buffer.from(shown.json.attestation.symmetricKey.primaryKey, 'base64').length, 64);
    const updated = await run('dps', 'enrollment', 'update', 'cli-device', '--disabled', '--json');
    assert.equal(updated.json.provisioningStatus, 'disabled');
    assert.equal(updated.json.createdDateTimeUtc, created.json.createdDateTimeUtc);
    const keysAfter = await run('dps', 'enrollment', 'show', 'cli-device', '--keys');
    assert.deepEqual(keysAfter.json.attestation, shown.json.attestation);
    assert.ok((await run('dps', 'enrollment', 'list', '--json')).json.some((e: any) => e.registrationId === 'cli-device'));

    const root = await rootCa('cli-root');
    const intermediate = await issue(root, 'cli-intermediate', true);
    const group = await run('dps', 'enrollment-group', 'create', 'cli-group', '--certificate', file('int.pem', intermediate.pem), '--json');
    assert.equal(group.code, 0, group.stderr);
    assert.equal(group.json.attestation.x509.signingCertificates.primary.info.subjectName, 'CN=cli-intermediate');
    assert.ok((await run('dps', 'enrollment-group', 'list', '--json')).json.some((g: any) => g.enrollmentGroupId === 'cli-group'));

    assert.equal((await run('dps', 'enrollment', 'delete', 'cli-device')).code, 0);
    const gone = await run('dps', 'enrollment', 'show', 'cli-device');
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, /404201/);
    const badCert = await run('dps', 'enrollment-group', 'create', 'cli-bad', '--certificate', file('bad.pem', 'nonsense'));
    assert.equal(badCert.code, 2);
    assert.match(badCert.stderr, /400004/);
  });

  test('bulk from a file reports per-item errors', async () => {
    const path = file('bulk.json', JSON.stringify([
      { registrationId: 'cli-bulk-1', attestation: { type: 'symmetricKey' } },
      { registrationId: 'cli-bulk-1', attestation: { type: 'symmetricKey' } },
    ]));
    const res = await run('dps', 'bulk', '--mode', 'create', '--file', path, '--json');
    assert.equal(res.code, 3);
    assert.equal(res.json.isSuccessful, false);
    assert.deepEqual(res.json.errors.map((e: any) => e.registrationId), ['cli-bulk-1']);
    assert.equal((await run('dps', 'enrollment', 'show', 'cli-bulk-1')).code, 0);
    const del = await run('dps', 'bulk', '--mode', 'delete', '--file', path.replace('bulk.json', 'del.json'));
    assert.equal(del.code, 2, 'a missing file is an error');
  });

  test('info --json shows the DPS', async () => {
    const info = await run('info', '--json');
    assert.match(info.json.dps.idScope, /^0ne[0-9A-F]{8}$/);
    assert.match(info.json.dps.serviceConnectionString, /SharedAccessKeyName=provisioningserviceowner/);
    assert.equal(info.json.dps.deviceEndpoint, t.host);
  });
});
