/**
 * Symmetric-key groups that change after a device registered: attestation remembers which group
 * matched a registration id (so the CONNECT, PUT and poll of one registration do not each scan
 * every group), and that memory must never let a stale key in or keep a device on the old group.
 * Unmodified azure-iot-provisioning-device + -mqtt + azure-iot-security-symmetric-key.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import provisioningService from 'azure-iot-provisioning-service';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import symmetricKey from 'azure-iot-security-symmetric-key';
import { startTestHub, type TestHub } from './support/hub.js';
import { dpsConnectionString } from './support/dps.js';
import { sdkError } from './support/sdk.js';

const { ProvisioningServiceClient } = provisioningService;
const derived = (groupKey: string, registrationId: string) => createHmac('sha256', Buffer.from(groupKey, 'base64')).update(registrationId).digest('base64');
const key = (fill: number) => Buffer.alloc(32, fill).toString('base64');

describe('DPS symmetric-key groups that change after a device registered', () => {
  let t: TestHub;
  let service: InstanceType<typeof ProvisioningServiceClient>;
  let idScope: string;

  before(async () => {
    t = await startTestHub();
    service = ProvisioningServiceClient.fromConnectionString(await dpsConnectionString(t));
    idScope = (await t.hub.info()).dps!.idScope;
  });
  after(() => t.close());

  const register = (registrationId: string, deviceKey: string, transport: any = new provisioningMqtt.Mqtt()) =>
    provisioningDevice.ProvisioningDeviceClient.create(t.host, idScope, transport, new symmetricKey.SymmetricKeySecurityClient(registrationId, deviceKey) as any).register() as Promise<any>;

  async function registrationsOf(groupId: string): Promise<string[]> {
    const q = service.createEnrollmentGroupDeviceRegistrationStateQuery({ query: 'SELECT * FROM enrollments' }, groupId, 100);
    return ((await q.next()) as any).responseBody.map((s: any) => s.registrationId);
  }

  test('new group keys refuse the old derived key; another group takes the device; a deleted group no longer attests', async () => {
    const putGroup = async (id: string, k: string) => {
      const existing = await service.getEnrollmentGroup(id).then((r) => r.responseBody, () => undefined);
      await service.createOrUpdateEnrollmentGroup({ ...(existing ?? {}), enrollmentGroupId: id, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: k, secondaryKey: k } } } as any);
    };
    // Groups are scanned in id order: 'm-group' comes after 'b-group'.
    await putGroup('m-group', key(1));
    const first = await register('mover', derived(key(1), 'mover'));
    assert.equal(first.status, 'assigned');
    assert.deepEqual(await registrationsOf('m-group'), ['mover']);

    // The group's keys are rolled: the old derived key is refused over MQTT and HTTPS alike.
    await putGroup('m-group', key(2));
    await assert.rejects(register('mover', derived(key(1), 'mover')), (e: any) => /Not authorized/.test(e?.message));
    await assert.rejects(register('mover', derived(key(1), 'mover'), new provisioningHttp.Http()), sdkError('UnauthorizedError'));

    // A device whose key now belongs to another group registers through that group.
    await putGroup('b-group', key(3));
    assert.equal((await register('mover', derived(key(3), 'mover'))).status, 'assigned');
    assert.deepEqual(await registrationsOf('b-group'), ['mover']);
    assert.deepEqual(await registrationsOf('m-group'), []);

    // And back to the first group with its new keys, although 'b-group' matched last.
    assert.equal((await register('mover', derived(key(2), 'mover'))).status, 'assigned');
    assert.deepEqual(await registrationsOf('m-group'), ['mover']);

    // Once the group that matched is deleted, its derived keys attest nothing.
    await service.deleteEnrollmentGroup('m-group');
    await assert.rejects(register('mover', derived(key(2), 'mover')), (e: any) => /Not authorized/.test(e?.message));
    assert.equal((await register('mover', derived(key(3), 'mover'))).status, 'assigned');
  });
  test('two groups accepting one device: the group it last registered through wins, also after a restart; without a record, the first by id', async () => {
    const putGroup = (id: string, k: string) =>
      service.createOrUpdateEnrollmentGroup({ enrollmentGroupId: id, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: k, secondaryKey: k } } } as any);
    // Only 'z-prec' exists when the device first registers.
    await putGroup('z-prec', key(5));
    assert.equal((await register('twin-dev', derived(key(5), 'twin-dev'))).status, 'assigned');
    // 'a-prec' has the same keys and comes first by id; the registration record keeps 'z-prec' first.
    await putGroup('a-prec', key(5));
    assert.equal((await register('twin-dev', derived(key(5), 'twin-dev'), new provisioningHttp.Http())).status, 'assigned');
    assert.deepEqual([await registrationsOf('z-prec'), await registrationsOf('a-prec')], [['twin-dev'], []]);
    // The order comes from stored state, not from this process's history.
    await t.restart();
    assert.equal((await register('twin-dev', derived(key(5), 'twin-dev'))).status, 'assigned');
    assert.deepEqual([await registrationsOf('z-prec'), await registrationsOf('a-prec')], [['twin-dev'], []]);
    // Without a registration record, the first group by id.
    await service.deleteDeviceRegistrationState('twin-dev');
    assert.equal((await register('twin-dev', derived(key(5), 'twin-dev'))).status, 'assigned');
    assert.deepEqual([await registrationsOf('z-prec'), await registrationsOf('a-prec')], [[], ['twin-dev']]);
  });
});
