import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import iothub from 'azure-iothub';
import { freeLoopbackAddress } from './support/hub.js';
import { dataDirWithTestCa, spawnHub } from './support/process.js';
import { eventually } from './support/devices.js';
import { sasContainer } from './support/blobs.js';
import { databasePath } from '../src/info.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';

const cli = fileURLToPath(new URL('../src/cli/index.js', import.meta.url));
const LINES = 8_000;

/**
 * A bulk import (`Registry.importDevicesFromBlob`, over the embedded Azurite) in a Fleethub child
 * process that is SIGKILLed mid-job: after restart the job resumes where it was (not from zero)
 * and completes, and every line was applied exactly once (create-mode lines replayed would be
 * DeviceAlreadyExists errors in importErrors.log).
 */
describe('durability: a bulk import survives SIGKILL of the hub', () => {
  let host: string;
  let dataDir: string;
  let hub: ChildProcess | undefined;

  const startHub = () => spawnHub(dataDir, []);

  before(async () => {
    host = await freeLoopbackAddress();
    dataDir = dataDirWithTestCa('fleethub-import-durability-');
    writeFileSync(join(dataDir, 'fleethub.json'), JSON.stringify({ hostName: host, bind: host, ports: { https: 443, mqtt: 0, amqp: 0, amqpEmulator: 0, storage: 10000 } }));
  });
  after(() => {
    hub?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test(`an import of ${LINES} create-mode lines is killed mid-job, resumes after restart and applies every line once`, async () => {
    hub = await startHub();
    const infoRun = spawnSync(process.execPath, [cli, '--data', dataDir, 'info', '--json'], { cwd: dataDir, encoding: 'utf8' });
    assert.equal(infoRun.status, 0, infoRun.stderr);
    const info = JSON.parse(infoRun.stdout) as { iothubownerConnectionString: string; storageConnectionString: string };
    const { client: container, sasUri: uri } = await sasContainer(info.storageConnectionString, 'bulk');
    // Early lines that fail (deleting a device that is not there): their errors wait for
    // importErrors.log across the kill, and must be reported once each.
    const failing = (i: number) => i < 600 && i % 20 === 0;
    const lines = Array.from({ length: LINES }, (_, i) =>
      JSON.stringify(failing(i) ? { id: `missing-${i}`, importMode: 'delete' } : { id: `bulk-${i}`, importMode: 'create', status: 'enabled', tags: { n: i } }),
    );
    const expectedErrors = lines.map((_, i) => i).filter(failing).map((i) => i + 1);
    const body = lines.join('\n') + '\n';
    await container.getBlockBlobClient('devices.txt').upload(body, Buffer.byteLength(body));
    // Azurite saves its blob metadata every few seconds: let the upload reach its disk before the kill.
    await new Promise((r) => setTimeout(r, 6000));

    const registry = iothub.Registry.fromConnectionString(info.iothubownerConnectionString);
    const job = (await registry.importDevicesFromBlob(uri, uri)) as unknown as { jobId: string };
    let before = 0;
    await eventually(async () => {
      before = ((await registry.getJob(job.jobId)) as unknown as { progress: number }).progress;
      return before >= 10;
    }, 40_000);
    hub.kill('SIGKILL');
    await new Promise((r) => hub!.once('exit', r));

    hub = await startHub();
    const registry2 = iothub.Registry.fromConnectionString(info.iothubownerConnectionString);
    const resumed = (await registry2.getJob(job.jobId)) as unknown as { status: string; progress: number };
    assert.ok(resumed.progress >= before, `the job went back from ${before}% to ${resumed.progress}%`);
    const done = await eventually(async () => {
      const j = (await registry2.getJob(job.jobId)) as unknown as { status: string; progress: number; failureReason?: string };
      return ['completed', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
    }, 60_000);
    assert.equal(done.status, 'completed', done.failureReason);

    const errorsLog = container.getBlobClient('importErrors.log');
    const errors = (await errorsLog.exists()) ? (await errorsLog.downloadToBuffer()).toString() : '';
    const reported = errors.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { line: number });
    assert.deepEqual(
      reported.map((e) => e.line).sort((a, b) => a - b),
      expectedErrors,
      `importErrors.log should hold the failing lines once each (a create replayed would add DeviceAlreadyExists): ${errors.slice(0, 500)}`,
    );
    hub.kill('SIGTERM');
    await new Promise((r) => hub!.once('exit', r));
    hub = undefined;

    const store = openSqliteStore(databasePath(dataDir));
    try {
      const { n } = store.db.prepare("SELECT count(*) AS n FROM devices WHERE device_id LIKE 'bulk-%'").get() as { n: number };
      assert.equal(n, LINES - expectedErrors.length);
      const versions = store.db.prepare("SELECT version, count(*) AS n FROM twins WHERE device_id LIKE 'bulk-%' GROUP BY version").all() as { version: number; n: number }[];
      assert.equal(versions.length, 1, `twin versions differ (a line applied twice?): ${JSON.stringify(versions)}`);
      const wrongTag = store.db.prepare("SELECT count(*) AS n FROM twins WHERE device_id LIKE 'bulk-%' AND json_extract(doc, '$.tags.n') <> CAST(substr(device_id, 6) AS INTEGER)").get() as { n: number };
      assert.equal(wrongTag.n, 0);
    } finally {
      store.close();
    }
  });
});
