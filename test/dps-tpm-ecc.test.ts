/**
 * The same challenge for ECC (NIST P-256) endorsement and storage keys. The Azure SDK only makes
 * RSA keys, so here the TPM side is tpm2-tools on swtpm: TPM2_ActivateCredential recovers the
 * inner wrapper key, TPM2_Import + TPM2_Load take the duplicated HMAC key, TPM2_HMAC uses it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, createHmac } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HubError } from '../src/core/errors.js';
import { createTpmChallenge, parseTpm2bPublic } from '../src/dps/attestation/tpm.js';
import { startSwtpm, type Swtpm } from './support/swtpm.js';

const EK = '0x81010001';
const SRK = '0x81000001';

describe('TPM attestation with ECC keys, checked by tpm2-tools on swtpm', { timeout: 60_000 }, () => {
  let swtpm: Swtpm;
  let dir: string;
  let ekPub: Buffer;
  let srkPub: Buffer;

  const tpm2 = (args: string[]) => {
    const r = spawnSync(args[0]!, args.slice(1), {
      cwd: dir,
      env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${swtpm.port}` },
      encoding: 'utf8',
    });
    if (r.error) throw new Error(`${args[0]} could not run (Debian package tpm2-tools; .ci/run installs it): ${r.error.message}`);
    return { ok: r.status === 0, stderr: r.stderr };
  };
  const must = (args: string[]) => {
    const r = tpm2(args);
    assert.ok(r.ok, `${args.join(' ')}: ${r.stderr}`);
  };

  /** Runs the activation with the TPM's tools; returns the HMAC of `data` or the failing step. */
  function activate(authenticationKey: string, data: Buffer): { hmac: Buffer } | { failed: string; stderr: string } {
    const blob = Buffer.from(authenticationKey, 'base64');
    const parts: Buffer[] = [];
    for (let pos = 0; pos < blob.length; pos += 2 + blob.readUInt16BE(pos)) parts.push(blob.subarray(pos, pos + 2 + blob.readUInt16BE(pos)));
    // tpm2-tools' credential file: magic, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
    writeFileSync(join(dir, 'cred.blob'), Buffer.concat([Buffer.from('badcc0de00000001', 'hex'), parts[0]!, parts[1]!]));
    writeFileSync(join(dir, 'id.dpriv'), parts[2]!);
    writeFileSync(join(dir, 'id.seed'), parts[3]!);
    writeFileSync(join(dir, 'id.pub'), parts[4]!);
    writeFileSync(join(dir, 'data'), data);
    must(['tpm2_startauthsession', '--policy-session', '-S', 'session.ctx']);
    must(['tpm2_policysecret', '-S', 'session.ctx', '-c', 'e']);
    const steps: [string, string[]][] = [
      ['ActivateCredential', ['tpm2_activatecredential', '-c', SRK, '-C', EK, '-i', 'cred.blob', '-o', 'inner.key', '-P', 'session:session.ctx']],
      ['Import', ['tpm2_import', '-C', SRK, '-u', 'id.pub', '-i', 'id.dpriv', '-s', 'id.seed', '-k', 'inner.key', '-r', 'id.priv']],
      ['Load', ['tpm2_load', '-C', SRK, '-u', 'id.pub', '-r', 'id.priv', '-c', 'id.ctx']],
      ['HMAC', ['tpm2_hmac', '-c', 'id.ctx', '-g', 'sha256', '-o', 'mac.bin', 'data']],
    ];
    try {
      for (const [name, args] of steps) {
        const r = tpm2(args);
        if (!r.ok) return { failed: name, stderr: r.stderr };
      }
      return { hmac: readFileSync(join(dir, 'mac.bin')) };
    } finally {
      // No resource manager in between: free transient objects and sessions ourselves.
      tpm2(['tpm2_flushcontext', '-t']);
      tpm2(['tpm2_flushcontext', '-s']);
      for (const f of ['inner.key', 'id.priv', 'id.ctx', 'mac.bin', 'session.ctx']) rmSync(join(dir, f), { force: true });
    }
  }

  before(async () => {
    swtpm = await startSwtpm({ tcpControl: true });
    dir = mkdtempSync(join(tmpdir(), 'fleethub-tpm2-'));
    must(['tpm2_createek', '-G', 'ecc', '-c', EK, '-u', 'ek.pub']);
    must(['tpm2_createprimary', '-C', 'o', '-G', 'ecc', '-c', 'srk.ctx']);
    must(['tpm2_evictcontrol', '-C', 'o', '-c', 'srk.ctx', SRK]);
    must(['tpm2_flushcontext', '-t']);
    must(['tpm2_readpublic', '-c', SRK, '-o', 'srk.pub']);
    ekPub = readFileSync(join(dir, 'ek.pub'));
    srkPub = readFileSync(join(dir, 'srk.pub'));
  });
  after(async () => {
    await swtpm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the TPM activates the blob and HMACs with exactly the key we issued', () => {
    assert.equal(parseTpm2bPublic(ekPub).type, 'ecc');
    assert.equal(parseTpm2bPublic(srkPub).type, 'ecc');
    const { authenticationKey, identityKey } = createTpmChallenge(ekPub.toString('base64'), srkPub.toString('base64'), 'reg-ecc');
    const data = Buffer.from('0ne00000001%2Fregistrations%2Freg-ecc\n1700000000');
    assert.deepEqual(activate(authenticationKey, data), { hmac: createHmac('sha256', identityKey).update(data).digest() });
  });

  test('ECC keys on other curves are refused with ArgumentInvalid', () => {
    const p384 = Buffer.from(ekPub);
    const curveAt = 2 + 2 + 2 + 4 + 2 + parseTpm2bPublic(ekPub).authPolicy.length + 6 + 2; // TPM2B size … scheme
    assert.equal(p384.readUInt16BE(curveAt), 0x0003);
    p384.writeUInt16BE(0x0004, curveAt); // TPM_ECC_NIST_P384
    assert.throws(() => createTpmChallenge(p384.toString('base64'), srkPub.toString('base64'), 'r'), (e: unknown) => e instanceof HubError && e.code === 'ArgumentInvalid');
  });

  test('a blob made for another P-256 endorsement key does not activate', () => {
    // Same EK template, another public point: only the ECDH-derived seed differs.
    const other = Buffer.from(ekPub);
    const point = createECDH('prime256v1');
    const xy = point.generateKeys();
    const area = parseTpm2bPublic(ekPub);
    const xAt = other.length - (2 + area.ecc!.y.length) - area.ecc!.x.length;
    xy.subarray(1, 33).copy(other, xAt);
    xy.subarray(33, 65).copy(other, other.length - 32);
    assert.ok(!parseTpm2bPublic(other).name.equals(area.name));
    const r = activate(createTpmChallenge(other.toString('base64'), srkPub.toString('base64'), 'reg-x').authenticationKey, Buffer.from('x'));
    assert.equal('failed' in r && r.failed, 'ActivateCredential');
  });
});
