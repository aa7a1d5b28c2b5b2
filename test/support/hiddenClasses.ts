import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--allow-natives-syntax');
// Compiled after the flag is set: V8's own test of whether two objects share a hidden class (map).
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

/**
 * How many times the hidden class changes from one object to the next. Objects a hot path makes
 * should share one (a few changes while V8 generalises a field are normal); a count near the
 * number of objects means every call made a class of its own.
 */
export function hiddenClassChanges(objects: readonly object[]): number {
  let changes = 0;
  for (let i = 1; i < objects.length; i++) if (!haveSameMap(objects[i - 1]!, objects[i]!)) changes++;
  return changes;
}
