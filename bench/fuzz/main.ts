/**
 * `npm run fuzz -- [--seconds 60] [--target mqtt,amqp,http] [--seed N] [--report fuzz-report.json]`
 *
 * Starts a Fleethub in this process, runs each target for `--seconds`, prints a table and writes
 * the JSON report. Exits 1 when there are findings. Run through bench/fuzz/run.ts (npm run fuzz),
 * which makes the throwaway CA that the control devices' SDK must trust.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startFuzzHub } from './hub.js';
import { formatReport, runTarget, type TargetReport } from './harness.js';
import { targets } from './targets.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    target: { type: 'string', default: Object.keys(targets).join(',') },
    seed: { type: 'string' },
    report: { type: 'string', default: 'fuzz-report.json' },
  },
});
const seconds = Number(args.seconds);
const names = args.target!.split(',').map((s) => s.trim()).filter(Boolean);
for (const n of names) if (!(n in targets)) throw new Error(`unknown target ${n}: one of ${Object.keys(targets).join(', ')}`);
const seed = args.seed !== undefined ? Number(args.seed) : Date.now() % 2 ** 31;

const hub = await startFuzzHub();
const reports: TargetReport[] = [];
const startedAt = new Date().toISOString();
try {
  for (const name of names) {
    console.log(`fuzzing ${name} for ${seconds} s (seed ${seed})`);
    reports.push(await runTarget(targets[name]!, hub, { seconds, seed, log: (l) => console.log(l) }));
  }
} catch (e) {
  // The harness watches for unhandled rejections (findings), so a failure of its own must exit here.
  console.error('the fuzz harness failed:', e);
  process.exit(2);
} finally {
  await hub.close();
}
writeFileSync(args.report!, JSON.stringify({ startedAt, node: process.version, seed, secondsPerTarget: seconds, targets: reports }, null, 2) + '\n');
console.log('\n' + formatReport(reports));
console.log(`\nreport: ${args.report}`);
process.exit(reports.some((r) => r.findings.length > 0) ? 1 : 0);
