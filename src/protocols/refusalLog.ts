import type { Logger } from 'pino';

/**
 * Refused connections (bad credentials, garbage) are logged at info for the first `perMinute` of
 * each minute, then counted: a flood of refusals costs one line a minute, not one per attempt.
 */
export class RefusalLog {
  private windowStart = 0;
  private logged = 0;
  private suppressed = 0;

  constructor(private readonly perMinute = 20) {}

  note(log: Logger, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    if (now - this.windowStart >= 60_000) {
      if (this.suppressed > 0) log.info({ suppressed: this.suppressed }, `${message}: ${this.suppressed} more in the last minute, not logged one by one`);
      this.windowStart = now;
      this.logged = 0;
      this.suppressed = 0;
    }
    if (this.logged < this.perMinute) {
      this.logged++;
      log.info(fields, message);
    } else {
      this.suppressed++;
      log.debug(fields, message);
    }
  }
}
