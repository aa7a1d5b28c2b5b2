/**
 * The partition an Event Hubs partition key maps to: Jenkins' lookup3 hash of the key's UTF-8
 * bytes, folded to 16 bits, modulo the partition count. Ported from @azure/event-hubs'
 * partitionKeyToIdMapper (MIT), which the SDK's buffered producer uses to pick the partition the
 * service would; stable across restarts and processes.
 */
export function partitionForKey(partitionKey: string, partitionCount: number): number {
  const { b, c } = lookup3(Buffer.from(partitionKey, 'utf8'));
  const hashed = new Int16Array([c ^ b])[0]!;
  return Math.abs(hashed % partitionCount);
}

function lookup3(data: Buffer): { b: number; c: number } {
  let a: number, b: number, c: number;
  a = b = c = (0xdeadbeef + data.length) | 0;
  let i = 0;
  let size = data.length;
  const u32 = (o: number) => data.readUInt32LE(o);
  while (size > 12) {
    a = (a + u32(i)) | 0;
    b = (b + u32(i + 4)) | 0;
    c = (c + u32(i + 8)) | 0;
    a = (a - c) | 0; a ^= (c << 4) | (c >>> 28); c = (c + b) | 0;
    b = (b - a) | 0; b ^= (a << 6) | (a >>> 26); a = (a + c) | 0;
    c = (c - b) | 0; c ^= (b << 8) | (b >>> 24); b = (b + a) | 0;
    a = (a - c) | 0; a ^= (c << 16) | (c >>> 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= (a << 19) | (a >>> 13); a = (a + c) | 0;
    c = (c - b) | 0; c ^= (b << 4) | (b >>> 28); b = (b + a) | 0;
    i += 12;
    size -= 12;
  }
  if (size === 0) return { b: b >>> 0, c: c >>> 0 };
  // The tail: up to 12 bytes, little-endian into a, b, c (lookup3's switch, as a loop).
  for (let k = size - 1; k >= 0; k--) {
    const byte = data[i + k]! << ((k % 4) * 8);
    if (k >= 8) c = (c + byte) | 0;
    else if (k >= 4) b = (b + byte) | 0;
    else a = (a + byte) | 0;
  }
  c ^= b; c = (c - ((b << 14) | (b >>> 18))) | 0;
  a ^= c; a = (a - ((c << 11) | (c >>> 21))) | 0;
  b ^= a; b = (b - ((a << 25) | (a >>> 7))) | 0;
  c ^= b; c = (c - ((b << 16) | (b >>> 16))) | 0;
  a ^= c; a = (a - ((c << 4) | (c >>> 28))) | 0;
  b ^= a; b = (b - ((a << 14) | (a >>> 18))) | 0;
  c ^= b; c = (c - ((b << 24) | (b >>> 8))) | 0;
  return { b: b >>> 0, c: c >>> 0 };
}
