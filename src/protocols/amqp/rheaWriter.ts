import { createRequire } from 'node:module';

let installed = false;

/**
 * rhea encodes every message and every frame into a fresh `Buffer.alloc(1024)`: zero-filled,
 * outside Node's buffer pool, about 6% of the hub's CPU when it delivers events. Its Writer
 * writes every byte it returns (the size fields it skips are filled in before `toBuffer`), so the
 * server's rhea gets Writers on `Buffer.allocUnsafe` (pooled, not zeroed). Only this package's
 * rhea: the Azure SDKs' own copy (under rhea-promise) is not touched.
 */
export function pooledRheaWriters(): void {
  if (installed) return;
  installed = true;
  const require = createRequire(import.meta.url);
  const types = require('rhea/lib/types.js') as { Writer: new (buffer?: Buffer) => unknown };
  const Writer = types.Writer;
  function PooledWriter(this: unknown, buffer?: Buffer) {
    Writer.call(this, buffer ?? Buffer.allocUnsafe(1024));
  }
  PooledWriter.prototype = Writer.prototype;
  types.Writer = PooledWriter as unknown as typeof types.Writer;
}
