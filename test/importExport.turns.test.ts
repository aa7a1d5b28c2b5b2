import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestHub, type TestHub } from './support/hub.js';
import { sasContainer } from './support/blobs.js';
import { BULK_PER_TURN } from '../src/hub/importExport/bulkJobs.js';

/**
 * A bulk import takes the lines of its blob BULK_PER_TURN (20) per turn of the event loop: the blob comes
 * in chunks of thousands of lines, and taking a chunk in the turn it arrived in held the hub's
 * loop 556 ms for 20,000 devices (bench:importexport), every device's PUBACK waiting. Here over
 * the hub's embedded Azurite: how many devices appear between two turns of the loop.
 */
describe('bulk import: a few lines per turn of the event loop', () => {
  let t: TestHub;
  const LINES = 1500;

  before(async () => {
    // The embedded Azurite on its usual port, at the test hub's own loopback address.
    t = await startTestHub({ ports: { storage: 10000 } as any });
  });
  after(async () => {
    await t?.close();
  });

  test(`${LINES} create-mode lines: at most ${BULK_PER_TURN} devices created in any one turn`, async () => {
    const { client: container, sasUri: uri } = await sasContainer((await t.hub.info()).storageConnectionString, 'turns');
    const body = Array.from({ length: LINES }, (_, i) => JSON.stringify({ id: `turn-${i}`, importMode: 'create', tags: { n: i }, properties: { desired: { k: i } } })).join('\n') + '\n';
    await container.getBlockBlobClient('devices.txt').upload(body, Buffer.byteLength(body));

    // At each turn of the loop, how many devices the registry holds.
    const count = t.hub.store.db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM devices');
    const start = count.get()!.n;
    let last = start;
    let most = 0;
    let watching = true;
    const watch = () => {
      if (!watching) return;
      const n = count.get()!.n;
      most = Math.max(most, n - last);
      last = n;
      setImmediate(watch);
    };
    setImmediate(watch);

    const job = await t.hub.bulkJobs.create({ type: 'import', inputBlobContainerUri: uri, outputBlobContainerUri: uri });
    let status = '';
    for (let i = 0; i < 600 && !['completed', 'failed', 'cancelled'].includes(status); i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await t.hub.bulkJobs.get(job.jobId as string)).status as string;
    }
    watching = false;
    assert.equal(status, 'completed');
    assert.equal(count.get()!.n - start, LINES);
    assert.ok(most > 0 && most <= BULK_PER_TURN, `${most} devices were created in one turn of the event loop`);
    const twin = await t.hub.twins.getTwin('turn-1499');
    assert.deepEqual(twin.tags, { n: 1499 });
  });
});
