import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ClientSecretCredential } from '@azure/identity';
import iothub from 'azure-iothub';
import common from 'azure-iot-common';
import { decodeJwt } from 'jose';
import { startTestHub, type TestHub } from './support/hub.js';
import { sdkError, within } from './support/sdk.js';
import { findRole } from '../src/identity/roles.js';

const { Registry, Client } = iothub;
const { Message } = common;

describe('Azure AD tokens on the hub service APIs, authorized by IoT Hub data roles', () => {
  let t: TestHub;
  let cred: ClientSecretCredential;
  let principalId: string;
  let hubId: string;
  let subscription: string;

  before(async () => {
    t = await startTestHub();
    const m = (await t.hub.info()).management!;
    cred = new ClientSecretCredential(m.tenantId, m.clientId, m.clientSecret, { authorityHost: m.authorityHost, disableInstanceDiscovery: true });
    principalId = decodeJwt((await cred.getToken('https://iothubs.azure.net/.default')).token).oid as string;
    hubId = t.hub.identity.hubResourceId(t.hub.config.hubName)!;
    subscription = `/subscriptions/${m.subscriptionId}`;
    await Registry.fromConnectionString(await t.connectionString()).create({ deviceId: 'thermostat' });
  });
  after(() => t.close());

  const assign = (role: string, scope: string) =>
    t.hub.identity.roleAssignments.create({ name: randomUUID(), scope, roleDefinitionId: findRole(role)!.id, principalId, principalType: 'ServicePrincipal' });

  test('Registry.fromTokenCredential without a data role: 401 as IoT Hub answers (Owner grants no data actions)', async () => {
    const registry = Registry.fromTokenCredential(t.host, cred);
    await assert.rejects(registry.list(), sdkError('UnauthorizedError'));
  });

  test('IoT Hub Registry Contributor at the hub: devices yes, twins no', async () => {
    const a = await assign('IoT Hub Registry Contributor', hubId);
    try {
      const registry = Registry.fromTokenCredential(t.host, cred);
      await registry.create({ deviceId: 'made-with-aad' });
      assert.equal((await registry.get('made-with-aad')).responseBody.deviceId, 'made-with-aad');
      await assert.rejects(registry.getTwin('made-with-aad'), sdkError('UnauthorizedError'));
    } finally {
      await t.hub.identity.roleAssignments.delete(a.id);
    }
    // Removing the assignment takes the access away at once.
    await assert.rejects(Registry.fromTokenCredential(t.host, cred).get('made-with-aad'), sdkError('UnauthorizedError'));
  });

  test('IoT Hub Data Reader at the resource group is inherited by the hub: reads yes, writes no', async () => {
    const a = await assign('IoT Hub Data Reader', hubId.replace(/\/providers\/.*$/, ''));
    try {
      const registry = Registry.fromTokenCredential(t.host, cred);
      assert.equal((await registry.getTwin('thermostat')).responseBody.deviceId, 'thermostat');
      await assert.rejects(registry.create({ deviceId: 'not-allowed' }), sdkError('UnauthorizedError'));
    } finally {
      await t.hub.identity.roleAssignments.delete(a.id);
    }
  });

  test('Client.fromTokenCredential (AMQP CBS with a JWT): refused without a role, sends with IoT Hub Data Contributor', async () => {
    // Bounded: a delivery the hub never settles leaves Client.send pending forever (credit once
    // came with the attach, before the link was authorized and listened on).
    const denied = Client.fromTokenCredential(t.host, cred);
    await within(10_000, denied.open().catch(() => undefined), 'open');
    await assert.rejects(within(10_000, denied.send('thermostat', new Message('no role')), 'the refused send'), sdkError('UnauthorizedError'));
    await denied.close().catch(() => undefined);

    const a = await assign('IoT Hub Data Contributor', subscription);
    const client = Client.fromTokenCredential(t.host, cred);
    try {
      await within(10_000, client.open(), 'open');
      await within(10_000, client.send('thermostat', new Message('hello from Azure AD')), 'the authorized send');
      assert.equal((await Registry.fromConnectionString(await t.connectionString()).get('thermostat')).responseBody.cloudToDeviceMessageCount, 1);
    } finally {
      await client.close();
      await t.hub.identity.roleAssignments.delete(a.id);
    }
  });

  test('a token for another audience, or a forged one, is refused', async () => {
    await assign('IoT Hub Data Contributor', hubId);
    const wrongAudience = {
      getToken: async () => cred.getToken('https://management.azure.com/.default'),
    };
    await assert.rejects(Registry.fromTokenCredential(t.host, wrongAudience).list(), sdkError('UnauthorizedError'));
    const real = await cred.getToken('https://iothubs.azure.net/.default');
    const [h, p] = real.token.split('.');
    const forged = { getToken: async () => ({ token: `${h}.${p}.${Buffer.from('forged').toString('base64url')}`, expiresOnTimestamp: real.expiresOnTimestamp }) };
    await assert.rejects(Registry.fromTokenCredential(t.host, forged).list(), sdkError('UnauthorizedError'));
    assert.ok((await Registry.fromTokenCredential(t.host, cred).list()).responseBody.length >= 1);
  });
});
