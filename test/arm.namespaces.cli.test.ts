import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventHubProducerClient } from '@azure/event-hubs';
import { ServiceBusClient } from '@azure/service-bus';
import { startTestHub, type TestHub } from './support/hub.js';
import { fleethub } from './support/process.js';
import { receiveAll } from './support/serviceBus.js';

/** `fleethub eventhubs …` and `fleethub servicebus …` against a running hub, through its ARM API. */
describe('fleethub eventhubs and servicebus commands', () => {
  let t: TestHub;
  const cli = async (...args: string[]) => {
    const r = await fleethub([...args, '--data', t.dataDir]);
    const out = r.stdout.trim();
    return { ...r, json: r.code === 0 && (out.startsWith('{') || out.startsWith('[')) ? JSON.parse(out) : undefined };
  };
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };

  before(async () => {
    t = await startTestHub();
  });
  after(() => t.close());

  // Each command is a process of its own (seconds on a busy machine): one pass over the commands, the
  // SDK tests (arm.eventhubs.sdk, arm.servicebus.sdk) cover the resources in depth.
  test('eventhubs namespace, hub and rule; keys print connection strings that work; errors are ARM\'s', async () => {
    const ns = await ok('eventhubs', 'namespace', 'create', 'cli-events');
    assert.equal(ns.json.properties.serviceBusEndpoint, 'https://cli-events.servicebus.localhost:443/');
    const hub = await ok('eventhubs', 'hub', 'create', 'orders', '--namespace', 'cli-events', '--partition-count', '2', '--retention-days', '3');
    assert.equal(hub.json.properties.partitionCount, 2);
    assert.equal(hub.json.properties.messageRetentionInDays, 3);
    await ok('eventhubs', 'hub', 'rule', 'sender', '--namespace', 'cli-events', '--entity', 'orders', '--rights', 'Send');
    const keys = await ok('eventhubs', 'hub', 'keys', 'orders', '--namespace', 'cli-events', '--rule', 'sender');
    assert.match(keys.json.primaryConnectionString, /^Endpoint=sb:\/\/cli-events\.servicebus\.localhost\/;SharedAccessKeyName=sender;.*;EntityPath=orders$/);
    const producer = new EventHubProducerClient(keys.json.primaryConnectionString, { retryOptions: { maxRetries: 0 } });
    await producer.sendBatch([{ body: 'from cli keys' }]);
    await producer.close();
    const bad = await cli('eventhubs', 'hub', 'create', 'big', '--namespace', 'cli-events', '--partition-count', '64');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /InvalidRequestContent/);
    assert.equal(t.hub.eventHubs!.namespaces.getEventHub('cli-events', 'big'), undefined);
    await ok('eventhubs', 'namespace', 'delete', 'cli-events');
    assert.equal(t.hub.eventHubs!.namespaces.getNamespace('cli-events'), undefined);
  });

  test('servicebus namespace, queue, topic, subscription, rule, list; keys print connection strings that work', async () => {
    await ok('servicebus', 'namespace', 'create', 'cli-bus-ns');
    const q = await ok('servicebus', 'queue', 'create', 'jobs', '--namespace', 'cli-bus-ns', '--lock-duration', 'PT20S', '--max-delivery-count', '3', '--dead-letter-on-expiry');
    assert.equal(q.json.properties.lockDuration, 'PT20S');
    assert.equal(q.json.properties.maxDeliveryCount, 3);
    assert.equal(q.json.properties.deadLetteringOnMessageExpiration, true);
    await ok('servicebus', 'topic', 'create', 'alerts', '--namespace', 'cli-bus-ns');
    await ok('servicebus', 'subscription', 'create', 'critical', '--namespace', 'cli-bus-ns', '--topic', 'alerts');
    await ok('servicebus', 'rule', 'create', 'sev', '--namespace', 'cli-bus-ns', '--topic', 'alerts', '--subscription', 'critical', '--sql', 'severity >= 3');
    const badRule = await cli('servicebus', 'rule', 'create', 'bad', '--namespace', 'cli-bus-ns', '--topic', 'alerts', '--subscription', 'critical', '--sql', 'severity >=');
    assert.notEqual(badRule.code, 0);
    assert.match(badRule.stderr, /InvalidRequestContent/);
    assert.deepEqual((await ok('servicebus', 'rule', 'list', '--namespace', 'cli-bus-ns', '--topic', 'alerts', '--subscription', 'critical')).json.map((r: { name: string }) => r.name).sort(), ['$Default', 'sev']);
    t.hub.serviceBus!.namespaces.deleteRule('cli-bus-ns', 'alerts', 'critical', '$Default');

    const keys = await ok('servicebus', 'namespace', 'keys', 'cli-bus-ns');
    const sb = new ServiceBusClient(keys.json.primaryConnectionString, { retryOptions: { maxRetries: 0 } });
    try {
      await sb.createSender('alerts').sendMessages([{ body: 'low', applicationProperties: { severity: 1 } }, { body: 'high', applicationProperties: { severity: 4 } }]);
      const r = sb.createReceiver('alerts', 'critical', { receiveMode: 'receiveAndDelete' });
      assert.deepEqual((await receiveAll(r, 1)).map((m) => m.body), ['high']);
      await r.close();
    } finally {
      await sb.close();
    }
    await ok('servicebus', 'namespace', 'delete', 'cli-bus-ns');
    assert.deepEqual((await ok('servicebus', 'namespace', 'list')).json, []);
  });
});
