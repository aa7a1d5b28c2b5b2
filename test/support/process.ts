import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
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
    const timer = setTimeout(() => reject(new Error(`hub did not start:\n${out}`)), 20000);
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
