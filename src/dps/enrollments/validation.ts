import { generateKey, isValidDeviceId, isValidKey } from '../../core/ids.js';
import { parseCertificate } from '../certificates/x509.js';
import { dpsErrors } from '../errors.js';
import { findLinkedHub, type DpsInstance } from '../instance.js';
import type {
  AllocationPolicy,
  AttestationMechanism,
  DpsCertificate,
  EnrollmentCommon,
  X509Attestation,
  X509Certificates,
} from '../types.js';
import { tpmPublicKeyProblem } from './tpm.js';

/** DPS's rule for registration and enrollment group ids. */
const idPattern = /^[a-z0-9\-._:]{1,128}$/;
const allocationPolicies: AllocationPolicy[] = ['hashed', 'geoLatency', 'static', 'custom'];

export function isValidRegistrationId(id: unknown): id is string {
  return typeof id === 'string' && idPattern.test(id);
}

/**
 * DPS's rule for enrollment group ids: case-insensitive (kept as given, compared without regard to
 * case), up to 128 letters, digits and `- . _ :`, the last one a letter, a digit or `-`.
 */
const groupIdPattern = /^[A-Za-z0-9\-._:]{0,127}[A-Za-z0-9-]$/;

export function isValidEnrollmentGroupId(id: unknown): id is string {
  return typeof id === 'string' && groupIdPattern.test(id);
}

export const sameEnrollmentGroupId = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export interface ValidationContext {
  instance: DpsInstance;
  /** A CA certificate uploaded to this DPS, by name. */
  certificate(name: string): Promise<DpsCertificate | undefined>;
  /** The stored attestation being replaced, so that masked keys sent back are kept. */
  previous?: AttestationMechanism;
}

type Fields = Omit<EnrollmentCommon, 'etag' | 'createdDateTimeUtc' | 'lastUpdatedDateTimeUtc'>;
type Body = Record<string, unknown>;

const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);
const present = (v: unknown) => v !== undefined && v !== null;

/** Validates what individual enrollments and groups share, returning DPS's stored form. */
export async function validateCommon(body: unknown, kind: 'individual' | 'group', ctx: ValidationContext): Promise<Fields & Body> {
  if (!isObject(body)) throw dpsErrors.badFormat('The request body must be a JSON object');
  const attestation = await validateAttestation(body.attestation, kind, ctx);

  const status = body.provisioningStatus ?? 'enabled';
  if (status !== 'enabled' && status !== 'disabled') throw dpsErrors.invalid(`provisioningStatus must be 'enabled' or 'disabled'`);

  const out: Fields & Body = { attestation, provisioningStatus: status };

  out.capabilities = { iotEdge: false };
  if (present(body.capabilities)) {
    if (!isObject(body.capabilities) || (present(body.capabilities.iotEdge) && typeof body.capabilities.iotEdge !== 'boolean')) {
      throw dpsErrors.invalid('capabilities.iotEdge must be a boolean');
    }
    out.capabilities = { iotEdge: body.capabilities.iotEdge === true };
  }

  out.reprovisionPolicy = { updateHubAssignment: true, migrateDeviceData: true };
  if (present(body.reprovisionPolicy)) {
    const r = body.reprovisionPolicy;
    if (!isObject(r) || ![r.updateHubAssignment, r.migrateDeviceData].every((v) => v === undefined || typeof v === 'boolean')) {
      throw dpsErrors.invalid('reprovisionPolicy.updateHubAssignment and migrateDeviceData must be booleans');
    }
    out.reprovisionPolicy = { updateHubAssignment: r.updateHubAssignment !== false, migrateDeviceData: r.migrateDeviceData !== false };
  }

  if (present(body.initialTwin)) {
    const t = body.initialTwin;
    if (!isObject(t) || (present(t.tags) && !isObject(t.tags)) || (present(t.properties) && !isObject(t.properties))) {
      throw dpsErrors.invalid('initialTwin must be an object with tags and properties.desired');
    }
    const desired = isObject(t.properties) ? t.properties.desired : undefined;
    if (present(desired) && !isObject(desired)) throw dpsErrors.invalid('initialTwin.properties.desired must be an object');
    out.initialTwin = { tags: stripTwinMetadata(t.tags), properties: { desired: stripTwinMetadata(desired) } };
  }

  // Hubs: every one named must be linked to this DPS.
  const hubs: string[] = [];
  if (present(body.iotHubHostName)) {
    if (typeof body.iotHubHostName !== 'string') throw dpsErrors.invalid('iotHubHostName must be a string');
    hubs.push(linkedHubName(ctx.instance, body.iotHubHostName));
    out.iotHubHostName = hubs[0];
  }
  if (present(body.iotHubs)) {
    if (!Array.isArray(body.iotHubs) || !body.iotHubs.every((h) => typeof h === 'string')) {
      throw dpsErrors.invalid('iotHubs must be a list of IoT hub host names');
    }
    out.iotHubs = (body.iotHubs as string[]).map((h) => linkedHubName(ctx.instance, h));
  }

  if (present(body.allocationPolicy)) {
    if (!allocationPolicies.includes(body.allocationPolicy as AllocationPolicy)) {
      throw dpsErrors.invalid(`allocationPolicy must be one of ${allocationPolicies.join(', ')}`);
    }
    out.allocationPolicy = body.allocationPolicy as AllocationPolicy;
  }
  if (out.allocationPolicy === 'static') {
    const candidates = out.iotHubs ?? (out.iotHubHostName ? [out.iotHubHostName] : []);
    if (candidates.length !== 1) throw dpsErrors.invalid('The static allocation policy needs exactly one IoT hub in iotHubs');
  }
  if (present(body.customAllocationDefinition) || out.allocationPolicy === 'custom') {
    const c = body.customAllocationDefinition;
    if (!isObject(c) || typeof c.webhookUrl !== 'string' || typeof c.apiVersion !== 'string' || !isHttpUrl(c.webhookUrl)) {
      throw dpsErrors.invalid('The custom allocation policy needs customAllocationDefinition with an http(s) webhookUrl and an apiVersion');
    }
    out.customAllocationDefinition = { webhookUrl: c.webhookUrl, apiVersion: c.apiVersion };
  }
  return out;
}

function linkedHubName(instance: DpsInstance, hostName: string): string {
  const hub = findLinkedHub(instance, hostName);
  if (!hub) throw dpsErrors.invalid(`The IoT hub ${hostName} is not linked to this provisioning service`);
  return hub.hostName;
}

function isHttpUrl(text: string): boolean {
  try {
    return /^https?:$/.test(new URL(text).protocol);
  } catch {
    return false;
  }
}

/** The SDK's TwinCollection may carry `$metadata`/`$version`; DPS keeps only the values. */
function stripTwinMetadata(v: unknown): Record<string, unknown> {
  if (!isObject(v)) return {};
  return Object.fromEntries(Object.entries(v).filter(([k]) => k !== '$metadata' && k !== '$version'));
}

async function validateAttestation(input: unknown, kind: 'individual' | 'group', ctx: ValidationContext): Promise<AttestationMechanism> {
  if (!isObject(input)) throw dpsErrors.invalid('attestation is required');
  switch (input.type) {
    case 'tpm': {
      if (kind === 'group') throw dpsErrors.invalid('Enrollment groups support x509 and symmetricKey attestation, not tpm');
      const tpm = input.tpm;
      if (!isObject(tpm)) throw dpsErrors.invalid('attestation.tpm.endorsementKey is required');
      const ekProblem = tpmPublicKeyProblem(tpm.endorsementKey);
      if (ekProblem) throw dpsErrors.invalid(`The TPM endorsement key ${ekProblem}`);
      const result: AttestationMechanism = { type: 'tpm', tpm: { endorsementKey: tpm.endorsementKey as string } };
      if (present(tpm.storageRootKey)) {
        const srkProblem = tpmPublicKeyProblem(tpm.storageRootKey);
        if (srkProblem) throw dpsErrors.invalid(`The TPM storage root key ${srkProblem}`);
        result.tpm!.storageRootKey = tpm.storageRootKey as string;
      }
      return result;
    }
    case 'symmetricKey': {
      const given = isObject(input.symmetricKey) ? input.symmetricKey : {};
      const previous = ctx.previous?.type === 'symmetricKey' ? ctx.previous.symmetricKey : undefined;
      const key = (name: 'primaryKey' | 'secondaryKey') => {
        const v = given[name];
        // Keys come back masked from GET; a write without them keeps the stored ones.
        if (v === undefined || v === null || v === '') return previous?.[name] ?? generateKey(64);
        if (!isValidKey(v)) throw dpsErrors.invalid(`attestation.symmetricKey.${name} must be base64 of 16 to 64 bytes`);
        return v;
      };
      return { type: 'symmetricKey', symmetricKey: { primaryKey: key('primaryKey'), secondaryKey: key('secondaryKey') } };
    }
    case 'x509':
      return { type: 'x509', x509: await validateX509(input.x509, kind, ctx) };
    default:
      throw dpsErrors.invalid(`attestation.type must be one of ${kind === 'group' ? 'x509, symmetricKey' : 'tpm, x509, symmetricKey'}`);
  }
}

async function validateX509(input: unknown, kind: 'individual' | 'group', ctx: ValidationContext): Promise<X509Attestation> {
  if (!isObject(input)) throw dpsErrors.invalid('attestation.x509 is required');
  const kinds = (['clientCertificates', 'signingCertificates', 'caReferences'] as const).filter((k) => present(input[k]));
  if (kinds.length !== 1) {
    throw dpsErrors.invalid(
      kind === 'group'
        ? 'An X.509 enrollment group needs exactly one of signingCertificates or caReferences'
        : 'An X.509 individual enrollment needs clientCertificates',
    );
  }
  const which = kinds[0]!;
  if (kind === 'individual' && which !== 'clientCertificates') {
    throw dpsErrors.invalid('An X.509 individual enrollment needs clientCertificates');
  }
  if (kind === 'group' && which === 'clientCertificates') {
    throw dpsErrors.invalid('An X.509 enrollment group takes signingCertificates or caReferences, not clientCertificates');
  }
  if (which === 'caReferences') {
    const refs = input.caReferences as Body;
    if (!isObject(refs) || typeof refs.primary !== 'string') throw dpsErrors.invalid('attestation.x509.caReferences.primary is required');
    const out: { primary: string; secondary?: string } = { primary: await verifiedCa(refs.primary, ctx) };
    if (present(refs.secondary)) {
      if (typeof refs.secondary !== 'string') throw dpsErrors.invalid('attestation.x509.caReferences.secondary must be a string');
      out.secondary = await verifiedCa(refs.secondary, ctx);
    }
    return { caReferences: out };
  }
  const previous = ctx.previous?.type === 'x509' ? ctx.previous.x509?.[which] : undefined;
  return { [which]: certificates(input[which], `attestation.x509.${which}`, previous ?? undefined) };
}

async function verifiedCa(name: string, ctx: ValidationContext): Promise<string> {
  const ca = await ctx.certificate(name);
  if (!ca) throw dpsErrors.invalid(`The CA certificate ${name} is not uploaded to this provisioning service`);
  if (!ca.isVerified) throw dpsErrors.invalid(`The CA certificate ${name} is not verified`);
  return ca.name;
}

function certificates(input: unknown, path: string, previous?: X509Certificates): X509Certificates {
  if (!isObject(input) || !present(input.primary)) throw dpsErrors.invalid(`${path}.primary is required`);
  const one = (slot: 'primary' | 'secondary') => {
    const entry = input[slot];
    const kept = previous?.[slot];
    // GET returns only `info`; writing that back keeps the stored certificate.
    if (isObject(entry) && !present(entry.certificate) && present(entry.info) && kept?.certificate) return kept;
    const text = isObject(entry) ? entry.certificate : entry;
    const parsed = parseCertificate(text);
    if (!parsed) throw dpsErrors.invalid(`${path}.${slot}.certificate is not a valid PEM or base64 X.509 certificate`);
    return { certificate: parsed.pem, info: parsed.info };
  };
  const out: X509Certificates = { primary: one('primary') };
  if (present(input.secondary)) out.secondary = one('secondary');
  return out;
}

export function validateDeviceId(deviceId: unknown): string | undefined {
  if (deviceId === undefined || deviceId === null || deviceId === '') return undefined;
  if (!isValidDeviceId(deviceId)) throw dpsErrors.invalid(`deviceId '${String(deviceId)}' is not a valid IoT Hub device id`);
  return deviceId;
}
