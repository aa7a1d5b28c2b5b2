import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventLog, EventLogs, EventToAppend, StoredEvent } from '../../store/index.js';
import { BUILT_IN_ENTITY } from '../../store/eventLog.js';

/** The partition a device's messages go to: a stable hash of the device id, as IoT Hub does. */
export function partitionFor(deviceId: string, partitions: number): number {
  return createHash('sha256').update(deviceId).digest().readUInt32BE(0) % partitions;
}

/** Most events one transaction commits; a bigger backlog is committed in several. */
const MAX_BATCH = 2000;

/**
 * A commit this slow is logged (warn): the hub's thread was held that long, every connection
 * waiting. A commit normally takes well under a millisecond (WAL, synchronous=NORMAL: no fsync);
 * one this long means the disk held the write (or a checkpoint's sync).
 */
const SLOW_COMMIT_MS = 250;

/** One event for one entity of the log (routing: `$builtin` and custom endpoints' backlogs). */
export interface EntityEvent {
  entity: string;
  event: EventToAppend;
}

/** Appends across entities, and who to tell after they committed (routing's drainers, live readers). */
export interface AcrossEntities {
  logs: Pick<EventLogs, 'appendAcross'>;
  committed(stored: { entity: string; event: StoredEvent }[]): void;
}

type Pending =
  | { event: EventToAppend; entries?: undefined; resolve: (e: StoredEvent) => void; reject: (e: unknown) => void }
  | { event?: undefined; entries: EntityEvent[]; resolve: (e: StoredEvent[]) => void; reject: (e: unknown) => void };

/**
 * Group commit in front of the event log: appends from every connection queue up and are
 * committed together, one transaction per turn of the event loop, and each caller's promise
 * resolves only after its transaction committed (so an ack sent on resolve is an ack of a
 * durable message). One fsync-bound commit per batch instead of per message is where the
 * throughput comes from.
 */
export class EventLogWriter {
  private queue: Pending[] = [];
  private scheduled = false;
  private closed = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly log: EventLog,
    private readonly logger: Logger,
    private readonly across?: AcrossEntities,
  ) {}

  append(event: EventToAppend): Promise<StoredEvent> {
    if (this.closed) return Promise.reject(new Error('the event log is closed'));
    return new Promise((resolve, reject) => this.enqueue({ event, resolve, reject }));
  }

  /**
   * Appends one message to several entities (the built-in endpoint and routing backlogs), in the
   * same group commit as everything else queued: resolves after the commit, results in order.
   */
  appendAcross(entries: EntityEvent[]): Promise<StoredEvent[]> {
    if (this.closed) return Promise.reject(new Error('the event log is closed'));
    if (!this.across) return Promise.reject(new Error('this event log writer appends to the built-in endpoint only'));
    if (entries.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => this.enqueue({ entries, resolve, reject }));
  }

  private enqueue(p: Pending): void {
    this.queue.push(p);
    if (!this.scheduled) {
      this.scheduled = true;
      // setImmediate runs after the current I/O phase: everything the sockets delivered in this
      // turn is in the batch.
      setImmediate(() => void this.flush());
    }
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        if (batch.every((p) => p.entries === undefined)) {
          // No routing in this batch: the built-in endpoint's own append, as cheap as ever.
          const stored = await this.timed(batch.length, () => this.log.append(batch.map((p) => p.event!)));
          batch.forEach((p, i) => (p.resolve as (e: StoredEvent) => void)(stored[i]!));
        } else {
          await this.flushAcross(batch);
        }
      } catch (e) {
        this.logger.error({ err: e, events: batch.length }, 'event log append failed');
        for (const p of batch) p.reject(e);
      }
    }
    this.scheduled = false;
    for (const done of this.idle.splice(0)) done();
  }

  private async flushAcross(batch: Pending[]): Promise<void> {
    const flat: EntityEvent[] = [];
    for (const p of batch) {
      if (p.entries) flat.push(...p.entries);
      else flat.push({ entity: BUILT_IN_ENTITY, event: p.event });
    }
    const stored = await this.timed(flat.length, () => this.across!.logs.appendAcross(flat));
    this.across!.committed(flat.map((f, i) => ({ entity: f.entity, event: stored[i]! })));
    let at = 0;
    for (const p of batch) {
      if (p.entries) {
        p.resolve(stored.slice(at, at + p.entries.length));
        at += p.entries.length;
      } else {
        p.resolve(stored[at++]!);
      }
    }
  }

  /**
   * Runs a commit, logging it when it held the thread SLOW_COMMIT_MS or more. The store's
   * transaction runs within the call (SQLite is synchronous), so only the call is timed: not the
   * promise's resolution, which waits behind whatever else the turn has queued.
   */
  private timed<T>(events: number, commit: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const committed = commit();
    const ms = performance.now() - started;
    if (ms >= SLOW_COMMIT_MS) this.logger.warn({ events, ms: Math.round(ms) }, 'slow commit');
    return committed;
  }

  /** Resolves once everything queued so far is committed (or failed). */
  settled(): Promise<void> {
    if (!this.scheduled) return Promise.resolve();
    return new Promise<void>((resolve) => this.idle.push(resolve));
  }

  /** Commits what is queued and refuses further appends. */
  async close(): Promise<void> {
    this.closed = true;
    if (!this.scheduled) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }
}

/** Drops events older than the retention period, periodically. */
export function startRetention(log: EventLog, retentionHours: number, logger: Logger, now: () => number = Date.now): () => void {
  // Not a NaN from a partial configuration: that swept every millisecond, with a cut-off before nothing.
  if (!(retentionHours > 0)) throw new Error(`event log retention must be a number of hours above 0, not ${retentionHours}`);
  const retentionMs = retentionHours * 3_600_000;
  const sweep = async () => {
    try {
      const deleted = await log.deleteBefore(now() - retentionMs);
      if (deleted > 0) logger.debug({ deleted }, 'event log retention removed expired events');
    } catch (e) {
      logger.error({ err: e }, 'event log retention failed');
    }
  };
  // Sweep at least every minute (or a tenth of the retention), so expiry lags by little.
  const timer = setInterval(sweep, Math.min(60_000, Math.max(1000, retentionMs / 10)));
  timer.unref();
  void sweep();
  return () => clearInterval(timer);
}
