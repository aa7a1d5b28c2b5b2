/**
 * DPS's SASL mechanism `TPM`, the server side of azure-iot-provisioning-device-amqp's sasl_tpm:
 *
 * 1. init (hostname `{idScope}/registrations/{registrationId}`): `\0 idScope \0 registrationId \0 EK`
 * 2. challenge: one byte; the device answers `\0 SRK`
 * 3. challenges: the activation blob (`authenticationKey`) in chunks, each after a control byte,
 *    0x80 (more follow; the device answers `\0`) or 0xC0 (the last; the device answers
 *    `\0 <SAS token signed with the key the blob installed in its TPM>`)
 * 4. outcome: ok when DeviceRegistrations verifies that token, auth otherwise (also when the keys
 *    match no enrollment, at step 3).
 *
 * The crypto and the enrollment lookup are DeviceRegistrations'; this only frames the exchange.
 */
import { DpsError } from '../../../dps/errors.js';
import type { DeviceCredential, DeviceRegistrations } from '../../../dps/registration/registration.js';

/** Blob bytes per challenge frame: SASL frames must fit in 512 bytes (AMQP's minimum max-frame-size). */
const CHUNK = 400;
const MORE = 0x80;
const LAST = 0xc0;

/** rhea's server mechanism contract: start/step resolve to the next challenge, or set `outcome`. */
export class TpmSaslMechanism {
  outcome: boolean | undefined;
  username: string | undefined;
  /** Once the outcome is ok: the registration and the TPM credential it proved. */
  registrant: { idScope: string; registrationId: string; credential: DeviceCredential & { kind: 'tpm' } } | undefined;

  private idScope = '';
  private registrationId = '';
  private endorsementKey = '';
  private storageRootKey: string | undefined;
  private chunks: Buffer[] = [];

  constructor(private readonly registrations: DeviceRegistrations) {}

  start(response: Buffer | undefined): Buffer | undefined {
    const fields = splitInit(response);
    if (!fields) return this.refuse();
    [this.idScope, this.registrationId] = fields;
    this.endorsementKey = fields[2].toString('base64');
    return Buffer.from([0]);
  }

  async step(response: Buffer | undefined): Promise<Buffer | undefined> {
    if (this.storageRootKey === undefined) {
      if (!response || response.length < 2 || response[0] !== 0) return this.refuse();
      this.storageRootKey = response.subarray(1).toString('base64');
      let blob: Buffer;
      try {
        const challenge = await this.registrations.tpmChallenge(this.idScope, this.registrationId, this.endorsementKey, this.storageRootKey);
        blob = Buffer.from(challenge.authenticationKey, 'base64');
      } catch (e) {
        // Keys that match no enrollment (401) or are no TPM keys (400): authentication fails.
        if (e instanceof DpsError) return this.refuse();
        throw e;
      }
      for (let i = 0; i < blob.length; i += CHUNK) this.chunks.push(blob.subarray(i, i + CHUNK));
      return this.nextChunk();
    }
    if (this.chunks.length > 0) return this.nextChunk();
    // The last answer: `\0` and the SAS token the TPM signed.
    if (!response || response[0] !== 0) return this.refuse();
    const credential = { kind: 'tpm' as const, endorsementKey: this.endorsementKey, storageRootKey: this.storageRootKey, token: response.subarray(1).toString('utf8') };
    if (!(await this.registrations.authenticate(this.idScope, this.registrationId, credential).catch(() => false))) return this.refuse();
    this.registrant = { idScope: this.idScope, registrationId: this.registrationId, credential };
    this.username = `${this.idScope}/registrations/${this.registrationId}`;
    this.outcome = true;
    return undefined;
  }

  private nextChunk(): Buffer {
    const chunk = this.chunks.shift()!;
    return Buffer.concat([Buffer.from([this.chunks.length > 0 ? MORE : LAST]), chunk]);
  }

  private refuse(): undefined {
    this.outcome = false;
    return undefined;
  }
}

/** `\0 idScope \0 registrationId \0 EK` (the EK is binary and may hold zero bytes). */
function splitInit(response: Buffer | undefined): [string, string, Buffer] | undefined {
  if (!response || response[0] !== 0) return undefined;
  const a = response.indexOf(0, 1);
  const b = a < 0 ? -1 : response.indexOf(0, a + 1);
  if (a < 0 || b < 0 || b + 1 >= response.length) return undefined;
  const idScope = response.subarray(1, a).toString('utf8');
  const registrationId = response.subarray(a + 1, b).toString('utf8');
  return idScope && registrationId ? [idScope, registrationId, response.subarray(b + 1)] : undefined;
}
