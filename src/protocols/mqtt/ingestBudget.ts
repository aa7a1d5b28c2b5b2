/**
 * What every MQTT connection of the process has read and not yet settled (committed or refused),
 * in bytes: payloads plus a fixed allowance per message for the objects that carry it.
 *
 * Each connection already stops reading at 1,000 unacknowledged QoS 1 publishes, but 10,000
 * devices that each stay under that can still pile up gigabytes on a hub that cannot commit as
 * fast as they send (bench:soak saw 280 MiB a minute). Above the budget, a connection that reads
 * one more publish stops reading until the total is back under half; TCP then holds the devices
 * back, as it does for a broker that is simply slow. Config `connections.ingestBufferBytes`.
 */
export class IngestBudget {
  /** What one message costs beyond its payload (message object, properties, promise, ack slot). */
  static readonly PER_MESSAGE_BYTES = 1024;
  private inFlight = 0;
  private readonly waiting = new Set<() => void>();

  constructor(readonly limitBytes: number) {}

  /** Counts a message read; returns its cost, to give back when it settles. Check `spent` after. */
  take(payloadBytes: number): number {
    const cost = payloadBytes + IngestBudget.PER_MESSAGE_BYTES;
    this.inFlight += cost;
    return cost;
  }

  get spent(): boolean {
    return this.inFlight > this.limitBytes;
  }

  /** Settles a message taken with `take`; wakes the waiting connections once under half the budget. */
  give(cost: number): void {
    this.inFlight -= cost;
    if (this.waiting.size > 0 && this.inFlight <= this.limitBytes / 2) {
      const resume = [...this.waiting];
      this.waiting.clear();
      for (const r of resume) r();
    }
  }

  /** `resume` is called once the budget has room again (unless withdrawn first). */
  wait(resume: () => void): void {
    this.waiting.add(resume);
  }

  withdraw(resume: () => void): void {
    this.waiting.delete(resume);
  }

  /** Bytes read and not yet settled (for tests and stats). */
  get bytes(): number {
    return this.inFlight;
  }
}

/**
 * How many MQTT packets all connections together are handled in one event-loop turn
 * (config `connections.packetsPerTurn`). An overloaded hub otherwise handles every read that is
 * ready in one turn: with 10,000 devices sending faster than it commits, turns (and so the delay
 * of every timer, keep-alive, method call and commit) grew to seconds (bench:soak). Past the
 * budget, a connection's read waits in a queue, reading paused (TCP holds the device back), and
 * the queue is served first come, first served at the start of the next turns.
 */
export class TurnBudget {
  private left: number;
  private readonly queue: (() => void)[] = [];
  private armed = false;
  private draining = false;

  /**
   * @param perTurn packets all connections together in one turn (`connections.packetsPerTurn`)
   * @param perConnection packets one connection's read may hand over in one turn (`connections.packetsPerConnectionTurn`)
   */
  constructor(
    readonly perTurn: number,
    readonly perConnection: number = perTurn,
  ) {
    this.left = perTurn;
  }

  /** Whether one more packet may be handled in this turn (not while reads are queued ahead of it). */
  take(): boolean {
    if (this.left <= 0 || (this.queue.length > 0 && !this.draining)) return false;
    this.left--;
    this.arm();
    return true;
  }

  /** Queues `resume` (a connection's held read) for a coming turn. */
  wait(resume: () => void): void {
    this.queue.push(resume);
    this.arm();
  }

  /** Reads queued (for tests and stats). */
  get queued(): number {
    return this.queue.length;
  }

  private arm(): void {
    if (this.armed) return;
    this.armed = true;
    setImmediate(() => {
      this.armed = false;
      this.left = this.perTurn;
      this.draining = true;
      try {
        // Each resumed read takes from the new turn's budget, and queues again behind the others if it runs out.
        for (let n = this.queue.length; n > 0 && this.left > 0; n--) this.queue.shift()!();
      } finally {
        this.draining = false;
      }
      if (this.queue.length > 0) this.arm();
    });
  }
}
