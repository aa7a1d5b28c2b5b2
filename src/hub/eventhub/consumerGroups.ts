import { HubError } from '../../core/errors.js';

export const DEFAULT_CONSUMER_GROUP = '$Default';

/**
 * The consumer groups of the built-in endpoint: `$Default` plus the configured ones. Names
 * compare case-insensitively, as Event Hubs' do (the SDK itself sends `$default`).
 */
export class ConsumerGroups {
  private readonly names = new Map<string, string>();

  constructor(configured: string[]) {
    for (const name of [DEFAULT_CONSUMER_GROUP, ...configured]) this.names.set(name.toLowerCase(), name);
  }

  /** The group's canonical name, or undefined when there is no such group. */
  find(name: string): string | undefined {
    return this.names.get(name.toLowerCase());
  }

  list(): string[] {
    return [...this.names.values()];
  }
}

/** Event Hubs' naming rule for consumer groups. */
export function validateConsumerGroupName(name: string): void {
  if (!/^[A-Za-z0-9$][A-Za-z0-9._-]{0,49}$/.test(name)) {
    throw new HubError('ArgumentInvalid', `Invalid consumer group name '${name}': 1-50 letters, digits, '.', '_' or '-'`);
  }
}
