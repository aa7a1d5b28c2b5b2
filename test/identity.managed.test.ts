import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManagedIdentityCredential } from '@azure/identity';
import { decodeJwt } from 'jose';
import { rawRequest, startTestHub, type TestHub } from './support/hub.js';
import type { Principal } from '../src/identity/types.js';

describe('managed-identity endpoint (App Service protocol) with the unmodified ManagedIdentityCredential', () => {
  let t: TestHub;
  let hubId: string;
  let uai: Principal;
  let unattached: Principal;
  let endpoint: string;
  let header: string;

  before(async () => {
    t = await startTestHub();
    const info = await t.hub.info();
    endpoint = info.identityEndpoint!;
    header = info.identityHeader!;
    process.env.IDENTITY_ENDPOINT = endpoint;
    process.env.IDENTITY_HEADER = header;
    const { subscriptionId } = t.hub.identity.tenancy;
    hubId = t.hub.identity.hubResourceId(t.hub.config.hubName)!;
    const uaiId = (name: string) => `/subscriptions/${subscriptionId}/resourceGroups/fleethub/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;
    uai = await t.hub.identity.principals.create('userAssigned', uaiId('uai-one'), 'uai-one');
    unattached = await t.hub.identity.principals.create('userAssigned', uaiId('uai-two'), 'uai-two');
    await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: true, userAssigned: [uai.resourceId!] });
  });
  after(async () => {
    delete process.env.IDENTITY_ENDPOINT;
    delete process.env.IDENTITY_HEADER;
    await t.close();
  });

  const msi = (query: Record<string, string>, headers: Record<string, string> = { 'x-identity-header': header }) =>
    rawRequest(t.host, 'GET', `${new URL(endpoint).pathname}?${new URLSearchParams({ 'api-version': '2019-08-01', ...query })}`, { headers });

  test('info gives each hub its IDENTITY_ENDPOINT on the primary listener and a secret IDENTITY_HEADER', () => {
    assert.equal(endpoint, `https://${t.host}/msi/${t.hub.config.hubName}/token`);
    assert.ok(header.length >= 24);
  });

  test("the system-assigned identity's token names the hub (xms_mirid) and the requested resource", async () => {
    const system = (await t.hub.identity.hubIdentities.get(hubId)).systemAssigned!;
    const token = await new ManagedIdentityCredential().getToken('https://storage.azure.com/.default');
    const claims = decodeJwt(token.token);
    assert.equal(claims.oid, system.principalId);
    assert.equal(claims.appid, system.clientId);
    assert.equal(claims.xms_mirid, hubId);
    assert.equal(claims.aud, 'https://storage.azure.com');
    assert.equal(claims.iss, `https://sts.windows.net/${t.hub.identity.tenancy.tenantId}/`);
    assert.ok(token.expiresOnTimestamp > Date.now() + 50 * 60_000);
  });

  test('a user-assigned identity by client id, resource id or object id', async () => {
    for (const options of [{ clientId: uai.clientId }, { resourceId: uai.resourceId! }, { objectId: uai.principalId }]) {
      const token = await new ManagedIdentityCredential(options as { clientId: string }).getToken('https://eventhubs.azure.net/.default');
      const claims = decodeJwt(token.token);
      assert.equal(claims.oid, uai.principalId, JSON.stringify(options));
      assert.equal(claims.xms_mirid, uai.resourceId);
    }
  });

  test('an identity not attached to the hub, or unknown, is refused with 400 and a message (not 404)', async () => {
    await assert.rejects(new ManagedIdentityCredential({ clientId: unattached.clientId }).getToken('https://eventhubs.azure.net/.default'));
    await assert.rejects(new ManagedIdentityCredential({ clientId: '00000000-1111-2222-3333-444444444444' }).getToken('https://eventhubs.azure.net/.default'));
    const res = await msi({ resource: 'https://eventhubs.azure.net', client_id: unattached.clientId });
    assert.equal(res.status, 400);
    assert.equal(res.json.message, 'Unable to load the proper Managed Identity.');
    assert.equal((await msi({ resource: 'https://eventhubs.azure.net', mi_res_id: unattached.resourceId! })).status, 400);
  });

  test('bad requests: wrong or missing header 401, wrong api-version or no resource 400, unknown hub 401', async () => {
    assert.equal((await msi({ resource: 'https://x' }, { 'x-identity-header': 'wrong' })).status, 401);
    assert.equal((await msi({ resource: 'https://x' }, {})).status, 401);
    assert.equal((await msi({ resource: 'https://x', 'api-version': '2017-09-01' })).status, 400);
    assert.equal((await msi({})).status, 400);
    const other = await rawRequest(t.host, 'GET', '/msi/no-such-hub/token?api-version=2019-08-01&resource=https://x', { headers: { 'x-identity-header': header } });
    assert.equal(other.status, 401);
  });

  test('turning the system identity off deletes its principal: no token, old tokens refused; on again gives a new principal', async () => {
    const first = (await t.hub.identity.hubIdentities.get(hubId)).systemAssigned!;
    const old = await msi({ resource: 'https://iothubs.azure.net' });
    assert.equal(old.status, 200);
    await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: false, userAssigned: [uai.resourceId!] });
    assert.equal((await msi({ resource: 'https://iothubs.azure.net' })).status, 400);
    await assert.rejects(t.hub.identity.tokens.verify(old.json.access_token, ['https://iothubs.azure.net']), /no longer exists/);
    const again = await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: true, userAssigned: [uai.resourceId!] });
    assert.notEqual(again.systemAssigned!.principalId, first.principalId);
    const fresh = await msi({ resource: 'https://iothubs.azure.net' });
    assert.equal(decodeJwt(fresh.json.access_token).oid, again.systemAssigned!.principalId);
  });

  test('attaching an identity that does not exist is refused and changes nothing', async () => {
    const before = await t.hub.identity.hubIdentities.get(hubId);
    await assert.rejects(
      t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: false, userAssigned: ['/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope'] }),
      /does not exist/,
    );
    const after = await t.hub.identity.hubIdentities.get(hubId);
    assert.equal(after.systemAssigned?.principalId, before.systemAssigned?.principalId);
    assert.deepEqual([...after.userAssigned.keys()], [...before.userAssigned.keys()]);
  });
});
