/** What a service-bound queue keeps: records with an id, oldest first. */
export interface ServiceBoundStore<R extends { id: number }> {
  /** Oldest first, skipping `exclude` (records already out for delivery). */
  pending(max: number, exclude: ReadonlySet<number>): Promise<R[]>;
  /** Removes records the service has completed. */
  remove(ids: number[]): Promise<void>;
  /** Counts a delivery of these records (for a maximum delivery count); optional. */
  delivered?(ids: number[]): Promise<void>;
  /** These records were offered and not completed (abandoned, or their lock ended); optional. */
  released?(ids: number[]): Promise<void>;
}

/** A batch out for delivery to the service; settle it once the service answered. */
export interface ServiceBoundBatch<R> {
  records: R[];
  /** completed: the records are gone; otherwise they are offered again. */
  settle(completed: boolean): Promise<void>;
}

/**
 * The hub's service-bound queues (cloud-to-device feedback, file-upload notifications): durable
 * records leased in batches to the service's receivers and removed only when completed. What is
 * leased is held in memory, so a restart offers it again (at least once, as IoT Hub delivers).
 */
export class ServiceBoundQueue<R extends { id: number }> {
  private readonly leased = new Set<number>();
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly store: ServiceBoundStore<R>,
    private readonly batchSize: number,
  ) {}

  async lease(max = this.batchSize): Promise<ServiceBoundBatch<R> | undefined> {
    const records = await this.store.pending(max, this.leased);
    const fresh = records.filter((r) => !this.leased.has(r.id));
    if (fresh.length === 0) return undefined;
    for (const r of fresh) this.leased.add(r.id);
    await this.store.delivered?.(fresh.map((r) => r.id));
    let settled = false;
    return {
      records: fresh,
      settle: async (completed) => {
        if (settled) return;
        settled = true;
        try {
          if (completed) await this.store.remove(fresh.map((r) => r.id));
          else await this.store.released?.(fresh.map((r) => r.id));
        } finally {
          for (const r of fresh) this.leased.delete(r.id);
          if (!completed) this.recorded();
        }
      },
    };
  }

  /** Called when records may have been added. */
  recorded(): void {
    for (const l of [...this.listeners]) l();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}
