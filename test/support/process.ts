import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { databasePath } from '../../src/info.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { Registry } from '../../src/hub/registry/registry.js';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const cliPath = join(root, 'dist', 'src', 'cli', 'index.js');
export const sdkClientPath = join(root, 'dist', 'test', 'support', 'sdk-client.js');

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a node script to completion. */
export function runNode(args: string[], options: { env?: NodeJS.ProcessEnv; prefix?: string[] } = {}): Promise<Ran> {
  const [cmd, ...pre] = options.prefix ?? [process.execPath];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, [...pre, ...(options.prefix ? [process.execPath] : []), ...args], { env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export const fleethub = (args: string[], env?: NodeJS.ProcessEnv) => runNode([cliPath, ...args], { env });

/** Starts `fleethub start …` and resolves once it prints that it is running. */
export function startHubProcess(args: string[], options: { env?: NodeJS.ProcessEnv; prefix?: string[] } = {}): Promise<{ child: ChildProcess; output: () => string; waitFor: (re: RegExp, ms?: number) => Promise<void>; exited: Promise<number | null> }> {
  const [cmd, ...pre] = options.prefix ?? [process.execPath];
  const child = spawn(cmd!, [...pre, ...(options.prefix ? [process.execPath] : []), cliPath, 'start', ...args], { env: options.env ?? process.env });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  /** Log lines and the banner reach the pipe in no guaranteed order: wait for the text itself. */
  const waitFor = (re: RegExp, ms = 10000) =>
    new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const poll = () => {
        if (re.test(out)) return resolve();
        if (Date.now() - started > ms) return reject(new Error(`no ${re} in the hub's output:\n${out}`));
        setTimeout(poll, 20);
      };
      poll();
    });
  return new Promise((resolve, reject) => {
    // A hub that does not come up is killed: left running, it would keep the test process alive for ever.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hub did not start within 60 s:\n${out}`));
    }, 60_000);
    const check = () => {
      if (/is running at/.test(out)) {
        clearTimeout(timer);
        resolve({ child, output: () => out, waitFor, exited });
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hub exited with ${code}:\n${out}`));
    });
  });
}

/** A fresh data directory that holds the test run's CA (so SDKs trusting it reach the hub). */
export function dataDirWithTestCa(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cpSync(join(process.env.FLEETHUB_TEST_CA_DIR!, 'ca'), join(dir, 'ca'), { recursive: true });
  return dir;
}

/**
 * `fleethub --data DIR start ARGS` as a child process (for SIGKILL tests), resolved once it says
 * it is running; fails with its output when it exits or does not start in `startMs`.
 */
export async function spawnHub(dataDir: string, args: string[] = [], startMs = 30_000): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cliPath, '--data', dataDir, 'start', ...args, '--log-level', 'warn'], { cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (out += b));
  const deadline = Date.now() + startMs;
  while (!out.includes('is running')) {
    if (child.exitCode !== null) throw new Error(`the hub exited (${child.exitCode}): ${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the hub did not start within ${startMs} ms: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return child;
}

/** Registers `count` devices `{prefix}{i}` in a data directory before a hub runs on it; their primary keys by id. */
export async function seedDevices(dataDir: string, prefix: string, count: number): Promise<Map<string, string>> {
  const store = openSqliteStore(databasePath(dataDir));
  const registry = new Registry(store.devices, store.modules);
  const keys = new Map<string, string>();
  try {
    for (let i = 0; i < count; i++) {
      const d = await registry.putDevice(`${prefix}${i}`, { deviceId: `${prefix}${i}` }, undefined);
      keys.set(d.deviceId, d.authentication.symmetricKey.primaryKey!);
    }
  } finally {
    store.close();
  }
  return keys;
}
