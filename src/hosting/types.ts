import type { RunningHub } from '../main.js';

/**
 * The hubs this process serves, on shared listeners told apart by host name (TLS SNI, the AMQP
 * open frame's hostname, HTTP Host) and, for configured hubs with an address of their own, by
 * address. The control plane creates and deletes hubs through it; nothing else does.
 */
export interface HubHost {
  list(): RunningHub[];
  /** By hub name, case-insensitively. */
  get(hubName: string): RunningHub | undefined;
  /**
   * Starts a hub with its own database under `<dataDir>/hubs/<hubName>`, serving at once on the
   * shared ports under `hostName`, with a server certificate from the process's CA that covers it.
   * Idempotent for a hub that already runs. Durability (starting it again after a restart) is the
   * caller's: the control plane keeps the list of hubs it created.
   */
  create(spec: { hubName: string; hostName: string }): Promise<RunningHub>;
  /** Stops a hub created by `create` and removes its data directory. */
  remove(hubName: string): Promise<void>;
}
