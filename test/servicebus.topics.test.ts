import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceBusClient } from '@azure/service-bus';
import { startTestHub, type TestHub } from './support/hub.js';
import { receiveAll } from './support/serviceBus.js';
import { createSasToken } from '../src/core/sas.js';

describe('Service Bus topics, filters and bad input through the unmodified @azure/service-bus', () => {
  let t: TestHub;
  let client: ServiceBusClient;
  let cs: string;

  before(async () => {
    t = await startTestHub({
      serviceBusTimerMs: 50,
      serviceBusNamespaces: [
        {
          name: 'events-ns',
          queues: [{ name: 'inbox' }],
          topics: [
            {
              name: 'alerts',
              subscriptions: [
                { name: 'all' },
                { name: 'critical', rules: [{ name: 'sev', sqlExpression: "severity >= 3 AND sys.Label LIKE 'disk%'" }] },
                { name: 'ops', rules: [{ name: 'to-ops', correlationFilter: { to: 'ops', properties: { region: 'eu' } } }] },
              ],
            },
          ],
        },
        { name: 'other-ns', queues: [{ name: 'inbox' }] },
      ],
    });
    const strings = t.hub.serviceBus!.connectionStrings(t.host);
    cs = strings.find((s) => s.namespace === 'events-ns')!.connectionString;
    client = new ServiceBusClient(cs);
  });
  after(async () => {
    await client?.close();
    await t?.close();
  });

  test('a topic fans out to its subscriptions through their SQL and correlation filters', async () => {
    const sender = client.createSender('alerts');
    await sender.sendMessages([
      { body: 'disk-full', subject: 'disk.full', applicationProperties: { severity: 4, region: 'us' } },
      { body: 'disk-slow', subject: 'disk.slow', applicationProperties: { severity: 1, region: 'eu' }, to: 'ops' },
      { body: 'cpu-hot', subject: 'cpu', applicationProperties: { severity: 5, region: 'eu' }, to: 'ops' },
      { body: 'no-severity', subject: 'disk.x', to: 'dev' },
    ]);
    const bodies = async (sub: string, n: number) =>
      (await receiveAll(client.createReceiver('alerts', sub, { receiveMode: 'receiveAndDelete' }), n, n ? 4000 : 800)).map((m) => m.body);
    assert.deepEqual(await bodies('all', 4), ['disk-full', 'disk-slow', 'cpu-hot', 'no-severity'], '$Default is a true filter');
    assert.deepEqual(await bodies('critical', 1), ['disk-full']);
    assert.deepEqual(await bodies('critical', 0), [], 'a missing property does not match');
    assert.deepEqual(await bodies('ops', 2), ['disk-slow', 'cpu-hot']);
    await sender.close();
  });

  test('subscriptions settle and dead-letter like queues, with their own dead-letter subqueue', async () => {
    await client.createSender('alerts').sendMessages({ body: 'poison', subject: 'disk.bad', applicationProperties: { severity: 9 } });
    const receiver = client.createReceiver('alerts', 'critical');
    const [m] = await receiveAll(receiver, 1);
    await receiver.deadLetterMessage(m!, { deadLetterReason: 'Bad', deadLetterErrorDescription: 'no' });
    const dlq = client.createReceiver('alerts', 'critical', { subQueueType: 'deadLetter' });
    const [dead] = await receiveAll(dlq, 1);
    assert.equal(dead?.body, 'poison');
    assert.equal(dead?.deadLetterReason, 'Bad');
    await dlq.completeMessage(dead!);
    await receiveAll(client.createReceiver('alerts', 'all', { receiveMode: 'receiveAndDelete' }), 1);
  });

  test('unknown entities are amqp:not-found (MessagingEntityNotFound); the connection carries on', async () => {
    await assert.rejects(client.createSender('nope').sendMessages({ body: 1 }), (e: { code?: string }) => e.code === 'MessagingEntityNotFound');
    await assert.rejects(client.createReceiver('alerts', 'nope').receiveMessages(1, { maxWaitTimeInMs: 500 }), (e: { code?: string }) => e.code === 'MessagingEntityNotFound');
    await assert.rejects(client.createReceiver('nope').peekMessages(1), (e: { code?: string }) => e.code === 'MessagingEntityNotFound');
    await client.createSender('inbox').sendMessages({ body: 'still fine' });
    const [m] = await receiveAll(client.createReceiver('inbox', { receiveMode: 'receiveAndDelete' }), 1);
    assert.equal(m?.body, 'still fine');
  });

  test('an oversize message is refused (MessageSizeExceeded) and nothing is stored', async () => {
    const sender = client.createSender('inbox');
    await assert.rejects(sender.sendMessages({ body: Buffer.alloc(300 * 1024) }), (e: { code?: string }) => e.code === 'MessageSizeExceeded');
    assert.equal((await client.createReceiver('inbox').peekMessages(5)).length, 0);
    await sender.close();
  });

  test('session receivers are refused clearly', async () => {
    const noRetry = new ServiceBusClient(cs, { retryOptions: { maxRetries: 0 } });
    await assert.rejects(noRetry.acceptSession('inbox', 's1'), (e: Error) => {
      assert.match(e.message, /Session receivers are not supported/);
      return true;
    });
    await noRetry.close();
  });

  test('keys decide the namespace: another namespace\'s key or a wrong key is refused', async () => {
    const otherCs = t.hub.serviceBus!.connectionStrings(t.host).find((s) => s.namespace === 'other-ns')!.connectionString;
    const other = new ServiceBusClient(otherCs);
    const noRetry = { retryOptions: { maxRetries: 0 } };
    await other.createSender('inbox').sendMessages({ body: 'for other' });
    assert.equal((await client.createReceiver('inbox').peekMessages(5)).length, 0, 'same queue name, another namespace');
    const [m] = await receiveAll(other.createReceiver('inbox', { receiveMode: 'receiveAndDelete' }), 1);
    assert.equal(m?.body, 'for other');
    await other.close();
    const wrong = new ServiceBusClient(cs.replace(/SharedAccessKey=[^;]+/, 'SharedAccessKey=' + Buffer.alloc(32, 1).toString('base64')), noRetry);
    await assert.rejects(wrong.createSender('inbox').sendMessages({ body: 'x' }), (e: { code?: string }) => e.code === 'UnauthorizedAccess');
    await wrong.close();
  });

  test('an entity-level policy only reaches its entity, and only with its rights', async () => {
    const ns = t.hub.serviceBus!.namespaces;
    const listen = ns.putAuthorizationRule('events-ns', 'inbox', 'inbox-listen', ['Listen']);
    const entityCs = `Endpoint=sb://${t.host}/;SharedAccessKeyName=inbox-listen;SharedAccessKey=${listen.primaryKey}`;
    const scoped = new ServiceBusClient(entityCs, { retryOptions: { maxRetries: 0 } });
    assert.deepEqual(await scoped.createReceiver('inbox').peekMessages(1), []);
    await assert.rejects(scoped.createSender('inbox').sendMessages({ body: 'x' }), (e: { code?: string }) => e.code === 'UnauthorizedAccess');
    await assert.rejects(scoped.createReceiver('alerts', 'all').peekMessages(1), (e: { code?: string }) => e.code === 'UnauthorizedAccess');
    await scoped.close();
    void createSasToken;
  });

  test('a malformed filter is refused with its position; rule actions are refused', () => {
    const ns = t.hub.serviceBus!.namespaces;
    assert.throws(() => ns.putRule('events-ns', 'alerts', 'all', 'bad', { filterType: 'SqlFilter', sqlFilter: { sqlExpression: 'severity >' } }), /position 11/);
    assert.throws(() => ns.putRule('events-ns', 'alerts', 'all', 'act', { filterType: 'SqlFilter', sqlFilter: { sqlExpression: '1=1' }, action: { sqlExpression: "SET x = 'y'" } }), /actions are not supported/);
    assert.deepEqual(ns.listRules('events-ns', 'alerts', 'all').map((r) => r.name), ['$Default']);
  });
});
