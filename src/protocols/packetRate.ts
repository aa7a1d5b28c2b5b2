/**
 * One connection's ceiling on what the hub takes from it per second (config
 * `connections.packetsPerConnectionSecond`): MQTT packets read (src/protocols/mqtt/session.ts,
 * reading pauses past it: TCP holds the device back) and AMQP telemetry credit granted
 * (src/protocols/amqp/server.ts: the device waits for credit). A token bucket holding 10 ms of
 * packets, refilled lazily (the clock is read only once the bucket is empty). Nothing is refused:
 * traffic shaping, as IoT Hub's throttles are (IoT Hub's are per hub and per kind of operation).
 *
 * The turn budgets share each turn fairly but are work-conserving: a device that publishes as fast
 * as its socket takes (and never reads its PUBACKs) got every turn the others left, kept the hub's
 * one thread at 100% and, on a machine where the devices compete for the same cores, raised the
 * other devices' PUBACK p99 4-7x (bench:hostile nonreader); with a ceiling of 5,000/s, 1.5-2.8x.
 * An AMQP message costs the hub more: an AMQP flood at 5,000/s still raised it 4.8-5.9x (medians of
 * 3 rounds), at 2,500/s 1.4-3.4x (its p99 3-7 ms), hence the default of 2,500 (src/config).
 */
export class PacketRate {
  private tokens: number;
  /** When `tokens` was last brought up to date (full at construction). */
  private refilledAt = performance.now();
  private readonly burst: number;

  constructor(readonly perSecond: number) {
    if (!(perSecond > 0)) throw new Error(`a packet rate must be above 0, not ${perSecond}`);
    this.burst = Math.max(1, perSecond / 100);
    this.tokens = this.burst;
  }

  /** 0 when a packet may be read now; otherwise the milliseconds until one may. Takes nothing (see `spend`). */
  wait(): number {
    if (this.tokens >= 1) return 0;
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) * this.perSecond) / 1000);
    this.refilledAt = now;
    return this.tokens >= 1 ? 0 : ((1 - this.tokens) * 1000) / this.perSecond;
  }

  /** Counts a packet read (after `wait` said 0). */
  spend(): void {
    this.tokens--;
  }
}
