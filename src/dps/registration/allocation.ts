/**
 * Allocation: which linked hub a registering device is assigned to, by the enrollment's policy
 * (or the service's default). For the `custom` policy DPS POSTs an AllocationRequest to the
 * enrollment's webhook and takes the hub, an initial twin and a payload for the device from its
 * answer; the HTTP call itself is behind `AllocationWebhook`. No sockets, no SQL.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { certificateInfo } from '../certificates/x509.js';
import { publicAttestation } from '../enrollments/enrollments.js';
import type { DpsInstance } from '../instance.js';
import type { AttestationMechanism, EnrollmentCommon, EnrollmentGroup, IndividualEnrollment, InitialTwin, LinkedHub, TwinCollection } from '../types.js';
import type { DeviceCredential } from './attestation.js';

/** The outbound HTTP call to a custom allocation webhook (an infrastructure adapter implements it). */
export interface AllocationWebhook {
  /**
   * POSTs `body` (JSON) to `url` and resolves with the answer's status and text, whatever the
   * status; rejects when the webhook cannot be reached or does not answer in time.
   */
  post(url: string, body: string): Promise<{ status: number; body: string }>;
}

/** The hub chosen, and what a custom webhook added for this device. */
export interface Allocation {
  hub: LinkedHub;
  /** The webhook's initialTwin: replaces the enrollment's for this device. */
  initialTwin?: InitialTwin;
  /** The webhook's payload, returned to the device in its registration result. */
  payload?: unknown;
}

/** Why no hub was chosen: DPS's error code and message for the registration's `failed` state. */
export interface AllocationFailure {
  errorCode: number;
  errorMessage: string;
}

/** What allocation may look at besides the enrollment. */
export interface AllocationInput {
  registrationId: string;
  enrollment: EnrollmentCommon;
  individual?: IndividualEnrollment;
  group?: EnrollmentGroup;
  credential?: DeviceCredential;
  /** The device's current assignment, when it was assigned before. */
  current?: { iotHubHostName: string; deviceId: string };
  /** The `payload` the device sent with its registration. */
  payload?: unknown;
}

/**
 * DPS's error codes for custom allocation, as its custom allocation tutorial lists them
 * (CustomAllocationFailed, CustomAllocationIotHubNotSpecified, CustomAllocationUnauthorizedAccess).
 */
export const customAllocationErrors = {
  failed: 400207,
  iotHubNotSpecified: 400208,
  unauthorizedAccess: 400209,
} as const;

export function isAllocationFailure(a: Allocation | AllocationFailure): a is AllocationFailure {
  return 'errorCode' in a;
}

/** The linked hub for this device, or why none can be chosen. */
export async function allocate(instance: DpsInstance, input: AllocationInput, webhook: AllocationWebhook): Promise<Allocation | AllocationFailure> {
  const e = input.enrollment;
  const policy = e.allocationPolicy ?? instance.allocationPolicy;
  const wanted = e.iotHubs?.length ? e.iotHubs.map((h) => h.toLowerCase()) : undefined;
  const candidates = instance.linkedHubs.filter((h) =>
    wanted ? wanted.includes(h.hostName.toLowerCase()) : h.applyAllocationPolicy,
  );
  if (candidates.length === 0) return { errorCode: 400207, errorMessage: 'No linked IoT hub can be allocated for this enrollment.' };
  switch (policy) {
    case 'static': {
      const host = (e.iotHubHostName ?? candidates[0]!.hostName).toLowerCase();
      const hub = instance.linkedHubs.find((h) => h.hostName.toLowerCase() === host);
      return hub ? { hub } : { errorCode: 400207, errorMessage: `Static hub ${host} is not linked.` };
    }
    case 'custom':
      return allocateCustom(instance, input, candidates, webhook);
    case 'hashed':
    case 'geoLatency':
    default:
      // geoLatency degrades to hashed: every hub is equally near on one machine.
      return { hub: hashed(input.registrationId, candidates) };
  }
}

function hashed(registrationId: string, candidates: LinkedHub[]): LinkedHub {
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

async function allocateCustom(instance: DpsInstance, input: AllocationInput, candidates: LinkedHub[], webhook: AllocationWebhook): Promise<Allocation | AllocationFailure> {
  const e = input.enrollment;
  const failed = (why: string, errorCode: number = customAllocationErrors.failed): AllocationFailure => ({
    errorCode,
    errorMessage: `Custom allocation failed: ${why}`,
  });
  const definition = e.customAllocationDefinition;
  if (!definition) return failed('the enrollment has no customAllocationDefinition.');

  // A device that may not move is offered only the hub it is on (DPS: "Never reprovision").
  let offered = candidates;
  if (input.current && e.reprovisionPolicy?.updateHubAssignment === false) {
    const current = instance.linkedHubs.find((h) => h.hostName.toLowerCase() === input.current!.iotHubHostName.toLowerCase());
    if (current) offered = [current];
  }
  const body = JSON.stringify(allocationRequest(input, offered));

  let answer: { status: number; body: string };
  try {
    answer = await webhook.post(definition.webhookUrl, body);
  } catch (err) {
    return failed(`the webhook could not be called (${(err as Error).message}).`);
  }
  if (answer.status === 401) return failed('the webhook answered 401 Unauthorized.', customAllocationErrors.unauthorizedAccess);
  if (answer.status < 200 || answer.status > 299) return failed(`the webhook answered HTTP ${answer.status}.`);
  let response: unknown;
  try {
    response = JSON.parse(answer.body);
  } catch {
    return failed('the webhook answer is not JSON.');
  }
  if (!isObject(response)) return failed('the webhook answer is not a JSON object.');
  const hostName = response.iotHubHostName;
  if (hostName === undefined || hostName === null || hostName === '') {
    return failed('the webhook answer has no iotHubHostName.', customAllocationErrors.iotHubNotSpecified);
  }
  if (typeof hostName !== 'string') return failed('iotHubHostName in the webhook answer is not a string.');
  const hub = offered.find((h) => h.hostName.toLowerCase() === hostName.toLowerCase());
  if (!hub) return failed(`the webhook chose ${hostName}, which is not one of the linked hubs offered (${offered.map((h) => h.hostName).join(', ')}).`);

  const result: Allocation = { hub };
  const twin = response.initialTwin;
  if (twin !== undefined && twin !== null) {
    const parsed = initialTwinOf(twin);
    if (!parsed) return failed('initialTwin in the webhook answer must be an object with optional tags and properties.desired objects.');
    result.initialTwin = parsed;
  }
  if (response.payload !== undefined && response.payload !== null) result.payload = response.payload;
  return result;
}

/** DPS's AllocationRequest: the enrollment (without secrets), the device's runtime context, the hubs offered. */
export function allocationRequest(input: AllocationInput, offered: LinkedHub[]): Record<string, unknown> {
  const context: Record<string, unknown> = { registrationId: input.registrationId };
  if (input.current) {
    context.currentIotHubHostName = input.current.iotHubHostName;
    context.currentDeviceId = input.current.deviceId;
  }
  Object.assign(context, deviceAttestation(input));
  if (input.payload !== undefined) context.payload = input.payload;
  const enrollment = input.individual
    ? { individualEnrollment: withoutSecrets(input.individual) }
    : input.group
      ? { enrollmentGroup: withoutSecrets(input.group) }
      : {};
  return { ...enrollment, deviceRuntimeContext: context, linkedHubs: offered.map((h) => h.hostName) };
}

/** The enrollment record as the service API shows it, and symmetric keys left out entirely (as DPS sends it). */
function withoutSecrets<T extends EnrollmentCommon>(e: T): T {
  const { registrationState: _state, ...rest } = e as T & { registrationState?: unknown };
  const attestation: AttestationMechanism = e.attestation.type === 'symmetricKey' ? { type: 'symmetricKey' } : publicAttestation(e.attestation);
  return { ...(rest as T), attestation };
}

/** How the device attested, in the runtime context: `symmetricKey: {}`, the X.509 certificate's details, or the TPM's keys. */
function deviceAttestation(input: AllocationInput): Record<string, unknown> {
  const a = input.enrollment.attestation;
  if (input.credential?.kind === 'x509' || a.type === 'x509') {
    const leaf = input.credential?.kind === 'x509' ? input.credential.chain[0] : undefined;
    let info: ReturnType<typeof certificateInfo> | undefined;
    try {
      info = leaf ? certificateInfo(new X509Certificate(leaf), leaf) : undefined;
    } catch {
      info = undefined;
    }
    return { x509: { ...(info ? { certificateInfo: info } : {}), ...(input.group ? { enrollmentGroupId: input.group.enrollmentGroupId } : {}) } };
  }
  if (a.type === 'tpm' && a.tpm) {
    return { tpm: { endorsementKey: a.tpm.endorsementKey, ...(a.tpm.storageRootKey ? { storageRootKey: a.tpm.storageRootKey } : {}) } };
  }
  return { symmetricKey: {} };
}

/** The webhook's initialTwin, kept to what DPS applies (tags and desired properties). */
function initialTwinOf(v: unknown): InitialTwin | undefined {
  if (!isObject(v)) return undefined;
  const twin: InitialTwin = {};
  if (v.tags !== undefined && v.tags !== null) {
    if (!isObject(v.tags)) return undefined;
    twin.tags = stripMetadata(v.tags);
  }
  if (v.properties !== undefined && v.properties !== null) {
    if (!isObject(v.properties)) return undefined;
    const desired = v.properties.desired;
    if (desired !== undefined && desired !== null) {
      if (!isObject(desired)) return undefined;
      twin.properties = { desired: stripMetadata(desired) };
    }
  }
  return twin;
}

/** A twin collection's `$metadata` / `$version` are the hub's to set. */
function stripMetadata(c: Record<string, unknown>): TwinCollection {
  const out: TwinCollection = {};
  for (const [k, v] of Object.entries(c)) if (k !== '$metadata' && k !== '$version') out[k] = v;
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
