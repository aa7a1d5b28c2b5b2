/**
 * Several hubs in one Fleethub process, with the provisioning service allocating across them
 * and reprovisioning devices between them, driven end to end by the unmodified Azure SDKs:
 * azure-iot-provisioning-service to enroll, azure-iot-provisioning-device (+ -http / -mqtt) with
 * azure-iot-security-symmetric-key to register, azure-iot-device to connect to the assigned hub,
 * azure-iothub to look into each hub.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import provisioningService from 'azure-iot-provisioning-service';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import symmetricKey from 'azure-iot-security-symmetric-key';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import { startTestHub, type TestHub } from './support/hub.js';
import { derivedKey, dpsFixture, type DpsFixture } from './support/dps.js';
import { eventsOf } from './support/devices.js';
import { sdkError } from './support/sdk.js';
import { fleethub } from './support/process.js';
import { check, checkHubs, ConfigError, defaults, type Config } from '../src/config/index.js';
import { startFleethub } from '../src/main.js';
import { dpsInstance } from '../src/dps/instance.js';
import { allocate, isAllocationFailure } from '../src/dps/registration/allocation.js';

const { ProvisioningServiceClient } = provisioningService;
const { ProvisioningDeviceClient } = provisioningDevice;
const { SymmetricKeySecurityClient } = symmetricKey;

/** Runs `fn` over `items`, `width` at a time. */
async function inBatches<T, R>(items: T[], width: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map((item, j) => fn(item, i + j)))));
  return out;
}

describe('two hubs in one process, the DPS allocating across them', () => {
  let t: TestHub;
  let second: TestHub;
  let service: InstanceType<typeof ProvisioningServiceClient>;
  let registries: Map<string, InstanceType<typeof iothub.Registry>>;
  let idScope: string;

  before(async () => {
    // Weights 1 (primary) and 3 (the extra hub): the extra hub is named in dps.linkedHubs to set its weight.
    let registry: DpsFixture['registry'];
    ({ t, service, registry, idScope } = await dpsFixture(({ extraHosts }) => ({ dps: { allocationPolicy: 'hashed', linkedHubs: [{ hostName: extraHosts[0]!, allocationWeight: 3 }] } }), { extraHubs: 1 }));
    second = t.hubs[0]!;
    registries = new Map([
      [t.host, registry],
      [second.host, iothub.Registry.fromConnectionString(await second.connectionString())],
    ]);
  });
  after(() => t.close());

  const hubOf = (host: string) => (host === t.host ? t : host === second.host ? second : assert.fail(`unknown hub ${host}`));
  const otherHub = (host: string) => (host === t.host ? second.host : t.host);
  /** Registers as the device; a failed registration's error carries DPS's answer in its message. */
  const register = (registrationId: string, key: string, transport: any = new provisioningHttp.Http()) =>
    (ProvisioningDeviceClient.create(t.host, idScope, transport, new SymmetricKeySecurityClient(registrationId, key) as any).register() as Promise<any>).catch((e: any) => {
      throw new Error(`${e.name}: ${JSON.stringify(e.result ?? e.message)}`);
    });

  /** Connects to `host` as the device, sends one message, and checks that hub's event log has it. */
  async function sendFrom(host: string, deviceId: string, key: string, body: unknown) {
    const client = device.Client.fromConnectionString(`HostName=${host};DeviceId=${deviceId};SharedAccessKey=${key}`, deviceMqtt.Mqtt as any);
    await client.open();
    try {
      await client.sendEvent(new device.Message(JSON.stringify(body)));
    } finally {
      await client.close();
    }
    const events = await eventsOf(hubOf(host), deviceId);
    assert.deepEqual(JSON.parse(events.at(-1)!.body.toString()), body);
  }

  test('the extra hub is a hub of its own: own database, own listeners on its address, a certificate from the same CA', async () => {
    assert.notEqual(second.host, t.host);
    assert.equal(t.hub.hubs.length, 1);
    assert.equal(second.hub.config.hubName, 'hub1');
    assert.match(second.hub.config.dataDir, /hubs[/\\]hub1$/);
    assert.equal(second.hub.tls.caCertificatePem, t.hub.tls.caCertificatePem);
    assert.notEqual(second.hub.tls.serverCertificatePem, t.hub.tls.serverCertificatePem);
    const info = await t.hub.info();
    assert.equal(info.hubs?.length, 1);
    assert.equal(info.hubs![0]!.hubHostName, second.host);
    assert.match(info.hubs![0]!.iothubownerConnectionString, new RegExp(`^HostName=${second.host.replace(/\./g, '\\.')};SharedAccessKeyName=iothubowner;`));
    // Its own policies: the primary hub's owner key does not open it.
    assert.notEqual(info.hubs![0]!.iothubownerConnectionString.split('SharedAccessKey=')[1], info.iothubownerConnectionString.split('SharedAccessKey=')[1]);
    // A device created in one hub is not in the other (the service SDK dials each host name on 443).
    await registries.get(second.host)!.create({ deviceId: 'only-in-second' } as any);
    await assert.rejects(registries.get(t.host)!.get('only-in-second'), sdkError('DeviceNotFoundError'));
    await registries.get(second.host)!.delete('only-in-second');
  });

  test('hashed allocation with weights 1 and 3 spreads 40 group devices by weight; each is in exactly its hub, connects there and sends telemetry', async () => {
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'spread',
      attestation: { type: 'symmetricKey' },
      initialTwin: { tags: { fleet: 'spread' } },
    } as any);
    const groupKey = (await service.getEnrollmentGroupAttestationMechanism('spread')).responseBody.symmetricKey!.primaryKey;
    const ids = Array.from({ length: 40 }, (_, i) => `spread-${String(i).padStart(2, '0')}`);
    // Half over HTTPS, half over MQTT: both transports reach the same allocation.
    const results = await inBatches(ids, 10, (id, i) => register(id, derivedKey(groupKey, id), i % 2 ? new provisioningMqtt.Mqtt() : new provisioningHttp.Http()));
    const counts = new Map<string, number>();
    for (const r of results) {
      assert.equal(r.status, 'assigned');
      assert.equal(r.substatus, 'initialAssignment');
      assert.ok(r.assignedHub === t.host || r.assignedHub === second.host, r.assignedHub);
      counts.set(r.assignedHub, (counts.get(r.assignedHub) ?? 0) + 1);
    }
    // Expected 10 and 30; hashing is stable, so this band holds or fails the same way every run.
    const primary = counts.get(t.host) ?? 0;
    assert.ok(primary >= 4 && primary <= 16, `primary hub got ${primary} of 40 (weight 1 of 4)`);
    assert.equal(primary + (counts.get(second.host) ?? 0), 40);
    assert.ok(counts.get(second.host)! > primary, 'the weight-3 hub gets more devices');
    // The same allocation over many more ids sits close to the weights (1 of 4).
    const instance = dpsInstance({ hostName: t.host, hubs: [{ hostName: second.host }], dps: { allocationPolicy: 'hashed', linkedHubs: [{ hostName: second.host, allocationWeight: 3 }] } }, idScope);
    const noWebhook = { post: () => Promise.reject(new Error('hashed allocation calls no webhook')) };
    const many = await Promise.all(
      Array.from({ length: 4000 }, (_, i) => allocate(instance, { registrationId: `device-${i}`, enrollment: { attestation: { type: 'symmetricKey' } } as any }, noWebhook)),
    );
    const share = many.filter((a) => !isAllocationFailure(a) && a.hub.hostName === t.host).length / many.length;
    assert.ok(share > 0.22 && share < 0.28, `primary share ${share} over 4000 ids`);

    await inBatches(results, 8, async (r, i) => {
      const id = ids[i]!;
      assert.equal(r.deviceId, id);
      const there = registries.get(r.assignedHub)!;
      const dev: any = (await there.get(id)).responseBody;
      assert.equal(dev.authentication.symmetricKey.primaryKey, derivedKey(groupKey, id));
      assert.deepEqual((await there.getTwin(id)).responseBody.tags, { fleet: 'spread' });
      await assert.rejects(registries.get(otherHub(r.assignedHub))!.get(id), sdkError('DeviceNotFoundError'));
      await sendFrom(r.assignedHub, id, derivedKey(groupKey, id), { n: i });
      // The registration record names the hub too.
      assert.equal((await service.getDeviceRegistrationState(id)).responseBody.assignedHub, r.assignedHub);
    });
  });

  test('a device of one hub cannot connect to the other hub', async () => {
    await service.createOrUpdateIndividualEnrollment({ registrationId: 'pinned', attestation: { type: 'symmetricKey' }, allocationPolicy: 'static', iotHubs: [second.host] } as any);
    const key = (await service.getIndividualEnrollmentAttestationMechanism('pinned')).responseBody.symmetricKey!.primaryKey;
    const r = await register('pinned', key);
    assert.equal(r.assignedHub, second.host);
    const wrong = device.Client.fromConnectionString(`HostName=${t.host};DeviceId=pinned;SharedAccessKey=${key}`, deviceMqtt.Mqtt as any);
    await assert.rejects(wrong.open());
    await wrong.close().catch(() => undefined);
  });

  describe('reprovisioning', () => {
    let key: string;
    const move = async (registrationId: string, hub: string, reprovisionPolicy?: { updateHubAssignment: boolean; migrateDeviceData: boolean }) => {
      const { responseBody: e } = await service.getIndividualEnrollment(registrationId);
      await service.createOrUpdateIndividualEnrollment({ ...e, allocationPolicy: 'static', iotHubs: [hub], ...(reprovisionPolicy ? { reprovisionPolicy } : {}) } as any);
    };
    const twinIn = async (host: string, deviceId: string) => (await registries.get(host)!.getTwin(deviceId)).responseBody as any;

    before(async () => {
      await service.createOrUpdateIndividualEnrollment({
        registrationId: 'traveller',
        deviceId: 'traveller-dev',
        attestation: { type: 'symmetricKey' },
        allocationPolicy: 'static',
        iotHubs: [t.host],
        initialTwin: { tags: { stage: 'initial' }, properties: { desired: { mode: 'a' } } },
      } as any);
      key = (await service.getIndividualEnrollmentAttestationMechanism('traveller')).responseBody.symmetricKey!.primaryKey;
      const first = await register('traveller', key);
      assert.equal(first.assignedHub, t.host);
      assert.equal(first.substatus, 'initialAssignment');
      // The hub's data moves on from the initial twin: the service sets a tag and a desired property, the device reports.
      await registries.get(t.host)!.updateTwin('traveller-dev', { tags: { owner: 'ops' }, properties: { desired: { mode: 'b' } } } as any, '*');
      const client = device.Client.fromConnectionString(`HostName=${t.host};DeviceId=traveller-dev;SharedAccessKey=${key}`, deviceMqtt.Mqtt as any);
      await client.open();
      try {
        const twin = await client.getTwin();
        await new Promise<void>((resolve, reject) => twin.properties.reported.update({ firmware: '1.0' }, (e?: Error) => (e ? reject(e) : resolve())));
      } finally {
        await client.close();
      }
    });

    test('registering again to the same hub keeps the twin: reprovisionedToInitialAssignment', async () => {
      const r = await register('traveller', key, new provisioningMqtt.Mqtt());
      assert.equal(r.assignedHub, t.host);
      assert.equal(r.substatus, 'reprovisionedToInitialAssignment');
      const twin = await twinIn(t.host, 'traveller-dev');
      assert.deepEqual(twin.tags, { stage: 'initial', owner: 'ops' });
      assert.equal(twin.properties.reported.firmware, '1.0');
    });

    test('default policy, enrollment moved to the other hub: the device moves with its twin (deviceDataMigrated) and leaves the old hub', async () => {
      await move('traveller', second.host);
      const r = await register('traveller', key);
      assert.equal(r.status, 'assigned');
      assert.equal(r.assignedHub, second.host);
      assert.equal(r.substatus, 'deviceDataMigrated');
      const twin = await twinIn(second.host, 'traveller-dev');
      assert.deepEqual(twin.tags, { stage: 'initial', owner: 'ops' });
      assert.equal(twin.properties.desired.mode, 'b');
      assert.equal(twin.properties.reported.firmware, '1.0');
      await assert.rejects(registries.get(t.host)!.get('traveller-dev'), sdkError('DeviceNotFoundError'));
      // The device works in its new hub and sees the migrated desired properties there.
      const client = device.Client.fromConnectionString(`HostName=${second.host};DeviceId=traveller-dev;SharedAccessKey=${key}`, deviceMqtt.Mqtt as any);
      await client.open();
      try {
        const deviceTwin = await client.getTwin();
        assert.equal(deviceTwin.properties.desired.mode, 'b');
        assert.equal(deviceTwin.properties.reported.firmware, '1.0');
      } finally {
        await client.close();
      }
      await sendFrom(second.host, 'traveller-dev', key, { after: 'migration' });
      const state = (await service.getDeviceRegistrationState('traveller')).responseBody;
      assert.equal(state.assignedHub, second.host);
      assert.equal(state.substatus, 'deviceDataMigrated');
    });

    test('migrateDeviceData false: moved back with the enrollment\'s initial twin (deviceDataReset)', async () => {
      await move('traveller', t.host, { updateHubAssignment: true, migrateDeviceData: false });
      const r = await register('traveller', key);
      assert.equal(r.assignedHub, t.host);
      assert.equal(r.substatus, 'deviceDataReset');
      const twin = await twinIn(t.host, 'traveller-dev');
      assert.deepEqual(twin.tags, { stage: 'initial' });
      assert.equal(twin.properties.desired.mode, 'a');
      assert.equal(twin.properties.reported.firmware, undefined);
      await assert.rejects(registries.get(second.host)!.get('traveller-dev'), sdkError('DeviceNotFoundError'));
      await sendFrom(t.host, 'traveller-dev', key, { after: 'reset' });
    });

    test('migrateDeviceData false on the same hub resets the twin to the initial one', async () => {
      await registries.get(t.host)!.updateTwin('traveller-dev', { tags: { owner: 'someone' } } as any, '*');
      const r = await register('traveller', key);
      assert.equal(r.assignedHub, t.host);
      assert.equal(r.substatus, 'reprovisionedToInitialAssignment');
      assert.deepEqual((await twinIn(t.host, 'traveller-dev')).tags, { stage: 'initial' });
    });

    test('updateHubAssignment false: the device stays in its hub with its twin, whatever the enrollment now says', async () => {
      await registries.get(t.host)!.updateTwin('traveller-dev', { tags: { owner: 'kept' } } as any, '*');
      await move('traveller', second.host, { updateHubAssignment: false, migrateDeviceData: false });
      const r = await register('traveller', key);
      assert.equal(r.assignedHub, t.host);
      assert.equal(r.substatus, 'reprovisionedToInitialAssignment');
      assert.deepEqual((await twinIn(t.host, 'traveller-dev')).tags, { stage: 'initial', owner: 'kept' });
      await assert.rejects(registries.get(second.host)!.get('traveller-dev'), sdkError('DeviceNotFoundError'));
    });
  });

  test('after a restart each hub finds its own devices in its own database again', async () => {
    const before = await t.hub.info();
    await t.restart();
    const after = await t.hub.info();
    assert.equal(after.hubs![0]!.iothubownerConnectionString, before.hubs![0]!.iothubownerConnectionString);
    assert.equal(after.dps!.idScope, before.dps!.idScope);
    assert.equal((await second.hub.registry.getDevice('pinned')).deviceId, 'pinned');
    await assert.rejects(t.hub.registry.getDevice('pinned'), (e: any) => e.status === 404);
    assert.deepEqual((await t.hub.twins.getTwin('traveller-dev')).tags, { stage: 'initial', owner: 'kept' });
  });

  test('fleethub info lists every hub of the process with its connection strings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleethub-multihub-info-'));
    try {
      const file = join(dir, 'fleethub.json');
      writeFileSync(file, JSON.stringify({ hostName: t.host, bind: t.host, hubs: [{ hubName: 'hub1', hostName: second.host, bind: second.host }] }));
      const ran = await fleethub(['info', '--json', '--config', file, '--data', t.dataDir]);
      assert.equal(ran.code, 0, ran.stderr);
      const info = JSON.parse(ran.stdout);
      assert.equal(info.hubHostName, t.host);
      assert.equal(info.hubs.length, 1);
      assert.equal(info.hubs[0].hubName, 'hub1');
      assert.equal(info.hubs[0].hubHostName, second.host);
      assert.equal(info.hubs[0].running, true);
      assert.equal(info.hubs[0].iothubownerConnectionString, await second.connectionString());
      assert.equal(info.hubs[0].caCertificatePath, info.caCertificatePath);
      const text = await fleethub(['info', '--config', file, '--data', t.dataDir]);
      assert.match(text.stdout, new RegExp(`hubs\\[0\\]\\.hubHostName\\s+${second.host.replace(/\./g, '\\.')}`));
      assert.match(text.stdout, /hubs\[0\]\.iothubownerConnectionString\s+HostName=/);

      writeFileSync(file, JSON.stringify({ hostName: t.host, bind: t.host, hubs: [{ hubName: 'hub1', hostName: t.host, bind: second.host }] }));
      const bad = await fleethub(['info', '--config', file, '--data', t.dataDir]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /'hubs\[0\]\.hostName' is '[\d.]+', already used by 'hostName'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('hubs configuration', () => {
  const base = { ...defaults, hostName: 'hub0.local', bind: '127.0.0.1' } as Config;
  const bad: [unknown, RegExp][] = [
    [{ hubs: {} }, /'hubs' must be a list/],
    [{ hubs: ['x'] }, /'hubs\[0\]' must be an object/],
    [{ hubs: [{ hostName: 'a.local', bind: '127.0.0.2' }] }, /'hubs\[0\]\.hubName' must be 3-50/],
    [{ hubs: [{ hubName: 'ok-hub', hostName: 'bad host', bind: '127.0.0.2' }] }, /'hubs\[0\]\.hostName' must be a host name/],
    [{ hubs: [{ hubName: 'ok-hub', hostName: 'a.local', port: 1 }] }, /unknown setting 'hubs\[0\]\.port'/],
    [{ hubs: [{ hubName: 'ok-hub', hostName: 'a.local', bind: 7 }] }, /'hubs\[0\]\.bind' must be an address/],
  ];
  test('bad entries name the setting', () => {
    for (const [input, message] of bad) {
      assert.throws(() => check(input, 'test'), (e: unknown) => e instanceof ConfigError && message.test((e as Error).message), JSON.stringify(input));
    }
  });

  test('names, host names and addresses must not collide with the primary hub or each other', () => {
    const cases: [Config['hubs'], Partial<Config>, RegExp][] = [
      [[{ hubName: 'fleethub', hostName: 'a.local', bind: '127.0.0.2' }], {}, /'hubs\[0\]\.hubName' is 'fleethub', already the name of 'hubName'/],
      [[{ hubName: 'second', hostName: 'HUB0.local', bind: '127.0.0.2' }], {}, /'hubs\[0\]\.hostName' .* already used by 'hostName'/],
      [[{ hubName: 'second', hostName: 'dps.local', bind: '127.0.0.2' }], { dps: { ...defaults.dps, hostName: 'dps.local' } }, /already used by 'dps\.hostName'/],
      [[{ hubName: 'second', hostName: '127.0.0.9' }], {}, /a hub without an address of its own .* needs a DNS name/],
      [[{ hubName: 'second', hostName: 'LOCALHOST' }], {}, /needs a DNS name/],
      [[{ hubName: 'second', hostName: 'a.local', bind: '127.0.0.1' }], {}, /'hubs\[0\]\.bind' is '127\.0\.0\.1', already the address of 'bind'/],
      [[{ hubName: 'second', hostName: 'a.local', bind: '127.0.0.2' }], { bind: '::' }, /'bind' is '::' \(every address\)/],
      [[{ hubName: 'second', hostName: 'a.local', bind: '0.0.0.0' }], {}, /'hubs\[0\]\.bind' must be a specific address/],
      [
        [
          { hubName: 'second', hostName: 'a.local', bind: '127.0.0.2' },
          { hubName: 'third', hostName: 'b.local', bind: '127.0.0.2' },
        ],
        {},
        /'hubs\[1\]\.bind' is '127\.0\.0\.2', already the address of 'hubs\[0\]\.bind'/,
      ],
      [
        [
          { hubName: 'second', hostName: 'a.local', bind: '127.0.0.2' },
          { hubName: 'SECOND', hostName: 'b.local', bind: '127.0.0.3' },
        ],
        {},
        /'hubs\[1\]\.hubName' is 'SECOND', already the name of 'hubs\[0\]\.hubName'/,
      ],
    ];
    for (const [hubs, more, message] of cases) {
      assert.throws(() => checkHubs({ ...base, ...more, hubs }), (e: unknown) => e instanceof ConfigError && message.test((e as Error).message), message.source);
    }
    assert.doesNotThrow(() => checkHubs({ ...base, hubs: [{ hubName: 'second', hostName: 'a.local', bind: '127.0.0.2' }] }));
    // Without 'bind', a hub shares the primary's listeners (any address, every address too), told apart by name.
    assert.doesNotThrow(() => checkHubs({ ...base, bind: '::', hubs: [{ hubName: 'second', hostName: 'a.local' }, { hubName: 'third', hostName: 'b.local' }] }));
  });

  test('startFleethub refuses a colliding configuration before binding anything', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fleethub-hubs-config-'));
    try {
      await assert.rejects(
        startFleethub({ ...base, dataDir, logLevel: 'silent', hubs: [{ hubName: 'second', hostName: 'HUB0.local' }] }),
        (e: unknown) => e instanceof ConfigError && /'hubs\[0\]\.hostName' .* already used by 'hostName'/.test((e as Error).message),
      );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a linked hub in another Fleethub, reached only through its connection string', () => {
  let far: TestHub;
  let t: TestHub;
  let service: InstanceType<typeof ProvisioningServiceClient>;
  let farRegistry: InstanceType<typeof iothub.Registry>;
  let nearRegistry: InstanceType<typeof iothub.Registry>;
  let idScope: string;

  before(async () => {
    // Another hub composition (its own data directory and listeners): the DPS knows it only by its registryReadWrite connection string.
    far = await startTestHub();
    const farConnectionString = await far.connectionString('registryReadWrite');
    ({ t, service, registry: nearRegistry, idScope } = await dpsFixture({ dps: { allocationPolicy: 'hashed', linkedHubs: [{ hostName: far.host, connectionString: farConnectionString }] } }));
    farRegistry = iothub.Registry.fromConnectionString(await far.connectionString());
  });
  after(async () => {
    await t?.close();
    await far?.close();
  });

  const register = (registrationId: string, key: string) =>
    (ProvisioningDeviceClient.create(t.host, idScope, new provisioningMqtt.Mqtt(), new SymmetricKeySecurityClient(registrationId, key) as any).register() as Promise<any>).catch((e: any) => {
      throw new Error(`${e.name}: ${JSON.stringify(e.result ?? e.message)}`);
    });
  const pinTo = async (registrationId: string, hub: string) => {
    const { responseBody: e } = await service.getIndividualEnrollment(registrationId);
    await service.createOrUpdateIndividualEnrollment({ ...e, allocationPolicy: 'static', iotHubs: [hub] } as any);
  };

  test('the device is created there over REST with its initial twin, connects there, and moves between the hubs with its data', async () => {
    await service.createOrUpdateIndividualEnrollment({
      registrationId: 'remote-one',
      attestation: { type: 'symmetricKey' },
      allocationPolicy: 'static',
      iotHubs: [far.host],
      capabilities: { iotEdge: true },
      initialTwin: { tags: { site: 'far' }, properties: { desired: { rate: 7 } } },
    } as any);
    const key = (await service.getIndividualEnrollmentAttestationMechanism('remote-one')).responseBody.symmetricKey!.primaryKey;
    const first = await register('remote-one', key);
    assert.equal(first.assignedHub, far.host);
    assert.equal(first.substatus, 'initialAssignment');
    const created: any = (await farRegistry.get('remote-one')).responseBody;
    assert.equal(created.authentication.symmetricKey.primaryKey, key);
    assert.equal(created.capabilities.iotEdge, true);
    const farTwin: any = (await farRegistry.getTwin('remote-one')).responseBody;
    assert.deepEqual(farTwin.tags, { site: 'far' });
    assert.equal(farTwin.properties.desired.rate, 7);
    await assert.rejects(nearRegistry.get('remote-one'), sdkError('DeviceNotFoundError'));

    // The device works in the far hub and reports there.
    const client = device.Client.fromConnectionString(`HostName=${far.host};DeviceId=remote-one;SharedAccessKey=${key}`, deviceMqtt.Mqtt as any);
    await client.open();
    try {
      await client.sendEvent(new device.Message(JSON.stringify({ from: 'far' })));
      const twin = await client.getTwin();
      await new Promise<void>((resolve, reject) => twin.properties.reported.update({ battery: 80 }, (e?: Error) => (e ? reject(e) : resolve())));
    } finally {
      await client.close();
    }
    assert.deepEqual(JSON.parse((await eventsOf(far, 'remote-one')).at(-1)!.body.toString()), { from: 'far' });
    await farRegistry.updateTwin('remote-one', { tags: { owner: 'far-ops' } } as any, '*');

    // Moved to the DPS's own hub: the twin read over REST comes along, the far hub forgets the device.
    await pinTo('remote-one', t.host);
    const moved = await register('remote-one', key);
    assert.equal(moved.assignedHub, t.host);
    assert.equal(moved.substatus, 'deviceDataMigrated');
    const nearTwin: any = (await nearRegistry.getTwin('remote-one')).responseBody;
    assert.deepEqual(nearTwin.tags, { site: 'far', owner: 'far-ops' });
    assert.equal(nearTwin.properties.desired.rate, 7);
    assert.equal(nearTwin.properties.reported.battery, 80);
    await assert.rejects(farRegistry.get('remote-one'), sdkError('DeviceNotFoundError'));

    // And back: tags and desired properties travel over REST; reported properties cannot be written by a service.
    await nearRegistry.updateTwin('remote-one', { properties: { desired: { rate: 9 } } } as any, '*');
    await pinTo('remote-one', far.host);
    const back = await register('remote-one', key);
    assert.equal(back.assignedHub, far.host);
    assert.equal(back.substatus, 'deviceDataMigrated');
    const again: any = (await farRegistry.getTwin('remote-one')).responseBody;
    assert.deepEqual(again.tags, { site: 'far', owner: 'far-ops' });
    assert.equal(again.properties.desired.rate, 9);
    await assert.rejects(nearRegistry.get('remote-one'), sdkError('DeviceNotFoundError'));
  });

  test('a remote hub that refuses the write ends the registration failed, and nothing is left behind', async () => {
    // The far hub's registryRead policy cannot create devices: IoT Hub answers 401.
    const readOnly = await far.connectionString('registryRead');
    const { t: u, service: svc, idScope: scope } = await dpsFixture({ dps: { linkedHubs: [{ hostName: far.host, connectionString: readOnly }] } });
    try {
      await svc.createOrUpdateIndividualEnrollment({ registrationId: 'refused', attestation: { type: 'symmetricKey' }, allocationPolicy: 'static', iotHubs: [far.host] } as any);
      const key = (await svc.getIndividualEnrollmentAttestationMechanism('refused')).responseBody.symmetricKey!.primaryKey;
      const client = ProvisioningDeviceClient.create(u.host, scope, new provisioningHttp.Http(), new SymmetricKeySecurityClient('refused', key) as any);
      await assert.rejects(client.register() as Promise<any>, (e: any) => {
        assert.equal(e.result?.status, 'failed');
        assert.equal(e.result.registrationState.errorCode, 500000);
        assert.match(e.result.registrationState.errorMessage, new RegExp(`${far.host.replace(/\./g, '\\.')} answered 401`));
        return true;
      });
      await assert.rejects(farRegistry.get('refused'), sdkError('DeviceNotFoundError'));
      assert.equal((await svc.getDeviceRegistrationState('refused')).responseBody.status, 'failed');
    } finally {
      await u.close();
    }
  });
});
