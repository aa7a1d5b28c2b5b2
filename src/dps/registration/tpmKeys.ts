/**
 * The two keys a TPM-attested registration involves, derived rather than stored.
 *
 * - The *identity key* the challenge blob installs in the device's TPM, with which the device
 *   signs its registration SAS token (and every poll of the operation).
 * - The device's *IoT Hub key* (primary and secondary), which the hub's device identity gets and
 *   the second blob installs in the TPM after assignment.
 *
 * Both are HMAC-SHA256(secret, label ‖ registrationId ‖ Name(EK)), with a 32-byte secret kept in
 * the DPS settings store. Why derived and not kept per challenge: the service must recognise the
 * key on a later request that carries no state of its own (the authenticated PUT, each operation
 * poll, possibly on another connection or after a restart) without trusting anything the client
 * sends back. Derivation is stateless, survives restarts, needs no expiry sweeping and no
 * write per challenge (an unauthenticated request can make no row grow); the key still reaches
 * only the TPM that owns the EK, because only it can activate the blob. The hub key derived the
 * same way is stable across re-registrations of the same enrollment (same id, same EK), so
 * re-registering does not break a device that kept its old key, and a new EK gets a new key.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { parseTpm2bPublic } from '../attestation/tpm.js';

/** The settings-store name of the derivation secret (base64, 32 bytes). */
export const TPM_SECRET_SETTING = 'tpmKeyDerivationSecret';

export function newTpmSecret(): string {
  return randomBytes(32).toString('base64');
}

export class TpmKeys {
  constructor(private readonly secret: Buffer) {}

  /** The key the registration challenge installs; `endorsementKey` is base64 TPM2B_PUBLIC. */
  identityKey(registrationId: string, endorsementKey: string): Buffer {
    return this.derive('identity', registrationId, endorsementKey);
  }

  /**
   * The key a decoy challenge installs (keys matching no enrollment): deterministic and
   * stateless like the identity key (a repeated request installs the same key), but never accepted.
   */
  decoyKey(registrationId: string, endorsementKey: string): Buffer {
    return this.derive('decoy', registrationId, endorsementKey);
  }

  /** The device's IoT Hub symmetric keys (base64), as the hub's device identity gets them. */
  deviceKeys(registrationId: string, endorsementKey: string): { primaryKey: string; secondaryKey: string } {
    return {
      primaryKey: this.derive('hub-primary', registrationId, endorsementKey).toString('base64'),
      secondaryKey: this.derive('hub-secondary', registrationId, endorsementKey).toString('base64'),
    };
  }

  private derive(label: string, registrationId: string, endorsementKey: string): Buffer {
    // The EK's Name (nameAlg ‖ H(public area)) rather than its base64 text: one key, one input.
    const ekName = parseTpm2bPublic(Buffer.from(endorsementKey, 'base64')).name;
    return createHmac('sha256', this.secret)
      .update(`fleethub-dps-tpm/${label}\0${registrationId.toLowerCase()}\0`)
      .update(ekName)
      .digest();
  }
}
