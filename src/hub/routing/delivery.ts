/**
 * Delivery of one custom endpoint's backlog: read from the durable checkpoint, hand batches to the
 * endpoint's sink in order, advance the checkpoint (which trims what was delivered) after success.
 * Each endpoint drains on its own, so a slow or failing one never holds up the device, the
 * built-in endpoint or another endpoint: ingest only appends to its backlog.
 *
 * Health, as IoT Hub reports it: `unknown` until the first attempt, `healthy` after a success;
 * a failure makes it `degraded` (transient, throttled) or `unhealthy` at once (unauthorized, not
 * found; or after three failed attempts in a row); after `deadAfterMs` of continuous failure it is
 * `dead` and its backlog is dropped (counted). A dead endpoint is probed every `deadProbeMs` (what
 * arrived meanwhile is dropped when the probe fails) and at once when its settings change; a
 * success makes it healthy again.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { EventLog, PropertyValue, StoredEvent } from '../../store/eventLog.js';
import type { RoutingCheckpoints } from '../../store/routing.js';
import { SinkError, type EndpointCounters, type EndpointHealth, type EndpointSettings, type EndpointSink, type RoutedMessage, type SinkFailureKind } from './types.js';

/** Most messages in one batch of a batching (storage) sink: one blob per hub partition. */
export const MAX_BATCH_MESSAGES = 100_000;
/**
 * A batching sink's batch is read from the backlog this many messages per turn of the event loop:
 * reading 100,000 at once held the hub's loop a second (~10 µs a message), every device waiting.
 */
export const BATCH_READ_PAGE = 1000;

/** The system property a backlog entry keeps its hub partition in (removed before delivery). */
export const HUB_PARTITION_PROPERTY = 'x-fleethub-hub-partition';

export interface DeliveryOptions {
  deadAfterMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  deadProbeMs: number;
  /** Most messages handed to a non-batching sink at once. */
  maxBatch?: number;
  /** A delivery that has not answered by then counts as a transient failure (default ten minutes). */
  deliveryTimeoutMs?: number;
}

/**
 * What the loop waits for: `idle` (an empty backlog) ends with the next append; `window` (a
 * batching sink's window is open) only when it closes or the bytes appended since fill a batch;
 * `retry` only when its time is up.
 */
type Wait = { resolve: () => void; kind: 'idle' | 'window' | 'retry' };

export class EndpointDrainer {
  private sink: EndpointSink | undefined;
  private checkpoint = -1;
  /** The highest sequence number known to be in the backlog. */
  private last = -1;
  private closed = false;
  private running: Promise<void> | undefined;
  private wait: Wait | undefined;
  private failures = 0;
  private failingSince: number | undefined;
  private healthState: EndpointHealth;
  /** While a batching sink's window is open: body bytes waiting (as last read, plus appended since), and up to where. */
  private window: { bytes: number; through: number } | undefined;
  private deliveredCount = 0;
  private droppedCount = 0;
  /** Bumped by a settings change: a sink being made for older settings is thrown away. */
  private generation = 0;
  /** Settles when the endpoint's settings change or it closes: a delivery that hangs is abandoned then. */
  private interrupted!: Promise<'interrupted'>;
  private interrupt!: () => void;

  constructor(
    readonly name: string,
    private settings: EndpointSettings,
    private readonly deps: {
      backlog: EventLog;
      checkpoints: RoutingCheckpoints;
      createSink: (settings: EndpointSettings) => Promise<EndpointSink>;
      options: DeliveryOptions;
      logger: Logger;
      now?: () => number;
    },
  ) {
    this.healthState = { endpointId: name, healthStatus: 'unknown' };
    this.arm();
  }

  private arm(): void {
    this.interrupted = new Promise((resolve) => (this.interrupt = () => resolve('interrupted')));
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  async start(): Promise<void> {
    this.checkpoint = await this.deps.checkpoints.ensure(this.name);
    await this.deps.backlog.ensurePartitions(1);
    this.last = Math.max(this.checkpoint, (await this.deps.backlog.partitionInfo(0)).lastSequenceNumber);
    this.running = this.loop().catch((e) => this.deps.logger.error({ err: e, endpoint: this.name }, 'routing endpoint delivery stopped'));
  }

  /** New messages were committed to the backlog (up to `sequenceNumber`, with `bytes` of body). */
  appended(sequenceNumber: number, bytes = 0): void {
    if (sequenceNumber > this.last) this.last = sequenceNumber;
    if (this.wait?.kind === 'idle') this.release();
    else if (this.wait?.kind === 'window' && this.window && sequenceNumber > this.window.through) {
      // Not read again per append (a window can hold a lot): counted, and read once the batch is full.
      this.window.bytes += bytes;
      this.window.through = sequenceNumber;
      if (this.window.bytes >= (this.sink?.batching?.maxBytes ?? Infinity)) this.release();
    }
  }

  /** The endpoint's settings changed: its sink is closed and made again; the backlog stays. */
  async update(settings: EndpointSettings): Promise<void> {
    this.settings = settings;
    this.generation++;
    const old = this.sink;
    this.sink = undefined;
    this.failures = 0;
    this.failingSince = undefined;
    this.healthState = { endpointId: this.name, healthStatus: 'unknown' };
    this.interrupt();
    this.arm();
    this.release();
    if (old) await closeSink(old);
  }

  health(): EndpointHealth {
    return { ...this.healthState };
  }

  counters(): EndpointCounters {
    return { endpoint: this.name, delivered: this.deliveredCount, dropped: this.droppedCount, backlog: Math.max(0, this.last - this.checkpoint) };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.interrupt();
    this.release();
    await this.running;
    if (this.sink) await closeSink(this.sink);
    this.sink = undefined;
  }

  private release(): void {
    const w = this.wait;
    this.wait = undefined;
    w?.resolve();
  }

  private sleep(ms: number, kind: Wait['kind']): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === Infinity ? undefined : setTimeout(() => this.release(), ms);
      timer?.unref?.();
      this.wait = {
        kind,
        resolve: () => {
          if (timer) clearTimeout(timer);
          resolve();
        },
      };
    });
  }

  private async loop(): Promise<void> {
    const { options } = this.deps;
    while (!this.closed) {
      if (!this.sink) {
        const generation = this.generation;
        try {
          const sink = await this.deps.createSink(this.settings);
          if (generation !== this.generation || this.closed) {
            await closeSink(sink);
            continue;
          }
          this.sink = sink;
          sink.open?.().catch(() => undefined);
        } catch (e) {
          // No credential (identity not enabled, key missing) or the sink refused its settings.
          await this.failed(e instanceof SinkError ? e : new SinkError('unauthorized', (e as Error).message));
          continue;
        }
      }
      const sink = this.sink;
      if (this.last <= this.checkpoint) {
        await this.sleep(Infinity, 'idle');
        continue;
      }
      const batching = sink.batching;
      const { messages: batch, bytes } = batching
        ? await this.readBatch(batching.maxBytes)
        : { messages: (await this.deps.backlog.read(0, { sequenceNumber: this.checkpoint }, options.maxBatch ?? 500)).map(toRoutedMessage), bytes: 0 };
      if (batch.length === 0) {
        // Everything up to `last` was trimmed already (dropped while dead, or delivered).
        this.last = this.checkpoint;
        continue;
      }
      if (batching) {
        const due = batch[0]!.enqueuedTime + batching.frequencyMs;
        if (bytes < batching.maxBytes && this.now() < due) {
          // The backlog, not the sink, holds messages until the window closes or enough gathered.
          this.window = { bytes, through: batch[batch.length - 1]!.sequenceNumber };
          await this.sleep(Math.max(10, due - this.now()), 'window');
          this.window = undefined;
          continue;
        }
      }
      const generation = this.generation;
      this.healthState.lastSendAttemptTime = new Date(this.now()).toISOString();
      try {
        // Not checkpointed when abandoned: delivered again later (at least once).
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new SinkError('transient', 'the endpoint did not answer in time')), options.deliveryTimeoutMs ?? 600_000);
          timer.unref();
        });
        try {
          if ((await Promise.race([sink.deliver(batch), this.interrupted, timedOut])) === 'interrupted') continue;
        } finally {
          clearTimeout(timer);
        }
      } catch (e) {
        if (generation !== this.generation || this.closed) continue;
        const error = e instanceof SinkError ? e : new SinkError('transient', (e as Error).message);
        if (error.kind === 'invalid') {
          // The target will never take these: drop them rather than block the endpoint.
          await this.advance(batch[batch.length - 1]!.sequenceNumber);
          this.droppedCount += batch.length;
          this.deps.logger.warn({ endpoint: this.name, dropped: batch.length, error: error.message }, 'routing endpoint refused messages as invalid; dropped');
          this.noteError(error);
          continue;
        }
        await this.failed(error);
        continue;
      }
      await this.advance(batch[batch.length - 1]!.sequenceNumber);
      this.deliveredCount += batch.length;
      this.succeeded();
    }
  }

  /**
   * What a batching sink would take next: from the checkpoint on, until the body bytes reach
   * `maxBytes`, MAX_BATCH_MESSAGES or the end of the backlog; BATCH_READ_PAGE at a time, a turn of
   * the event loop between.
   */
  private async readBatch(maxBytes: number): Promise<{ messages: RoutedMessage[]; bytes: number }> {
    const messages: RoutedMessage[] = [];
    let bytes = 0;
    let from = this.checkpoint;
    while (!this.closed && bytes < maxBytes && messages.length < MAX_BATCH_MESSAGES) {
      if (messages.length > 0) await nextTurn();
      const page = await this.deps.backlog.read(0, { sequenceNumber: from }, Math.min(BATCH_READ_PAGE, MAX_BATCH_MESSAGES - messages.length));
      for (const event of page) {
        messages.push(toRoutedMessage(event));
        bytes += event.body.length;
        if (bytes >= maxBytes) break;
      }
      if (page.length < BATCH_READ_PAGE) break;
      from = page[page.length - 1]!.sequenceNumber;
    }
    return { messages, bytes };
  }

  private async advance(sequenceNumber: number): Promise<void> {
    await this.deps.checkpoints.advance(this.name, sequenceNumber);
    this.checkpoint = sequenceNumber;
  }

  private succeeded(): void {
    const wasFailing = this.failingSince !== undefined;
    this.failures = 0;
    this.failingSince = undefined;
    this.healthState.healthStatus = 'healthy';
    this.healthState.lastSuccessfulSendAttemptTime = new Date(this.now()).toISOString();
    if (wasFailing) this.deps.logger.info({ endpoint: this.name }, 'routing endpoint is healthy again');
  }

  private noteError(error: SinkError): void {
    this.healthState.lastKnownError = error.message;
    this.healthState.lastKnownErrorTime = new Date(this.now()).toISOString();
  }

  private async failed(error: SinkError): Promise<void> {
    const now = this.now();
    this.failures++;
    this.failingSince ??= now;
    this.noteError(error);
    const { options } = this.deps;
    const wasDead = this.healthState.healthStatus === 'dead';
    if (wasDead || now - this.failingSince >= options.deadAfterMs) {
      this.healthState.healthStatus = 'dead';
      const dropped = Math.max(0, this.last - this.checkpoint);
      if (dropped > 0) {
        await this.advance(this.last);
        this.droppedCount += dropped;
      }
      if (!wasDead || dropped > 0) {
        this.deps.logger.warn({ endpoint: this.name, dropped, error: error.message }, 'routing endpoint is dead: its backlog was dropped');
      }
      await this.sleep(options.deadProbeMs, 'retry');
      return;
    }
    this.healthState.healthStatus = unhealthyAtOnce(error.kind) || this.failures >= 3 ? 'unhealthy' : 'degraded';
    if (this.failures === 1) this.deps.logger.warn({ endpoint: this.name, kind: error.kind, error: error.message }, 'routing endpoint delivery failed; retrying');
    const backoff = Math.min(options.retryMaxMs, options.retryMinMs * 2 ** Math.min(30, this.failures - 1));
    // Never sleep past the moment the endpoint is declared dead.
    const untilDead = this.failingSince + options.deadAfterMs - now;
    await this.sleep(Math.max(0, Math.min(backoff, untilDead)), 'retry');
  }
}

/** Closes a sink, waiting five seconds at most (a settings change or shutdown is not held up by a target). */
async function closeSink(sink: EndpointSink): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([sink.close().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, 5000)))]);
  clearTimeout(timer);
}

function unhealthyAtOnce(kind: SinkFailureKind): boolean {
  return kind === 'unauthorized' || kind === 'notFound';
}

function toRoutedMessage(e: StoredEvent): RoutedMessage {
  const { [HUB_PARTITION_PROPERTY]: partition, ...systemProperties } = e.systemProperties as Record<string, PropertyValue>;
  return {
    sequenceNumber: e.sequenceNumber,
    partition: typeof partition === 'number' ? partition : Number(partition ?? 0),
    enqueuedTime: e.enqueuedTime,
    body: e.body,
    systemProperties,
    properties: e.properties,
  };
}
