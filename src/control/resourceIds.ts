import { armErrors } from './errors.js';

/** A resource id split into its parts (`/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{child}/{name}]…`). */
export interface ResourceId {
  subscriptionId: string;
  resourceGroup: string;
  namespace: string;
  /** `IotHubs`, `userAssignedIdentities`: the top-level type (without the namespace). */
  type: string;
  name: string;
  /** Child resource segments after the name, alternating type and name. */
  children: string[];
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Parses a full resource id, or undefined when it is not one. */
export function parseResourceId(id: string): ResourceId | undefined {
  const s = id.split('/').filter((x) => x !== '');
  if (s.length < 8 || !same(s[0]!, 'subscriptions') || !same(s[2]!, 'resourceGroups') || !same(s[4]!, 'providers')) return undefined;
  return { subscriptionId: s[1]!, resourceGroup: s[3]!, namespace: s[5]!, type: s[6]!, name: s[7]!, children: s.slice(8) };
}

export function resourceId(subscriptionId: string, resourceGroup: string, namespace: string, type: string, name: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/${namespace}/${type}/${name}`;
}

/** The id of a user-assigned identity, checked: ARM's error for a malformed one. */
export function parseUserAssignedIdentityId(id: unknown, at: string): ResourceId {
  const parsed = typeof id === 'string' ? parseResourceId(id) : undefined;
  if (!parsed || !same(parsed.namespace, 'Microsoft.ManagedIdentity') || !same(parsed.type, 'userAssignedIdentities') || parsed.children.length) {
    throw armErrors.badRequest(
      'LinkedInvalidPropertyId',
      `Property id '${String(id)}' at path '${at}' is invalid. Expect fully qualified resource Id that start with '/subscriptions/{subscriptionId}' and name a Microsoft.ManagedIdentity/userAssignedIdentities resource.`,
    );
  }
  return parsed;
}

/** Whether `scope` is `ancestor` or below it (ids compare case-insensitively). */
export function isWithin(scope: string, ancestor: string): boolean {
  const a = ancestor.toLowerCase().replace(/\/+$/, '');
  const s = scope.toLowerCase().replace(/\/+$/, '');
  return a === '' || s === a || s.startsWith(a + '/');
}

export const sameId = same;
