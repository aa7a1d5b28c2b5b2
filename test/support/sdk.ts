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
