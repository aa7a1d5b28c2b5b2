import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import iothub from 'azure-iothub';
import { rawRequest, serviceToken, startTestHub, type TestHub } from './support/hub.js';
import { sdkError } from './support/sdk.js';

const { Registry } = iothub;

/**
 * Every page of a query, through the SDK's own paging (x-ms-continuation). The promise form of
 * `next()` takes the token as its argument (without one it starts over), so it is passed explicitly.
 */
async function all(query: ReturnType<iothub.Registry["createQuery"]>, asTwin = false): Promise<{ items: any[]; pages: number }> {
  const items: any[] = [];
  let pages = 0;
  while (query.hasMoreResults) {
    assert.ok(pages < 100, 'the query keeps returning a continuation token');
    const token = query.continuationToken ?? undefined;
    const { result } = asTwin ? await query.nextAsTwin(token as string) : await query.next(token as string);
    items.push(...(result as any[]));
    pages++;
  }
  return { items, pages };
}

describe('the query language through the unmodified azure-iothub Registry.createQuery', () => {
  let t: TestHub;
  let registry: iothub.Registry;

  before(async () => {
    t = await startTestHub();
    registry = Registry.fromConnectionString(await t.connectionString());
    // 30 devices across three buildings, with reported firmware and temperature.
    const devices = Array.from({ length: 30 }, (_, i) => ({ deviceId: `dev-${String(i).padStart(2, '0')}` }));
    await registry.addDevices(devices as any);
    for (let i = 0; i < 30; i++) {
      const id = devices[i]!.deviceId;
      await registry.updateTwin(id, { tags: { building: 40 + (i % 3), floor: i % 5, owner: i % 2 ? 'alice' : 'bob' } }, '*');
      await t.hub.twins.updateReportedProperties(id, undefined, { firmware: i < 10 ? '1.0.0' : '2.0.0', temperature: 15 + i, online: i % 4 === 0 });
    }
    // Type traps: a string that looks like a number, a null, a tag that only some devices have.
    await registry.create({ deviceId: 'odd-string' });
    await registry.updateTwin('odd-string', { tags: { building: '41', owner: null, special: true } }, '*');
    await registry.create({ deviceId: 'edge-1', capabilities: { iotEdge: true } } as any);
    await registry.addModule({ deviceId: 'dev-00', moduleId: 'sensor' } as any);
    await registry.addModule({ deviceId: 'dev-01', moduleId: 'sensor' } as any);
    await registry.addModule({ deviceId: 'dev-01', moduleId: 'camera' } as any);
    await t.hub.twins.updateReportedProperties('dev-01', 'sensor', { state: 'scanning' });
  });
  after(() => t.close());

  test('a WHERE over tags returns exactly the matching twins, as Twin objects', async () => {
    const { items } = await all(registry.createQuery("SELECT * FROM devices WHERE tags.building = 41 AND tags.owner = 'alice'"), true);
    const ids = items.map((tw) => tw.deviceId).sort();
    const expected = Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 3 === 1 && i % 2 === 1).map((i) => `dev-${String(i).padStart(2, '0')}`);
    assert.deepEqual(ids, expected);
    assert.equal(items[0].constructor.name, 'Twin');
    assert.equal(items[0].tags.building, 41);
    assert.equal(typeof items[0].properties.reported.$version, 'number');
    assert.ok(!ids.includes('odd-string'), "the string '41' never equals the number 41");
  });

  test('comparisons are type-strict and a missing property is not null', async () => {
    const ids = async (q: string) => (await all(registry.createQuery(q))).items.map((x: any) => x.deviceId).sort();
    assert.deepEqual(await ids("SELECT * FROM devices WHERE tags.building = '41'"), ['odd-string']);
    assert.deepEqual(await ids('SELECT * FROM devices WHERE IS_NULL(tags.owner)'), []);
    assert.deepEqual(await ids('SELECT * FROM devices WHERE tags.special = true'), ['odd-string']);
    assert.deepEqual(await ids('SELECT * FROM devices WHERE NOT IS_DEFINED(tags.building)'), ['edge-1']);
    assert.deepEqual(await ids('SELECT * FROM devices WHERE IS_STRING(tags.building)'), ['odd-string']);
    assert.equal((await ids('SELECT * FROM devices WHERE IS_NUMBER(tags.building)')).length, 30);
    // NOT of an undefined comparison stays undefined: devices without the tag are not returned.
    assert.equal((await ids('SELECT * FROM devices WHERE NOT (tags.building = 40)')).length, 20);
    assert.deepEqual(await ids('SELECT * FROM devices WHERE capabilities.iotEdge = true'), ['edge-1']);
  });

  test('reported properties, IN/NIN, ranges, arithmetic and string functions', async () => {
    const ids = async (q: string) => (await all(registry.createQuery(q))).items.map((x: any) => x.deviceId).sort();
    assert.equal((await ids("SELECT * FROM devices WHERE properties.reported.firmware = '2.0.0'")).length, 20);
    assert.deepEqual(await ids('SELECT * FROM devices WHERE properties.reported.temperature >= 42'), ['dev-27', 'dev-28', 'dev-29']);
    assert.deepEqual(await ids("SELECT * FROM devices WHERE deviceId IN ['dev-03', 'dev-04', 'nobody']"), ['dev-03', 'dev-04']);
    assert.equal((await ids("SELECT * FROM devices WHERE tags.floor NIN [0, 1, 2] AND STARTSWITH(deviceId, 'dev-')")).length, 12);
    assert.deepEqual(await ids('SELECT * FROM devices WHERE properties.reported.temperature * 2 - 30 = 10'), ['dev-05']);
    assert.deepEqual(await ids("SELECT * FROM devices WHERE ENDSWITH(deviceId, '9') AND properties.reported.online <> false"), []);
    assert.deepEqual(await ids("SELECT * FROM devices WHERE ENDSWITH(deviceId, '8') AND properties.reported.online = true"), ['dev-08', 'dev-28']);
    assert.deepEqual(await ids("select * from DEVICES where DeviceId = 'dev-07'"), ['dev-07'], 'keywords and twin fields ignore case');
    assert.deepEqual(
      await ids("SELECT * FROM devices WHERE properties.reported.$metadata.firmware.$lastUpdated > '2000' AND tags.floor = 0 AND tags.building = 40"),
      ['dev-00', 'dev-15'],
    );
  });

  test('projections and aliases come back as Raw items', async () => {
    const q = registry.createQuery("SELECT deviceId, tags.building AS b, properties.reported.temperature, status FROM devices WHERE tags.floor = 4 AND tags.building = 41");
    const { result, message } = await q.next();
    assert.equal(message.headers['x-ms-item-type'], 'Raw');
    assert.deepEqual(result, [
      { deviceId: 'dev-04', b: 41, temperature: 19, status: 'enabled' },
      { deviceId: 'dev-19', b: 41, temperature: 34, status: 'enabled' },
    ]);
    const { result: sel } = await registry.createQuery("SELECT tags, properties.reported.nothing FROM devices WHERE deviceId = 'dev-02'").next();
    assert.deepEqual(sel, [{ tags: { building: 42, floor: 2, owner: 'bob' } }], 'undefined projections are left out');
  });

  test('GROUP BY with COUNT() counts every group', async () => {
    const { items, pages } = await all(
      registry.createQuery('SELECT properties.reported.firmware AS firmware, COUNT() AS numberOfDevices FROM devices GROUP BY properties.reported.firmware'),
    );
    assert.equal(pages, 1);
    assert.deepEqual(items, [{ numberOfDevices: 2 }, { firmware: '1.0.0', numberOfDevices: 10 }, { firmware: '2.0.0', numberOfDevices: 20 }]);
    const { result, message } = await registry.createQuery('SELECT COUNT() AS total FROM devices WHERE tags.owner = \'bob\'').next();
    assert.equal(message.headers['x-ms-item-type'], 'Raw');
    assert.deepEqual(result, [{ total: 15 }]);
    const { items: byTwo } = await all(
      registry.createQuery('SELECT tags.building, tags.owner, COUNT() AS n FROM devices WHERE IS_NUMBER(tags.building) GROUP BY tags.building, tags.owner', 2),
    );
    assert.equal(byTwo.length, 6);
    assert.deepEqual(byTwo[0], { building: 40, owner: 'alice', n: 5 });
  });

  test('paging: more results than one page arrive over several pages, each exactly once', async () => {
    const q = registry.createQuery('SELECT * FROM devices', 7);
    const { result: first, message } = await q.nextAsTwin();
    assert.equal(first.length, 7);
    assert.equal(message.headers['x-ms-item-type'], 'Twin');
    assert.ok(message.headers['x-ms-continuation']);
    assert.equal(q.hasMoreResults, true);
    const rest = await all(q, true);
    const ids = [...first, ...rest.items].map((tw) => tw.deviceId);
    assert.equal(ids.length, 32);
    assert.equal(new Set(ids).size, 32);
    assert.equal(rest.pages, 4);
    const top = await all(registry.createQuery('SELECT TOP 5 deviceId FROM devices', 2));
    assert.equal(top.items.length, 5);
  });

  test('module twins are queried FROM devices.modules', async () => {
    const { items } = await all(registry.createQuery("SELECT * FROM devices.modules WHERE moduleId = 'sensor'"), true);
    assert.deepEqual(items.map((m) => `${m.deviceId}/${m.moduleId}`), ['dev-00/sensor', 'dev-01/sensor']);
    const { items: scanning } = await all(registry.createQuery("SELECT * FROM devices.modules WHERE properties.reported.state = 'scanning'"));
    assert.deepEqual(scanning.map((m: any) => m.moduleId), ['sensor']);
    assert.equal(scanning[0].deviceId, 'dev-01');
    const { items: count } = await all(registry.createQuery("SELECT COUNT() AS n FROM devices.modules WHERE devices.modules.deviceId = 'dev-01'"));
    assert.deepEqual(count, [{ n: 2 }]);
  });

  test('deleted devices and modules leave the results, updated twins show their new state', async () => {
    await registry.create({ deviceId: 'short-lived' });
    await registry.addModule({ deviceId: 'short-lived', moduleId: 'm' } as any);
    await registry.updateTwin('short-lived', { tags: { ephemeral: 1 } }, '*');
    const find = async () => (await all(registry.createQuery('SELECT deviceId FROM devices WHERE tags.ephemeral = 1'))).items;
    assert.deepEqual(await find(), [{ deviceId: 'short-lived' }]);
    await registry.updateTwin('short-lived', { tags: { ephemeral: 2 } }, '*');
    assert.deepEqual(await find(), []);
    await registry.updateTwin('short-lived', { tags: { ephemeral: 1 } }, '*');
    await registry.removeModule('short-lived', 'm');
    assert.deepEqual((await all(registry.createQuery("SELECT * FROM devices.modules WHERE deviceId = 'short-lived'"))).items, []);
    await registry.delete('short-lived');
    assert.deepEqual(await find(), []);
  });

  test('a malformed query is refused with ArgumentError naming the position, and a continuation token is checked', async () => {
    const bad: [string, RegExp][] = [
      ['SELECT * FROM devices WHERE', /Syntax error at position 28/],
      ['SELECT * FROM devices WHERE tags.x = "a"', /Syntax error at position 38.*single quotes/],
      ['SELECT * FROM things', /Syntax error at position 15.*things/],
      ['SELECT * FROM devices WHERE tags.a == 1', /Syntax error at position 37/],
      ['SELECT * FROM devices WHERE FOO(tags.a)', /position 29.*unknown function/],
      ['SELECT deviceId, COUNT() FROM devices', /position 8/],
      ['SELECT COUNT() FROM devices WHERE COUNT() > 1', /position 35/],
      ['SELECT deviceId FROM devices.jobs', /only SELECT \*/],
      ["SELECT * FROM devices WHERE deviceId = 'unterminated", /position 40.*unterminated/],
    ];
    for (const [text, message] of bad) {
      await assert.rejects(registry.createQuery(text).next(), sdkError('ArgumentError', message), text);
    }
    const token = await serviceToken(t);
    const res = await rawRequest(t.host, 'POST', '/devices/query?api-version=2021-04-12', {
      headers: { authorization: token, 'content-type': 'application/json', 'x-ms-continuation': 'garbage' },
      body: JSON.stringify({ query: 'SELECT * FROM devices' }),
    });
    assert.equal(res.status, 400);
    assert.equal(res.headers['iothub-errorcode'], 'ArgumentInvalid');
    const unauth = await rawRequest(t.host, 'POST', '/devices/query?api-version=2021-04-12', {
      headers: { authorization: await serviceToken(t, 'device'), 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'SELECT * FROM devices' }),
    });
    assert.equal(unauth.status, 401);
    const reader = Registry.fromConnectionString(await t.connectionString('registryRead'));
    const { result } = await reader.createQuery('SELECT COUNT() AS n FROM devices').next();
    assert.deepEqual(result, [{ n: 32 }]);
  });
});
