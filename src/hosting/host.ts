import { existsSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Config, ExtraHubConfig } from '../config/index.js';
import { HubError } from '../core/errors.js';
import { extraHubConfig, extraHubDataDir } from '../info.js';
import type { RunningHub } from '../main.js';
import { Front } from './front.js';
import type { HubHost } from './types.js';

/** Starts one hub on the listeners of its address (main.ts's composition of a hub). */
export type StartHub = (config: Config, front: Front, logger: Logger) => Promise<RunningHub>;

const HUB_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{1,48}[A-Za-z0-9]$/;
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * The process's hubs and the listeners they share: the primary's address, where hubs without an
 * address of their own are told apart by host name (configured ones, and those created at run
 * time), and one address per configured hub with its own `bind`.
 */
export class ProcessHubHost implements HubHost {
  private readonly fronts: Front[] = [];
  private primary?: RunningHub;
  private readonly configured: RunningHub[] = [];
  private readonly created = new Map<string, RunningHub>();
  /** Hubs being created, so that concurrent creates of one name start it once. */
  private readonly starting = new Map<string, Promise<RunningHub>>();

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly start: StartHub,
  ) {}

  get primaryFront(): Front {
    return this.fronts[0]!;
  }

  /** Binds the primary address's listeners. */
  async listen(): Promise<void> {
    this.fronts.push(await Front.listen({ bind: this.config.bind, ports: this.config.ports, defaultHub: this.config, logger: this.logger, connections: this.config.connections }));
  }

  /** Starts a configured hub: on listeners of its own when it has an address, else on the primary's. */
  async startConfigured(hub: ExtraHubConfig): Promise<RunningHub> {
    const hubConfig = extraHubConfig(this.config, hub);
    const logger = this.logger.child({ hub: hub.hubName });
    let front = this.primaryFront;
    if (hub.bind !== undefined) {
      front = await Front.listen({ bind: hubConfig.bind, ports: hubConfig.ports, defaultHub: hubConfig, logger, connections: hubConfig.connections });
      this.fronts.push(front);
    }
    const running = await this.start(hubConfig, front, logger);
    this.configured.push(running);
    return running;
  }

  /** The primary hub started: it becomes the process's handle, whose close closes everything. */
  started(primary: RunningHub): RunningHub {
    this.primary = primary;
    const closePrimary = primary.close.bind(primary);
    primary.hubs = this.others();
    primary.close = () => this.close(closePrimary);
    return primary;
  }

  /** Every hub but the primary: configured ones in order, then those created at run time. */
  readonly others = (): RunningHub[] => [...this.configured, ...this.created.values()];

  list(): RunningHub[] {
    return [...(this.primary ? [this.primary] : []), ...this.others()];
  }

  get(hubName: string): RunningHub | undefined {
    return this.list().find((h) => h.config.hubName.toLowerCase() === hubName.toLowerCase());
  }

  byHostName(hostName: string): RunningHub | undefined {
    return this.list().find((h) => h.config.hostName.toLowerCase() === hostName.toLowerCase());
  }

  async create(spec: { hubName: string; hostName: string }): Promise<RunningHub> {
    const key = spec.hubName.toLowerCase();
    const running = this.get(spec.hubName);
    if (running) {
      if (running.config.hostName.toLowerCase() !== spec.hostName.toLowerCase()) {
        throw new HubError('ArgumentInvalid', `Hub '${spec.hubName}' already runs with host name '${running.config.hostName}'`);
      }
      return running;
    }
    const pending = this.starting.get(key);
    if (pending) return pending;
    if (!HUB_NAME.test(spec.hubName)) throw new HubError('ArgumentInvalid', `'${spec.hubName}' is not a hub name: 3-50 letters, digits or hyphens`);
    if (!HOST_NAME.test(spec.hostName) || isIP(spec.hostName) || spec.hostName.toLowerCase() === 'localhost') throw new HubError('ArgumentInvalid', `'${spec.hostName}' is not a host name a hub can be told apart by (a DNS name, not an IP address or localhost)`);
    const taken = this.byHostName(spec.hostName) ?? this.list().find((h) => h.config.extraHostNames.some((n) => n.toLowerCase() === spec.hostName.toLowerCase()));
    if (taken) throw new HubError('ArgumentInvalid', `Host name '${spec.hostName}' is already hub '${taken.config.hubName}''s`);
    const hubConfig = extraHubConfig(this.config, spec);
    const starting = this.start(hubConfig, this.primaryFront, this.logger.child({ hub: spec.hubName }));
    this.starting.set(key, starting);
    try {
      const hub = await starting;
      this.created.set(key, hub);
      this.refreshPrimary();
      return hub;
    } finally {
      this.starting.delete(key);
    }
  }

  async remove(hubName: string): Promise<void> {
    const key = hubName.toLowerCase();
    const hub = this.created.get(key);
    if (!hub) {
      if (this.get(hubName)) throw new HubError('ArgumentInvalid', `Hub '${hubName}' is configured (the primary hub, or config 'hubs'); only hubs created at run time can be removed`);
      // Not running: it may still have a data directory from a run where it was created.
      const dataDir = extraHubDataDir(this.config.dataDir, hubName);
      if (HUB_NAME.test(hubName) && existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
      return;
    }
    this.created.delete(key);
    this.refreshPrimary();
    await hub.close();
    rmSync(hub.config.dataDir, { recursive: true, force: true });
  }

  private refreshPrimary(): void {
    if (this.primary) this.primary.hubs = this.others();
  }

  /**
   * Closes the process: the listeners stop taking connections, each hub closes its own (runtime
   * hubs, configured ones, then the primary with the DPS), and what is left is cut.
   */
  async close(closePrimary?: () => Promise<void>): Promise<void> {
    const stopped = Promise.all(this.fronts.map((f) => f.stopListening()));
    try {
      for (const hub of [...this.created.values()].reverse()) await hub.close();
      if (closePrimary) await closePrimary();
      for (const hub of [...this.configured].reverse()) await hub.close();
    } finally {
      for (const front of this.fronts) await front.close();
      await stopped;
    }
  }
}
