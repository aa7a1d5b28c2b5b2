/**
 * Tells live readers that a partition has new events, so that they read at once instead of
 * polling. Whoever commits appends to the event log calls `appended` after the commit.
 */
export class AppendNotifier {
  private readonly listeners = new Map<number, Set<() => void>>();

  appended(partitions: Iterable<number>): void {
    for (const p of new Set(partitions)) for (const l of [...(this.listeners.get(p) ?? [])]) l();
  }

  /** Returns the function that unsubscribes. */
  subscribe(partition: number, listener: () => void): () => void {
    let set = this.listeners.get(partition);
    if (!set) this.listeners.set(partition, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }
}
