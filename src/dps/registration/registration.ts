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
import type { DeviceRegistrationState } from '../types.js';
import { allocate } from './allocation.js';
import { Attestation, type DeviceCredential, type Matched } from './attestation.js';
import type { HubTarget } from './hubTarget.js';

export type { DeviceCredential } from './attestation.js';

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
  registrationState?: DeviceRegistrationState;
}

/** The seconds a device is told to wait before polling (DPS sends retry-after). */
export const RETRY_AFTER_SECONDS = 1;
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
    /** The hub in this process, by host name; other linked hubs cannot be written from here. */
    private readonly localHubHostName: string,
    private readonly localHub: HubTarget,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.attestation = new Attestation(instance, enrollments, groups, certificates, now);
  }

  private readonly attestation: Attestation;

  private attest(idScope: string, registrationId: string, credential: DeviceCredential): Promise<Matched> {
    return this.attestation.attest(idScope, registrationId, credential);
  }

  /**
   * PUT …/register. Refusals of the credential throw (401, DPS does not reveal whether the
   * registration id exists); everything after attestation is an operation status.
   */
  async register(idScope: string, registrationId: string, credential: DeviceCredential, request: RegistrationRequest = {}): Promise<RegistrationOperation> {
    const matched = await this.attest(idScope, registrationId, credential);
    const operationId = `4.${randomUUID().replace(/-/g, '').slice(0, 16)}.${randomUUID()}`;
    const result = await this.assign(registrationId, matched, operationId, request);
    await this.operations.put({ ...result, registrationId, expiresAt: this.now().getTime() + OPERATION_TTL_MS });
    await this.sweep();
    // The device learns the outcome by polling, as with DPS (whose PUT answers `assigning`).
    return { operationId, status: 'assigning' };
  }

  /** Whether the credential attests this registration (MQTT checks it at CONNECT). */
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

  private async assign(registrationId: string, m: Matched, operationId: string, _request: RegistrationRequest): Promise<RegistrationOperation> {
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

    const hub = allocate(this.instance, registrationId, m.enrollment);
    if (typeof hub === 'string') return fail(400207, hub);
    if (hub.hostName.toLowerCase() !== this.localHubHostName.toLowerCase()) {
      return fail(
        500207,
        `Allocated hub ${hub.hostName} is not hosted by this Fleethub process; provisioning devices into other hubs is not supported yet.`,
      );
    }
    const deviceId = m.individual?.deviceId || registrationId;
    // The twin is DPS's to initialize on first assignment only; re-registration keeps the hub's data.
    const firstAssignment = !previous || previous.state.status !== 'assigned' || previous.state.deviceId !== deviceId;
    try {
      await this.localHub.provision({
        deviceId,
        authentication: m.authentication,
        iotEdge: m.enrollment.capabilities?.iotEdge ?? false,
        ...(firstAssignment && m.enrollment.initialTwin ? { initialTwin: m.enrollment.initialTwin } : {}),
      });
    } catch (e) {
      return fail(500000, `Provisioning the device in ${hub.hostName} failed: ${(e as Error).message}`);
    }
    const state = await record({
      ...base,
      assignedHub: hub.hostName,
      deviceId,
      status: 'assigned',
      substatus: 'initialAssignment',
    });
    return { operationId: operationId, status: 'assigned', registrationState: state };
  }
}
