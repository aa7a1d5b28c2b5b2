/**
 * bench/portal: the portal's devices page over a large fleet, in Debian's chromium.
 *
 *   npm run bench:portal -- [--devices 100000] [--seed store|api] [--runs 5]
 *
 * Starts a hub in-process on a loopback address, then fills the registry:
 *   --seed store (default): straight through the hub's store, in one transaction (Registry.putDevice,
 *     the same domain code the REST API runs, without HTTP): 100,000 devices in about 28 s;
 *   --seed api: through the registry's bulk API (POST /devices?api-version=…, 100 devices a call) with
 *     azure-iothub's Registry.addDevices, 4 calls in flight: about 64 s (2-core machine, shared).
 * Then, with playwright-core and /usr/bin/chromium, signs in with the hub's connection string (as
 * test/portal.browser.test.ts does) and measures, for --runs navigations each, the time from the
 * navigation's start (the page's performance.timeOrigin) to the first device row of #/hub/devices:
 *   - cold: browser cache cleared before each navigation (a first visit);
 *   - warm: cache kept (the assets are revalidated: cache-control no-cache + etag).
 * Prints p50/max of each, the portal's compressed size (every asset gzipped, as served) and the bytes
 * the browser actually fetched on a cold load (headers included).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import iothub from 'azure-iothub';
import { defaults, type Config } from '../../src/config/index.js';
import { startFleethub } from '../../src/main.js';
import { caPaths, ensureCertificateAuthority } from '../../src/protocols/tls/ca.js';
import { Registry } from '../../src/hub/registry/registry.js';
import { freeLoopbackAddress } from '../../test/support/hub.js';
import { launchChromium } from '../../test/support/browser.js';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '100000' }, seed: { type: 'string', default: 'store' }, runs: { type: 'string', default: '5' } } });
const DEVICES = Number(values.devices);
const RUNS = Number(values.runs);

// azure-iothub trusts the hub's CA only through NODE_EXTRA_CA_CERTS (read at start): for --seed api,
// make the data directory's CA first and run again with it set.
if (values.seed === 'api' && !process.env.FLEETHUB_BENCH_PORTAL_DATA) {
  const dir = mkdtempSync(join(tmpdir(), 'fleethub-bench-portal-'));
  await ensureCertificateAuthority(dir);
  const child = spawn(process.execPath, process.argv.slice(1), { stdio: 'inherit', env: { ...process.env, NODE_EXTRA_CA_CERTS: caPaths(dir).cert, FLEETHUB_BENCH_PORTAL_DATA: dir } });
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  rmSync(dir, { recursive: true, force: true });
  process.exit(code ?? 1);
}

const host = await freeLoopbackAddress();
const dataDir = process.env.FLEETHUB_BENCH_PORTAL_DATA ?? mkdtempSync(join(tmpdir(), 'fleethub-bench-portal-'));
const config: Config = { ...defaults, hostName: host, bind: host, dataDir, logLevel: 'silent', ports: { ...defaults.ports, https: 443 } };
const hub = await startFleethub(config, pino({ level: 'silent' }));
const policy = (await hub.store.policies.get('iothubowner'))!;
const connectionString = `HostName=${host};SharedAccessKeyName=iothubowner;SharedAccessKey=${policy.primaryKey}`;
const id = (i: number) => `device-${String(i).padStart(6, '0')}`;
let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;

try {
  // ---- seed ----
  const seedStart = performance.now();
  if (values.seed === 'api') {
    const registry = iothub.Registry.fromConnectionString(connectionString);
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < DEVICES) {
          const from = next;
          next += 100;
          const batch = Array.from({ length: Math.min(100, DEVICES - from) }, (_, k) => ({ deviceId: id(from + k), status: 'enabled' as const }));
          const r = (await registry.addDevices(batch)).responseBody as { isSuccessful: boolean; errors: unknown[] };
          if (!r.isSuccessful) throw new Error(`bulk create failed: ${JSON.stringify(r.errors.slice(0, 3))}`);
        }
      }),
    );
  } else {
    const registry = new Registry(hub.store.devices, hub.store.modules);
    hub.store.db.exec('BEGIN');
    for (let i = 0; i < DEVICES; i++) await registry.putDevice(id(i), { deviceId: id(i), status: i % 50 === 0 ? 'disabled' : 'enabled' }, undefined);
    hub.store.db.exec('COMMIT');
  }
  const seedSeconds = (performance.now() - seedStart) / 1000;
  console.log(`fleet: ${DEVICES} devices created through the ${values.seed === 'api' ? 'bulk registry API (azure-iothub Registry.addDevices, 100 a call)' : "hub's store in-process (one transaction)"} in ${seedSeconds.toFixed(1)} s (${(DEVICES / seedSeconds).toFixed(0)} devices/s)`);

  // ---- browser ----
  browser = await launchChromium();
  const page = await browser.context.newPage();
  page.setDefaultTimeout(30_000);
  const base = `https://${host}/portal/`;
  await page.goto(`${base}#/signin`);
  await page.getByLabel('Connection string', { exact: true }).fill(connectionString);
  await page.getByRole('button', { name: 'Sign in with the connection string' }).click();
  await page.getByRole('link', { name: 'Devices' }).waitFor();

  const cdp = await browser.context.newCDPSession(page);
  await cdp.send('Network.enable');
  let fetched = 0;
  cdp.on('Network.loadingFinished', (e: { encodedDataLength: number }) => (fetched += e.encodedDataLength));

  /** Navigation start to the first device row, read in the page (ms since performance.timeOrigin). */
  const firstRender = async (): Promise<number> => {
    await page.goto('about:blank');
    await page.goto(`${base}#/hub/devices`, { waitUntil: 'commit' });
    const handle = await page.waitForFunction(() => (document.querySelector('#main tbody tr') ? performance.now() : 0), undefined, { polling: 'raf' });
    const ms = (await handle.jsonValue()) as number;
    const rows = await page.locator('#main tbody tr').count();
    if (rows !== 50) throw new Error(`expected a page of 50 rows, got ${rows}`);
    return ms;
  };
  const times = async (cold: boolean) => {
    const out: number[] = [];
    for (let i = 0; i < RUNS + 1; i++) {
      if (cold) await cdp.send('Network.clearBrowserCache');
      fetched = 0;
      const ms = await firstRender();
      if (i > 0) out.push(ms); // the first navigation warms the hub's statement cache and the JIT
      if (cold) coldBytes = fetched;
    }
    return out;
  };
  let coldBytes = 0;
  const cold = await times(true);
  const warm = await times(false);
  const pct = (v: number[], p: number) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor((p / 100) * v.length))]!;
  const fmt = (v: number[]) => `p50 ${pct(v, 50).toFixed(0)} ms, max ${Math.max(...v).toFixed(0)} ms (${v.length} navigations)`;
  console.log(`devices page, navigation start to first row, ${DEVICES} devices: cold cache ${fmt(cold)}; warm cache ${fmt(warm)}  (goal < 1000 ms)`);
  const size = hub.portal!.compressedSize();
  console.log(`portal compressed download: ${size} bytes = ${(size / 1024).toFixed(1)} KB gzip, every asset (goal < 300 KB); a cold load of the devices page fetched ${coldBytes} bytes in all (headers and the API calls included)`);
} finally {
  await browser?.close();
  if (browser) rmSync(browser.shots, { recursive: true, force: true });
  await hub.close();
  rmSync(dataDir, { recursive: true, force: true });
}
