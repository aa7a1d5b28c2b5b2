/** ARM resource ids of the things Fleethub's identity area talks about. Compared case-insensitively. */
export const resourceIds = {
  subscription: (subscriptionId: string) => `/subscriptions/${subscriptionId}`,
  resourceGroup: (subscriptionId: string, group: string) => `/subscriptions/${subscriptionId}/resourceGroups/${group}`,
  hub: (subscriptionId: string, group: string, hubName: string) => `/subscriptions/${subscriptionId}/resourceGroups/${group}/providers/Microsoft.Devices/IotHubs/${hubName}`,
  userAssignedIdentity: (subscriptionId: string, group: string, name: string) =>
    `/subscriptions/${subscriptionId}/resourceGroups/${group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`,
  /** A local Event Hubs (`Microsoft.EventHub`) or Service Bus (`Microsoft.ServiceBus`) namespace. */
  namespace: (subscriptionId: string, group: string, provider: 'Microsoft.EventHub' | 'Microsoft.ServiceBus', name: string) =>
    `/subscriptions/${subscriptionId}/resourceGroups/${group}/providers/${provider}/namespaces/${name}`,
};

/** Whether `scope` is `ancestor` or lies below it (subscription → group → resource → child). */
export function scopeCovers(ancestor: string, scope: string): boolean {
  const a = normalizeScope(ancestor);
  const s = normalizeScope(scope);
  return a === '' || s === a || s.startsWith(`${a}/`);
}

export function normalizeScope(scope: string): string {
  return scope.toLowerCase().replace(/\/{2,}/g, '/').replace(/\/+$/, '');
}

export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
