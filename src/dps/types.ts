/** The Device Provisioning Service's resources, in DPS's own words (REST API 2021-10-01). */

export type AttestationType = 'tpm' | 'x509' | 'symmetricKey';
export type AllocationPolicy = 'hashed' | 'geoLatency' | 'static' | 'custom';
export type ProvisioningStatus = 'enabled' | 'disabled';

/** What DPS reports about a certificate it was given (it never echoes the certificate body). */
export interface X509CertificateInfo {
  subjectName: string;
  sha1Thumbprint: string;
  sha256Thumbprint: string;
  issuerName: string;
  notBeforeUtc: string;
  notAfterUtc: string;
  serialNumber: string;
  version: number;
}

export interface X509CertificateWithInfo {
  /** Kept in storage (part 2 verifies chains against it); never returned by the REST API. */
  certificate?: string;
  info?: X509CertificateInfo;
}

export interface X509Certificates {
  primary?: X509CertificateWithInfo | null;
  secondary?: X509CertificateWithInfo | null;
}

export interface X509CAReferences {
  primary?: string | null;
  secondary?: string | null;
}

export interface X509Attestation {
  clientCertificates?: X509Certificates | null;
  signingCertificates?: X509Certificates | null;
  caReferences?: X509CAReferences | null;
}

export interface TpmAttestation {
  endorsementKey: string;
  storageRootKey?: string | null;
}

export interface SymmetricKeyAttestation {
  primaryKey: string;
  secondaryKey: string;
}

export interface AttestationMechanism {
  type: AttestationType;
  tpm?: TpmAttestation | null;
  x509?: X509Attestation | null;
  symmetricKey?: SymmetricKeyAttestation | null;
}

export interface TwinCollection {
  [key: string]: unknown;
}

export interface InitialTwin {
  tags?: TwinCollection;
  properties?: { desired?: TwinCollection };
}

export interface ReprovisionPolicy {
  updateHubAssignment: boolean;
  migrateDeviceData: boolean;
}

export interface CustomAllocationDefinition {
  webhookUrl: string;
  apiVersion: string;
}

/** Fields individual enrollments and enrollment groups share. */
export interface EnrollmentCommon {
  attestation: AttestationMechanism;
  capabilities?: { iotEdge: boolean };
  iotHubHostName?: string;
  initialTwin?: InitialTwin;
  etag: string;
  provisioningStatus: ProvisioningStatus;
  reprovisionPolicy?: ReprovisionPolicy;
  createdDateTimeUtc: string;
  lastUpdatedDateTimeUtc: string;
  allocationPolicy?: AllocationPolicy;
  iotHubs?: string[];
  customAllocationDefinition?: CustomAllocationDefinition;
}

export interface IndividualEnrollment extends EnrollmentCommon {
  registrationId: string;
  deviceId?: string;
  /** Read-only in the API: the device's latest registration (filled in by part 2). */
  registrationState?: DeviceRegistrationState;
}

export interface EnrollmentGroup extends EnrollmentCommon {
  enrollmentGroupId: string;
}

export type RegistrationStatus = 'unassigned' | 'assigning' | 'assigned' | 'failed' | 'disabled';
export type RegistrationSubstatus = 'initialAssignment' | 'deviceDataMigrated' | 'deviceDataReset' | 'reprovisionedToInitialAssignment';

/** A device's registration record, as `/registrations/{id}` serves it. */
export interface DeviceRegistrationState {
  registrationId: string;
  createdDateTimeUtc?: string;
  assignedHub?: string;
  deviceId?: string;
  status: RegistrationStatus;
  substatus?: RegistrationSubstatus;
  errorCode?: number;
  errorMessage?: string;
  lastUpdatedDateTimeUtc?: string;
  etag: string;
  /**
   * A custom allocation webhook's `payload`: DPS returns it in the device's registration result
   * (DeviceRegistrationResult) only; the service's `/registrations` record does not carry it.
   */
  payload?: unknown;
}

/** Stored beside a registration state: which enrollment it came through (for group queries). */
export interface RegistrationRecord {
  state: DeviceRegistrationState;
  /** Set when the device registered through an enrollment group. */
  enrollmentGroupId?: string;
}

export type BulkEnrollmentMode = 'create' | 'update' | 'updateIfMatchETag' | 'delete';

export interface BulkEnrollmentOperationError {
  registrationId: string;
  errorCode: number;
  errorStatus: string;
}

export interface BulkEnrollmentOperationResult {
  isSuccessful: boolean;
  errors: BulkEnrollmentOperationError[];
}

/** A CA certificate uploaded to the DPS (proof of possession as `az iot dps certificate` does it). */
export interface DpsCertificate {
  name: string;
  etag: string;
  /** PEM; kept so that part 2 can chain device certificates to a verified root. */
  certificate: string;
  subject: string;
  thumbprint: string;
  sha256Thumbprint: string;
  expiry: string;
  isVerified: boolean;
  /** Present between `verification-code` and `verify`. */
  verificationCode?: string;
  created: string;
  updated: string;
}

/** A hub the DPS can assign devices to. */
export interface LinkedHub {
  hostName: string;
  /** Service connection string for hubs outside this process (part 2 uses it). */
  connectionString?: string;
  allocationWeight: number;
  applyAllocationPolicy: boolean;
}

export type DpsPermission =
  | 'ServiceConfig'
  | 'EnrollmentRead'
  | 'EnrollmentWrite'
  | 'DeviceConnect'
  | 'RegistrationStatusRead'
  | 'RegistrationStatusWrite';

export interface DpsSharedAccessPolicy {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
  rights: DpsPermission[];
}
