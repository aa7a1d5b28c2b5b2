/**
 * Routing's durable delivery state. Each custom endpoint's backlog is an entity of the event log
 * (`$endpoint/{name}`, one partition, appended in the same transaction as the built-in endpoint);
 * this store holds how far each endpoint was delivered, and trims what was.
 */

/** The event log entity holding a custom endpoint's backlog (endpoint names are case-insensitive). */
export function backlogEntity(endpoint: string): string {
  return `$endpoint/${endpoint.toLowerCase()}`;
}

export interface RoutingCheckpoints {
  /** The last sequence number delivered (or dropped) of the endpoint's backlog; -1 when none. */
  checkpoint(endpoint: string): Promise<number>;
  /** Records the backlog (checkpoint -1) if it is new; returns its checkpoint. */
  ensure(endpoint: string): Promise<number>;
  /** Moves the checkpoint to `sequenceNumber`, then removes the backlog's events up to it (a slice at a time: see the SQLite store). */
  advance(endpoint: string, sequenceNumber: number): Promise<void>;
  /** Forgets an endpoint: its checkpoint and its backlog's events and partitions. */
  remove(endpoint: string): Promise<void>;
  /** The endpoints (lower case) that have a backlog. */
  list(): Promise<string[]>;
  /** The routing settings last applied (JSON), so that a restart routes as before from its first message. */
  lastSettings(): Promise<string | undefined>;
  saveSettings(json: string): Promise<void>;
}
