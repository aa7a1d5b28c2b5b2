/**
 * The few TPM 2.0 structures DPS's TPM attestation reads and writes (TPM 2.0 Library spec,
 * part 2), big-endian as on the wire. Only what the endorsement-key challenge needs: public
 * areas of RSA/ECC storage keys (EK, SRK) in, keyed-hash public areas and sized buffers out.
 */
import { createHash } from 'node:crypto';

export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  ECC: 0x0023,
  CFB: 0x0043,
} as const;

export const TPM_ECC_NIST_P256 = 0x0003;

/** TPMA_OBJECT bits used here (part 2, §8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  noDA: 1 << 10,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

const hashNames = new Map<number, { name: string; size: number }>([
  [TPM_ALG.SHA1, { name: 'sha1', size: 20 }],
  [TPM_ALG.SHA256, { name: 'sha256', size: 32 }],
  [TPM_ALG.SHA384, { name: 'sha384', size: 48 }],
  [TPM_ALG.SHA512, { name: 'sha512', size: 64 }],
]);

export function hashAlgorithm(alg: number): { name: string; size: number } {
  const h = hashNames.get(alg);
  if (!h) throw new TpmFormatError(`unsupported hash algorithm 0x${alg.toString(16).padStart(4, '0')}`);
  return h;
}

/** A structure that cannot be parsed or is not one DPS accepts. */
export class TpmFormatError extends Error {
  override name = 'TpmFormatError';
}

export interface TpmSymmetricDefinition {
  /** TPM_ALG.AES (or NULL for keys without a symmetric protector, which cannot be EK/SRK). */
  algorithm: number;
  keyBits: number;
  mode: number;
}

export interface TpmPublicArea {
  type: 'rsa' | 'ecc';
  nameAlg: number;
  attributes: number;
  authPolicy: Buffer;
  symmetric: TpmSymmetricDefinition;
  /** RSA: modulus and exponent (0 in the structure means 65537). */
  rsa?: { keyBits: number; exponent: number; modulus: Buffer };
  /** ECC: curve and public point. */
  ecc?: { curveId: number; x: Buffer; y: Buffer };
  /** The marshaled TPMT_PUBLIC exactly as received: what the object's Name is computed over. */
  marshaled: Buffer;
  /** nameAlg || H_nameAlg(TPMT_PUBLIC): the TPM's identifier of the object. */
  name: Buffer;
}

class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new TpmFormatError('TPM structure is truncated');
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  sized(): Buffer {
    return this.bytes(this.u16());
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
}

/** TPM2B_*: a 16-bit big-endian length, then the bytes. */
export function tpm2b(data: Buffer): Buffer {
  if (data.length > 0xffff) throw new RangeError('TPM2B payload too large');
  const size = Buffer.alloc(2);
  size.writeUInt16BE(data.length);
  return Buffer.concat([size, data]);
}

export function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

export function objectName(nameAlg: number, marshaledPublic: Buffer): Buffer {
  return Buffer.concat([u16(nameAlg), createHash(hashAlgorithm(nameAlg).name).update(marshaledPublic).digest()]);
}

function readSymmetric(r: Reader): TpmSymmetricDefinition {
  const algorithm = r.u16();
  if (algorithm === TPM_ALG.NULL) return { algorithm, keyBits: 0, mode: TPM_ALG.NULL };
  return { algorithm, keyBits: r.u16(), mode: r.u16() };
}

const TPM_ALG_RSAES = 0x0015;
const TPM_ALG_ECDAA = 0x001a;

/** A scheme selector followed by its details: none for NULL and RSAES, else a hash (ECDAA adds a count). */
function skipScheme(r: Reader): void {
  const scheme = r.u16();
  if (scheme === TPM_ALG.NULL || scheme === TPM_ALG_RSAES) return;
  r.u16();
  if (scheme === TPM_ALG_ECDAA) r.u16();
}

/**
 * Parses a TPM2B_PUBLIC (what `TpmSecurityClient.getEndorsementKey()` / `getStorageRootKey()`
 * return and the SDK sends base64-encoded) holding an RSA or ECC key.
 */
export function parseTpm2bPublic(tpm2bPublic: Buffer): TpmPublicArea {
  const outer = new Reader(tpm2bPublic);
  const marshaled = outer.sized();
  if (outer.remaining !== 0) throw new TpmFormatError('TPM2B_PUBLIC has trailing bytes after its declared size');
  const r = new Reader(marshaled);
  const typeAlg = r.u16();
  const nameAlg = r.u16();
  hashAlgorithm(nameAlg);
  const attributes = r.u32();
  const authPolicy = r.sized();
  let area: Omit<TpmPublicArea, 'marshaled' | 'name'>;
  if (typeAlg === TPM_ALG.RSA) {
    const symmetric = readSymmetric(r);
    skipScheme(r);
    const keyBits = r.u16();
    const exponent = r.u32() || 65537;
    const modulus = r.sized();
    if (modulus.length * 8 !== keyBits) throw new TpmFormatError(`RSA modulus is ${modulus.length * 8} bits, the key says ${keyBits}`);
    area = { type: 'rsa', nameAlg, attributes, authPolicy, symmetric, rsa: { keyBits, exponent, modulus } };
  } else if (typeAlg === TPM_ALG.ECC) {
    const symmetric = readSymmetric(r);
    skipScheme(r);
    const curveId = r.u16();
    skipScheme(r); // kdf
    const x = r.sized();
    const y = r.sized();
    area = { type: 'ecc', nameAlg, attributes, authPolicy, symmetric, ecc: { curveId, x, y } };
  } else {
    throw new TpmFormatError(`unsupported key type 0x${typeAlg.toString(16).padStart(4, '0')} (expected RSA or ECC)`);
  }
  if (r.remaining !== 0) throw new TpmFormatError('TPMT_PUBLIC has trailing bytes');
  return { ...area, marshaled, name: objectName(nameAlg, marshaled) };
}

/**
 * TPMT_PUBLIC of a keyed-hash (HMAC) key: what the device imports and signs SAS tokens with.
 * `unique` must be H_nameAlg(seedValue || key), or the TPM refuses to load it.
 */
export function keyedHashPublic(nameAlg: number, attributes: number, authPolicy: Buffer, hmacHashAlg: number, unique: Buffer): Buffer {
  return Buffer.concat([
    u16(TPM_ALG.KEYEDHASH),
    u16(nameAlg),
    u32(attributes),
    tpm2b(authPolicy),
    u16(TPM_ALG.HMAC), // TPMT_KEYEDHASH_SCHEME.scheme
    u16(hmacHashAlg), // TPMS_SCHEME_HMAC.hashAlg
    tpm2b(unique),
  ]);
}

/** TPMT_SENSITIVE of a keyed-hash key: type, empty authValue, seedValue, the key bytes. */
export function keyedHashSensitive(seedValue: Buffer, key: Buffer): Buffer {
  return Buffer.concat([u16(TPM_ALG.KEYEDHASH), tpm2b(Buffer.alloc(0)), tpm2b(seedValue), tpm2b(key)]);
}
