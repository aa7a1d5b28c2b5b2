/**
 * Process health on request: on SIGUSR2 the hub logs (at info) its event-loop delay since the
 * previous request (p50/p99/max, from `monitorEventLoopDelay`), the garbage collector's pauses in
 * that time (longest and total, from the `gc` performance entries), heap and resident memory. One
 * histogram sampling at 10 ms resolution and a callback per collection. Used by bench/soak and
 * bench/hostile: a late event loop with a long pause beside it was the collector's.
 */
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type { Logger } from 'pino';

export interface ProcessStats {
  eventLoopDelayMs: { p50: number; p99: number; max: number; mean: number };
  /** The collector's pauses since the last read: how many, the longest (and its kind) and their sum, ms. */
  gc: { count: number; maxMs: number; maxKind: string; totalMs: number };
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  rssMiB: number;
}

/** Starts measuring; `read()` returns the figures since the last read and starts a new window. */
export function processStats(): { read(): ProcessStats; stop(): void } {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let gc = { count: 0, maxMs: 0, maxKind: '', totalMs: 0 };
  const collections = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count++;
      gc.totalMs += entry.duration;
      if (entry.duration > gc.maxMs) {
        gc.maxMs = entry.duration;
        gc.maxKind = gcKinds[((entry as unknown as { detail?: { kind?: number } }).detail)?.kind ?? 0] ?? 'other';
      }
    }
  });
  collections.observe({ entryTypes: ['gc'] });
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const mib = (b: number) => Math.round(b / 10485.76) / 100;
  return {
    read() {
      const m = process.memoryUsage();
      const stats = {
        eventLoopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max), mean: ms(delay.mean) },
        gc: { count: gc.count, maxMs: Math.round(gc.maxMs * 100) / 100, maxKind: gc.maxKind, totalMs: Math.round(gc.totalMs * 100) / 100 },
        heapUsedMiB: mib(m.heapUsed),
        heapTotalMiB: mib(m.heapTotal),
        externalMiB: mib(m.external),
        rssMiB: mib(m.rss),
      };
      delay.reset();
      gc = { count: 0, maxMs: 0, maxKind: '', totalMs: 0 };
      return stats;
    },
    stop: () => {
      delay.disable();
      collections.disconnect();
    },
  };
}

/** The kinds of collection a `gc` performance entry reports: minor is a scavenge of the young generation, major a mark-compact. */
const gcKinds: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/** Logs `processStats` as 'process stats' each time the process receives `signal`. */
export function logProcessStatsOn(logger: Logger, signal: NodeJS.Signals = 'SIGUSR2'): void {
  const stats = processStats();
  process.on(signal, () => logger.info({ processStats: stats.read() }, 'process stats'));
}
