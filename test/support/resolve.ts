/**
 * Process-local name resolution for tests, as an /etc/hosts line would give it: SDK clients in
 * the test process dial a hub's host name (`hub2.localhost`) and reach the test hub's loopback
 * address. It patches dns.lookup, which net and tls connects (and so every SDK) resolve through.
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | { address: string; family: number }[], family?: number) => void;

const dns = createRequire(import.meta.url)('node:dns') as { lookup: (...args: unknown[]) => void };
const original = dns.lookup;
const entries = new Map<string, string>();

function lookup(this: unknown, hostname: string, options: unknown, callback?: LookupCallback): void {
  if (typeof options === 'function') {
    callback = options as LookupCallback;
    options = {};
  }
  const address = entries.get(String(hostname).toLowerCase());
  if (!address) return original.call(this, hostname, options, callback);
  const family = isIP(address);
  const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
  process.nextTick(() => (all ? callback!(null, [{ address, family }]) : callback!(null, address, family)));
}

/** Resolves `name` to `address` in this process from now on. */
export function addHostEntry(name: string, address: string): void {
  dns.lookup = lookup as never;
  entries.set(name.toLowerCase(), address);
}

export function removeHostEntry(name: string): void {
  entries.delete(name.toLowerCase());
}
