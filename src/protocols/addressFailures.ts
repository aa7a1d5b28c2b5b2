/** Config `connections.addressFailure*`: when an address's failed connections get it refused for a while. */
export interface AddressFailureLimits {
  /** Failed connections from one address within `windowMs` after which it is blocked; 0: never. */
  failures: number;
  windowMs: number;
  /** How long new connections from a blocked address are closed at accept, before any TLS work. */
  blockMs: number;
}

interface Entry {
  windowStart: number;
  count: number;
  blockedUntil: number;
}

/**
 * Failed connection attempts per remote address: TLS handshakes that fail or time out, MQTT
 * connections that send garbage or nothing, CONNECTs, HTTPS requests and CBS put-tokens refused for
 * their credentials (once per connection), malformed AMQP. An address with `failures` of them
 * within `windowMs` is blocked for `blockMs`: its new connections are closed as they are accepted,
 * which costs the hub microseconds where each failed attempt cost it a TLS handshake (about a
 * millisecond of the one event loop). A flood of garbage or bad credentials from one machine then
 * stops taking the time of the devices that behave.
 *
 * Counted in fixed windows, in memory only; entries of quiet addresses are swept once a window.
 */
export class AddressFailures {
  private readonly entries = new Map<string, Entry>();
  private lastSweep = Date.now();

  constructor(
    private readonly limits: AddressFailureLimits,
    /** Called once as an address becomes blocked (to log it). */
    private readonly onBlocked?: (address: string, failures: number) => void,
  ) {}

  /** Whether connections from `address` are refused now. */
  isBlocked(address: string | undefined): boolean {
    if (!address || this.limits.failures === 0) return false;
    const entry = this.entries.get(address);
    return entry !== undefined && entry.blockedUntil > Date.now();
  }

  /** Counts a failed connection from `address` (not while it is blocked: those were closed unread). */
  failed(address: string | undefined): void {
    if (!address || this.limits.failures === 0) return;
    const now = Date.now();
    if (now - this.lastSweep >= this.limits.windowMs) this.sweep(now);
    let entry = this.entries.get(address);
    if (!entry) {
      entry = { windowStart: now, count: 0, blockedUntil: 0 };
      this.entries.set(address, entry);
    }
    if (entry.blockedUntil > now) return;
    if (now - entry.windowStart >= this.limits.windowMs) {
      entry.windowStart = now;
      entry.count = 0;
    }
    entry.count++;
    if (entry.count >= this.limits.failures) {
      entry.blockedUntil = now + this.limits.blockMs;
      this.onBlocked?.(address, entry.count);
      entry.count = 0;
      entry.windowStart = entry.blockedUntil;
    }
  }

  /** Addresses tracked (for tests). */
  get size(): number {
    return this.entries.size;
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [address, entry] of this.entries) {
      if (entry.blockedUntil <= now && now - entry.windowStart >= this.limits.windowMs) this.entries.delete(address);
    }
  }
}

/**
 * The failure counter of each HTTPS connection a WebSocket may be upgraded over, keyed by that
 * connection's socket: the listeners (hosting/front.ts) set it, and the MQTT and AMQP WebSocket
 * endpoints, which get the socket with the upgrade, count a bad peer with it as they do on their own
 * TLS ports.
 */
const upgradeCounters = new WeakMap<object, () => void>();

export function countUpgradeFailures(socket: object, failed: () => void): void {
  upgradeCounters.set(socket, failed);
}

/** The counter for the connection `socket` is (undefined where nothing counts it, as on a bare test listener). */
export function upgradeFailureCounter(socket: object): (() => void) | undefined {
  return upgradeCounters.get(socket);
}
