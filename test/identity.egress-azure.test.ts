import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identityArea, type IdentityArea } from '../src/identity/index.js';

/**
 * The `azure` provider runs the real ManagedIdentityCredential code path against an endpoint shaped
 * like Azure's instance metadata service (AZURE_POD_IDENTITY_AUTHORITY_HOST points it here).
 */
describe('the egress seam with identity.provider azure: ManagedIdentityCredential against an IMDS-shaped endpoint', () => {
  let imds: Server;
  let area: IdentityArea;
  let dataDir: string;
  const calls: { path: string; query: Record<string, string>; metadata: string | undefined }[] = [];

  before(async () => {
    imds = createServer((req, res) => {
      const url = new URL(req.url!, 'http://imds');
      calls.push({ path: url.pathname, query: Object.fromEntries(url.searchParams), metadata: req.headers.metadata as string | undefined });
      const now = Math.floor(Date.now() / 1000);
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          access_token: `azure-token-for-${url.searchParams.get('msi_res_id') ?? 'host'}`,
          client_id: '11111111-1111-1111-1111-111111111111',
          expires_in: '3599',
          expires_on: String(now + 3599),
          ext_expires_in: '3599',
          not_before: String(now),
          resource: url.searchParams.get('resource'),
          token_type: 'Bearer',
        }),
      );
    });
    await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
    process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = `http://127.0.0.1:${(imds.address() as { port: number }).port}`;
    dataDir = mkdtempSync(join(tmpdir(), 'fleethub-identity-azure-'));
    area = await identityArea({ dataDir, provider: 'azure' });
  });
  after(() => {
    area.close();
    imds.close();
    delete process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
    rmSync(dataDir, { recursive: true, force: true });
  });

  test("the system-assigned identity is the host's: no identity selector sent", async () => {
    const hubId = area.hubResourceId('hub-a')!;
    await area.hubIdentities.setHubIdentity(hubId, { system: true, userAssigned: [] });
    const c = await area.egress.forConnection(hubId, { authenticationType: 'identityBased' });
    assert.ok(c.kind === 'identity' && c.identity === 'systemAssigned');
    const token = await c.credential.getToken('https://eventhubs.azure.net/.default');
    assert.equal(token!.token, 'azure-token-for-host');
    const call = calls.at(-1)!;
    assert.match(call.path, /^\/metadata\/identity\/oauth2\/token\/?$/);
    assert.equal(call.metadata, 'true');
    assert.equal(call.query.resource, 'https://eventhubs.azure.net');
    assert.equal(call.query.msi_res_id, undefined);
    assert.equal(call.query.client_id, undefined);
  });

  test('a user-assigned identity is asked for by its resource id', async () => {
    const hubId = area.hubResourceId('hub-b')!;
    const uaiId = `/subscriptions/${area.tenancy.subscriptionId}/resourceGroups/fleethub/providers/Microsoft.ManagedIdentity/userAssignedIdentities/vm-identity`;
    await area.principals.create('userAssigned', uaiId, 'vm-identity');
    await area.hubIdentities.setHubIdentity(hubId, { system: false, userAssigned: [uaiId] });
    const c = await area.egress.forConnection(hubId, { authenticationType: 'identityBased', identity: { userAssignedIdentity: uaiId } });
    const token = await (c as { credential: { getToken(s: string): Promise<{ token: string } | null> } }).credential.getToken('https://storage.azure.com/.default');
    assert.equal(token!.token, `azure-token-for-${uaiId}`);
    assert.equal(calls.at(-1)!.query.msi_res_id, uaiId);
  });

  test('the seam rules still apply: not attached, none configured', async () => {
    const hubId = area.hubResourceId('hub-c')!;
    await assert.rejects(area.egress.forConnection(hubId, { authenticationType: 'identityBased' }), /not enabled/);
    await assert.rejects(area.egress.forConnection(hubId, { authenticationType: 'identityBased', identity: { userAssignedIdentity: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x' } }), /not attached/);
  });
});
