import type { Permission } from './types.js';

const hub = 'Microsoft.Devices/IotHubs';

/** IoT Hub's data actions (what its data roles grant), as Azure's RBAC reference names them. */
export const IotHubDataActions = {
  devicesRead: `${hub}/devices/read`,
  devicesWrite: `${hub}/devices/write`,
  devicesDelete: `${hub}/devices/delete`,
  twinsRead: `${hub}/twins/read`,
  twinsWrite: `${hub}/twins/write`,
  jobsRead: `${hub}/jobs/read`,
  jobsWrite: `${hub}/jobs/write`,
  jobsDelete: `${hub}/jobs/delete`,
  cloudToDeviceSend: `${hub}/cloudToDeviceMessages/send/action`,
  cloudToDeviceFeedback: `${hub}/cloudToDeviceMessages/feedback/action`,
  cloudToDevicePurge: `${hub}/cloudToDeviceMessages/queue/purge/action`,
  directMethodsInvoke: `${hub}/directMethods/invoke/action`,
  fileUploadNotifications: `${hub}/fileUpload/notifications/action`,
  statisticsRead: `${hub}/statistics/read`,
  configurationsRead: `${hub}/configurations/read`,
  configurationsWrite: `${hub}/configurations/write`,
  configurationsDelete: `${hub}/configurations/delete`,
} as const;

const A = IotHubDataActions;

/**
 * The data actions a service REST call needs (all of them), from its method and route pattern, as
 * IoT Hub's RBAC reference maps its service APIs. Undefined for routes that have no mapping:
 * those fall back to `dataActionsForPermission`.
 */
export function httpDataActions(method: string, route: string): string[] | undefined {
  const m = method.toUpperCase();
  const r = route.replace(/\/+$/, '');
  if (r === '/devices/query') return [A.twinsRead];
  if (/\/methods$/.test(r)) return [A.directMethodsInvoke];
  if (r.startsWith('/twins/') || r.startsWith('/digitaltwins/')) return [m === 'GET' ? A.twinsRead : A.twinsWrite];
  if (r === '/devices' && m === 'POST') return [A.devicesWrite, A.devicesDelete];
  if (/\/messages\/devicebound$/i.test(r)) return [m === 'DELETE' ? A.cloudToDevicePurge : A.cloudToDeviceSend];
  if (r.startsWith('/devices')) return [m === 'GET' ? A.devicesRead : m === 'DELETE' ? A.devicesDelete : A.devicesWrite];
  if (r.startsWith('/statistics/')) return [A.statisticsRead];
  if (r === '/jobs' || r.startsWith('/jobs/')) return [m === 'GET' ? A.jobsRead : m === 'DELETE' ? A.jobsDelete : A.jobsWrite];
  // Fleethub's live telemetry extension (see protocols/http/telemetry.ts): IoT Hub Data Reader and Contributor grant it.
  if (r.startsWith('/fleethub/telemetry')) return [`${hub}/telemetry/read`];
  if (r.startsWith('/configurations')) return [m === 'GET' ? A.configurationsRead : m === 'DELETE' ? A.configurationsDelete : A.configurationsWrite];
  return undefined;
}

/**
 * For calls that name only a SAS permission: RegistryRead → devices/read, RegistryWrite →
 * devices/write. ServiceConnect and DeviceConnect have no data action of their own (callers that
 * take Azure AD tokens name theirs): undefined, and the token is refused there, as IoT Hub refuses
 * Azure AD on its device APIs and its Event Hub-compatible endpoint.
 */
export function dataActionsForPermission(permission: Permission | readonly Permission[]): string[] | undefined {
  const wanted = typeof permission === 'string' ? [permission] : permission;
  if (wanted.includes('RegistryRead')) return [A.devicesRead];
  if (wanted.includes('RegistryWrite')) return [A.devicesWrite];
  return undefined;
}
