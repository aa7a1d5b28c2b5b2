/**
 * DPS enrollment group ids are case-insensitive strings (Azure's own samples use `deleteMe-node-…`):
 * kept as given, compared without regard to case for lookups, conflicts, deletes and the
 * registrations made through the group. Unmodified azure-iot-provisioning-service and
 * azure-iot-provisioning-device (+ -mqtt, azure-iot-security-symmetric-key).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import provisioningService from 'azure-iot-provisioning-service';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import symmetricKey from 'azure-iot-security-symmetric-key';
import { startTestHub, type TestHub } from './support/hub.js';
import { dpsConnectionString, derivedKey } from './support/dps.js';

const { ProvisioningServiceClient } = provisioningService;
const groupKey = Buffer.alloc(32, 7).toString('base64');
const status = (code: number) => (e: any) => {
  assert.equal(e?.response?.statusCode ?? e?.statusCode, code, String(e?.message));
  return true;
};

describe('DPS enrollment group ids with upper-case letters', () => {
  let t: TestHub;
  let service: InstanceType<typeof ProvisioningServiceClient>;
  let idScope: string;

  before(async () => {
    t = await startTestHub();
    service = ProvisioningServiceClient.fromConnectionString(await dpsConnectionString(t));
    idScope = (await t.hub.info()).dps!.idScope;
  });
  after(() => t.close());

  const group = (id: string) => ({ enrollmentGroupId: id, attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: groupKey } } }) as any;

  test('the id is kept as given and matched without regard to case, through registration and delete', async () => {
    const id = `deleteMe-node-${randomUUID()}`;
    const created = (await service.createOrUpdateEnrollmentGroup(group(id))).responseBody as any;
    assert.equal(created.enrollmentGroupId, id);
    assert.equal(((await service.getEnrollmentGroup(id.toLowerCase())).responseBody as any).enrollmentGroupId, id);

    // Another spelling of the same id is the same group: creating it again is a conflict.
    await assert.rejects(service.createOrUpdateEnrollmentGroup(group(id.toUpperCase())), status(409));
    assert.equal(((await service.getEnrollmentGroup(id)).responseBody as any).etag, created.etag);

    // A device registers through the group.
    const registrationId = `node-device-${randomUUID()}`;
    const result: any = await provisioningDevice.ProvisioningDeviceClient.create(
      t.host,
      idScope,
      new provisioningMqtt.Mqtt(),
      new symmetricKey.SymmetricKeySecurityClient(registrationId, derivedKey(groupKey, registrationId)) as any,
    ).register();
    assert.equal(result.status, 'assigned');
    const q = service.createEnrollmentGroupDeviceRegistrationStateQuery({ query: 'SELECT * FROM enrollments' }, id.toUpperCase(), 100);
    assert.deepEqual(((await q.next()) as any).responseBody.map((s: any) => s.registrationId), [registrationId]);
    const state: any = (await service.getDeviceRegistrationState(registrationId)).responseBody;
    assert.equal(state.status, 'assigned');

    // An update under another spelling replaces the group, which keeps its first spelling.
    const updated: any = (await service.createOrUpdateEnrollmentGroup({ ...created, enrollmentGroupId: id.toUpperCase(), provisioningStatus: 'disabled' })).responseBody;
    assert.equal(updated.provisioningStatus, 'disabled');
    assert.equal(updated.enrollmentGroupId, id);

    await service.deleteEnrollmentGroup(id.toUpperCase());
    await assert.rejects(service.getEnrollmentGroup(id), status(404));
  });

  test('ids outside DPS rules are refused and nothing is stored', async () => {
    for (const bad of ['Ends-With-Dot.', 'ends_with_colon:', 'has space', 'bang!', 'x'.repeat(129)]) {
      await assert.rejects(service.createOrUpdateEnrollmentGroup(group(bad)), status(400), bad);
    }
    for (const good of ['Mixed.Case_Id:1', 'ends-with-dash-', 'x'.repeat(128)]) {
      assert.equal(((await service.createOrUpdateEnrollmentGroup(group(good))).responseBody as any).enrollmentGroupId, good);
    }
    const listed = ((await service.createEnrollmentGroupQuery({ query: 'SELECT * FROM enrollmentGroups' }, 100).next()) as any).responseBody.map((g: any) => g.enrollmentGroupId);
    assert.deepEqual(listed.filter((g: string) => !g.startsWith('deleteMe')).sort(), ['Mixed.Case_Id:1', 'ends-with-dash-', 'x'.repeat(128)].sort());
  });
});
