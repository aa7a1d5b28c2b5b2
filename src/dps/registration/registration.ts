/**
 * Device registration: the device side of DPS, shared by every transport (HTTPS, MQTT).
 * Finds the enrollment, checks the attestation, allocates a linked hub, provisions the device
 * there and records the registration state. No sockets, no SQL.
 */
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { commonName, validAt } from '../../core/proofOfPossession.js';
import { newEtag } from '../../core/ids.js';
import { parseSasToken, sign, signatureMatches } from '../../core/sas.js';
import type { DpsCertificateStore, EnrollmentGroupStore, EnrollmentStore, RegistrationStore } from '../../store/dps.js';
import { DpsError, dpsErrors } from '../errors.js';
import type { DpsInstance } from '../instance.js';
import type { DeviceRegistrationState, EnrollmentCommon, EnrollmentGroup, IndividualEnrollment, LinkedHub } from '../types.js';
import type { HubTarget, ProvisionedDevice } from './hubTarget.js';

/** How the device proved who it is: a SAS token (symmetric keys) or its TLS client certificate chain (leaf first). */
export type DeviceCredential = { kind: 'sas'; token: string | undefined } | { kind: 'x509'; chain: Buffer[] };

const MAX_CHAIN_DEPTH = 8;

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

interface Matched {
  enrollment: EnrollmentCommon;
  individual?: IndividualEnrollment;
  group?: EnrollmentGroup;
  /** The credential the hub will know the device by (for a symmetric-key group, the derived keys). */
  authentication: ProvisionedDevice['authentication'];
}

export class DeviceRegistrations {
  private readonly operations = new Map<string, { registrationId: string; result: RegistrationOperation; expires: number }>();

  constructor(
    private readonly instance: DpsInstance,
    private readonly enrollments: EnrollmentStore,
    private readonly groups: EnrollmentGroupStore,
    private readonly registrations: RegistrationStore,
    private readonly certificates: DpsCertificateStore,
    /** The hub in this process, by host name; other linked hubs cannot be written from here. */
    private readonly localHubHostName: string,
    private readonly localHub: HubTarget,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * PUT …/register. Refusals of the credential throw (401, DPS does not reveal whether the
   * registration id exists); everything after attestation is an operation status.
   */
  async register(idScope: string, registrationId: string, credential: DeviceCredential): Promise<RegistrationOperation> {
    const matched = await this.attest(idScope, registrationId, credential);
    const operationId = `4.${randomUUID().replace(/-/g, '').slice(0, 16)}.${randomUUID()}`;
    const result = await this.assign(registrationId, matched, operationId);
    this.sweep();
    this.operations.set(operationId, { registrationId, result, expires: this.now().getTime() + OPERATION_TTL_MS });
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
    const op = this.operations.get(operationId);
    if (!op || op.registrationId !== registrationId || op.expires < this.now().getTime()) {
      throw dpsErrors.notFound(`Operation ${operationId} not found.`);
    }
    return op.result;
  }

  private sweep(): void {
    const t = this.now().getTime();
    for (const [id, op] of this.operations) if (op.expires < t) this.operations.delete(id);
  }

  private async attest(idScope: string, registrationId: string, credential: DeviceCredential): Promise<Matched> {
    const refuse = () => dpsErrors.unauthorized();
    if (idScope !== this.instance.idScope) throw refuse();
    if (credential.kind === 'x509') return this.attestX509(registrationId, credential.chain);
    const token = credential.token === undefined ? undefined : parseSasToken(credential.token);
    if (!token) throw refuse();
    if (token.resource.toLowerCase() !== `${idScope}/registrations/${registrationId}`.toLowerCase()) throw refuse();
    if (token.keyName !== 'registration') throw refuse();
    if (token.expiry * 1000 < this.now().getTime()) throw refuse();

    // An individual enrollment takes precedence over any group (as in DPS).
    const individual = await this.enrollments.get(registrationId);
    if (individual) {
      const keys = individual.attestation.type === 'symmetricKey' ? individual.attestation.symmetricKey : undefined;
      if (!keys) throw refuse();
      if (!signatureMatches(token, keys.primaryKey) && !signatureMatches(token, keys.secondaryKey)) throw refuse();
      return { enrollment: individual, individual, authentication: { type: 'sas', primaryKey: keys.primaryKey, secondaryKey: keys.secondaryKey } };
    }
    for await (const group of this.allGroups()) {
      const keys = group.attestation.type === 'symmetricKey' ? group.attestation.symmetricKey : undefined;
      if (!keys) continue;
      const primaryKey = sign(keys.primaryKey, registrationId);
      const secondaryKey = sign(keys.secondaryKey, registrationId);
      if (signatureMatches(token, primaryKey) || signatureMatches(token, secondaryKey)) {
        return { enrollment: group, group, authentication: { type: 'sas', primaryKey, secondaryKey } };
      }
    }
    throw refuse();
  }

  /**
   * X.509: the leaf's CN is the registration id and it is valid now; an individual enrollment
   * matches by certificate, a group by a chain (through intermediates the device sent) to the
   * group's signing certificate or to a verified CA it references.
   */
  private async attestX509(registrationId: string, chainDer: Buffer[]): Promise<Matched> {
    const refuse = () => dpsErrors.unauthorized();
    let chain: X509Certificate[];
    try {
      chain = chainDer.map((der) => new X509Certificate(der));
    } catch {
      throw refuse();
    }
    const leaf = chain[0];
    const now = this.now();
    if (!leaf || !validAt(leaf, now) || commonName(leaf) !== registrationId) throw refuse();
    const thumbprint = (c: X509Certificate) => c.fingerprint256.replace(/:/g, '').toUpperCase();
    const stored = (pem: string | undefined) => {
      try {
        return pem ? new X509Certificate(pem) : undefined;
      } catch {
        return undefined;
      }
    };

    const individual = await this.enrollments.get(registrationId);
    if (individual) {
      const certs = individual.attestation.type === 'x509' ? individual.attestation.x509?.clientCertificates : undefined;
      const primary = stored(certs?.primary?.certificate);
      const secondary = stored(certs?.secondary?.certificate);
      if (![primary, secondary].some((c) => c && thumbprint(c) === thumbprint(leaf))) throw refuse();
      const sha1 = (c: X509Certificate | undefined) => (c ? c.fingerprint.replace(/:/g, '').toUpperCase() : null);
      return {
        enrollment: individual,
        individual,
        authentication: { type: 'selfSigned', primaryThumbprint: sha1(primary ?? secondary)!, secondaryThumbprint: primary && secondary ? sha1(secondary) : null },
      };
    }
    const verifiedCas = new Map((await this.certificates.list()).filter((c) => c.isVerified).map((c) => [c.name, c.certificate]));
    const intermediates = chain.slice(1).filter((c) => c.ca && validAt(c, now));
    for await (const group of this.allGroups()) {
      const x509 = group.attestation.type === 'x509' ? group.attestation.x509 : undefined;
      if (!x509) continue;
      const anchors = [
        x509.signingCertificates?.primary?.certificate,
        x509.signingCertificates?.secondary?.certificate,
        ...[x509.caReferences?.primary, x509.caReferences?.secondary].map((name) => (name ? verifiedCas.get(name) : undefined)),
      ]
        .map(stored)
        .filter((c): c is X509Certificate => !!c && validAt(c, now));
      if (anchors.length && chainsTo(leaf, intermediates, anchors)) {
        return { enrollment: group, group, authentication: { type: 'certificateAuthority' } };
      }
    }
    throw refuse();
  }

  private async *allGroups(): AsyncGenerator<EnrollmentGroup> {
    let after: string | undefined;
    for (;;) {
      const page = await this.groups.list(100, after);
      yield* page.items;
      if (!page.continuation) return;
      after = page.continuation;
    }
  }

  private async assign(registrationId: string, m: Matched, operationId: string): Promise<RegistrationOperation> {
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

    const hub = this.allocate(registrationId, m.enrollment);
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

  /** The linked hub for this device, or why none can be chosen. */
  private allocate(registrationId: string, e: EnrollmentCommon): LinkedHub | string {
    const policy = e.allocationPolicy ?? this.instance.allocationPolicy;
    const wanted = e.iotHubs?.length ? e.iotHubs.map((h) => h.toLowerCase()) : undefined;
    const candidates = this.instance.linkedHubs.filter((h) =>
      wanted ? wanted.includes(h.hostName.toLowerCase()) : h.applyAllocationPolicy,
    );
    if (candidates.length === 0) return 'No linked IoT hub can be allocated for this enrollment.';
    switch (policy) {
      case 'static': {
        const host = (e.iotHubHostName ?? candidates[0]!.hostName).toLowerCase();
        return this.instance.linkedHubs.find((h) => h.hostName.toLowerCase() === host) ?? `Static hub ${host} is not linked.`;
      }
      case 'custom':
        return 'Custom allocation (webhook) is not supported yet.';
      case 'hashed':
      case 'geoLatency':
      default: {
        // geoLatency degrades to hashed: every hub is equally near on one machine.
        const total = candidates.reduce((s, h) => s + Math.max(0, h.allocationWeight), 0);
        if (total <= 0) return candidates[0]!;
        const point = createHash('sha256').update(registrationId).digest().readUInt32BE(0) % total;
        let acc = 0;
        for (const h of candidates) {
          acc += Math.max(0, h.allocationWeight);
          if (point < acc) return h;
        }
        return candidates[candidates.length - 1]!;
      }
    }
  }
}

/** Whether `leaf` chains to one of `anchors` (an anchor may be a root or an intermediate) through `intermediates`. */
function chainsTo(leaf: X509Certificate, intermediates: X509Certificate[], anchors: X509Certificate[]): boolean {
  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
    if (anchors.some((a) => current.checkIssued(a) && current.verify(a.publicKey))) return true;
    const next = intermediates.find((c) => c !== current && current.checkIssued(c) && current.verify(c.publicKey));
    if (!next) return false;
    current = next;
  }
  return false;
}
