import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceBusClient } from '@azure/service-bus';
import { startTestHub, type TestHub } from './support/hub.js';
import { connectAmqp, linksAcrossSasExpiry, namespaceSas } from './support/amqp.js';

/**
 * Service Bus links over time. Flow over one receive link: the client attaches peek-lock receivers
 * with rcv-settle-mode second and never settles after our disposition, so a hub that waits for
 * that settle keeps every delivery in the session's buffer (2048 in rhea) and the receiver stalls
 * for good after ~2000. And a link's life under the SAS token that authorized it.
 */
describe('Service Bus links over time: flow past a session buffer, SAS token expiry and renewal', () => {
  let t: TestHub;
  let client: ServiceBusClient;

  before(async () => {
    t = await startTestHub({ serviceBusNamespaces: [{ name: 'flow-ns', queues: [{ name: 'many' }] }] });
    client = new ServiceBusClient(t.hub.serviceBus!.connectionStrings(t.host)[0]!.connectionString);
  });
  after(async () => {
    await client?.close();
    await t?.close();
  });

  test('2500 messages sent in batches are all received and completed on one subscribed receiver', async () => {
    const total = 2500;
    const sender = client.createSender('many');
    for (let n = 0; n < total; n += 100) await sender.sendMessages(Array.from({ length: 100 }, (_, i) => ({ body: n + i })));
    const receiver = client.createReceiver('many');
    const seen = new Set<number>();
    let completed = 0;
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stalled: ${completed} of ${total} completed`)), 45_000);
      receiver.subscribe(
        {
          processMessage: async (m) => {
            await receiver.completeMessage(m);
            seen.add(m.body as number);
            if (++completed >= total) {
              clearTimeout(timer);
              resolve();
            }
          },
          processError: async () => undefined,
        },
        { autoCompleteMessages: false, maxConcurrentCalls: 100 },
      );
    });
    await done;
    assert.equal(seen.size, total);
    await receiver.close();
    await sender.close();
  });
  // The Service Bus SDK puts a new token on $cbs before the one a link was authorized with expires.
  test('a link lives as long as a SAS token allows it: a renewal keeps it past the first token; without one it is closed with amqp:unauthorized-access', async () => {
    const host = 'flow-ns.servicebus.localhost';
    const audience = `sb://${host}/many`;
    const key = t.hub.serviceBus!.namespaces.listAuthorizationRules('flow-ns').find((r) => r.name === 'RootManageSharedAccessKey')!.primaryKey;
    const connect = () => connectAmqp(t.host, { tls: false, hostname: host } as never);
    const { lapsed, renewed } = await linksAcrossSasExpiry(connect, audience, (ttl) => namespaceSas(audience, 'RootManageSharedAccessKey', key, ttl), 'many');
    assert.equal(lapsed !== 'still open' && lapsed.condition, 'amqp:unauthorized-access', 'the link whose token lapsed is closed');
    assert.match(lapsed !== 'still open' ? lapsed.description ?? '' : '', /ExpiredToken/);
    assert.equal(renewed, 'open', 'the renewed one is not');
  });
});
