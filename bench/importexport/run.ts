/**
 * Bulk import and export of the identity registry through blob storage (the embedded Azurite):
 * N devices with keys, tags and desired properties imported from devices.txt, then exported back.
 * Reports devices/s for each, the process's peak RSS (hub and Azurite share the process) and how
 * late its event loop ran during each job (what a device's PUBACK would have waited for then).
 *
 *   npm run bench:importexport -- [devices=100000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import pino from 'pino';
import { BlobServiceClient, ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';
import { defaults, type Config } from '../../src/config/index.js';
import { startFleethub } from '../../src/main.js';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../../src/storage/azurite.js';

const [devices = 100_000] = process.argv.slice(2).map(Number);
const host = '127.0.0.1';
const dataDir = mkdtempSync(join(tmpdir(), 'fleethub-bench-'));
const config: Config = {
  ...defaults,
  hostName: host,
  bind: host,
  dataDir,
  logLevel: 'silent',
  ports: { https: 0, mqtt: 0, amqp: 0, amqpEmulator: 0, storage: 20000 + Math.floor(Math.random() * 20000) },
};
let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
const hub = await startFleethub(config, pino({ level: 'silent' }));
try {
  const info = await hub.info();
  // Run with NODE_EXTRA_CA_CERTS=<dataDir>/ca/ca-cert.pem is not possible (a fresh data dir), so
  // the bench's own client skips verification, on loopback only.
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  const blobs = BlobServiceClient.fromConnectionString(info.storageConnectionString);
  const container = blobs.getContainerClient('bench');
  await container.createIfNotExists();
  const sas = generateBlobSASQueryParameters(
    { containerName: 'bench', permissions: ContainerSASPermissions.parse('racwdl'), expiresOn: new Date(Date.now() + 6 * 3600_000) },
    new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
  ).toString();
  const uri = `${container.url}?${sas}`;
  async function* lines() {
    for (let i = 0; i < devices; i++) yield `${JSON.stringify({ id: `bench-${i}`, importMode: 'create', tags: { batch: i % 100 }, properties: { desired: { interval: i % 60 } } })}\n`;
  }
  await container.getBlockBlobClient('devices.txt').uploadStream(Readable.from(lines()), 4 * 1024 * 1024, 2);

  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  /** The loop's lateness since the previous call, ms (the histogram holds the time between ticks of a 10 ms timer). */
  const late = () => {
    const out = { p99: Math.max(0, loop.percentile(99) / 1e6 - 10), max: Math.max(0, loop.max / 1e6 - 10) };
    loop.reset();
    return { p99: Math.round(out.p99), max: Math.round(out.max) };
  };
  const run = async (request: Record<string, unknown>) => {
    late();
    const started = Date.now();
    const job = await hub.bulkJobs.create(request);
    for (;;) {
      const j = await hub.bulkJobs.get(job.jobId as string);
      if (['completed', 'failed', 'cancelled'].includes(j.status as string)) {
        if (j.status !== 'completed') throw new Error(`${String(request.type)} ${String(j.status)}: ${String(j.failureReason)}`);
        return { seconds: (Date.now() - started) / 1000, loopLateMs: late() };
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const imported = await run({ type: 'import', inputBlobContainerUri: uri, outputBlobContainerUri: uri });
  const exportRun = await run({ type: 'export', outputBlobContainerUri: uri, outputBlobName: 'export.txt', excludeKeysInExport: false });
  const exported = (await container.getBlobClient('export.txt').getProperties()).contentLength ?? 0;
  console.log(
    JSON.stringify(
      {
        devices,
        import: { ...imported, devicesPerSecond: Math.round(devices / imported.seconds) },
        export: { ...exportRun, devicesPerSecond: Math.round(devices / exportRun.seconds), bytes: exported },
        peakRssMiB: Math.round(peakRss / 2 ** 20),
      },
      null,
      2,
    ),
  );
} finally {
  clearInterval(sampler);
  await hub.close();
  rmSync(dataDir, { recursive: true, force: true });
}
