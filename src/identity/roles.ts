import type { RoleDefinition } from './types.js';

const role = (id: string, roleName: string, description: string, p: Partial<Pick<RoleDefinition, 'actions' | 'notActions' | 'dataActions' | 'notDataActions'>>): RoleDefinition => ({
  id,
  roleName,
  description,
  actions: p.actions ?? [],
  notActions: p.notActions ?? [],
  dataActions: p.dataActions ?? [],
  notDataActions: p.notDataActions ?? [],
});

const blobs = 'Microsoft.Storage/storageAccounts/blobServices';

/**
 * Azure's built-in role definitions that Fleethub's resources use, with Azure's own ids, names,
 * descriptions and permissions (as Azure's "built-in roles" reference lists them).
 */
export const BUILT_IN_ROLES: readonly RoleDefinition[] = [
  role('8e3af657-a8ff-443c-a75c-2fe8c4bcb635', 'Owner', 'Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.', { actions: ['*'] }),
  role('b24988ac-6180-42a0-ab88-20f7382dd24c', 'Contributor', 'Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.', {
    actions: ['*'],
    notActions: [
      'Microsoft.Authorization/*/Delete',
      'Microsoft.Authorization/*/Write',
      'Microsoft.Authorization/elevateAccess/Action',
      'Microsoft.Blueprint/blueprintAssignments/write',
      'Microsoft.Blueprint/blueprintAssignments/delete',
      'Microsoft.Compute/galleries/share/action',
      'Microsoft.Purview/consents/write',
      'Microsoft.Purview/consents/delete',
    ],
  }),
  role('acdd72a7-3385-48ef-bd42-f606fba81ae7', 'Reader', 'View all resources, but does not allow you to make any changes.', { actions: ['*/read'] }),
  role('f526a384-b230-433a-b45c-95f59c4a2dec', 'Azure Event Hubs Data Owner', 'Allows for full access to Azure Event Hubs resources.', {
    actions: ['Microsoft.EventHub/*'],
    dataActions: ['Microsoft.EventHub/*'],
  }),
  role('a638d3c7-ab3a-418d-83e6-5f17a39d4fde', 'Azure Event Hubs Data Receiver', 'Allows receive access to Azure Event Hubs resources.', {
    actions: ['Microsoft.EventHub/*/eventhubs/consumergroups/read'],
    dataActions: ['Microsoft.EventHub/*/receive/action'],
  }),
  role('2b629674-e913-4c01-ae53-ef4638d8f975', 'Azure Event Hubs Data Sender', 'Allows send access to Azure Event Hubs resources.', {
    actions: ['Microsoft.EventHub/*/eventhubs/read'],
    dataActions: ['Microsoft.EventHub/*/send/action'],
  }),
  role('090c5cfd-751d-490a-894a-3ce6f1109419', 'Azure Service Bus Data Owner', 'Allows for full access to Azure Service Bus resources.', {
    actions: ['Microsoft.ServiceBus/*'],
    dataActions: ['Microsoft.ServiceBus/*'],
  }),
  role('4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0', 'Azure Service Bus Data Receiver', 'Allows for receive access to Azure Service Bus resources.', {
    actions: ['Microsoft.ServiceBus/*/queues/read', 'Microsoft.ServiceBus/*/topics/read', 'Microsoft.ServiceBus/*/topics/subscriptions/read'],
    dataActions: ['Microsoft.ServiceBus/*/receive/action'],
  }),
  role('69a216fc-b8fb-44d8-bc22-1f3c2cd27a39', 'Azure Service Bus Data Sender', 'Allows for send access to Azure Service Bus resources.', {
    actions: ['Microsoft.ServiceBus/*/queues/read', 'Microsoft.ServiceBus/*/topics/read', 'Microsoft.ServiceBus/*/topics/subscriptions/read'],
    dataActions: ['Microsoft.ServiceBus/*/send/action'],
  }),
  role('ba92f5b4-2d11-453d-a403-e96b0029c9fe', 'Storage Blob Data Contributor', 'Allows for read, write and delete access to Azure Storage blob containers and data', {
    actions: [`${blobs}/containers/delete`, `${blobs}/containers/read`, `${blobs}/containers/write`, `${blobs}/generateUserDelegationKey/action`],
    dataActions: [`${blobs}/containers/blobs/delete`, `${blobs}/containers/blobs/read`, `${blobs}/containers/blobs/move/action`, `${blobs}/containers/blobs/write`, `${blobs}/containers/blobs/add/action`],
  }),
  role('2a2b9908-6ea1-4ae2-8e65-a410df84e7d1', 'Storage Blob Data Reader', 'Allows for read access to Azure Storage blob containers and data', {
    actions: [`${blobs}/containers/read`, `${blobs}/generateUserDelegationKey/action`],
    dataActions: [`${blobs}/containers/blobs/read`],
  }),
  role('4fc6c259-987e-4a07-842e-c321cc9d413f', 'IoT Hub Data Contributor', 'Allows for full access to IoT Hub data plane operations.', { dataActions: ['Microsoft.Devices/IotHubs/*'] }),
  role('b447c946-2db7-41ec-983d-d8bf3b1c77e3', 'IoT Hub Data Reader', 'Allows for full read access to IoT Hub data-plane properties', {
    dataActions: ['Microsoft.Devices/IotHubs/*/read', 'Microsoft.Devices/IotHubs/fileUpload/notifications/action'],
  }),
  role('4ea46cd5-c1b2-4a8e-910b-273211f9ce47', 'IoT Hub Registry Contributor', 'Allows for full access to IoT Hub device registry.', { dataActions: ['Microsoft.Devices/IotHubs/devices/*'] }),
  role('494bdba2-168f-4f31-a0a1-191d2f7c028c', 'IoT Hub Twin Contributor', 'Allows for read and write access to all IoT Hub device and module twins.', { dataActions: ['Microsoft.Devices/IotHubs/twins/*'] }),
];

/** A built-in role by its GUID, a role definition resource id ending in it, or its name (case-insensitive). */
export function findRole(idOrName: string): RoleDefinition | undefined {
  const key = idOrName.trim().toLowerCase();
  const guid = key.split('/').pop() ?? key;
  return BUILT_IN_ROLES.find((r) => r.id === guid || r.roleName.toLowerCase() === key);
}

/** `{scope-prefix}/providers/Microsoft.Authorization/roleDefinitions/{id}` as ARM returns it under a subscription. */
export function roleDefinitionResourceId(subscriptionId: string, roleId: string): string {
  return `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${roleId}`;
}

// Whether an RBAC permission pattern (`*`, `*/read`, `Microsoft.Devices/IotHubs/*`) covers `operation`, case-insensitively as Azure compares them.
export function permissionMatches(pattern: string, operation: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
  return re.test(operation);
}

/** Whether `role` grants `operation` (an action, or a data action when `dataAction`). */
export function roleGrants(role: RoleDefinition, operation: string, dataAction: boolean): boolean {
  const allowed = dataAction ? role.dataActions : role.actions;
  const denied = dataAction ? role.notDataActions : role.notActions;
  return allowed.some((p) => permissionMatches(p, operation)) && !denied.some((p) => permissionMatches(p, operation));
}
