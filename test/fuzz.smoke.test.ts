/**
 * CI's taste of `npm run fuzz`: each target for a few seconds against a live hub, with the same
 * invariants (no crash, no error log, no held connection, the control devices keep sending).
 * The real runs are `npm run fuzz -- --seconds 600` (see README).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startFuzzHub, type FuzzHub } from '../bench/fuzz/hub.js';
import { runTarget } from '../bench/fuzz/harness.js';
import { targets } from '../bench/fuzz/targets.js';

const SECONDS = Number(process.env.FUZZ_SMOKE_SECONDS ?? 5);

describe('fuzz smoke', () => {
  let hub: FuzzHub;
  before(async () => {
    hub = await startFuzzHub();
  });
  after(() => hub.close());

  for (const name of Object.keys(targets)) {
    test(`${name}: ${SECONDS} s of fuzzing finds nothing, and the control devices keep sending`, async () => {
      const report = await runTarget(targets[name]!, hub, { seconds: SECONDS, seed: 20 });
      assert.ok(report.executions > 0, 'inputs were sent');
      assert.ok(report.controlSends > 0, 'the control devices sent telemetry');
      assert.deepEqual(report.findings, []);
    });
  }
});
