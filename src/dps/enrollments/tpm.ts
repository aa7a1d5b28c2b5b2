/**
 * TPM 2.0 public keys as DPS takes them: base64 of a TPM2B_PUBLIC (a 2-byte size, then a
 * TPMT_PUBLIC) for the endorsement key and the storage root key. We check the structure so that
 * a malformed key is refused at enrollment rather than at the device's first registration.
 */
const TPM_ALG_RSA = 0x0001;
const TPM_ALG_ECC = 0x0023;
const TPM_ALG_NULL = 0x0010;
const nameAlgs = new Set([0x0004 /* SHA1 */, 0x000b /* SHA256 */, 0x000c /* SHA384 */, 0x000d /* SHA512 */]);

/** Returns why the key is not a TPM 2.0 public key, or undefined when it is. */
export function tpmPublicKeyProblem(base64: unknown): string | undefined {
  if (typeof base64 !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return 'is not a base64 string';
  const b = Buffer.from(base64, 'base64');
  try {
    let at = 0;
    const u16 = () => {
      if (at + 2 > b.length) throw new Error('truncated');
      const v = b.readUInt16BE(at);
      at += 2;
      return v;
    };
    const skip = (n: number) => {
      if (at + n > b.length) throw new Error('truncated');
      at += n;
    };
    const size = u16();
    if (size !== b.length - 2) return 'does not start with the size of the TPMT_PUBLIC that follows';
    const type = u16();
    if (!nameAlgs.has(u16())) return 'has an unknown name algorithm';
    skip(4); // objectAttributes
    skip(u16()); // authPolicy
    const symmetric = u16();
    if (symmetric !== TPM_ALG_NULL) skip(4); // keyBits, mode
    const scheme = u16();
    if (scheme !== TPM_ALG_NULL) skip(2); // hashAlg
    if (type === TPM_ALG_RSA) {
      const keyBits = u16();
      skip(4); // exponent
      const modulus = u16();
      if (modulus !== keyBits / 8) return 'has an RSA modulus that does not match its key size';
      skip(modulus);
    } else if (type === TPM_ALG_ECC) {
      skip(2); // curveID
      if (u16() !== TPM_ALG_NULL) skip(2); // kdf
      skip(u16()); // x
      skip(u16()); // y
    } else {
      return 'is neither an RSA nor an ECC key';
    }
    return at === b.length ? undefined : 'has trailing bytes';
  } catch {
    return 'is truncated';
  }
}
