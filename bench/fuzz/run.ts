/**
 * `npm run fuzz`: makes a throwaway CA (trusted by the control devices' SDK through
 * NODE_EXTRA_CA_CERTS, as a user's app would), then runs bench/fuzz/main.js with the arguments.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { caPaths, ensureCertificateAuthority } from '../../src/protocols/tls/ca.js';

const caDir = mkdtempSync(join(tmpdir(), 'fleethub-fuzz-ca-'));
await ensureCertificateAuthority(caDir);
const child = spawn(process.execPath, [fileURLToPath(new URL('./main.js', import.meta.url)), ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, NODE_EXTRA_CA_CERTS: caPaths(caDir).cert, FLEETHUB_TEST_CA_DIR: caDir },
});
child.on('exit', (code, signal) => {
  rmSync(caDir, { recursive: true, force: true });
  process.exit(code ?? (signal ? 1 : 0));
});
