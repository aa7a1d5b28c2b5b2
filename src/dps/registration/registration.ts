/**
 * Device registration: the device side of DPS, shared by every transport (HTTPS, MQTT).
 * Finds the enrollment, checks the attestation, allocates a linked hub, provisions the device
 * there and records the registration state. No sockets, no SQL.
 */
import { randomUUID } from 'node:crypto';
import { newEtag } from '../../core/ids.js';
import type { DpsCertificateStore, EnrollmentGroupStore, EnrollmentStore, RegistrationOperationStore, RegistrationStore } from '../../store/dps.js';
import { DpsError, dpsErrors } from '../errors.js';
import type { DpsInstance } from '../instance.js';
import type { DeviceRegistrationState, InitialTwin, RegistrationSubstatus, ReprovisionPolicy } from '../types.js';
import { allocate, isAllocationFailure, type Allocation, type AllocationWebhook } from './allocation.js';
import { Attestation, type DeviceCredential, type Matched, type TpmChallengeRequired } from './attestation.js';
import type { DeviceTwinData, HubTarget } from './hubTarget.js';

export { TpmChallengeRequired, type DeviceCredential } from './attestation.js';

/** What the device sent with its registration besides its credential. */
export interface RegistrationRequest {
  /** The custom `payload` of the register body (handed to a custom allocation webhook). */
  payload?: unknown;
}

export type OperationStatus = 'assigning' | 'assigned' | 'failed' | 'disabled';

/** DPS's RegistrationOperationStatus. */
export interface RegistrationOperation {
  operationId: string;
  status: OperationStatus;
  /** `tpm`: for a TPM device, the blob that installs its hub key in its TPM (device responses only). */
  registrationState?: DeviceRegistrationState & { tpm?: { authenticationKey: string } };
}

/** Finished operations are kept this long for polling (DPS keeps them for a limited time too). */
const OPERATION_TTL_MS = 10 * 60 * 1000;
/** Expired operations are deleted at most this often (on a registration). */
const SWEEP_EVERY_MS = 60 * 1000;

export class DeviceRegistrations {
  private lastSweep = 0;

  constructor(
    private readonly instance: DpsInstance,
    enrollments: EnrollmentStore,
    groups: EnrollmentGroupStore,
    private readonly registrations: RegistrationStore,
    /** Operations the devices poll; stored before the PUT is answered, so they survive a restart. */
    private readonly operations: RegistrationOperationStore,
    certificates: DpsCertificateStore,
    /** The hubs devices can be provisioned into, by host name; undefined for a linked hub this process cannot write. */
    private readonly hubTarget: (hostName: string) => HubTarget | undefined,
    /** Calls `custom` allocation webhooks. */
    private readonly webhook: AllocationWebhook,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.attestation = new Attestation(instance, enrollments, groups, certificates, registrations, now);
  }

  private readonly attestation: Attestation;

  /** The seconds a device is told to wait before polling (DPS sends retry-after). */
  get retryAfterSeconds(): number {
    return this.instance.retryAfterSeconds;
  }

  private attest(idScope: string, registrationId: string, credential: DeviceCredential): Promise<Matched> {
    return this.attestation.attest(idScope, registrationId, credential);
  }

  /**
   * PUT …/register. Refusals of the credential throw (401, DPS does not reveal whether the
   * registration id exists); everything after attestation is an operation status. A TPM
   * credential without a token throws TpmChallengeRequired (not a refusal).
   */
  async register(idScope: string, registrationId: string, credential: DeviceCredential, request: RegistrationRequest = {}): Promise<RegistrationOperation> {
    const matched = await this.attest(idScope, registrationId, credential);
    if (matched.enrollment.attestation.type === 'tpm' && !matched.tpm) {
      // Without its TPM's keys the device could not be given its hub key.
      throw dpsErrors.badFormat('A TPM registration must carry tpm.endorsementKey and tpm.storageRootKey.');
    }
    const operationId = `4.${randomUUID().replace(/-/g, '').slice(0, 16)}.${randomUUID()}`;
    const result = await this.assign(registrationId, matched, operationId, request, credential);
    if (matched.tpm && result.status === 'assigned') result.registrationState = { ...result.registrationState!, tpm: matched.tpm };
    await this.operations.put({ ...result, registrationId, expiresAt: this.now().getTime() + OPERATION_TTL_MS });
    await this.sweep();
    // The device learns the outcome by polling, as with DPS (whose PUT answers `assigning`).
    return { operationId, status: 'assigning' };
  }

  /** The TPM challenge for these keys (AMQP's SASL TPM); a 401 DpsError if they match no enrollment. */
  tpmChallenge(idScope: string, registrationId: string, endorsementKey: string, storageRootKey: string): Promise<TpmChallengeRequired> {
    return this.attestation.tpmChallenge(idScope, registrationId, endorsementKey, storageRootKey);
  }

  /** Whether the credential attests this registration (MQTT checks it at CONNECT, AMQP at SASL). */
  async authenticate(idScope: string, registrationId: string, credential: DeviceCredential): Promise<boolean> {
    try {
      await this.attest(idScope, registrationId, credential);
      return true;
    } catch (e) {
      if (e instanceof DpsError && e.status === 401) return false;
      throw e;
    }
  }

  /** GET …/operations/{operationId}: the device must attest again, as with DPS. */
  async operationStatus(idScope: string, registrationId: string, operationId: string, credential: DeviceCredential): Promise<RegistrationOperation> {
    await this.attest(idScope, registrationId, credential);
    const op = await this.operations.get(operationId, registrationId, this.now().getTime());
    if (!op) throw dpsErrors.notFound(`Operation ${operationId} not found.`);
    return { operationId: op.operationId, status: op.status, ...(op.registrationState ? { registrationState: op.registrationState } : {}) };
  }

  private async sweep(): Promise<void> {
    const t = this.now().getTime();
    if (t - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = t;
    await this.operations.sweep(t);
  }

  private async assign(registrationId: string, m: Matched, operationId: string, request: RegistrationRequest, credential?: DeviceCredential): Promise<RegistrationOperation> {
    const at = this.now().toISOString();
    const previous = await this.registrations.get(registrationId);
    const base = {
      registrationId,
      createdDateTimeUtc: previous?.state.createdDateTimeUtc ?? at,
      lastUpdatedDateTimeUtc: at,
      etag: newEtag(),
    };
    const record = async (state: DeviceRegistrationState) => {
      await this.registrations.put({ state, ...(m.group ? { enrollmentGroupId: m.group.enrollmentGroupId } : {}) });
      return state;
    };
    if (m.enrollment.provisioningStatus === 'disabled') {
      // Nothing is provisioned; the record says why the device was not assigned.
      const state = await record({ ...base, status: 'disabled' });
      return { operationId: operationId, status: 'disabled', registrationState: state };
    }
    const fail = async (errorCode: number, errorMessage: string): Promise<RegistrationOperation> => {
      const state = await record({ ...base, status: 'failed', errorCode, errorMessage });
      return { operationId: operationId, status: 'failed', registrationState: state };
    };

    const deviceId = m.individual?.deviceId || registrationId;
    const current = previous?.state.status === 'assigned' && previous.state.assignedHub && previous.state.deviceId
      ? { iotHubHostName: previous.state.assignedHub, deviceId: previous.state.deviceId }
      : undefined;
    // A device assigned before (same device id) is reprovisioned by the enrollment's policy.
    const before = current?.deviceId === deviceId ? current.iotHubHostName : undefined;
    const policy: ReprovisionPolicy = { updateHubAssignment: true, migrateDeviceData: true, ...m.enrollment.reprovisionPolicy };
    let hubHostName: string;
    let allocation: Allocation | undefined;
    const custom = (m.enrollment.allocationPolicy ?? this.instance.allocationPolicy) === 'custom';
    if (before && !policy.updateHubAssignment && !custom) {
      hubHostName = before;
    } else {
      // DPS calls a custom webhook even when the device may not move (offering only its current hub), for a new payload.
      const allocated = await allocate(
        this.instance,
        { registrationId, enrollment: m.enrollment, individual: m.individual, group: m.group, credential, current, payload: request.payload },
        this.webhook,
      );
      if (isAllocationFailure(allocated)) return fail(allocated.errorCode, allocated.errorMessage);
      allocation = allocated;
      hubHostName = allocated.hub.hostName;
    }
    // A custom webhook's initialTwin replaces the enrollment's for this device.
    const initialTwin = allocation?.initialTwin ?? m.enrollment.initialTwin;
    const target = this.hubTarget(hubHostName);
    if (!target) {
      return fail(
        500207,
        `Allocated hub ${hubHostName} is not hosted by this Fleethub process and dps.linkedHubs gives no connectionString to reach it.`,
      );
    }
    let plan: { substatus: RegistrationSubstatus; twin?: DeviceTwinData; resetInPlace?: boolean; leaving?: HubTarget };
    try {
      plan = await this.reprovisionPlan(deviceId, initialTwin, policy, before, hubHostName, target);
      if (plan.resetInPlace) await target.remove(deviceId);
      await target.provision({
        deviceId,
        authentication: m.authentication,
        iotEdge: m.enrollment.capabilities?.iotEdge ?? false,
        ...(plan.twin ? { twin: plan.twin } : {}),
      });
      // DPS removes the device from the hub it leaves, once the new hub has it.
      await plan.leaving?.remove(deviceId);
    } catch (e) {
      return fail(500000, `Provisioning the device in ${hubHostName} failed: ${(e as Error).message}`);
    }
    const state = await record({
      ...base,
      assignedHub: hubHostName,
      deviceId,
      status: 'assigned',
      substatus: plan.substatus,
    });
    // The webhook's payload goes to the device only; the service's registration record has none.
    const registrationState = allocation?.payload !== undefined ? { ...state, payload: allocation.payload } : state;
    return { operationId: operationId, status: 'assigned', registrationState };
  }

  /**
   * What (re)assignment does with the device's data, as DPS's reprovisioning policies say:
   * first assignment writes the enrollment's initial twin; back to the same hub keeps the twin
   * (`reprovisionedToInitialAssignment`), unless the policy resets data, which recreates the
   * device with the initial twin; a move to another hub carries the twin over
   * (`deviceDataMigrated`) or starts from the initial twin (`deviceDataReset`), and the device
   * leaves the old hub.
   */
  private async reprovisionPlan(
    deviceId: string,
    initialTwin: InitialTwin | undefined,
    policy: ReprovisionPolicy,
    before: string | undefined,
    hubHostName: string,
    target: HubTarget,
  ): Promise<{ substatus: RegistrationSubstatus; twin?: DeviceTwinData; resetInPlace?: boolean; leaving?: HubTarget }> {
    const initial = initialTwinData(initialTwin);
    if (!before) return { substatus: 'initialAssignment', ...(initial ? { twin: initial } : {}) };
    if (before.toLowerCase() === hubHostName.toLowerCase()) {
      const substatus = 'reprovisionedToInitialAssignment';
      if (policy.updateHubAssignment && !policy.migrateDeviceData) return { substatus, resetInPlace: true, ...(initial ? { twin: initial } : {}) };
      // A device deleted from its hub since is created again as new, with the initial twin.
      if (!(await target.readTwin(deviceId))) return { substatus, ...(initial ? { twin: initial } : {}) };
      return { substatus };
    }
    const leaving = this.hubTarget(before);
    if (!policy.migrateDeviceData) return { substatus: 'deviceDataReset', ...(initial ? { twin: initial } : {}), ...(leaving ? { leaving } : {}) };
    const data = leaving ? await leaving.readTwin(deviceId) : undefined;
    const twin = data ?? initial;
    return { substatus: 'deviceDataMigrated', ...(twin ? { twin } : {}), ...(leaving ? { leaving } : {}) };
  }
}

/** The enrollment's initial twin as twin data (tags and desired properties). */
function initialTwinData(t: InitialTwin | undefined): DeviceTwinData | undefined {
  if (!t || (!t.tags && !t.properties?.desired)) return undefined;
  return { ...(t.tags ? { tags: t.tags } : {}), ...(t.properties?.desired ? { desired: t.properties.desired } : {}) };
}
