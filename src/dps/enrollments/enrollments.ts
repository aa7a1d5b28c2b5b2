import { newEtag } from '../../core/ids.js';
import type { WriteResult } from '../../store/index.js';
import type { DpsCertificateStore, EnrollmentGroupStore, EnrollmentStore, EnrollmentWrite, RegistrationStore } from '../../store/dps.js';
import { DpsError, dpsErrors } from '../errors.js';
import type { DpsInstance } from '../instance.js';
import type {
  AttestationMechanism,
  BulkEnrollmentMode,
  BulkEnrollmentOperationResult,
  EnrollmentGroup,
  IndividualEnrollment,
  X509Certificates,
} from '../types.js';
import { encodeContinuation, parseQuery } from './query.js';
import { isValidEnrollmentGroupId, isValidRegistrationId, sameEnrollmentGroupId, validateCommon, validateDeviceId, type ValidationContext } from './validation.js';

const bulkModes: Record<string, BulkEnrollmentMode> = {
  create: 'create',
  update: 'update',
  updateifmatchetag: 'updateIfMatchETag',
  delete: 'delete',
};

export interface QueryResult<T> {
  items: T[];
  continuation?: string;
}

/**
 * Individual enrollments and enrollment groups: validation, etags, bulk operations and queries.
 * What it returns is DPS's public view: symmetric keys and certificate bodies are not echoed
 * (the attestation mechanism endpoints return the keys).
 */
export class Enrollments {
  constructor(
    private readonly instance: DpsInstance,
    private readonly enrollments: EnrollmentStore,
    private readonly groups: EnrollmentGroupStore,
    private readonly registrations: RegistrationStore,
    private readonly certificates: DpsCertificateStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  // ---- individual enrollments

  async getEnrollment(registrationId: string): Promise<IndividualEnrollment> {
    const e = await this.enrollments.get(registrationId);
    if (!e) throw dpsErrors.enrollmentNotFound(registrationId);
    return this.publicEnrollment(e);
  }

  /** PUT: creates, or with `ifMatch` replaces (`*` matches any). An existing id without `ifMatch` conflicts. */
  async putEnrollment(registrationId: string, body: unknown, ifMatch?: string): Promise<IndividualEnrollment> {
    const existing = await this.enrollments.get(registrationId);
    const enrollment = await this.buildEnrollment(registrationId, body, existing);
    if (!existing) {
      if (ifMatch !== undefined && ifMatch !== '*') throw dpsErrors.enrollmentNotFound(registrationId);
      if (!(await this.enrollments.insert(enrollment))) throw dpsErrors.conflict(`Enrollment ${registrationId} already exists.`);
    } else {
      if (ifMatch === undefined) throw dpsErrors.conflict(`Enrollment ${registrationId} already exists; send its etag in If-Match to replace it.`);
      this.check(await this.enrollments.replace(enrollment, ifMatch === '*' ? undefined : ifMatch), () =>
        dpsErrors.enrollmentNotFound(registrationId),
      'enrollment');
    }
    return this.publicEnrollment(enrollment);
  }

  async deleteEnrollment(registrationId: string, ifMatch?: string): Promise<void> {
    this.check(await this.enrollments.delete(registrationId, ifMatch === '*' ? undefined : ifMatch), () =>
      dpsErrors.enrollmentNotFound(registrationId),
    'enrollment');
  }

  async enrollmentAttestation(registrationId: string): Promise<AttestationMechanism> {
    const e = await this.enrollments.get(registrationId);
    if (!e) throw dpsErrors.enrollmentNotFound(registrationId);
    return attestationWithKeys(e.attestation);
  }

  async queryEnrollments(spec: unknown, maxItemCount?: string, continuation?: string): Promise<QueryResult<IndividualEnrollment>> {
    const q = parseQuery(spec, maxItemCount, continuation);
    const page = await this.enrollments.list(q.pageSize, q.after);
    const items = await Promise.all(page.items.map((e) => this.publicEnrollment(e)));
    return { items, continuation: page.continuation && encodeContinuation(page.continuation) };
  }

  /**
   * Bulk operation over individual enrollments. Every item is validated on its own; items that
   * fail are reported (registrationId, errorCode, errorStatus) and change nothing, the others are
   * applied together.
   */
  async bulk(body: unknown): Promise<BulkEnrollmentOperationResult> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw dpsErrors.badFormat('The request body must be a bulk enrollment operation');
    const { mode: rawMode, enrollments } = body as { mode?: unknown; enrollments?: unknown };
    const mode = typeof rawMode === 'string' ? bulkModes[rawMode.toLowerCase()] : undefined;
    if (!mode) throw dpsErrors.invalid(`Bulk operation mode must be one of create, update, updateIfMatchETag, delete (got ${JSON.stringify(rawMode)})`);
    if (!Array.isArray(enrollments) || enrollments.length === 0) throw dpsErrors.invalid('enrollments must be a non-empty list');

    const errors: BulkEnrollmentOperationResult['errors'] = [];
    const writes: { registrationId: string; write: EnrollmentWrite }[] = [];
    for (const item of enrollments) {
      const registrationId = typeof item === 'object' && item !== null ? (item as { registrationId?: unknown }).registrationId : undefined;
      const id = typeof registrationId === 'string' ? registrationId : '';
      try {
        writes.push({ registrationId: id, write: await this.bulkWrite(mode, id, item) });
      } catch (e) {
        if (!(e instanceof DpsError)) throw e;
        errors.push({ registrationId: id, errorCode: e.errorCode, errorStatus: e.message });
      }
    }
    const results = await this.enrollments.applyEach(writes.map((w) => w.write));
    results.forEach((result, i) => {
      const id = writes[i]!.registrationId;
      const error =
        result === 'exists'
          ? dpsErrors.conflict(`Enrollment ${id} already exists.`)
          : result === 'notFound'
            ? dpsErrors.enrollmentNotFound(id)
            : result === 'etagMismatch'
              ? dpsErrors.preconditionFailed('enrollment')
              : undefined;
      if (error) errors.push({ registrationId: id, errorCode: error.errorCode, errorStatus: error.message });
    });
    return { isSuccessful: errors.length === 0, errors };
  }

  private async bulkWrite(mode: BulkEnrollmentMode, id: string, item: unknown): Promise<EnrollmentWrite> {
    if (!isValidRegistrationId(id)) throw invalidRegistrationId(id);
    const existing = await this.enrollments.get(id);
    if (mode === 'delete') {
      if (!existing) throw dpsErrors.enrollmentNotFound(id);
      return { kind: 'delete', registrationId: id };
    }
    const enrollment = await this.buildEnrollment(id, item, mode === 'create' ? undefined : existing);
    if (mode === 'create') return { kind: 'insert', enrollment };
    if (mode === 'update') return existing ? { kind: 'replace', enrollment } : { kind: 'insert', enrollment };
    // updateIfMatchETag: the item's etag must match the stored one.
    if (!existing) throw dpsErrors.enrollmentNotFound(id);
    const etag = (item as { etag?: unknown }).etag;
    if (typeof etag !== 'string' || etag === '') throw dpsErrors.invalid(`Enrollment ${id} has no etag to match`);
    return { kind: 'replace', enrollment, ifEtag: etag.replace(/^"(.*)"$/, '$1') };
  }

  private async buildEnrollment(registrationId: string, body: unknown, existing?: IndividualEnrollment): Promise<IndividualEnrollment> {
    if (!isValidRegistrationId(registrationId)) throw invalidRegistrationId(registrationId);
    const given = (body as { registrationId?: unknown } | null)?.registrationId;
    if (given !== undefined && given !== null && given !== registrationId) {
      throw dpsErrors.invalid(`The registrationId in the body (${String(given)}) does not match the one in the path (${registrationId})`);
    }
    const common = await validateCommon(body, 'individual', this.context(existing?.attestation));
    const deviceId = validateDeviceId((body as { deviceId?: unknown }).deviceId);
    const now = this.now().toISOString();
    return {
      registrationId,
      ...(deviceId ? { deviceId } : {}),
      ...common,
      etag: newEtag(),
      createdDateTimeUtc: existing?.createdDateTimeUtc ?? now,
      lastUpdatedDateTimeUtc: now,
    } as IndividualEnrollment;
  }

  // ---- enrollment groups

  async getGroup(enrollmentGroupId: string): Promise<EnrollmentGroup> {
    const g = await this.groups.get(enrollmentGroupId);
    if (!g) throw dpsErrors.enrollmentGroupNotFound(enrollmentGroupId);
    return publicGroup(g);
  }

  async putGroup(enrollmentGroupId: string, body: unknown, ifMatch?: string): Promise<EnrollmentGroup> {
    if (!isValidEnrollmentGroupId(enrollmentGroupId)) {
      throw dpsErrors.invalid(
        `The enrollment group id '${enrollmentGroupId}' is invalid: use up to 128 letters, digits and - . _ :, ending with a letter, a digit or -`,
      );
    }
    const given = (body as { enrollmentGroupId?: unknown } | null)?.enrollmentGroupId;
    if (given !== undefined && given !== null && (typeof given !== 'string' || !sameEnrollmentGroupId(given, enrollmentGroupId))) {
      throw dpsErrors.invalid(`The enrollmentGroupId in the body (${String(given)}) does not match the one in the path (${enrollmentGroupId})`);
    }
    // Ids are case-insensitive: the store matches any spelling, and a group keeps its first one.
    const existing = await this.groups.get(enrollmentGroupId);
    const common = await validateCommon(body, 'group', this.context(existing?.attestation));
    const now = this.now().toISOString();
    const group = {
      enrollmentGroupId: existing?.enrollmentGroupId ?? enrollmentGroupId,
      ...common,
      etag: newEtag(),
      createdDateTimeUtc: existing?.createdDateTimeUtc ?? now,
      lastUpdatedDateTimeUtc: now,
    } as EnrollmentGroup;
    if (!existing) {
      if (ifMatch !== undefined && ifMatch !== '*') throw dpsErrors.enrollmentGroupNotFound(enrollmentGroupId);
      if (!(await this.groups.insert(group))) throw dpsErrors.conflict(`Enrollment group ${enrollmentGroupId} already exists.`);
    } else {
      if (ifMatch === undefined) {
        throw dpsErrors.conflict(`Enrollment group ${enrollmentGroupId} already exists; send its etag in If-Match to replace it.`);
      }
      this.check(await this.groups.replace(group, ifMatch === '*' ? undefined : ifMatch), () =>
        dpsErrors.enrollmentGroupNotFound(enrollmentGroupId),
      'enrollment group');
    }
    return publicGroup(group);
  }

  async deleteGroup(enrollmentGroupId: string, ifMatch?: string): Promise<void> {
    this.check(await this.groups.delete(enrollmentGroupId, ifMatch === '*' ? undefined : ifMatch), () =>
      dpsErrors.enrollmentGroupNotFound(enrollmentGroupId),
    'enrollment group');
  }

  async groupAttestation(enrollmentGroupId: string): Promise<AttestationMechanism> {
    const g = await this.groups.get(enrollmentGroupId);
    if (!g) throw dpsErrors.enrollmentGroupNotFound(enrollmentGroupId);
    return attestationWithKeys(g.attestation);
  }

  async queryGroups(spec: unknown, maxItemCount?: string, continuation?: string): Promise<QueryResult<EnrollmentGroup>> {
    const q = parseQuery(spec, maxItemCount, continuation);
    const page = await this.groups.list(q.pageSize, q.after);
    return { items: page.items.map(publicGroup), continuation: page.continuation && encodeContinuation(page.continuation) };
  }

  // ----

  private context(previous?: AttestationMechanism): ValidationContext {
    return { instance: this.instance, certificate: (name) => this.certificates.get(name), previous };
  }

  private check(result: WriteResult, notFound: () => DpsError, what: string): void {
    if (result === 'notFound') throw notFound();
    if (result === 'etagMismatch') throw dpsErrors.preconditionFailed(what);
  }

  private async publicEnrollment(e: IndividualEnrollment): Promise<IndividualEnrollment> {
    const registration = await this.registrations.get(e.registrationId);
    const { registrationState: _ignored, ...rest } = e;
    return {
      ...rest,
      attestation: publicAttestation(e.attestation),
      ...(registration && !registration.enrollmentGroupId ? { registrationState: registration.state } : {}),
    };
  }
}

function invalidRegistrationId(id: string): DpsError {
  return dpsErrors.invalid(`The registration id '${id}' is invalid: use up to 128 lowercase letters, digits and - . _ :`);
}

function publicGroup(g: EnrollmentGroup): EnrollmentGroup {
  return { ...g, attestation: publicAttestation(g.attestation) };
}

/** Enrollment responses carry certificate `info` but not the certificate, and no symmetric keys. */
export function publicAttestation(a: AttestationMechanism): AttestationMechanism {
  if (a.type === 'symmetricKey') return { type: 'symmetricKey', symmetricKey: { primaryKey: null, secondaryKey: null } as never };
  if (a.type === 'x509' && a.x509) {
    const strip = (c?: X509Certificates | null): X509Certificates | undefined =>
      c
        ? {
            primary: c.primary ? { info: c.primary.info } : null,
            ...(c.secondary ? { secondary: { info: c.secondary.info } } : {}),
          }
        : undefined;
    const x509 = { ...a.x509 };
    if (x509.clientCertificates) x509.clientCertificates = strip(x509.clientCertificates);
    if (x509.signingCertificates) x509.signingCertificates = strip(x509.signingCertificates);
    return { type: 'x509', x509 };
  }
  return a;
}

/** The attestation mechanism endpoint returns the keys, but still not certificate bodies. */
function attestationWithKeys(a: AttestationMechanism): AttestationMechanism {
  return a.type === 'symmetricKey' ? a : publicAttestation(a);
}
