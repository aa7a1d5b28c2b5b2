import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventHubConsumerClient, earliestEventPosition } from '@azure/event-hubs';
import { startTestHub, type TestHub } from './support/hub.js';
import { fleethub } from './support/process.js';

/** First error or event count of a one-partition subscription. */
function firstOutcome(client: EventHubConsumerClient): Promise<{ error?: any; ok?: true }> {
  return new Promise((resolve) => {
    const sub = client.subscribe(
      '0',
      {
        processEvents: async () => {
          resolve({ ok: true });
          void sub.close();
        },
        processError: async (error) => {
          resolve({ error });
          void sub.close();
        },
      },
      { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
    );
  });
}

describe('consumer groups: configured and managed with fleethub consumer-group', () => {
  let t: TestHub;
  let cs: string;
  // The CLI reads the same configuration as the hub (here through the environment).
  const cli = (...args: string[]) => fleethub(['consumer-group', ...args, '--data', t.dataDir], { ...process.env, FLEETHUB_CONSUMER_GROUPS: 'fromconfig' });
  before(async () => {
    t = await startTestHub({ consumerGroups: ['fromconfig'] });
    cs = (await t.hub.info()).eventHubCompatibleConnectionString;
  });
  after(() => t.close());

  test('add, list and delete; the running hub serves an added group and refuses a deleted one', async () => {
    assert.equal((await cli('add', 'audit')).code, 0);
    const list = JSON.parse((await cli('list', '--json')).stdout);
    assert.deepEqual(list, ['$Default', 'fromconfig', 'audit']);

    const audit = new EventHubConsumerClient('audit', cs, { retryOptions: { maxRetries: 0 } });
    try {
      // An empty partition: no events, and no error either within a second.
      const outcome = await Promise.race([firstOutcome(audit), new Promise<{ quiet: true }>((r) => setTimeout(() => r({ quiet: true }), 1500))]);
      assert.ok(!('error' in outcome && outcome.error), `unexpected error ${(outcome as any).error?.message}`);
    } finally {
      await audit.close();
    }

    assert.equal((await cli('delete', 'audit')).code, 0);
    const gone = new EventHubConsumerClient('audit', cs, { retryOptions: { maxRetries: 0 } });
    try {
      const { error } = await firstOutcome(gone);
      assert.equal(error?.code, 'MessagingEntityNotFoundError', error?.message);
    } finally {
      await gone.close();
    }
  });

  test('bad names, duplicates, $Default and configured groups are refused and change nothing', async () => {
    for (const args of [['add', 'bad name'], ['add', 'fromconfig'], ['add', '$Default'], ['delete', '$Default'], ['delete', 'fromconfig'], ['delete', 'never-added']]) {
      const ran = await cli(...args);
      assert.notEqual(ran.code, 0, `${args.join(' ')} should fail`);
      assert.ok(ran.stderr.length > 0);
    }
    assert.deepEqual(JSON.parse((await cli('list', '--json')).stdout), ['$Default', 'fromconfig']);
  });
});
