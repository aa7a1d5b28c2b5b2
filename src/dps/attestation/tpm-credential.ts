/**
 * TPM 2.0 protections computed outside a TPM (spec part 1, §24 "Credential Protection",
 * §23.3 "Protected Storage Hierarchy" duplication): what TPM2_MakeCredential and
 * TPM2_Duplicate would produce, so that only the TPM holding the EK / SRK private keys can
 * undo them with TPM2_ActivateCredential / TPM2_Import.
 */
import { createCipheriv, createECDH, createHash, createHmac, createPublicKey, publicEncrypt, constants, randomBytes } from 'node:crypto';
import {
  TPM_ALG,
  TPM_ECC_NIST_P256,
  TpmFormatError,
  hashAlgorithm,
  tpm2b,
  u32,
  type TpmPublicArea,
} from './tpm-structures.js';

/** Labels are used with their terminating NUL (part 1, §11.4.9.2). */
function label(text: string): Buffer {
  return Buffer.from(text + '\0', 'latin1');
}

/** KDFa (part 1, §11.4.9.2): SP 800-108 counter-mode KDF with HMAC. */
export function kdfa(hashAlg: number, key: Buffer, use: string, contextU: Buffer, contextV: Buffer, bits: number): Buffer {
  const { name } = hashAlgorithm(hashAlg);
  const out: Buffer[] = [];
  let produced = 0;
  for (let counter = 1; produced * 8 < bits; counter++) {
    const block = createHmac(name, key).update(u32(counter)).update(label(use)).update(contextU).update(contextV).update(u32(bits)).digest();
    out.push(block);
    produced += block.length;
  }
  return Buffer.concat(out).subarray(0, Math.ceil(bits / 8));
}

/** KDFe (part 1, §11.4.9.3): SP 800-56A concatenation KDF, for ECC-protected seeds. */
export function kdfe(hashAlg: number, z: Buffer, use: string, partyU: Buffer, partyV: Buffer, bits: number): Buffer {
  const { name } = hashAlgorithm(hashAlg);
  const out: Buffer[] = [];
  let produced = 0;
  for (let counter = 1; produced * 8 < bits; counter++) {
    const block = createHash(name).update(u32(counter)).update(z).update(label(use)).update(partyU).update(partyV).digest();
    out.push(block);
    produced += block.length;
  }
  return Buffer.concat(out).subarray(0, Math.ceil(bits / 8));
}

/**
 * A fresh seed and its encryption to `protector` (part 1, §24.4 and annexes B.10/C.6):
 * RSA-OAEP with the protector's nameAlg and `use` as label, or ECDH with an ephemeral key and
 * KDFe. The encrypted form is the body of a TPM2B_ENCRYPTED_SECRET.
 */
export function protectSeed(protector: TpmPublicArea, use: 'IDENTITY' | 'DUPLICATE'): { seed: Buffer; encryptedSeed: Buffer } {
  const { name, size } = hashAlgorithm(protector.nameAlg);
  if (protector.type === 'rsa') {
    const rsa = protector.rsa!;
    const hex = rsa.exponent.toString(16);
    const e = Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
    const key = createPublicKey({ key: { kty: 'RSA', n: rsa.modulus.toString('base64url'), e: e.toString('base64url') }, format: 'jwk' });
    const seed = randomBytes(size);
    const encryptedSeed = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: name, oaepLabel: label(use) }, seed);
    return { seed, encryptedSeed };
  }
  const ecc = protector.ecc!;
  if (ecc.curveId !== TPM_ECC_NIST_P256) throw new TpmFormatError(`unsupported ECC curve 0x${ecc.curveId.toString(16)} (NIST P-256 only)`);
  if (ecc.x.length !== 32 || ecc.y.length !== 32) throw new TpmFormatError('ECC point coordinates must be 32 bytes for NIST P-256');
  const ephemeral = createECDH('prime256v1');
  const point = ephemeral.generateKeys();
  const ephX = point.subarray(1, 33);
  const ephY = point.subarray(33, 65);
  const z = ephemeral.computeSecret(Buffer.concat([Buffer.from([4]), ecc.x, ecc.y])); // x coordinate of the shared point
  const seed = kdfe(protector.nameAlg, z, use, ephX, ecc.x, size * 8);
  return { seed, encryptedSeed: Buffer.concat([tpm2b(ephX), tpm2b(ephY)]) }; // TPMS_ECC_POINT
}

function aesCfb(key: Buffer, plaintext: Buffer): Buffer {
  // TPM CFB uses a zero IV when the key is single-use, as it is for seeds and inner wrappers.
  const cipher = createCipheriv(`aes-${key.length * 8}-cfb`, key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(plaintext), cipher.final()]);
}

function symmetricBits(protector: TpmPublicArea): number {
  const s = protector.symmetric;
  if (s.algorithm !== TPM_ALG.AES || s.mode !== TPM_ALG.CFB) {
    throw new TpmFormatError('the key is not a storage key: its symmetric protector must be AES in CFB mode');
  }
  return s.keyBits;
}

/**
 * Outer wrapper (part 1, §23.3.2.4 and §24.4): CFB-encrypt under KDFa(seed, "STORAGE", name),
 * then prefix an HMAC over (ciphertext || name) keyed by KDFa(seed, "INTEGRITY").
 */
function outerWrap(protector: TpmPublicArea, seed: Buffer, name: Buffer, plaintext: Buffer): Buffer {
  const { name: hash, size } = hashAlgorithm(protector.nameAlg);
  const symKey = kdfa(protector.nameAlg, seed, 'STORAGE', name, Buffer.alloc(0), symmetricBits(protector));
  const encrypted = aesCfb(symKey, plaintext);
  const hmacKey = kdfa(protector.nameAlg, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), size * 8);
  const integrity = createHmac(hash, hmacKey).update(encrypted).update(name).digest();
  return Buffer.concat([tpm2b(integrity), encrypted]);
}

/**
 * TPM2_MakeCredential: protects `credential` so that only the TPM holding the private part of
 * `ek`, and also holding an object named `objectName`, releases it through ActivateCredential.
 * Returns the bodies of TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET.
 */
export function makeCredential(ek: TpmPublicArea, objectName: Buffer, credential: Buffer): { idObject: Buffer; encryptedSecret: Buffer } {
  if (credential.length > hashAlgorithm(ek.nameAlg).size) throw new RangeError('credential longer than the EK name digest');
  const { seed, encryptedSeed } = protectSeed(ek, 'IDENTITY');
  return { idObject: outerWrap(ek, seed, objectName, tpm2b(credential)), encryptedSecret: encryptedSeed };
}

/**
 * TPM2_Duplicate of an object to `newParent` with both wrappers (part 1, §23.3.2): the inner one
 * (integrity digest + AES-CFB under `innerKey`), then the outer one under a seed encrypted to the
 * parent. Returns the bodies of TPM2B_PRIVATE and of the TPM2B_ENCRYPTED_SECRET TPM2_Import
 * takes as inSymSeed.
 */
export function duplicate(
  newParent: TpmPublicArea,
  objectNameAlg: number,
  objectName: Buffer,
  sensitive: Buffer,
  innerKey: Buffer,
): { duplicate: Buffer; encryptedSeed: Buffer } {
  const sized = tpm2b(sensitive);
  const innerIntegrity = createHash(hashAlgorithm(objectNameAlg).name).update(sized).update(objectName).digest();
  const encSensitive = aesCfb(innerKey, Buffer.concat([tpm2b(innerIntegrity), sized]));
  const { seed, encryptedSeed } = protectSeed(newParent, 'DUPLICATE');
  return { duplicate: outerWrap(newParent, seed, objectName, encSensitive), encryptedSeed };
}
