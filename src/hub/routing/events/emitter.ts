import type { Logger } from 'pino';
import type { RoutableMessage, RouteSource, RoutingIngest } from '../types.js';

/**
 * Where the non-telemetry event sources hand their events: to routing's ingest once one is
 * attached, per device in the order the events happened (each waits for the device's previous
 * one to be committed), never holding up or failing the operation that caused the event.
 */
export class RoutingEvents {
  private ingest?: RoutingIngest;
  /** The last submission of each device still in flight: the next one of that device waits for it. */
  private readonly tails = new Map<string, Promise<void>>();

  constructor(
    readonly hubName: string,
    private readonly logger: Logger,
    readonly now: () => Date = () => new Date(),
  ) {}

  /** Routing's ingest (the router attaches it; undefined detaches). Until then events are not built. */
  attach(ingest: RoutingIngest | undefined): void {
    this.ingest = ingest;
  }

  /** Whether anything receives events (sources skip building them otherwise). */
  get active(): boolean {
    return this.ingest !== undefined;
  }

  /** Whether an event of `source` would be routed anywhere now (sources skip building it otherwise). */
  wants(source: RouteSource): boolean {
    const ingest = this.ingest;
    return ingest !== undefined && (ingest.takes?.(source) ?? true);
  }

  /** Queues the event behind the device's earlier ones; failures are logged, not thrown. */
  emit(message: RoutableMessage): void {
    const ingest = this.ingest;
    if (!ingest) return;
    const key = message.deviceId;
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => ingest.submit(message))
      .catch((e) => {
        this.logger.error(
          { err: e, deviceId: message.deviceId, moduleId: message.moduleId, source: message.source, opType: message.properties.opType },
          'routing a non-telemetry event failed',
        );
      });
    this.tails.set(key, next);
    void next.then(() => {
      if (this.tails.get(key) === next) this.tails.delete(key);
    });
  }

  /** Resolves once every event emitted so far has been submitted (or failed). */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}
