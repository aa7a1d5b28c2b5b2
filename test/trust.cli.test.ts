import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fleethub } from './support/process.js';

/**
 * `fleethub trust` against a throwaway NSS database, CA directory and update command: never the
 * machine's own stores (every location is passed explicitly; HOME points at an empty directory too).
 */
describe('fleethub trust', () => {
  let root: string;
  let dataDir: string;
  let nssDir: string;
  let caDir: string;
  let marker: string;
  let env: NodeJS.ProcessEnv;
  let args: string[];
  let fingerprint: string;
  const certutilList = () => spawnSync('certutil', ['-L', '-d', `sql:${nssDir}`], { encoding: 'utf8' }).stdout;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'fleethub-trust-'));
    dataDir = join(root, 'data');
    nssDir = join(root, 'nssdb');
    caDir = join(root, 'ca-certificates');
    marker = join(root, 'updates');
    mkdirSync(nssDir);
    mkdirSync(caDir);
    const made = spawnSync('certutil', ['-N', '-d', `sql:${nssDir}`, '--empty-password'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    env = { ...process.env, HOME: join(root, 'home'), FLEETHUB_TRUST_UPDATE_COMMAND: `echo run >> ${marker}` };
    args = ['trust', '--data', dataDir, '--nss-db', nssDir, '--system-ca-dir', caDir];
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('installs the CA into the CA directory (running the update command) and the NSS database with trust C', async () => {
    const ran = await fleethub(args, env);
    assert.equal(ran.code, 0, ran.stderr);
    const pem = readFileSync(join(dataDir, 'ca', 'ca-cert.pem'), 'utf8');
    fingerprint = new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase().slice(0, 16);
    const file = join(caDir, `fleethub-${fingerprint}.crt`);
    assert.equal(readFileSync(file, 'utf8'), pem);
    assert.deepEqual(readFileSync(marker, 'utf8').trim().split('\n'), ['run']);
    assert.match(certutilList(), new RegExp(`Fleethub CA ${fingerprint}\\s+C,,`));
    // The certificate in the database is the CA's.
    const der = spawnSync('certutil', ['-L', '-d', `sql:${nssDir}`, '-n', `Fleethub CA ${fingerprint}`, '-a'], { encoding: 'utf8' }).stdout;
    assert.equal(new X509Certificate(der).fingerprint256, new X509Certificate(pem).fingerprint256);
    assert.match(ran.stdout, new RegExp(`installed: system store: copied to ${file}`));
    assert.match(ran.stdout, /installed: system store: ran echo run/);
    assert.match(ran.stdout, new RegExp(`installed: NSS ${nssDir} \\("Fleethub CA ${fingerprint}"`));
    assert.match(ran.stdout, /NODE_EXTRA_CA_CERTS=/);
  });

  test('a second run changes nothing and says so', async () => {
    const ran = await fleethub(args, env);
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stdout, /already installed: system store/);
    assert.match(ran.stdout, new RegExp(`already installed: NSS ${nssDir}`));
    assert.doesNotMatch(ran.stdout, /  installed:/);
    assert.deepEqual(readFileSync(marker, 'utf8').trim().split('\n'), ['run'], 'the update command did not run again');
    assert.equal(certutilList().match(/Fleethub CA/g)?.length, 1);
    assert.deepEqual(readdirSync(caDir), [`fleethub-${fingerprint}.crt`]);
  });

  test('without certutil it installs what it can and says how to get certutil', async () => {
    const ran = await fleethub([...args, '--no-system'], { ...env, FLEETHUB_TRUST_CERTUTIL: join(root, 'no-certutil') });
    assert.match(ran.stdout, /could not: NSS .*not found; install it \(Debian\/Ubuntu: sudo apt-get install libnss3-tools/);
    assert.equal(ran.code, 1, 'nothing could be done');
  });

  test('--uninstall removes both, runs the update command, and a second --uninstall finds nothing', async () => {
    const ran = await fleethub([...args, '--uninstall'], env);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(existsSync(join(caDir, `fleethub-${fingerprint}.crt`)), false);
    assert.doesNotMatch(certutilList(), /Fleethub CA/);
    assert.deepEqual(readFileSync(marker, 'utf8').trim().split('\n'), ['run', 'run']);
    assert.match(ran.stdout, /removed: system store: deleted/);
    assert.match(ran.stdout, new RegExp(`removed: NSS ${nssDir}`));
    const again = await fleethub([...args, '--uninstall'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /not present: system store/);
    assert.match(again.stdout, new RegExp(`not present: NSS ${nssDir}`));
    assert.deepEqual(readFileSync(marker, 'utf8').trim().split('\n'), ['run', 'run']);
  });

  test('--no-system --no-nss touches nothing', async () => {
    const ran = await fleethub([...args, '--no-system', '--no-nss'], env);
    assert.equal(ran.code, 0, ran.stderr);
    assert.deepEqual(readdirSync(caDir), []);
    assert.doesNotMatch(certutilList(), /Fleethub CA/);
  });
});
