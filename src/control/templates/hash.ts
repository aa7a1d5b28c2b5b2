/**
 * The two hashing template functions, with Azure Resource Manager's exact algorithms, so that a
 * name computed here is the name Azure would compute for the same template and inputs.
 *
 * - `guid(a, b, …)`: an RFC 4122 §4.3 name-based UUID, version 5 (SHA-1), in the namespace
 *   11fb06fb-712d-4ddd-98c7-e71bbd588830, over the UTF-8 bytes of the arguments joined with '-'.
 * - `uniqueString(a, b, …)`: a 64-bit MurmurHash variant (two 32-bit lanes, the constants of
 *   Microsoft's ResourceStack implementation, seed 0) of the UTF-8 bytes of the arguments joined
 *   with '-', written as 13 characters of base-32 (`a-z2-7`, the top 5 bits first).
 *
 * Pure functions: no I/O. The vectors that check them come from published sources (see
 * test/templates.hash.test.ts).
 */
import { createHash } from 'node:crypto';

const ARM_NAMESPACE = Buffer.from('11fb06fb712d4ddd98c7e71bbd588830', 'hex');

export function armGuid(values: string[]): string {
  const name = Buffer.from(values.join('-'), 'utf8');
  const hash = createHash('sha1').update(ARM_NAMESPACE).update(name).digest();
  const b = Buffer.from(hash.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x50; // version 5
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const rotl = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;
const mul = (a: number, b: number) => Math.imul(a, b) >>> 0;
const le32 = (d: Uint8Array, i: number, n = 4) => {
  let v = 0;
  for (let k = 0; k < n; k++) v |= d[i + k]! << (8 * k);
  return v >>> 0;
};

/** The 64-bit hash behind uniqueString, as [high, low] 32-bit halves. */
export function murmurHash64(data: Uint8Array): [number, number] {
  const length = data.length;
  let h1 = 0;
  let h2 = 0;
  let i = 0;
  for (; i + 7 < length; i += 8) {
    let k1 = le32(data, i);
    let k2 = le32(data, i + 4);
    k1 = mul(rotl(mul(k1, 597399067), 15), 2869860233);
    h1 = (rotl((h1 ^ k1) >>> 0, 19) + h2) >>> 0;
    h1 = (mul(h1, 5) + 1444728091) >>> 0;
    k2 = mul(rotl(mul(k2, 2869860233), 17), 597399067);
    h2 = (rotl((h2 ^ k2) >>> 0, 13) + h1) >>> 0;
    h2 = (mul(h2, 5) + 197830471) >>> 0;
  }
  const tail = length - i;
  if (tail > 0) {
    const k1 = mul(rotl(mul(le32(data, i, Math.min(tail, 4)), 597399067), 15), 2869860233);
    h1 = (h1 ^ k1) >>> 0;
    if (tail > 4) {
      const k2 = mul(rotl(mul(le32(data, i + 4, tail - 4), 2869860233), 17), 597399067);
      h2 = (h2 ^ k2) >>> 0;
    }
  }
  h1 = (h1 ^ length) >>> 0;
  h2 = (h2 ^ length) >>> 0;
  h1 = (h1 + h2) >>> 0;
  h2 = (h2 + h1) >>> 0;
  const fmix = (h: number) => {
    h = mul((h ^ (h >>> 16)) >>> 0, 2246822507);
    h = mul((h ^ (h >>> 13)) >>> 0, 3266489909);
    return (h ^ (h >>> 16)) >>> 0;
  };
  h1 = fmix(h1);
  h2 = fmix(h2);
  h1 = (h1 + h2) >>> 0;
  h2 = (h2 + h1) >>> 0;
  return [h2, h1];
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

export function uniqueString(values: string[]): string {
  const [hi, lo] = murmurHash64(Buffer.from(values.join('-'), 'utf8'));
  let v = (BigInt(hi) << 32n) | BigInt(lo);
  let out = '';
  for (let i = 0; i < 13; i++) {
    out += BASE32[Number(v >> 59n)];
    v = (v << 5n) & 0xffffffffffffffffn;
  }
  return out;
}
