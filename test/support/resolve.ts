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
/** Resolvers consulted for names without an entry (a test hub's hubs created at run time). */
const resolvers = new Set<(name: string) => string | undefined>();

function lookup(this: unknown, hostname: string, options: unknown, callback?: LookupCallback): void {
  if (typeof options === 'function') {
    callback = options as LookupCallback;
    options = {};
  }
  const name = String(hostname).toLowerCase();
  let address = entries.get(name);
  // IP literals (a listener's own address, looked up by net's listen) are never remapped.
  if (!isIP(name)) for (const resolve of resolvers) address ??= resolve(name);
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

/** Resolves the names `resolve` answers for (lower-cased) in this process, until the returned function is called. */
export function addHostResolver(resolve: (name: string) => string | undefined): () => void {
  dns.lookup = lookup as never;
  resolvers.add(resolve);
  return () => void resolvers.delete(resolve);
}
