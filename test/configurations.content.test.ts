import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { configurationChange, type TargetingConfiguration } from '../src/hub/configurations/twinContent.js';
import { mergePatch, valuesOf } from '../src/hub/twins/document.js';
import type { JsonObject, TwinState } from '../src/hub/twins/types.js';

const twin = (desired: JsonObject, extra: Partial<TwinState> = {}): TwinState => ({
  deviceId: 'd',
  moduleId: '',
  version: 1,
  etag: 'e',
  tags: {},
  desired: { ...desired, $metadata: { $lastUpdated: 'now' }, $version: 1 } as TwinState['desired'],
  reported: { $metadata: { $lastUpdated: 'now' }, $version: 1 } as TwinState['reported'],
  ...extra,
});
const config = (id: string, priority: number, paths: TargetingConfiguration['paths'], createdTimeUtc = '2024-01-01T00:00:00Z'): TargetingConfiguration => ({ id, priority, createdTimeUtc, paths });

/** The twin's desired values after the change, and the change. */
function apply(state: TwinState, targeting: TargetingConfiguration[]) {
  const change = configurationChange(state, targeting);
  if (!change) return { change, desired: valuesOf(state.desired), next: state };
  const desired = mergePatch(valuesOf(state.desired), change.desiredPatch);
  const next = twin(desired, { configurations: change.configurations, configurationContent: change.configurationContent });
  return { change, desired, next };
}

describe('configuration content in one twin', () => {
  test('nested paths: the higher-ranked configuration ends on top; null removes a property', () => {
    const { desired } = apply(twin({ keep: 1, gone: true }), [
      config('low', 1, { 'properties.desired.a': { b: 1, c: 2 } }),
      config('high', 5, { 'properties.desired.a.b': 10, 'properties.desired.gone': null }),
    ]);
    assert.deepEqual(desired, { keep: 1, a: { b: 10, c: 2 } });
  });

  test('the root path writes members; removing it takes out only those members', () => {
    const first = apply(twin({ own: 'x' }), [config('root', 1, { 'properties.desired': { p: 1, q: { r: 2 } } })]);
    assert.deepEqual(first.desired, { own: 'x', p: 1, q: { r: 2 } });
    assert.deepEqual(first.change?.configurations, { root: { status: 'Applied' } });
    const second = apply(first.next, []);
    assert.deepEqual(second.desired, { own: 'x' });
    assert.equal(second.change?.configurations, undefined);
    assert.equal(second.change?.configurationContent, undefined);
  });

  test('nothing to change: no change (no write, no version bump)', () => {
    const targeting = [config('c', 1, { 'properties.desired.x': 1 })];
    const { next } = apply(twin({}), targeting);
    assert.equal(configurationChange(next, targeting), undefined);
  });

  test('a configuration that wins no path is Targeted; ties go to the newest', () => {
    const { change, desired } = apply(twin({}), [
      config('older', 2, { 'properties.desired.x': 'old' }, '2024-01-01T00:00:00Z'),
      config('newer', 2, { 'properties.desired.x': 'new' }, '2024-01-02T00:00:00Z'),
    ]);
    assert.equal(desired.x, 'new');
    assert.deepEqual(change?.configurations, { newer: { status: 'Applied' }, older: { status: 'Targeted' } });
  });
});
