/**
 * DPS TPM attestation, service side: the endorsement-key challenge.
 *
 * The device sends its EK and SRK (TPM2B_PUBLIC, base64). DPS answers with an
 * `authenticationKey`: an activation blob that imports a fresh HMAC key under the SRK, wrapped
 * so that only the TPM owning that EK can unwrap it. The device proves possession by signing a
 * SAS token (`sr={idScope}/registrations/{registrationId}`, `skn=registration`) with the
 * imported key inside its TPM. After assignment DPS sends a second blob of the same shape
 * carrying the device's IoT Hub key, which the SDK imports the same way.
 *
 * Blob layout (as `azure-iot-security-tpm`'s `activateIdentityKey` and the TSS.MSR DRS
 * emulator read it), each part a TPM2B (16-bit size, then bytes):
 *   1. TPM2B_ID_OBJECT        MakeCredential(EK, name(SRK), innerWrapKey)
 *   2. TPM2B_ENCRYPTED_SECRET its seed, encrypted to the EK (label "IDENTITY")
 *   3. TPM2B_PRIVATE          the HMAC key duplicated to the SRK, inner-wrapped with innerWrapKey
 *   4. TPM2B_ENCRYPTED_SECRET the duplication seed, encrypted to the SRK (label "DUPLICATE")
 *   5. TPM2B_PUBLIC           the HMAC key's public area
 *   6. TPM2B_DATA             AES-CFB(innerWrapKey, registration id), where the DRS emulator puts
 *                             its encrypted URI; the SDK only logs it
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { HubError } from '../../core/errors.js';
import { parseSasToken, signatureMatches } from '../../core/sas.js';
import { duplicate, makeCredential } from './tpm-credential.js';
import {
  TPMA_OBJECT,
  TPM_ALG,
  TPM_ECC_NIST_P256,
  TpmFormatError,
  keyedHashPublic,
  keyedHashSensitive,
  objectName,
  parseTpm2bPublic,
  tpm2b,
  u32,
  type TpmPublicArea,
} from './tpm-structures.js';

export { TpmFormatError, parseTpm2bPublic, type TpmPublicArea } from './tpm-structures.js';

export interface TpmChallenge {
  /** The activation blob, base64: the `authenticationKey` DPS returns. */
  authenticationKey: string;
  /** The HMAC key the device's TPM will hold; keep it to verify the device's SAS token. */
  identityKey: Buffer;
}

export interface TpmChallengeOptions {
  /** The key to import (e.g. the device's IoT Hub key after assignment); random 32 bytes if absent. */
  identityKey?: Buffer;
}

/** TPM_CC_PolicyCommandCode and TPM_CC_Duplicate. */
const TPM_CC_POLICY_COMMAND_CODE = 0x0000016c;
const TPM_CC_DUPLICATE = 0x0000014b;

/**
 * The identity key's policy, PolicyCommandCode(TPM2_Duplicate), as in the DRS emulator: it only
 * governs TPM2_Duplicate of the key (the DUP role always needs a policy), not Import or HMAC.
 */
const duplicationPolicy = createHash('sha256')
  .update(Buffer.alloc(32))
  .update(u32(TPM_CC_POLICY_COMMAND_CODE))
  .update(u32(TPM_CC_DUPLICATE))
  .digest();

function parseKey(b64: string, what: 'endorsement key' | 'storage root key'): TpmPublicArea {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length === 0 || raw.toString('base64').replace(/=+$/, '') !== b64.trim().replace(/=+$/, '')) {
    throw new HubError('ArgumentInvalid', `The ${what} is not valid base64.`);
  }
  let key: TpmPublicArea;
  try {
    key = parseTpm2bPublic(raw);
  } catch (e) {
    if (e instanceof TpmFormatError) throw new HubError('ArgumentInvalid', `The ${what} is not a TPM2B_PUBLIC DPS accepts: ${e.message}.`);
    throw e;
  }
  // Both must be restricted decryption (storage) keys: only those can unwrap credentials/duplicates.
  const storage = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;
  if ((key.attributes & storage) !== storage || key.attributes & TPMA_OBJECT.sign) {
    throw new HubError('ArgumentInvalid', `The ${what} is not a restricted decryption key.`);
  }
  if (key.symmetric.algorithm !== TPM_ALG.AES || key.symmetric.mode !== TPM_ALG.CFB || ![128, 192, 256].includes(key.symmetric.keyBits)) {
    throw new HubError('ArgumentInvalid', `The ${what} has no AES-CFB symmetric protector.`);
  }
  if (key.ecc && key.ecc.curveId !== TPM_ECC_NIST_P256) {
    throw new HubError('ArgumentInvalid', `The ${what} is on an ECC curve DPS does not accept here (NIST P-256 only).`);
  }
  return key;
}

/**
 * Builds the activation blob for the TPM whose EK and SRK are given (base64 TPM2B_PUBLIC, as the
 * SDK sends them). Throws HubError('ArgumentInvalid') for keys that cannot be used.
 */
export function createTpmChallenge(ekPublicB64: string, srkPublicB64: string, registrationId: string, options: TpmChallengeOptions = {}): TpmChallenge {
  const ek = parseKey(ekPublicB64, 'endorsement key');
  const srk = parseKey(srkPublicB64, 'storage root key');
  const identityKey = options.identityKey ?? randomBytes(32);
  if (identityKey.length === 0 || identityKey.length > 128) throw new RangeError('identity key must be 1..128 bytes (TPM2B_SENSITIVE_DATA)');

  // The HMAC key as a keyed-hash object: no fixedTPM/fixedParent, so that it may be imported.
  const nameAlg = TPM_ALG.SHA256;
  const seedValue = randomBytes(32);
  const unique = createHash('sha256').update(seedValue).update(identityKey).digest();
  const attributes = TPMA_OBJECT.sign | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.noDA;
  const idKeyPublic = keyedHashPublic(nameAlg, attributes, duplicationPolicy, TPM_ALG.SHA256, unique);
  const idKeyName = objectName(nameAlg, idKeyPublic);

  // The inner wrapper key travels as the credential: readable only after ActivateCredential with this EK.
  const innerWrapKey = randomBytes(16);
  const dup = duplicate(srk, nameAlg, idKeyName, keyedHashSensitive(seedValue, identityKey), innerWrapKey);
  const credential = makeCredential(ek, srk.name, innerWrapKey);

  const uri = createCipheriv('aes-128-cfb', innerWrapKey, Buffer.alloc(16));
  const encUriData = Buffer.concat([uri.update(registrationId, 'utf8'), uri.final()]);

  const blob = Buffer.concat([
    tpm2b(credential.idObject),
    tpm2b(credential.encryptedSecret),
    tpm2b(dup.duplicate),
    tpm2b(dup.encryptedSeed),
    tpm2b(idKeyPublic),
    tpm2b(encUriData),
  ]);
  return { authenticationKey: blob.toString('base64'), identityKey };
}

/**
 * The registration id `azure-iot-security-tpm` derives when none is configured: base32 (RFC 4648,
 * lower case, unpadded) of SHA-256 over the EK's TPM2B_PUBLIC bytes.
 */
export function tpmRegistrationId(ekPublicB64: string): string {
  const digest = createHash('sha256').update(Buffer.from(ekPublicB64, 'base64')).digest();
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** True when a base64 text parses as a TPM2B_PUBLIC key. */
export function isTpmPublicKey(b64: string): boolean {
  try {
    parseTpm2bPublic(Buffer.from(b64, 'base64'));
    return true;
  } catch {
    return false;
  }
}

/** True when two base64 TPM2B_PUBLIC endorsement keys denote the same key (same public area). */
export function sameEndorsementKey(aB64: string, bB64: string): boolean {
  try {
    return parseTpm2bPublic(Buffer.from(aB64, 'base64')).name.equals(parseTpm2bPublic(Buffer.from(bB64, 'base64')).name);
  } catch {
    return false;
  }
}

/**
 * Checks the SAS token a device signed with the imported identity key: well formed, for
 * `{idScope}/registrations/{registrationId}`, not expired, signed with `identityKey`.
 * Throws HubError('IotHubUnauthorizedAccess') otherwise.
 */
export function verifyTpmSasToken(token: string, identityKey: Buffer, idScope: string, registrationId: string, nowSeconds = Math.floor(Date.now() / 1000)): void {
  const sas = parseSasToken(token);
  if (!sas) throw new HubError('IotHubUnauthorizedAccess', 'Malformed shared access signature.');
  if (sas.resource.toLowerCase() !== `${idScope}/registrations/${registrationId}`.toLowerCase()) {
    throw new HubError('IotHubUnauthorizedAccess', 'The shared access signature is not for this registration.');
  }
  if (sas.expiry <= nowSeconds) throw new HubError('IotHubUnauthorizedAccess', 'The shared access signature has expired.');
  if (!signatureMatches(sas, identityKey.toString('base64'))) {
    throw new HubError('IotHubUnauthorizedAccess', 'The shared access signature was not signed with the key issued to this TPM.');
  }
}
