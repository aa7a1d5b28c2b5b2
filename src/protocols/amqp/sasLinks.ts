import type { ExpiryHolder } from './eventhub/access.js';

/**
 * The links of one connection that SAS tokens put on `$cbs` authorized, each ended when no token
 * of the connection allows it any more. The SDKs put a new token before the one in use expires
 * (a renewal, usually for the same audience): at the first token's expiry the link is looked at
 * again and lives on until the latest token that still allows it expires.
 */
export class SasLinks {
  private readonly timers = new Map<ExpiryHolder, NodeJS.Timeout>();

  /**
   * Holds `holder` until `expiresAt`, then until whatever `allowedUntil` answers then (the latest
   * expiry among the connection's tokens that allow the link; undefined or past: none, it ends).
   */
  hold(holder: ExpiryHolder, expiresAt: number, allowedUntil: () => number | undefined, now: () => number = Date.now): void {
    this.release(holder);
    const arm = (at: number) => {
      const timer = setTimeout(() => {
        const later = allowedUntil();
        if (later !== undefined && later > now()) return arm(later);
        this.timers.delete(holder);
        holder.expire('ExpiredToken: The token that authorized this link expired.');
      }, Math.min(Math.max(0, at - now()), 2 ** 31 - 1));
      timer.unref();
      this.timers.set(holder, timer);
    };
    arm(expiresAt);
  }

  /** Forgets `holder` (its link ended). */
  release(holder: ExpiryHolder): void {
    const timer = this.timers.get(holder);
    if (timer) clearTimeout(timer);
    this.timers.delete(holder);
  }

  /** The connection closed. */
  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}

/**
 * The latest expiry among the unexpired `grants` that `check` lets through (it throws the
 * refusal otherwise); undefined when none does. What `SasLinks.hold` asks when a token runs out.
 */
export function latestExpiry<G extends { expiresAt: number }>(grants: Iterable<G>, check: (grant: G) => void, now: number = Date.now()): number | undefined {
  let until: number | undefined;
  for (const grant of grants) {
    if (grant.expiresAt <= now) continue;
    try {
      check(grant);
    } catch {
      continue;
    }
    until = Math.max(until ?? 0, grant.expiresAt);
  }
  return until;
}
