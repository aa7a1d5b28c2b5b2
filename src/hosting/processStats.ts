/**
 * Process health on request: on SIGUSR2 the hub logs (at info) its event-loop delay since the
 * previous request (p50/p99/max, from `monitorEventLoopDelay`), heap and resident memory. One
 * histogram sampling at 10 ms resolution; nothing runs between requests. Used by bench/soak.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from 'pino';

export interface ProcessStats {
  eventLoopDelayMs: { p50: number; p99: number; max: number; mean: number };
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  rssMiB: number;
}

/** Starts measuring; `read()` returns the figures since the last read and starts a new window. */
export function processStats(): { read(): ProcessStats; stop(): void } {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const mib = (b: number) => Math.round(b / 10485.76) / 100;
  return {
    read() {
      const m = process.memoryUsage();
      const stats = {
        eventLoopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max), mean: ms(delay.mean) },
        heapUsedMiB: mib(m.heapUsed),
        heapTotalMiB: mib(m.heapTotal),
        externalMiB: mib(m.external),
        rssMiB: mib(m.rss),
      };
      delay.reset();
      return stats;
    },
    stop: () => delay.disable(),
  };
}

/** Logs `processStats` as 'process stats' each time the process receives `signal`. */
export function logProcessStatsOn(logger: Logger, signal: NodeJS.Signals = 'SIGUSR2'): void {
  const stats = processStats();
  process.on(signal, () => logger.info({ processStats: stats.read() }, 'process stats'));
}
