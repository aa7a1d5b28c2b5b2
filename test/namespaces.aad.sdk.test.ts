import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ClientSecretCredential, ManagedIdentityCredential } from '@azure/identity';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { ServiceBusClient } from '@azure/service-bus';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { SignJWT, decodeJwt, generateKeyPair } from 'jose';
import { startTestHub, type TestHub } from './support/hub.js';
import { addHostEntry, removeHostEntry } from './support/resolve.js';
import { receiveAll } from './support/serviceBus.js';
import { within } from './support/sdk.js';
import { connectAmqp, linkClosed } from './support/amqp.js';
import { armEndpoint } from './support/arm.js';
import { openControlDatabase } from '../src/store/sqlite/control.js';
import { openSqliteIdentityStore } from '../src/store/sqlite/identity.js';
import { StoredPrincipals } from '../src/identity/principals.js';
import { LocalTokenService } from '../src/identity/tokens.js';
import { findRole } from '../src/identity/roles.js';
import type { Principal } from '../src/identity/types.js';

const EH_NAMESPACE = 'aad-telemetry';
const SB_NAMESPACE = 'aad-orders';
const EH_HOST = `${EH_NAMESPACE}.servicebus.localhost`;
const SB_HOST = `${SB_NAMESPACE}.servicebus.localhost`;
/** Refusals are not retried (the SDKs would retry for half a minute). */
const noRetry = { retryOptions: { maxRetries: 0, timeoutInMs: 10_000 } };

type TokenCredential = { getToken(scopes: string | string[]): Promise<{ token: string; expiresOnTimestamp: number } | null> };

/** The first error a subscription reports, or the events once `count` came (10 s at most). */
async function subscribe(client: EventHubConsumerClient, partitionId: string, count: number): Promise<{ events: ReceivedEventData[]; error?: Error }> {
  const events: ReceivedEventData[] = [];
  let settle!: (e?: Error) => void;
  const done = new Promise<Error | undefined>((res) => (settle = res));
  const subscription = client.subscribe(
    partitionId,
    {
      processEvents: async (batch) => {
        events.push(...batch);
        if (events.length >= count) settle(undefined);
      },
      processError: async (err) => settle(err),
    },
    { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
  );
  const timer = setTimeout(() => settle(new Error(`timed out with ${events.length} of ${count} events`)), 10_000);
  try {
    const error = await done;
    return { events, ...(error ? { error } : {}) };
  } finally {
    clearTimeout(timer);
    await subscription.close();
  }
}

/** For assert.rejects: the SDK's unauthorized error whose message names `principalId` and `action`. */
const unauthorized = (principalId: string, action: RegExp) => (e: unknown) => {
  const err = e as Error & { code?: string };
  assert.ok(err.code === 'UnauthorizedError' || err.code === 'UnauthorizedAccess', `expected an unauthorized error, got ${err.code}: ${err.message}`);
  assert.ok(err.message.includes(principalId), `the message names the principal: ${err.message}`);
  assert.match(err.message, action);
  return true;
};

describe('Azure AD on local Event Hubs and Service Bus namespaces, authorized by data roles', () => {
  let t: TestHub;
  let admin: ClientSecretCredential;
  let adminId: string;
  let system: Principal;
  let uai: Principal;
  let subscriptionId: string;
  let group: string;
  let ehNamespaceId: string;
  let sbNamespaceId: string;
  let arm: AuthorizationManagementClient;

  before(async () => {
    addHostEntry(EH_HOST, '127.0.0.1');
    addHostEntry(SB_HOST, '127.0.0.1');
    t = await startTestHub({
      // The namespaces' host names, so the server certificate covers them.
      extraHostNames: [EH_HOST, SB_HOST],
      eventHubsNamespaces: [{ name: EH_NAMESPACE, eventHubs: [{ name: 'orders', partitionCount: 2 }, { name: 'other', partitionCount: 1 }] }],
      serviceBusNamespaces: [{ name: SB_NAMESPACE, queues: [{ name: 'jobs' }, { name: 'other' }], topics: [{ name: 'alerts', subscriptions: [{ name: 'all' }] }] }],
    });
    addHostEntry(EH_HOST, t.host);
    addHostEntry(SB_HOST, t.host);
    const info = await t.hub.info();
    process.env.IDENTITY_ENDPOINT = info.identityEndpoint!;
    process.env.IDENTITY_HEADER = info.identityHeader!;
    const m = info.management!;
    subscriptionId = m.subscriptionId;
    group = `/subscriptions/${subscriptionId}/resourceGroups/${m.resourceGroup}`;
    ehNamespaceId = `${group}/providers/Microsoft.EventHub/namespaces/${EH_NAMESPACE}`;
    sbNamespaceId = `${group}/providers/Microsoft.ServiceBus/namespaces/${SB_NAMESPACE}`;
    admin = new ClientSecretCredential(m.tenantId, m.clientId, m.clientSecret, { authorityHost: m.authorityHost, disableInstanceDiscovery: true });
    adminId = decodeJwt((await admin.getToken('https://servicebus.azure.net//.default')).token).oid as string;
    arm = new AuthorizationManagementClient(admin, subscriptionId, armEndpoint(t));
    const hubId = t.hub.identity.hubResourceId(t.hub.config.hubName)!;
    uai = await t.hub.identity.principals.create('userAssigned', `${group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aad-sender`, 'aad-sender');
    system = (await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: true, userAssigned: [uai.resourceId!] })).systemAssigned!;
  });
  after(async () => {
    delete process.env.IDENTITY_ENDPOINT;
    delete process.env.IDENTITY_HEADER;
    removeHostEntry(EH_HOST);
    removeHostEntry(SB_HOST);
    await t?.close();
  });

  const viaIdentityArea = new Set<string>();
  /**
   * A role assignment through the ARM REST API (as `az role assignment create` makes it); returns
   * its id. ARM refuses scopes it does not know: until the namespaces are ARM resources (made in
   * parallel), assignments at their scopes go straight into the store ARM writes.
   */
  const assign = async (role: string, scope: string, principalId: string): Promise<string> => {
    const roleDefinitionId = `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${findRole(role)!.id}`;
    try {
      return (await arm.roleAssignments.create(scope, randomUUID(), { roleDefinitionId, principalId, principalType: 'ServicePrincipal' })).id!;
    } catch (e) {
      if ((e as { code?: string }).code !== 'ResourceNotFound') throw e;
      const a = await t.hub.identity.roleAssignments.create({ name: randomUUID(), scope, roleDefinitionId, principalId, principalType: 'ServicePrincipal' });
      viaIdentityArea.add(a.id);
      return a.id;
    }
  };
  const unassign = async (id: string) => {
    if (viaIdentityArea.delete(id)) await t.hub.identity.roleAssignments.delete(id);
    else await arm.roleAssignments.deleteById(id);
  };

  /** A token of Fleethub's own key for `principalId`, issued `ms` ago (tokens live an hour). */
  const tokenIssuedAgo = async (principalId: string, ms: number, audience: string): Promise<string> => {
    const db = openControlDatabase(t.dataDir);
    try {
      const store = openSqliteIdentityStore(db);
      const tenancy = t.hub.identity.tenancy;
      const past = await LocalTokenService.open(store, tenancy.tenantId, new StoredPrincipals(store, tenancy.tenantId), { now: () => Date.now() - ms });
      return (await past.issue((await t.hub.identity.principals.get(principalId))!, audience)).token;
    } finally {
      db.close();
    }
  };

  test('Event Hubs, system-assigned managed identity: refused without a role, naming the principal and the data action', async () => {
    const producer = new EventHubProducerClient(EH_HOST, 'orders', new ManagedIdentityCredential(), noRetry);
    try {
      await assert.rejects(producer.sendBatch([{ body: 'no role' }], { partitionId: '0' }), unauthorized(system.principalId, /Microsoft\.EventHub\/namespaces\/messages\/send\/action/));
    } finally {
      await producer.close();
    }
  });

  test('Event Hubs Data Sender at the event hub: properties read and sends go through, receiving is refused; Data Receiver at the namespace then receives', async () => {
    const sender = await assign('Azure Event Hubs Data Sender', `${ehNamespaceId}/eventhubs/orders`, system.principalId);
    const producer = new EventHubProducerClient(EH_HOST, 'orders', new ManagedIdentityCredential(), noRetry);
    const consumer = new EventHubConsumerClient('$Default', EH_HOST, 'orders', new ManagedIdentityCredential(), noRetry);
    try {
      const props = await producer.getEventHubProperties();
      assert.deepEqual(props.partitionIds, ['0', '1']);
      assert.equal((await producer.getPartitionProperties('1')).partitionId, '1');
      await producer.sendBatch([{ body: 'with a role', properties: { n: 1 } }], { partitionId: '1' });
      // The role is the event hub's: another event hub of the namespace is refused.
      const other = new EventHubProducerClient(EH_HOST, 'other', new ManagedIdentityCredential(), noRetry);
      await assert.rejects(other.sendBatch([{ body: 'x' }]), unauthorized(system.principalId, /send\/action/)).finally(() => other.close());

      const refused = await subscribe(consumer, '1', 1);
      assert.ok(refused.error, 'the Data Sender cannot receive');
      assert.ok(/unauthori/i.test(`${(refused.error as { code?: string }).code} ${refused.error.message}`), refused.error.message);
      assert.ok(refused.error.message.includes(system.principalId), refused.error.message);
      assert.match(refused.error.message, /Microsoft\.EventHub\/namespaces\/messages\/receive\/action/);

      const receiver = await assign('Azure Event Hubs Data Receiver', ehNamespaceId, system.principalId);
      const got = await subscribe(consumer, '1', 1);
      assert.equal(got.error, undefined);
      assert.equal(got.events[0]!.body, 'with a role');
      assert.deepEqual(got.events[0]!.properties, { n: 1 });
      await unassign(receiver);
    } finally {
      await consumer.close();
      await producer.close();
      await unassign(sender);
    }
  });

  test('Event Hubs: a deleted role assignment refuses the next attach, on the same connection too', async () => {
    const owner = await assign('Azure Event Hubs Data Owner', ehNamespaceId, system.principalId);
    const producer = new EventHubProducerClient(EH_HOST, 'other', new ManagedIdentityCredential(), noRetry);
    try {
      await producer.sendBatch([{ body: 'before' }]);
      await unassign(owner);
      // A partition's sender is a new link on the same connection.
      await assert.rejects(producer.sendBatch([{ body: 'after' }], { partitionId: '0' }), unauthorized(system.principalId, /send\/action/));
    } finally {
      await producer.close();
    }
    const again = new EventHubProducerClient(EH_HOST, 'other', new ManagedIdentityCredential(), noRetry);
    try {
      await assert.rejects(again.sendBatch([{ body: 'after' }]), unauthorized(system.principalId, /send\/action/));
    } finally {
      await again.close();
    }
  });

  test('Service Bus, admin service principal: Data Receiver at the resource group is inherited; Data Sender at the queue sends; a subscription receiver is authorized at its topic', async () => {
    const client = new ServiceBusClient(SB_HOST, admin, noRetry);
    try {
      const sender = client.createSender('jobs');
      await assert.rejects(sender.sendMessages({ body: 'no role' }), unauthorized(adminId, /Microsoft\.ServiceBus\/namespaces\/messages\/send\/action/));
      await sender.close();

      const send = await assign('Azure Service Bus Data Sender', `${sbNamespaceId}/queues/jobs`, adminId);
      const sender2 = client.createSender('jobs');
      await sender2.sendMessages({ body: 'from Azure AD', messageId: 'aad-1' });
      await sender2.close();
      // Data Sender does not receive.
      const early = client.createReceiver('jobs');
      await assert.rejects(early.receiveMessages(1, { maxWaitTimeInMs: 2000 }), unauthorized(adminId, /receive\/action/));
      await assert.rejects(early.peekMessages(1), unauthorized(adminId, /receive\/action/));
      await early.close();

      const receive = await assign('Azure Service Bus Data Receiver', group, adminId);
      const receiver = client.createReceiver('jobs');
      assert.equal((await receiver.peekMessages(1))[0]?.messageId, 'aad-1', 'peek ($management) with the inherited role');
      const [m] = await receiveAll(receiver, 1);
      assert.equal(m?.body, 'from Azure AD');
      await receiver.completeMessage(m!);
      await receiver.close();

      // The topic: Data Sender at the topic; the subscription's receiver goes by the topic's scope (inherited Receiver here).
      const topicSender = await assign('Azure Service Bus Data Sender', `${sbNamespaceId}/topics/alerts`, adminId);
      const ts = client.createSender('alerts');
      await ts.sendMessages({ body: 'alert' });
      await ts.close();
      const sub = client.createReceiver('alerts', 'all', { receiveMode: 'receiveAndDelete' });
      assert.deepEqual((await receiveAll(sub, 1)).map((x) => x.body), ['alert']);
      await sub.close();
      for (const id of [send, receive, topicSender]) await unassign(id);
    } finally {
      await client.close();
    }
  });

  test('Service Bus, user-assigned managed identity: Data Owner at the namespace sends and receives; after the assignment is deleted the next attach is refused', async () => {
    const owner = await assign('Azure Service Bus Data Owner', sbNamespaceId, uai.principalId);
    const client = new ServiceBusClient(SB_HOST, new ManagedIdentityCredential({ clientId: uai.clientId }), noRetry);
    try {
      const sender = client.createSender('other');
      await sender.sendMessages([{ body: 'one' }, { body: 'two' }]);
      const receiver = client.createReceiver('other', { receiveMode: 'receiveAndDelete' });
      assert.deepEqual((await receiveAll(receiver, 2)).map((m) => m.body), ['one', 'two']);
      await unassign(owner);
      // Open links keep going until the token is renewed; a new link (same connection, same queue) is refused.
      const next = client.createSender('other');
      await assert.rejects(next.sendMessages({ body: 'after' }), unauthorized(uai.principalId, /send\/action/));
      await next.close();
      const nextReceiver = client.createReceiver('other');
      await assert.rejects(nextReceiver.receiveMessages(1, { maxWaitTimeInMs: 2000 }), unauthorized(uai.principalId, /receive\/action/));
      await nextReceiver.close();
      await sender.close();
      await receiver.close();
    } finally {
      await client.close();
    }
  });

  test("Service Bus: roles at a topic cover its subscriptions' receivers, and nothing else", async () => {
    const ids = [
      await assign('Azure Service Bus Data Sender', `${sbNamespaceId}/topics/alerts`, uai.principalId),
      await assign('Azure Service Bus Data Receiver', `${sbNamespaceId}/topics/alerts`, uai.principalId),
    ];
    const client = new ServiceBusClient(SB_HOST, new ManagedIdentityCredential({ clientId: uai.clientId }), noRetry);
    try {
      const sender = client.createSender('alerts');
      await sender.sendMessages({ body: 'to the topic' });
      const sub = client.createReceiver('alerts', 'all');
      const [m] = await receiveAll(sub, 1);
      assert.equal(m?.body, 'to the topic');
      await sub.completeMessage(m!);
      const queue = client.createReceiver('jobs');
      await assert.rejects(queue.receiveMessages(1, { maxWaitTimeInMs: 2000 }), unauthorized(uai.principalId, /receive\/action/));
      for (const l of [sender, sub, queue]) await l.close();
    } finally {
      await client.close();
      for (const id of ids) await unassign(id);
    }
  });

  test('a token that is garbage, signed by another key, expired, or for another audience is refused at put-token; the audience forms Azure takes are taken', async () => {
    await assign('Azure Event Hubs Data Owner', ehNamespaceId, adminId);
    await assign('Azure Service Bus Data Owner', sbNamespaceId, adminId);
    const real = await admin.getToken('https://eventhubs.azure.net//.default');
    const claims = decodeJwt(real.token);
    const { privateKey } = await generateKeyPair('RS256');
    const foreign = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign(privateKey);
    // A token of Fleethub's own key, issued two hours ago (an hour's lifetime).
    const expired = await tokenIssuedAgo(adminId, 2 * 3600_000, 'https://eventhubs.azure.net/');
    const wrongAudience = (await admin.getToken('https://iothubs.azure.net/.default')).token;
    const fixed = (token: string): TokenCredential => ({ getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600_000 }) });
    const cases: [string, string, RegExp][] = [
      ['garbage', 'eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln', /^InvalidToken: The access token is not valid/],
      ['foreign-signed', foreign, /^InvalidToken: .*signature verification failed/],
      ['expired', expired, /^InvalidToken: .*"exp" claim/],
      ['wrong audience', wrongAudience, /^InvalidToken: The access token's audience 'https:\/\/iothubs\.azure\.net' is not accepted/],
    ];
    for (const [what, token, message] of cases) {
      const producer = new EventHubProducerClient(EH_HOST, 'orders', fixed(token), noRetry);
      await assert.rejects(producer.sendBatch([{ body: what }], { partitionId: '0' }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'UnauthorizedError', `${what}: ${e.message}`);
        assert.match(e.message, message);
        return true;
      });
      await producer.close();
      const client = new ServiceBusClient(SB_HOST, fixed(token), noRetry);
      await assert.rejects(client.createSender('jobs').sendMessages({ body: what }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'UnauthorizedAccess', `${what}: ${e.message}`);
        assert.match(e.message, message);
        return true;
      });
      await client.close();
    }
    // The real token still works, and so do the audience's other forms Azure takes.
    const principal = (await t.hub.identity.principals.get(adminId))!;
    const issued = async (aud: string) => fixed((await t.hub.identity.tokens.issue(principal, aud)).token);
    for (const aud of ['https://eventhubs.azure.net/', 'https://eventhubs.azure.net', 'https://eventhubs.azure.net/.default', 'https://servicebus.azure.net/']) {
      const producer = new EventHubProducerClient(EH_HOST, 'orders', await issued(aud), noRetry);
      await producer.sendBatch([{ body: aud }], { partitionId: '0' }).finally(() => producer.close());
    }
    for (const aud of ['https://servicebus.azure.net/', 'https://servicebus.azure.net/.default']) {
      const client = new ServiceBusClient(SB_HOST, await issued(aud), noRetry);
      await client.createSender('jobs').sendMessages({ body: aud }).finally(() => client.close());
    }
    // Service Bus does not take an Event Hubs token.
    const client = new ServiceBusClient(SB_HOST, await issued('https://eventhubs.azure.net/'), noRetry);
    await assert.rejects(client.createSender('jobs').sendMessages({ body: 'eh token' }), (e: Error & { code?: string }) => e.code === 'UnauthorizedAccess' && /audience/.test(e.message));
    await client.close();
  });

  test('without a new token, the next attach looks the roles up again; a renewal (put-token again) ends the links whose role is gone', async () => {
    const receiver = await assign('Azure Event Hubs Data Receiver', `${ehNamespaceId}/eventhubs/orders`, uai.principalId);
    const token = async () => (await new ManagedIdentityCredential({ clientId: uai.clientId }).getToken('https://eventhubs.azure.net//.default')).token;
    const c = await connectAmqp(t.host, { hostname: EH_HOST, servername: EH_HOST } as never);
    try {
      const put = async () =>
        (await c.request('$cbs', { application_properties: { operation: 'put-token', type: 'jwt', name: `sb://${EH_HOST}/orders` }, body: await token() })).application_properties!['status-code'];
      assert.equal(await put(), 200);
      const link = await c.receiver('orders/ConsumerGroups/$Default/Partitions/0');
      assert.ok(link.is_open());
      const closed = linkClosed(link);
      await unassign(receiver);
      // The same token, another link: refused.
      const second = c.connection.open_receiver({ source: { address: 'orders/ConsumerGroups/$Default/Partitions/1' } });
      const refusal = await within(5000, linkClosed(second), 'the refusal of the second link');
      assert.equal(refusal?.condition, 'amqp:unauthorized-access');
      assert.ok(refusal?.description?.includes(uai.principalId), refusal?.description);
      assert.ok(link.is_open(), 'an open link lasts until the token is renewed');
      assert.equal(await put(), 200, 'a valid token is still taken');
      const error = await within(5000, closed, 'the link ending');
      assert.equal(error?.condition, 'amqp:unauthorized-access');
      assert.ok(error?.description?.includes(uai.principalId), error?.description);
      assert.match(error?.description ?? '', /Microsoft\.EventHub\/namespaces\/messages\/receive\/action/);
    } finally {
      await c.close();
    }
  });

  test('a Service Bus link authorized by Azure AD ends when its token expires unrenewed', async () => {
    const owner = await assign('Azure Service Bus Data Receiver', `${sbNamespaceId}/queues/jobs`, uai.principalId);
    // Issued an hour less 3 s ago: expires in 3 s.
    const token = await tokenIssuedAgo(uai.principalId, 3600_000 - 3000, 'https://servicebus.azure.net/');
    const c = await connectAmqp(t.host, { hostname: SB_HOST, servername: SB_HOST } as never);
    try {
      const reply = await c.request('$cbs', { application_properties: { operation: 'put-token', type: 'jwt', name: `sb://${SB_HOST}/jobs` }, body: token });
      assert.equal(reply.application_properties!['status-code'], 200);
      const link = await c.receiver('jobs');
      const error = await within(8000, linkClosed(link), 'the link ending at expiry');
      assert.equal(error?.condition, 'amqp:unauthorized-access');
      assert.match(error?.description ?? '', /ExpiredToken/);
    } finally {
      await c.close();
      await unassign(owner);
    }
  });
});
