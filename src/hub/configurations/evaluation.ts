/**
 * Applies configurations to the twins they target, in the background: shortly after a
 * configuration changes and then every `intervalSeconds` (IoT Hub: every five minutes), so twins
 * that come to match a target condition get the content and twins that stop matching (or whose
 * configuration is deleted) lose it. Each run also records the metrics IoT Hub reports.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import { HubError } from '../../core/errors.js';
import type { ConfigurationStore, QueryCursor, QueryStore, TwinRecord } from '../../store/index.js';
import { matches } from '../conditions/evaluate.js';
import { parseTargetCondition, type TargetCondition } from '../conditions/targetCondition.js';
import { parseQuery } from '../query/parser.js';
import type { Queries } from '../query/queries.js';
import { toTwin, type Twins } from '../twins/twins.js';
import type { TwinState } from '../twins/types.js';
import { configurationChange, type TargetingConfiguration } from './twinContent.js';
import type { StoredConfiguration } from './types.js';

/**
 * Twins read (and decided on) per turn of the event loop. A run goes over every twin, and one run
 * of 20,000 held the thread 207 ms, the devices' PUBACKs waiting. The query's statement runs in
 * the store's query thread; what stays on the hub's thread is parsing and deciding on the page's
 * twins, ~15 µs each: 250 of them is a few milliseconds.
 */
const PAGE = 250;


interface Evaluated extends TargetingConfiguration {
  target: TargetCondition;
  targeted: number;
  applied: number;
  metricQueries: Record<string, string>;
}

export class ConfigurationEvaluation {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  private soon?: NodeJS.Immediate;
  /** Whether the last run had configurations (true at first, so a start clears what deletions left). */
  private hadConfigurations = true;

  constructor(
    private readonly store: ConfigurationStore,
    private readonly twinRecords: QueryStore,
    private readonly twins: Twins,
    private readonly queries: Queries,
    private readonly logger: Logger,
    private readonly intervalSeconds: number,
  ) {}

  /** First run right away (a restarted hub carries on), then every interval. */
  start(): void {
    this.request();
    this.timer = setInterval(() => this.request(), this.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Asks for a run soon; runs never overlap (a request during a run starts another after it). */
  request(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.soon) return;
    this.soon = setImmediate(() => {
      this.soon = undefined;
      this.running = this.loop().finally(() => (this.running = undefined));
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.soon) clearImmediate(this.soon);
    await this.running;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.runOnce();
      } catch (e) {
        if (!this.stopped) this.logger.warn({ err: e }, 'evaluating configurations failed');
      }
    } while (this.again && !this.stopped);
  }

  /** One pass over every device and module twin. */
  async runOnce(): Promise<void> {
    const configurations = (await this.store.list()).map(({ configuration }) => evaluated(configuration)).filter((c): c is Evaluated => !!c);
    // Without configurations, and with none at the last run, no twin has anything to gain or lose.
    if (configurations.length === 0 && !this.hadConfigurations) return;
    this.hadConfigurations = configurations.length > 0;
    for (const collection of ['devices', 'devices.modules'] as const) {
      const relevant = configurations.filter((c) => c.target.collection === collection);
      const query = parseQuery(`SELECT * FROM ${collection}`);
      let cursor: QueryCursor | undefined = {};
      while (cursor && !this.stopped) {
        const page = await this.twinRecords.run(query, PAGE, cursor);
        if (page.type !== 'twins') break;
        for (const record of page.items) await this.applyTo(record, relevant);
        cursor = page.next;
        if (cursor) await nextTurn();
      }
    }
    if (this.stopped) return;
    for (const c of configurations) {
      const custom: Record<string, number> = {};
      for (const [name, text] of Object.entries(c.metricQueries)) custom[name] = await this.count(text);
      await this.store.saveResults(c.id, { system: { targetedCount: c.targeted, appliedCount: c.applied }, custom });
    }
  }

  private async applyTo(record: TwinRecord, configurations: Evaluated[]): Promise<void> {
    const { deviceId, moduleId } = record.state;
    const identity = record.module ? { ...record.module, device: record.device } : record.device;
    const targetingOf = (state: TwinState) => {
      const doc = toTwin(state, identity);
      return configurations.filter((c) => !c.target.where || matches(c.target.where, doc));
    };
    let outcome: TwinState['configurations'] = record.state.configurations;
    const compute = (state: TwinState) => {
      const change = configurationChange(state, targetingOf(state));
      outcome = change ? change.configurations : state.configurations;
      return change;
    };
    // Most twins need nothing: decide on the record read with the page, write only on a change.
    const targeting = targetingOf(record.state);
    if (configurationChange(record.state, targeting)) {
      try {
        await this.twins.applyConfigurations(deviceId, moduleId || undefined, compute);
      } catch (e) {
        // A twin whose desired properties cannot take the content (size), or that went away.
        if (!(e instanceof HubError)) throw e;
        this.logger.debug({ deviceId, moduleId, err: e }, 'configuration content not applied');
        outcome = Object.fromEntries(targeting.map((c) => [c.id, { status: 'Targeted' as const }]));
      }
    }
    for (const [id, { status }] of Object.entries(outcome ?? {})) {
      const c = configurations.find((x) => x.id === id);
      if (!c) continue;
      c.targeted++;
      if (status === 'Applied') c.applied++;
    }
  }

  /** The number of rows a metric query returns. */
  private async count(text: string): Promise<number> {
    let n = 0;
    let token: string | undefined;
    do {
      const page = await this.queries.run(text, PAGE, token).catch(() => undefined);
      if (!page) return 0;
      n += page.items.length;
      token = page.continuationToken;
      if (token) await nextTurn();
    } while (token && !this.stopped);
    return n;
  }
}

function evaluated(c: StoredConfiguration): Evaluated | undefined {
  let target: TargetCondition;
  try {
    target = parseTargetCondition(c.targetCondition);
  } catch {
    return undefined;
  }
  const paths = (target.collection === 'devices' ? c.content.deviceContent : c.content.moduleContent) ?? {};
  return { id: c.id, priority: c.priority, createdTimeUtc: c.createdTimeUtc, paths, target, targeted: 0, applied: 0, metricQueries: c.metrics.queries };
}
