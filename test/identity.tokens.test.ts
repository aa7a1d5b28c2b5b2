import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientSecretCredential } from '@azure/identity';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { rawRequest, startTestHub, type TestHub } from './support/hub.js';

describe('Azure AD endpoints: the unmodified ClientSecretCredential signs in the administrator', () => {
  let t: TestHub;
  let management: { tenantId: string; clientId: string; clientSecret: string; authorityHost: string; subscriptionId: string; endpoint: string; resourceGroup: string };

  before(async () => {
    t = await startTestHub();
    management = (await t.hub.info()).management!;
  });
  after(() => t.close());

  const credential = (secret = management.clientSecret, tenant = management.tenantId) =>
    new ClientSecretCredential(tenant, management.clientId, secret, { authorityHost: management.authorityHost, disableInstanceDiscovery: true });

  test('fleethub info names the tenant, subscription, authority host and administrator', async () => {
    assert.equal(management.authorityHost, `https://${t.host}/`);
    assert.equal(management.endpoint, `https://${t.host}/`);
    assert.equal(management.resourceGroup, 'fleethub');
    for (const id of [management.tenantId, management.subscriptionId, management.clientId]) assert.match(id, /^[0-9a-f-]{36}$/);
    assert.ok(management.clientSecret.length >= 32);
  });

  test('a token for ARM, shaped like an Azure AD v1 token and signed with a key from the JWKS', async () => {
    const token = await credential().getToken('https://management.azure.com/.default');
    assert.ok(token.expiresOnTimestamp > Date.now() + 50 * 60_000);
    const claims = decodeJwt(token.token);
    assert.equal(claims.iss, `https://sts.windows.net/${management.tenantId}/`);
    assert.equal(claims.aud, 'https://management.azure.com');
    assert.equal(claims.appid, management.clientId);
    assert.equal(claims.tid, management.tenantId);
    assert.equal(claims.oid, claims.sub);
    assert.equal(claims.ver, '1.0');
    assert.ok(typeof claims.nbf === 'number' && typeof claims.iat === 'number' && claims.exp! - claims.iat! === 3600);
    const { kid } = decodeProtectedHeader(token.token);
    const jwks = await rawRequest(t.host, 'GET', `/${management.tenantId}/discovery/v2.0/keys`);
    assert.equal(jwks.status, 200);
    assert.ok(jwks.json.keys.some((k: { kid: string; d?: string }) => k.kid === kid && k.d === undefined));
    await jwtVerify(token.token, createLocalJWKSet(jwks.json));
    // The token service accepts its own token, with or without the audience's trailing slash.
    const verified = await t.hub.identity.tokens.verify(token.token, ['https://management.azure.com/']);
    assert.equal(verified.principal.kind, 'servicePrincipal');
    assert.equal(verified.principal.principalId, management.tenantId === verified.principal.tenantId ? claims.oid : '');
  });

  test('the administrator is Owner of the subscription', async () => {
    const oid = decodeJwt((await credential().getToken('https://management.azure.com/.default')).token).oid as string;
    const scope = `/subscriptions/${management.subscriptionId}/resourceGroups/fleethub/providers/Microsoft.Devices/IotHubs/${t.hub.config.hubName}`;
    assert.equal(await t.hub.identity.accessControl.allows(oid, scope, 'Microsoft.Devices/IotHubs/write'), true);
    assert.equal(await t.hub.identity.accessControl.allows(oid, scope, 'Microsoft.Devices/IotHubs/devices/write', true), false, 'Owner grants no data actions');
  });

  test('common and organizations resolve to the tenant; an unknown tenant is invalid_tenant', async () => {
    const res = await rawRequest(t.host, 'POST', '/organizations/oauth2/v2.0/token', {
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: management.clientId, client_secret: management.clientSecret, scope: 'https://iothubs.azure.net/.default' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(decodeJwt(res.json.access_token).tid, management.tenantId);
    const v2 = await rawRequest(t.host, 'GET', '/common/v2.0/.well-known/openid-configuration');
    assert.equal(v2.json.token_endpoint, `https://${t.host}/${management.tenantId}/oauth2/v2.0/token`);
    const unknown = await rawRequest(t.host, 'GET', '/0b0b0b0b-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error, 'invalid_tenant');
    assert.deepEqual(unknown.json.error_codes, [90002]);
  });

  test('a wrong secret is refused: the SDK raises its authentication error, the wire says invalid_client 401', async () => {
    await assert.rejects(credential('not-the-secret').getToken('https://management.azure.com/.default'), (e: Error) => /^Authentication/.test(e.name) && /AADSTS7000215/.test(e.message));
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: management.clientId, client_secret: 'nope', scope: 'https://management.azure.com/.default' }).toString();
    const res = await rawRequest(t.host, 'POST', `/${management.tenantId}/oauth2/v2.0/token`, { body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(res.status, 401);
    assert.equal(res.json.error, 'invalid_client');
    assert.match(res.json.error_description, /^AADSTS7000215: /);
    assert.ok(!res.text.includes(management.clientSecret));
  });

  test('bad requests get Azure AD errors: unknown client, missing /.default, other grant types', async () => {
    const post = (form: Record<string, string>, v1 = false) =>
      rawRequest(t.host, 'POST', `/${management.tenantId}/oauth2/${v1 ? '' : 'v2.0/'}token`, {
        body: new URLSearchParams(form).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
    const base = { grant_type: 'client_credentials', client_id: management.clientId, client_secret: management.clientSecret };
    const unknown = await post({ ...base, client_id: '11111111-2222-3333-4444-555555555555', scope: 'https://x/.default' });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.error, 'unauthorized_client');
    assert.equal((await post({ ...base, scope: 'https://iothubs.azure.net' })).json.error, 'invalid_scope');
    assert.equal((await post({ ...base, grant_type: 'password', scope: 'https://x/.default' })).json.error, 'unsupported_grant_type');
    assert.equal((await post(base, true)).json.error, 'invalid_request');
  });

  test('the v1 token endpoint takes resource= and answers with expires_on', async () => {
    const res = await rawRequest(t.host, 'POST', `/${management.tenantId}/oauth2/token`, {
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: management.clientId, client_secret: management.clientSecret, resource: 'https://iothubs.azure.net/' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.json.token_type, 'Bearer');
    assert.equal(res.json.resource, 'https://iothubs.azure.net/');
    assert.match(res.json.expires_on, /^\d+$/);
    assert.equal(decodeJwt(res.json.access_token).aud, 'https://iothubs.azure.net/');
    const discovery = await rawRequest(t.host, 'GET', `/${management.tenantId}/.well-known/openid-configuration`);
    assert.equal(discovery.json.issuer, `https://sts.windows.net/${management.tenantId}/`);
  });

  test('the tenant, administrator and signing key survive a restart', async () => {
    const before = await credential().getToken('https://iothubs.azure.net/.default');
    await t.restart();
    const after = (await t.hub.info()).management!;
    assert.deepEqual(after, management);
    await t.hub.identity.tokens.verify(before.token, ['https://iothubs.azure.net']);
  });
});
