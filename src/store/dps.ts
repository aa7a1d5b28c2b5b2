/**
 * What the Device Provisioning Service needs from storage, in DPS's words. Implementations:
 * ./sqlite/dps.ts. Conditional writes are part of the interface, as for the hub's stores.
 */
import type { WriteResult } from './index.js';
import type {
  DeviceRegistrationState,
  DpsCertificate,
  DpsSharedAccessPolicy,
  EnrollmentGroup,
  IndividualEnrollment,
  RegistrationRecord,
} from '../dps/types.js';

/** A page of a listing; `continuation` is where the next page starts (absent on the last). */
export interface Page<T> {
  items: T[];
  continuation?: string;
}

/** One change in an atomic batch (bulk operations). */
export type EnrollmentWrite =
  | { kind: 'insert'; enrollment: IndividualEnrollment }
  | { kind: 'replace'; enrollment: IndividualEnrollment; ifEtag?: string }
  | { kind: 'delete'; registrationId: string; ifEtag?: string };

export interface EnrollmentStore {
  get(registrationId: string): Promise<IndividualEnrollment | undefined>;
  /** Ordered by registration id, starting after `after`. */
  list(pageSize: number, after?: string): Promise<Page<IndividualEnrollment>>;
  /** false when an enrollment with that registration id exists. */
  insert(enrollment: IndividualEnrollment): Promise<boolean>;
  replace(enrollment: IndividualEnrollment, ifEtag?: string): Promise<WriteResult>;
  delete(registrationId: string, ifEtag?: string): Promise<WriteResult>;
  /**
   * Applies each write in its own savepoint inside one transaction: a failed write changes
   * nothing, the others are committed together. Results are in input order.
   */
  applyEach(writes: EnrollmentWrite[]): Promise<(WriteResult | 'exists')[]>;
}

export interface EnrollmentGroupStore {
  get(enrollmentGroupId: string): Promise<EnrollmentGroup | undefined>;
  list(pageSize: number, after?: string): Promise<Page<EnrollmentGroup>>;
  insert(group: EnrollmentGroup): Promise<boolean>;
  replace(group: EnrollmentGroup, ifEtag?: string): Promise<WriteResult>;
  delete(enrollmentGroupId: string, ifEtag?: string): Promise<WriteResult>;
  /** Whether any group references the named CA certificate (it may not be deleted then). */
  referencesCertificate(name: string): Promise<boolean>;
}

export interface RegistrationStore {
  get(registrationId: string): Promise<RegistrationRecord | undefined>;
  /** Registrations made through `enrollmentGroupId`, ordered by registration id. */
  listForGroup(enrollmentGroupId: string, pageSize: number, after?: string): Promise<Page<DeviceRegistrationState>>;
  /** Inserts or replaces (part 2 writes these as devices register). */
  put(record: RegistrationRecord, ifEtag?: string): Promise<WriteResult>;
  delete(registrationId: string, ifEtag?: string): Promise<WriteResult>;
}

/** A device registration operation as DPS answers its polls (RegistrationOperationStatus). */
export interface RegistrationOperationRecord {
  operationId: string;
  registrationId: string;
  status: 'assigning' | 'assigned' | 'failed' | 'disabled';
  registrationState?: DeviceRegistrationState;
  /** When the operation may no longer be polled (ms since the epoch). */
  expiresAt: number;
}

/**
 * Registration operations the devices poll. A write returns once it is committed, so an
 * operation id the device was given survives a restart.
 */
export interface RegistrationOperationStore {
  /** Inserts or replaces the operation. */
  put(operation: RegistrationOperationRecord): Promise<void>;
  /** The operation unless it is unknown, of another registration, or expired at `now`. */
  get(operationId: string, registrationId: string, now: number): Promise<RegistrationOperationRecord | undefined>;
  /** Removes every operation expired at `now`; returns how many. */
  sweep(now: number): Promise<number>;
}

export interface DpsCertificateStore {
  get(name: string): Promise<DpsCertificate | undefined>;
  list(): Promise<DpsCertificate[]>;
  insert(certificate: DpsCertificate): Promise<boolean>;
  replace(certificate: DpsCertificate, ifEtag?: string): Promise<WriteResult>;
  delete(name: string, ifEtag?: string): Promise<WriteResult>;
}

export interface DpsPolicyStore {
  list(): Promise<DpsSharedAccessPolicy[]>;
  get(keyName: string): Promise<DpsSharedAccessPolicy | undefined>;
  put(policy: DpsSharedAccessPolicy): Promise<void>;
}

/** The instance's own facts that must survive restarts (the id scope). */
export interface DpsSettingsStore {
  get(name: string): Promise<string | undefined>;
  /** Sets the value unless one is stored; returns the stored value. */
  setOnce(name: string, value: string): Promise<string>;
}

export interface DpsStore {
  enrollments: EnrollmentStore;
  enrollmentGroups: EnrollmentGroupStore;
  registrations: RegistrationStore;
  operations: RegistrationOperationStore;
  certificates: DpsCertificateStore;
  policies: DpsPolicyStore;
  settings: DpsSettingsStore;
}

export type { DeviceRegistrationState };
