import assert from 'node:assert/strict';

/**
 * For assert.rejects: the error is the Azure SDK's own error class `name`. Each Azure package
 * bundles its own copy of the error classes, so match by name rather than by instanceof.
 */
export function sdkError(name: string, message?: RegExp) {
  return (e: unknown): true => {
    const err = e as Error;
    assert.equal(err?.name ?? err?.constructor?.name, name, `expected ${name}, got ${err?.name}: ${err?.message}`);
    if (message) assert.match(err.message, message);
    return true;
  };
}

/**
 * `promise`, or a rejection once `ms` have passed without it settling: for SDK calls that might
 * hang (a register() that never settles would otherwise only end at the test's own timeout).
 */
export function within<T>(ms: number, promise: Promise<T>, what = 'the SDK call'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
