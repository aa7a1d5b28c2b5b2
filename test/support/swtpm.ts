/**
 * A software TPM 2.0 (`swtpm`, Debian package `swtpm`) for tests: one process per call, fresh
 * state, its command port on a free loopback TCP port, stopped and wiped by `stop()`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

export interface Swtpm {
  port: number;
  stop(): Promise<void>;
}

export function swtpmInstalled(): boolean {
  return spawnSync('swtpm', ['--version'], { stdio: 'ignore' }).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/**
 * `tcpControl`: put swtpm's control channel on TCP port + 1, where tpm2-tools' `swtpm` TCTI
 * expects it (`TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=<port>`); otherwise it is a Unix socket.
 */
export async function startSwtpm(options: { tcpControl?: boolean } = {}): Promise<Swtpm> {
  if (!swtpmInstalled()) throw new Error('swtpm is not installed (Debian: apt-get install swtpm; .ci/run installs it)');
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'fleethub-swtpm-'));
    const port = await freePort();
    const ctrl = options.tcpControl ? `type=tcp,port=${port + 1},bindaddr=127.0.0.1` : `type=unixio,path=${join(dir, 'ctrl')}`;
    // not-need-init,startup-clear: the TPM is powered on and started, as a booted machine's is.
    const args = ['socket', '--tpm2', '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', ctrl,
      '--tpmstate', `dir=${dir}`, '--flags', 'not-need-init,startup-clear'];
    // A shell keeps swtpm from outliving a killed test process: it stops swtpm when its stdin, our
    // pipe, reaches EOF - at stop(), or when this process dies for any reason.
    const watchdog = 'exec 3<&0; swtpm "$@" & p=$!; { read -r _ <&3; kill $p 2>/dev/null; } & wait $p';
    const child: ChildProcess = spawn('sh', ['-c', watchdog, 'sh', ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    let exited = false;
    const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
    const stop = async () => {
      child.stdin!.end();
      await exit;
      rmSync(dir, { recursive: true, force: true });
    };
    for (let i = 0; i < 100 && !exited; i++) {
      // A connect that sends nothing is harmless: swtpm just waits for the next client.
      if (await accepts(port)) return { port, stop };
      await new Promise((r) => setTimeout(r, 50));
    }
    await stop();
    if (attempt === 4) throw new Error(`swtpm did not start: ${stderr.trim()}`);
  }
  throw new Error('unreachable');
}

const require = createRequire(import.meta.url);

/**
 * An unmodified `azure-iot-security-tpm` TpmSecurityClient talking to the swtpm.
 *
 * tss.js has three ways to a TPM: Windows TBS (through ffi-napi), /dev/tpm0 or /dev/tpmrm0, and
 * TCP. Its "simulator" TCP mode (`new Tpm(true, host, port)`) speaks the Microsoft simulator's
 * handshake, which swtpm does not answer (the connect never completes). Its Linux fallback, used
 * when /dev/tpm* is absent, is TCP in "user-mode TRM" framing (TPM_SEND_COMMAND, locality,
 * length, command) on 127.0.0.1:2323 - which swtpm's command port does speak. We choose that
 * device on our own port rather than rely on the fixed 2323.
 */
export function sdkTpmClient(port: number, registrationId?: string): { client: TpmSecurityClientLike; close(): void } {
  const tss = require('tss.js');
  const { TpmSecurityClient } = require('azure-iot-security-tpm');
  const tpm = new tss.Tpm(false);
  tpm.device = new tss.TpmTcpDevice('127.0.0.1', port, true);
  const client = new TpmSecurityClient(registrationId, tpm) as TpmSecurityClientLike;
  return {
    client,
    close: () => {
      if (tpm.device) tpm.close();
    },
  };
}

type Callback<T> = (err: Error | null, result?: T) => void;
/**
 * Runs `use` with an SDK TpmSecurityClient on `tpm`, closed afterwards: swtpm serves one
 * connection at a time, so one SDK client per swtpm at a time.
 */
export async function withTpm<T>(tpm: Swtpm, registrationId: string | undefined, use: (c: TpmSecurityClientLike) => Promise<T>): Promise<T> {
  const c = sdkTpmClient(tpm.port, registrationId);
  try {
    return await use(c.client);
  } finally {
    c.close();
  }
}

export interface TpmSecurityClientLike {
  getEndorsementKey(cb: Callback<Buffer>): void;
  getStorageRootKey(cb: Callback<Buffer>): void;
  getRegistrationId(cb: Callback<string>): void;
  activateIdentityKey(blob: Buffer, cb: Callback<void>): void;
  signWithIdentity(data: Buffer, cb: Callback<Buffer>): void;
}

/**
 * Runs an SDK operation and also fails it when the SDK throws from one of its own callbacks:
 * azure-iot-security-tpm 1.9.3 does that when the TPM refuses a blob (it reads
 * `innerWrapKey.length` of undefined), which would otherwise leave the operation pending forever.
 */
export function sdkOperation<T>(run: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const crashed = (err: Error) => reject(new Error(`the TPM SDK threw from a callback: ${err.stack}`));
    process.once('uncaughtException', crashed);
    run().then(resolve, reject).finally(() => process.removeListener('uncaughtException', crashed));
  });
}

/** Promisified TpmSecurityClient calls. */
export const tpmCall = {
  endorsementKey: (c: TpmSecurityClientLike) => sdkOperation(() => new Promise<Buffer>((res, rej) => c.getEndorsementKey((e, r) => (e ? rej(e) : res(r!))))),
  storageRootKey: (c: TpmSecurityClientLike) => sdkOperation(() => new Promise<Buffer>((res, rej) => c.getStorageRootKey((e, r) => (e ? rej(e) : res(r!))))),
  registrationId: (c: TpmSecurityClientLike) => sdkOperation(() => new Promise<string>((res, rej) => c.getRegistrationId((e, r) => (e ? rej(e) : res(r!))))),
  activate: (c: TpmSecurityClientLike, blob: Buffer) => sdkOperation(() => new Promise<void>((res, rej) => c.activateIdentityKey(blob, (e) => (e ? rej(e) : res())))),
  sign: (c: TpmSecurityClientLike, data: Buffer) => sdkOperation(() => new Promise<Buffer>((res, rej) => c.signWithIdentity(data, (e, r) => (e ? rej(e) : res(r!))))),
};

export type TssActivation =
  | { ok: true; hmac: Buffer }
  | { ok: false; failedCommand: 'ActivateCredential' | 'Import' | 'Load' | 'HMAC'; responseCode: string };

/**
 * The SDK's activateIdentityKey sequence (ActivateCredential under a PolicySecret(endorsement)
 * session, Import under the SRK, Load, then HMAC), issued directly through tss.js so that a
 * refusal comes back as the TPM's response code. The SDK itself cannot report one: on a failed
 * ActivateCredential, azure-iot-security-tpm 1.9.3 reads `innerWrapKey.length` of `undefined`
 * in a debug line and throws an uncaught TypeError. Uses the EK and SRK the SDK persisted
 * (0x81010001, 0x81000001); call it while no SDK client holds the swtpm connection.
 */
export async function activateWithTss(port: number, blob: Buffer, dataToSign: Buffer): Promise<TssActivation> {
  const tss = require('tss.js');
  const tpm = new tss.Tpm(false);
  tpm.device = new tss.TpmTcpDevice('127.0.0.1', port, true);
  const call = <T>(fn: (cb: (err: { responseCode: number } | null, res: T) => void) => void) =>
    new Promise<{ err: { responseCode: number } | null; res: T }>((resolve) => fn((err, res) => resolve({ err, res })));
  const rcName = (err: { responseCode: number }) => `${tss.TPM_RC[err.responseCode] ?? "?"} (0x${err.responseCode.toString(16)})`;
  await new Promise<void>((resolve, reject) => tpm.connect((err: Error | null) => (err ? reject(err) : resolve())));
  const ek = new tss.TPM_HANDLE(0x81010001);
  const srk = new tss.TPM_HANDLE(0x81000001);
  try {
    const buf = new tss.TpmBuffer(blob);
    const credBlob = buf.createSizedObj(tss.TPMS_ID_OBJECT);
    const encSecret = buf.createObj(tss.TPM2B_ENCRYPTED_SECRET);
    const dupBlob = buf.createObj(tss.TPM2B_PRIVATE);
    const encSeed = buf.createObj(tss.TPM2B_ENCRYPTED_SECRET);
    const idKeyPub = buf.createSizedObj(tss.TPMT_PUBLIC);
    buf.createObj(tss.TPM2B_DATA);
    if (!buf.isOk()) throw new Error('activation blob does not unmarshal');

    const sess = await call<{ handle: unknown; nonceTPM: Buffer }>((cb) =>
      tpm.StartAuthSession(null, null, Buffer.alloc(20, 1), null, tss.TPM_SE.POLICY, tss.NullSymDef, tss.TPM_ALG_ID.SHA256, cb));
    if (sess.err) throw new Error('StartAuthSession failed: ' + rcName(sess.err));
    const policySession = new tss.Session(sess.res.handle, sess.res.nonceTPM);
    const policy = await call((cb) => tpm.PolicySecret(tss.Endorsement, policySession.SessIn.sessionHandle, null, null, null, 0, cb));
    if (policy.err) throw new Error('PolicySecret failed: ' + rcName(policy.err));
    const act = await call<Buffer>((cb) => tpm.withSessions(tss.NullPwSession, policySession).ActivateCredential(srk, ek, credBlob, encSecret.secret, cb));
    await call((cb) => tpm.allowErrors().FlushContext(policySession.SessIn.sessionHandle, cb));
    if (act.err) return { ok: false, failedCommand: 'ActivateCredential', responseCode: rcName(act.err) };

    const symDef = new tss.TPMT_SYM_DEF_OBJECT(tss.TPM_ALG_ID.AES, act.res.length * 8, tss.TPM_ALG_ID.CFB);
    const imp = await call<unknown>((cb) => tpm.withSession(tss.NullPwSession).Import(srk, act.res, idKeyPub, dupBlob, encSeed.secret, symDef, cb));
    if (imp.err) return { ok: false, failedCommand: 'Import', responseCode: rcName(imp.err) };
    const load = await call<unknown>((cb) => tpm.withSession(tss.NullPwSession).Load(srk, imp.res, idKeyPub, cb));
    if (load.err) return { ok: false, failedCommand: 'Load', responseCode: rcName(load.err) };
    const hmac = await call<Buffer>((cb) => tpm.withSession(tss.NullPwSession).HMAC(load.res, dataToSign, tss.TPM_ALG_ID.SHA256, cb));
    await call((cb) => tpm.allowErrors().FlushContext(load.res, cb));
    if (hmac.err) return { ok: false, failedCommand: 'HMAC', responseCode: rcName(hmac.err) };
    return { ok: true, hmac: hmac.res };
  } finally {
    tpm.close();
  }
}

/**
 * Counts the blobs the SDK hands to the TPM (`activateIdentityKey` calls that succeed): whether
 * a refusal came after a challenge the TPM could use. Wraps `client` in place.
 */
export function countActivations(client: TpmSecurityClientLike): { readonly activated: number } {
  const counter = { activated: 0 };
  const activate = client.activateIdentityKey.bind(client);
  client.activateIdentityKey = (blob, cb) =>
    activate(blob, (err, result) => {
      if (!err) counter.activated++;
      cb(err, result);
    });
  return counter;
}
