/**
 * A consumer whose credit exceeds what one AMQP session may hold unsettled (rhea: 2,048
 * deliveries): the SDK grants 3 × maxBatchSize per partition by default, so `maxBatchSize: 1000`
 * asks for 3,000. The hub must send within the session's window and go on as settlements free it;
 * sending past it once wedged the session (rhea's "Next pending delivery not found") and the
 * consumer stopped receiving for good.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventHubConsumerClient } from '@azure/event-hubs';
import { startTestHub, type TestHub } from './support/hub.js';

const EVENTS = 6000;
let t: TestHub;

before(async () => {
  t = await startTestHub();
});
after(async () => {
  await t.close();
});

test('a consumer prefetching more than a session window (maxBatchSize 1000) receives every event', async () => {
  const log = t.hub.store.eventLog;
  const start = (await log.partitionInfo(0)).lastSequenceNumber;
  for (let i = 0; i < EVENTS; i += 1000) {
    await log.append(Array.from({ length: 1000 }, (_, j) => ({ partition: 0, enqueuedTime: Date.now(), body: Buffer.from(`{"n":${i + j}}`), systemProperties: {}, properties: {} })));
  }
  const client = new EventHubConsumerClient('$Default', (await t.hub.info()).eventHubCompatibleConnectionString);
  const seen = new Set<number>();
  let failure: Error | undefined;
  const subscription = client.subscribe(
    '0',
    {
      processEvents: async (events) => {
        for (const e of events) seen.add((e.body as { n: number }).n);
      },
      processError: async (err) => {
        failure = err;
      },
    },
    { startPosition: { sequenceNumber: start }, maxBatchSize: 1000, maxWaitTimeInSeconds: 1 },
  );
  try {
    const until = Date.now() + 30_000;
    while (seen.size < EVENTS && !failure && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  } finally {
    await subscription.close();
    await client.close();
  }
  assert.equal(failure, undefined);
  assert.equal(seen.size, EVENTS);
});
