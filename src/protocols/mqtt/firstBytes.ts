/** The largest CONNECT read: a client id, a user name with its query, a SAS token; far below any PUBLISH limit. */
export const MAX_CONNECT_BYTES = 16 * 1024;

/**
 * Whether the first bytes a connection sent can begin an MQTT CONNECT (packet type 1, flags 0,
 * a remaining length within MAX_CONNECT_BYTES). Garbage is refused at its first byte instead of
 * being buffered (a bogus length can ask for 256 MB) until the connect timeout.
 */
export function mayBeConnect(chunk: Buffer): boolean {
  if (chunk.length === 0) return true;
  if (chunk[0] !== 0x10) return false;
  let length = 0;
  for (let i = 1, shift = 0; i < chunk.length && i <= 4; i++, shift += 7) {
    length += (chunk[i]! & 0x7f) * 2 ** shift;
    if (length > MAX_CONNECT_BYTES) return false;
    if ((chunk[i]! & 0x80) === 0) break;
  }
  return true;
}

/** Closes `stream` unless what it sends first may be a CONNECT (see mayBeConnect); `failed` is told when it does. */
export function refuseNonConnect(stream: NodeJS.ReadableStream & { destroy(): void }, failed?: () => void): void {
  stream.once('data', (chunk: Buffer) => {
    if (mayBeConnect(chunk)) return;
    failed?.();
    stream.destroy();
  });
}
