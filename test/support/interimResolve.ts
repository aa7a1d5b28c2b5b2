/**
 * INTERIM (until the hosting branch's test/support/resolve.ts is merged): host names resolved
 * inside the test process, so that SDK clients dial a hub created at run time by its name.
 */
import dns from 'node:dns';

const entries = new Map<string, string>();
let installed = false;

export function addHostEntry(name: string, address: string): void {
  entries.set(name.toLowerCase(), address);
  if (installed) return;
  installed = true;
  const original = dns.lookup;
  const patched = function (hostname: string, options: unknown, callback?: unknown) {
    const cb = (typeof options === 'function' ? options : callback) as (...a: unknown[]) => void;
    const opts = typeof options === 'object' && options !== null ? (options as { all?: boolean }) : {};
    const address = entries.get(String(hostname).toLowerCase());
    if (address === undefined) return (original as (...a: unknown[]) => void).call(dns, hostname, options, callback);
    const family = address.includes(':') ? 6 : 4;
    process.nextTick(() => (opts.all ? cb(null, [{ address, family }]) : cb(null, address, family)));
  };
  (dns as { lookup: unknown }).lookup = patched;
}
