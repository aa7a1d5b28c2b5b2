/**
 * What the hub logs on SIGUSR2 (src/hosting/processStats.ts, bench/soak and bench/hostile read
 * it): the event loop's delay and the garbage collector's pauses since the previous read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { processStats } from '../src/hosting/processStats.js';

test('process stats: a blocked event loop shows in its delay, collections in the gc figures, and a read starts a new window', async () => {
  const stats = processStats();
  try {
    // The histogram's timer running first.
    await new Promise((resolve) => setTimeout(resolve, 30));
    // Short-lived garbage: young-generation collections.
    let kept = 0;
    for (let i = 0; i < 2_000_000; i++) kept += [i, { i }].length;
    assert.equal(kept, 4_000_000);
    // The event loop held for 120 ms.
    const until = Date.now() + 120;
    while (Date.now() < until);
    // The histogram samples on a timer and the gc entries are delivered after the turn.
    await new Promise((resolve) => setTimeout(resolve, 30));
    await turn();
    const first = stats.read();
    assert.ok(first.eventLoopDelayMs.max >= 100, `the loop's longest delay: ${first.eventLoopDelayMs.max} ms`);
    assert.ok(first.gc.count > 0, 'collections were counted');
    assert.ok(first.gc.maxMs > 0 && first.gc.totalMs >= first.gc.maxMs, JSON.stringify(first.gc));
    assert.ok(['minor', 'major', 'incremental', 'weakcb'].includes(first.gc.maxKind), JSON.stringify(first.gc));
    assert.ok(first.rssMiB > 0 && first.heapUsedMiB > 0 && first.heapTotalMiB >= first.heapUsedMiB);

    await new Promise((resolve) => setTimeout(resolve, 50));
    const second = stats.read();
    assert.ok(second.eventLoopDelayMs.max < 100, `a new window: ${second.eventLoopDelayMs.max} ms`);
    assert.ok(second.gc.totalMs < first.gc.totalMs || second.gc.count < first.gc.count, `a new window: ${JSON.stringify(second.gc)}`);
  } finally {
    stats.stop();
  }
});
