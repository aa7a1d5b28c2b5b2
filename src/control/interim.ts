/**
 * INTERIM stand-in for the hosting area, so that the control plane creates hubs before the
 * `hosting` branch is merged: the lead replaces InterimHubHost with the HubHost of src/hosting
 * (and drops StartOptions.allocateHubAddress and test/support/interimResolve.ts).
 */
import type { Logger } from 'pino';
import type { HubHost } from '../hosting/types.js';
import type { RunningHub } from '../main.js';

/**
 * The hubs of the process, and hubs created at run time through the existing startup code, each on
 * an address of its own from `allocateAddress` (the hosting area serves them on shared ports by name).
 */
export class InterimHubHost implements HubHost {
  constructor(
    private readonly primary: () => RunningHub,
    private readonly startExtra: (spec: { hubName: string; hostName: string; bind: string }) => Promise<RunningHub>,
    private readonly allocateAddress: (hostName: string) => Promise<string>,
    private readonly logger: Logger,
  ) {}
  list() {
    return [this.primary(), ...this.primary().hubs];
  }
  get(hubName: string) {
    return this.list().find((h) => h.config.hubName.toLowerCase() === hubName.toLowerCase());
  }
  async create(spec: { hubName: string; hostName: string }) {
    const existing = this.get(spec.hubName);
    if (existing) return existing;
    const bind = await this.allocateAddress(spec.hostName);
    this.logger.info({ hub: spec.hubName, hostName: spec.hostName, bind }, 'starting a hub created through the control plane');
    const hub = await this.startExtra({ ...spec, bind });
    this.primary().hubs.push(hub);
    return hub;
  }
  async remove(hubName: string) {
    const hubs = this.primary().hubs;
    const i = hubs.findIndex((h) => h.config.hubName.toLowerCase() === hubName.toLowerCase());
    if (i < 0) return;
    const [hub] = hubs.splice(i, 1);
    await hub!.close();
    const { rmSync } = await import('node:fs');
    rmSync(hub!.config.dataDir, { recursive: true, force: true });
  }
}

