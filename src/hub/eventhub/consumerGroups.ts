import { HubError } from '../../core/errors.js';
import type { ConsumerGroupStore } from '../../store/index.js';

export const DEFAULT_CONSUMER_GROUP = '$Default';

/** Event Hubs' naming rule for consumer groups. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$/;

/**
 * The consumer groups of the built-in endpoint: `$Default`, the configured ones, and those added
 * at run time (`fleethub consumer-group add`). Names compare case-insensitively, as Event Hubs'
 * do (the SDK itself sends `$default`).
 */
export class ConsumerGroups {
  constructor(
    private readonly configured: string[],
    private readonly store: ConsumerGroupStore,
  ) {}

  /** The group's canonical name, or undefined when there is no such group. */
  async find(name: string): Promise<string | undefined> {
    return (await this.list()).find((g) => g.toLowerCase() === name.toLowerCase());
  }

  async list(): Promise<string[]> {
    const all = [DEFAULT_CONSUMER_GROUP, ...this.configured, ...(await this.store.list())];
    const seen = new Set<string>();
    return all.filter((g) => !seen.has(g.toLowerCase()) && seen.add(g.toLowerCase()));
  }

  async add(name: string): Promise<string> {
    if (!NAME.test(name)) {
      throw new HubError('ArgumentInvalid', `Invalid consumer group name '${name}': 1-50 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    }
    if ((await this.find(name)) || !(await this.store.add(name))) {
      throw new HubError('ArgumentInvalid', `The consumer group '${name}' already exists`);
    }
    return name;
  }

  async delete(name: string): Promise<void> {
    if (name.toLowerCase() === DEFAULT_CONSUMER_GROUP.toLowerCase()) throw new HubError('InvalidOperation', 'The $Default consumer group cannot be deleted');
    if (this.configured.some((g) => g.toLowerCase() === name.toLowerCase())) {
      throw new HubError('InvalidOperation', `The consumer group '${name}' comes from the configuration (consumerGroups); remove it there`);
    }
    if (!(await this.store.delete(name))) throw new HubError('NotFound', `The consumer group '${name}' does not exist`);
  }
}
