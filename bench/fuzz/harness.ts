/**
 * Runs fuzz targets against a live hub for a fixed time each and checks the invariants: no
 * unhandled throw, no error logged by the hub, no 5xx or internal error answered to bad input,
 * no connection left open once the fuzzer has gone, and the control devices' sends all succeed.
 */
import fc from 'fast-check';
import type { FuzzHub } from './hub.js';
import { startControlDevices } from './control.js';
import { hubSocketCount, openClientSockets } from './net.js';

/** One family of inputs: an arbitrary and what to do with each value. */
export interface FuzzProperty<T = any> {
  name: string;
  arbitrary: fc.Arbitrary<T>;
  /** Sends the input; returns a finding (bad input answered badly), or undefined. */
  run(input: T): Promise<string | undefined>;
}

export interface FuzzTarget {
  name: string;
  /** The hub's ports this target talks to (connections counted there for leaks). */
  ports: number[];
  properties(hub: FuzzHub): Promise<FuzzProperty[]>;
}

export interface Finding {
  target: string;
  property: string;
  /** `harness`: the fuzzer's own code threw (a bug to fix there, not in the hub). */
  kind: 'crash' | 'error-log' | 'bad-answer' | 'leak' | 'control-device' | 'harness';
  message: string;
  /** fast-check's seed and path: `fc.assert(prop, { seed, path })` replays it. */
  seed?: number;
  path?: string;
  counterexample?: string;
}

export interface TargetReport {
  target: string;
  seconds: number;
  executions: number;
  seed: number;
  properties: Record<string, number>;
  controlSends: number;
  findings: Finding[];
}

const uncaught: string[] = [];
const consoleLines: string[] = [];
let watching = false;
function watchProcess(): void {
  if (watching) return;
  watching = true;
  process.on('uncaughtException', (e) => uncaught.push(`uncaught exception: ${e?.stack ?? e}`));
  process.on('unhandledRejection', (e) => uncaught.push(`unhandled rejection: ${(e as Error)?.stack ?? e}`));
  // Libraries that write to the console from inside the hub (rhea does, on protocol violations) are findings too.
  for (const level of ['error', 'warn'] as const) {
    const original = console[level].bind(console);
    console[level] = (...args: unknown[]) => {
      consoleLines.push(`console.${level}: ${args.map(String).join(' ')}`);
      if (process.env.FUZZ_VERBOSE) original(...args);
    };
  }
}

class FindingError extends Error {
  constructor(
    readonly kind: Finding['kind'],
    message: string,
  ) {
    super(message);
  }
}

const SHRINK_BUDGET_MS = 15_000;

const clip = (s: string, n = 2000) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

/** A finding's identity for de-duplication: its kind and message without numbers. */
const signature = (f: Finding) => `${f.kind}:${f.property}:${f.message.split('\n')[0]!.replace(/\d+/g, 'N').slice(0, 200)}`;

export async function runTarget(
  target: FuzzTarget,
  hub: FuzzHub,
  options: {
    seconds: number;
    seed: number;
    log?: (line: string) => void;
    /** How long the hub gets to let go of the connections once the fuzzer has closed them. */
    settleMs?: number;
    /** false: no control devices (the harness's own test only). */
    controlDevices?: boolean;
  },
): Promise<TargetReport> {
  watchProcess();
  const log = options.log ?? (() => undefined);
  const report: TargetReport = {
    target: target.name,
    seconds: 0,
    executions: 0,
    seed: options.seed,
    properties: {},
    controlSends: 0,
    findings: [],
  };
  const seen = new Set<string>();
  const add = (f: Finding) => {
    const sig = signature(f);
    if (seen.has(sig)) return;
    seen.add(sig);
    report.findings.push(f);
    log(`  finding (${f.kind}, ${f.property}): ${f.message.split('\n')[0]}`);
  };

  log(`  starting control devices`);
  const control =
    options.controlDevices === false
      ? { sent: 0, failures: [], stop: async () => undefined }
      : await startControlDevices({ mqtt: hub.devices.controlMqtt.connectionString, amqp: hub.devices.controlAmqp.connectionString });
  if (options.controlDevices !== false) await new Promise((r) => setTimeout(r, 500));
  const ports = target.ports;
  const baseline = hubSocketCount(hub.host, ports);
  const baselineSessions = hub.liveSessions();
  const settleMs = options.settleMs ?? 5000;
  /** Waits (up to settleMs) for the hub to be back to the baseline's sockets and sessions; what is still held. */
  const settle = async () => {
    for (const s of openClientSockets) s.destroy();
    let held = hubSocketCount(hub.host, ports);
    let sessions = hub.liveSessions();
    for (let waited = 0; waited < settleMs && (held > baseline || sessions > baselineSessions || openClientSockets.size > 0); waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      held = hubSocketCount(hub.host, ports);
      sessions = hub.liveSessions();
    }
    return { held, sessions };
  };
  const checkLeaks = async (property: string, after: string) => {
    const { held, sessions } = await settle();
    if (held > baseline)
      add({ target: target.name, property, kind: 'leak', message: `the hub still holds ${held - baseline} connection(s) the fuzzer closed (${after}; baseline ${baseline}, now ${held})` });
    if (sessions > baselineSessions)
      add({ target: target.name, property, kind: 'leak', message: `the hub still counts ${sessions - baselineSessions} device session(s) whose connections are gone (${after}; baseline ${baselineSessions}, now ${sessions})` });
    if (openClientSockets.size > 0) add({ target: target.name, property, kind: 'leak', message: `${openClientSockets.size} fuzzer socket(s) never closed (${after})` });
    return held;
  };
  const at = { uncaught: uncaught.length, errors: hub.errors.length, console: consoleLines.length };
  const properties = await target.properties(hub);
  log(`  fuzzing: ${properties.map((p) => p.name).join(', ')}`);
  for (const p of properties) report.properties[p.name] = 0;
  const started = Date.now();
  const deadline = started + options.seconds * 1000;
  let round = 0;
  while (Date.now() < deadline) {
    for (const property of properties) {
      // The first round runs every property, even past the deadline (a short run's leak checks take time too).
      const remaining = Math.max(deadline - Date.now(), round === 0 ? 200 : 0);
      if (remaining <= 0) break;
      // Short slices, rotating through the properties; each slice has its own seed, derived from the run's.
      // (At least 2 s, but a short run, like CI's smoke, still gives every property a slice.)
      const perProperty = (options.seconds * 1000) / properties.length;
      const slice = Math.min(remaining, Math.max(Math.min(2000, perProperty), perProperty / 4));
      const seed = (options.seed + round * 7919 + properties.indexOf(property) * 104729) | 0;
      let executions = 0;
      // Shrinking a finding replays it over sockets, slowly: past this, every input passes, which ends the shrink.
      const hardStop = Date.now() + slice + SHRINK_BUDGET_MS;
      const predicate = fc.asyncProperty(property.arbitrary, async (input) => {
        if (Date.now() > hardStop) return;
        executions++;
        const errorsBefore = hub.errors.length;
        const uncaughtBefore = uncaught.length;
        const consoleBefore = consoleLines.length;
        const answer = await property.run(input);
        await new Promise((r) => setImmediate(r));
        if (uncaught.length > uncaughtBefore) throw new FindingError('crash', uncaught.slice(uncaughtBefore).join('\n'));
        if (hub.errors.length > errorsBefore) {
          const e = hub.errors[errorsBefore]!;
          throw new FindingError('error-log', `hub logged "${e.msg}": ${e.err ?? ''}`);
        }
        if (answer) throw new FindingError('bad-answer', answer);
        if (consoleLines.length > consoleBefore) throw new FindingError('error-log', consoleLines[consoleBefore]!);
      });
      log(`  ${property.name}: ${slice} ms from seed ${seed}`);
      const details = await fc.check(predicate, {
        seed,
        numRuns: Number.MAX_SAFE_INTEGER,
        interruptAfterTimeLimit: slice,
        markInterruptAsFailure: false,
        // Shrink (bounded by hardStop above): the report then shows a small input.
        endOnFailure: false,
      });
      report.executions += executions;
      report.properties[property.name] = (report.properties[property.name] ?? 0) + executions;
      if (details.failed && details.errorInstance) {
        const e = details.errorInstance as FindingError;
        add({
          target: target.name,
          property: property.name,
          kind: e instanceof FindingError ? e.kind : 'harness',
          message: clip(e.message),
          seed: details.seed,
          path: details.counterexamplePath ?? undefined,
          counterexample: details.counterexample ? clip(fc.stringify(details.counterexample[0])) : undefined,
        });
      }
      // After each slice (not each input: settling costs time), connections and sessions are back to the baseline.
      await checkLeaks(property.name, `after a slice from seed ${seed}`);
    }
    round++;
  }
  report.seconds = Math.round((Date.now() - started) / 100) / 10;
  log(`  ${report.executions} executions; checking connections`);

  // Every connection the fuzzer made is gone on its side; the hub must let go of its side too.
  const held = await checkLeaks('*', 'at the end');
  log(`  checking control devices (hub holds ${held}, baseline ${baseline})`);
  await control.stop();
  // What happened outside any one input (between slices, while connections closed) is a finding too.
  const unreported = (message: string) => !report.findings.some((f) => f.message.split('\n')[0] === message.split('\n')[0]);
  for (const m of uncaught.slice(at.uncaught)) if (unreported(m)) add({ target: target.name, property: '*', kind: 'crash', message: clip(m) });
  for (const e of hub.errors.slice(at.errors)) {
    const m = `hub logged "${e.msg}": ${e.err ?? ''}`;
    if (unreported(m)) add({ target: target.name, property: '*', kind: 'error-log', message: clip(m) });
  }
  for (const m of consoleLines.slice(at.console)) if (unreported(m)) add({ target: target.name, property: '*', kind: 'error-log', message: clip(m) });
  report.controlSends = control.sent;
  for (const f of control.failures)
    add({ target: target.name, property: '*', kind: 'control-device', message: `control device (${f.transport}) send failed at +${f.at - started} ms: ${f.error}` });
  if (control.sent === 0 && options.controlDevices !== false) add({ target: target.name, property: '*', kind: 'control-device', message: 'the control devices sent nothing' });
  return report;
}

/** The printed table. */
export function formatReport(reports: TargetReport[]): string {
  const rows = [['target', 'seconds', 'executions', 'exec/s', 'seed', 'control sends', 'findings']];
  for (const r of reports)
    rows.push([r.target, String(r.seconds), String(r.executions), (r.executions / Math.max(r.seconds, 0.1)).toFixed(1), String(r.seed), String(r.controlSends), String(r.findings.length)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  const out = [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  for (const r of reports) for (const f of r.findings) out.push(`  ${r.target}/${f.property} [${f.kind}] ${f.message.split('\n')[0]}`);
  return out.join('\n');
}
