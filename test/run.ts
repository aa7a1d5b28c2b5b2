/**
 * `npm test`: creates one throwaway CA that every test hub shares, so that the Azure SDKs in
 * the test processes trust it through NODE_EXTRA_CA_CERTS exactly as a user's app would,
 * then runs every test file with node's test runner (each file in its own process).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { caPaths, ensureCertificateAuthority } from '../src/protocols/tls/ca.js';

const here = dirname(fileURLToPath(import.meta.url));
const caDir = mkdtempSync(join(tmpdir(), 'fleethub-test-ca-'));
await ensureCertificateAuthority(caDir);

const only = process.argv.slice(2);
const files = readdirSync(here, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => join(here, f));

const child = spawn(
  process.execPath,
  ['--test', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`, '--test-reporter=spec', ...files],
  {
    stdio: 'inherit',
    // CI=true makes the `pem` package (test certificates) print every key it generates: keep
    // private keys, even throwaway ones, out of CI logs.
    env: { ...process.env, CI: undefined, NODE_EXTRA_CA_CERTS: caPaths(caDir).cert, FLEETHUB_TEST_CA_DIR: caDir },
  },
);
child.on('exit', (code, signal) => {
  rmSync(caDir, { recursive: true, force: true });
  process.exit(code ?? (signal ? 1 : 0));
});
