/** Byte-level mutations of captured sessions (and of generated packets): flips, inserts, deletes, truncation. */
import fc from 'fast-check';

export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'u32'; at: number; value: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; length: number }
  | { op: 'duplicate'; at: number; length: number }
  | { op: 'truncate'; at: number };

const interestingBytes = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x23, 0x2b, 0x2f, 0x24];
const interestingU32 = [0, 1, 7, 8, 0x7f, 0x80, 0x1ff, 0x200, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(...interestingBytes), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ op: fc.constant('u32' as const), at: fc.nat(), value: fc.constantFrom(...interestingU32) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 512 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);

export const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 6 });

export function applyMutations(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.op) {
      case 'flip':
        b[at] = b[at]! ^ (1 << m.bit);
        break;
      case 'set':
        b[at] = m.value;
        break;
      case 'u32':
        if (at + 4 <= b.length) b.writeUInt32BE(m.value >>> 0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
      case 'duplicate':
        b = Buffer.concat([b.subarray(0, at + m.length), b.subarray(at, at + m.length), b.subarray(at + m.length)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
    }
  }
  return b;
}
