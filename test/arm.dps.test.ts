import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaults } from '../src/config/index.js';
import { startTestHub, rawRequest, type TestHub } from './support/hub.js';
import { defaultGroup, managementToken, subscriptionId } from './support/arm.js';

/** Microsoft.Devices/provisioningServices over ARM REST (its management SDK is not a dependency). */
describe('Microsoft.Devices/provisioningServices', () => {
  let t: TestHub;
  let call: (method: string, path: string, body?: unknown) => ReturnType<typeof rawRequest>;
  let base: string;

  before(async () => {
    t = await startTestHub({ dps: { ...defaults.dps, allocationPolicy: 'static' } }, { extraHubs: 1 });
    const token = await managementToken(t);
    call = (method, path, body) =>
      rawRequest(t.host, method, `${path}${path.includes('?') ? '&' : '?'}api-version=2022-12-12`, {
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    base = `/subscriptions/${subscriptionId(t)}/resourceGroups/${defaultGroup(t)}/providers/Microsoft.Devices/provisioningServices`;
  });
  after(() => t.close());

  test('the DPS is listed with its id scope, linked hubs and allocation policy; listKeys gives its keys', async () => {
    const list = await call('GET', base);
    assert.equal(list.status, 200);
    assert.equal(list.json.value.length, 1);
    const dps = list.json.value[0];
    assert.equal(dps.name, `${t.hub.config.hubName}-dps`);
    assert.equal(dps.type, 'Microsoft.Devices/provisioningServices');
    const info = await t.hub.info();
    assert.equal(dps.properties.idScope, info.dps!.idScope);
    assert.equal(dps.properties.allocationPolicy, 'Static');
    assert.deepEqual(dps.properties.iotHubs.map((h: { name: string }) => h.name).sort(), [t.host, t.hubs[0]!.host].sort());
    assert.match(dps.properties.iotHubs[0].connectionString, /SharedAccessKey=\*\*\*\*$/);

    const keys = await call('POST', `${base}/${dps.name}/listkeys`);
    assert.equal(keys.status, 200);
    const owner = keys.json.value.find((k: { keyName: string }) => k.keyName === 'provisioningserviceowner');
    assert.ok(info.dps!.serviceConnectionString.endsWith(owner.primaryKey));
  });

  test('PUT of what GET returned keeps it (tags change); changing linked hubs or the policy is refused and changes nothing', async () => {
    const name = `${t.hub.config.hubName}-dps`;
    const got = (await call('GET', `${base}/${name}`)).json;
    const put = await call('PUT', `${base}/${name}`, { ...got, tags: { team: 'fleet' } });
    assert.equal(put.status, 200);
    assert.deepEqual(put.json.tags, { team: 'fleet' });
    let r = await call('PUT', `${base}/${name}`, { ...got, properties: { ...got.properties, allocationPolicy: 'Hashed' } });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'FeatureNotSupported');
    r = await call('PUT', `${base}/${name}`, { ...got, properties: { ...got.properties, iotHubs: [] } });
    assert.equal(r.json.error.code, 'FeatureNotSupported');
    r = await call('PUT', `${base}/another-dps`, { location: 'local', properties: {} });
    assert.equal(r.json.error.code, 'FeatureNotSupported');
    assert.equal((await call('GET', `${base}/another-dps`)).status, 404);
    assert.equal((await call('GET', `${base}/${name}`)).json.properties.allocationPolicy, 'Static');
  });
});
