import type { Principal } from '../identity/types.js';
import type { ResourceId } from './resourceIds.js';
import { armErrors } from './errors.js';

/** An ARM resource as the REST API returns it. */
export type ArmResource = Record<string, unknown> & { id: string; name: string; type: string };

/** One resource type of a resource provider (`Microsoft.Devices/IotHubs`). */
export interface ResourceTypeProvider {
  namespace: string;
  /** The type under the namespace, as ARM spells it (`IotHubs`). */
  type: string;
  apiVersions: string[];
  get(id: ResourceId): Promise<ArmResource | undefined>;
  list(filter: { resourceGroup?: string }): Promise<ArmResource[]>;
  /** Creates or replaces; `created` picks 201 over 200. */
  put(id: ResourceId, body: Record<string, unknown>, context: { caller: Principal; ifMatch?: string }): Promise<{ resource: ArmResource; created: boolean }>;
  patch(id: ResourceId, body: Record<string, unknown>): Promise<ArmResource>;
  /** False when there was nothing to delete. */
  delete(id: ResourceId): Promise<boolean>;
  /** Child resources and actions (`listkeys`): the id's `children` say which; undefined when not one of them. */
  /** Ids of child resources that have keys (`listKeys`) and come with the resource (a namespace's rules): templates' `listKeys()` reads them. */
  keyedChildren?(id: string): string[];
  child?(method: string, id: ResourceId, body: unknown, context?: { ifMatch?: string }): Promise<{ status: number; body?: unknown } | undefined>;
  /**
   * A POST action of the provider at the subscription (`providers/Microsoft.Devices/checkNameAvailability`);
   * `action` in lower case. Undefined when the action is not this type's.
   */
  providerAction?(action: string, body: Record<string, unknown>): Promise<unknown | undefined>;
}

/**
 * The answer of a `check…NameAvailability` action (`{"name"}`): `Invalid` with `invalid`'s reason,
 * `AlreadyExists` with `takenMessage` when `taken`, else available. 400 without a name.
 */
export function nameAvailability(
  body: Record<string, unknown>,
  what: string,
  check: { invalid(name: string): string | undefined; taken(name: string): boolean; takenMessage(name: string): string },
): { nameAvailable: boolean; reason?: 'Invalid' | 'AlreadyExists'; message: string } {
  const name = body.name;
  if (typeof name !== 'string') throw armErrors.invalidContent(`'name' is required: the ${what} name to check.`);
  const invalid = check.invalid(name);
  if (invalid) return { nameAvailable: false, reason: 'Invalid', message: invalid };
  if (check.taken(name)) return { nameAvailable: false, reason: 'AlreadyExists', message: check.takenMessage(name) };
  return { nameAvailable: true, message: '' };
}
