import type { ServiceBusNamespaces } from './namespaces/serviceBus/namespaces.js';
import type { EventHubsNamespaces } from './namespaces/eventHubs/namespaces.js';
import { eventHubsConnectionStrings, rootConnectionStrings } from './namespaces/eventHubs/connectionStrings.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config/index.js';
import { caPaths } from './protocols/tls/paths.js';
import type { SharedAccessPolicy } from './hub/auth/types.js';
import type { DpsInfo } from './dps/info.js';
import { DEFAULT_UPLOAD_CONTAINER, embeddedStorageConnectionString } from './storage/azurite.js';
import { sbEndpoint } from './core/sbEndpoint.js';

/** What a running hub writes to its data directory so that `fleethub info` and the CLI find it. */
export interface RuntimeFile {
  pid: number;
  hubName: string;
  hostName: string;
  /** The address the hub bound (`start --bind` may differ from the configuration `info` reads). */
  bind?: string;
  ports: { https: number; mqtt: number; amqp: number; amqpEmulator?: number; storage?: number };
  startedAt: string;
}

export const runtimePath = (dataDir: string) => join(dataDir, 'runtime.json');
export const databasePath = (dataDir: string) => join(dataDir, 'fleethub.db');

export function readRuntime(dataDir: string): RuntimeFile | undefined {
  const path = runtimePath(dataDir);
  if (!existsSync(path)) return undefined;
  const runtime = JSON.parse(readFileSync(path, 'utf8')) as RuntimeFile;
  return isAlive(runtime.pid) ? runtime : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface HubInfo {
  hubName: string;
  hubHostName: string;
  running: boolean;
  iothubownerConnectionString: string;
  serviceConnectionString: string;
  registryReadConnectionString: string;
  registryReadWriteConnectionString: string;
  deviceConnectionString: string;
  /** The built-in endpoint, for Event Hubs clients (policy `service`, as the Azure portal shows it). */
  eventHubCompatibleConnectionString: string;
  /** The same over plain AMQP on loopback (Event Hubs SDKs' UseDevelopmentEmulator=true); '' when off. */
  eventHubCompatibleEmulatorConnectionString: string;
  caCertificatePath: string;
  dataDir: string;
  ports: { https: number | 'auto'; mqtt: number; amqp: number; amqpEmulator?: number; storage?: number };
  /** The blob storage of file upload and import/export: the embedded Azurite's (when no account is configured) or the configured one; '' when none. */
  storageConnectionString: string;
  /** The container devices upload files to. */
  fileUploadContainer: string;
  /** The Device Provisioning Service beside the hub. */
  dps?: DpsInfo;
  /** The other hubs this process hosts (config `hubs`), each with its own connection strings. */
  hubs?: HubInfo[];
  /** The hub's managed-identity endpoint (App Service protocol): IDENTITY_ENDPOINT and IDENTITY_HEADER. */
  identityEndpoint?: string;
  identityHeader?: string;
  /** The portal (primary hub only): https://{host}/portal/. */
  portalUrl?: string;
  /** The local control plane and Azure AD, on the primary hub's HTTPS listener (primary hub only). */
  management?: ManagementInfo;
  /** Local Service Bus namespaces, with RootManageSharedAccessKey connection strings (TLS on the hub's AMQP port; plain on loopback). */
  serviceBusNamespaces?: { name: string; connectionString: string; emulatorConnectionString: string }[];
  /** Local Event Hubs namespaces, with RootManageSharedAccessKey connection strings (TLS on the hub's AMQP port; plain on loopback). */
  eventHubsNamespaces?: { name: string; eventHubs: string[]; connectionString: string; emulatorConnectionString: string }[];
}

export interface ManagementInfo {
  /** ARM's endpoint (Azure's https://management.azure.com/). */
  endpoint: string;
  /** Azure AD's authority host (Azure's https://login.microsoftonline.com/). */
  authorityHost: string;
  tenantId: string;
  subscriptionId: string;
  resourceGroup: string;
  /** The administrator service principal (Owner of the subscription). */
  clientId: string;
  clientSecret: string;
  /** `az login --identity` as the administrator: MSI_ENDPOINT and MSI_SECRET (api-version 2017-09-01). */
  msiEndpoint?: string;
  msiSecret?: string;
}

/** Where an extra hub of the process keeps its data: `${dataDir}/hubs/${hubName}`. */
export const extraHubDataDir = (dataDir: string, hubName: string) => join(dataDir, 'hubs', hubName);

/**
 * The configuration each extra hub runs with: the primary's settings, its own name, host name,
 * address and data directory, no extra hubs or host names of its own. A hub with an address of its
 * own has its own listeners there, whose plain AMQP listener (emulator connection strings) is on
 * only when the address is a loopback one; one without (`bind` unset) shares the primary's
 * listeners, told apart by host name.
 */
export function extraHubConfig(config: Config, hub: { hubName: string; hostName: string; bind?: string }): Config {
  const ownAddress = hub.bind !== undefined;
  return {
    ...config,
    hubName: hub.hubName,
    hostName: hub.hostName,
    extraHostNames: [],
    bind: hub.bind ?? config.bind,
    dataDir: extraHubDataDir(config.dataDir, hub.hubName),
    ports: { ...config.ports, amqpEmulator: !ownAddress || /^(127\.|::1$)/.test(hub.bind!) ? config.ports.amqpEmulator : 0 },
    hubs: [],
  };
}

export function policyConnectionString(hostName: string, policy: SharedAccessPolicy): string {
  return `HostName=${hostName};SharedAccessKeyName=${policy.keyName};SharedAccessKey=${policy.primaryKey}`;
}

export function deviceConnectionString(hostName: string, deviceId: string, key: string, moduleId?: string): string {
  return `HostName=${hostName};DeviceId=${deviceId}${moduleId ? `;ModuleId=${moduleId}` : ''};SharedAccessKey=${key}`;
}

/**
 * The hub's facts, from the running hub's runtime file when there is one, else from the configuration.
 * `caDataDir`: the data directory holding the CA (the primary's, for an extra hub).
 */
export function hubInfo(config: Config, policies: SharedAccessPolicy[], dps?: DpsInfo, more: { caDataDir?: string; hubs?: HubInfo[]; byName?: boolean; serviceBus?: ServiceBusNamespaces; eventHubs?: EventHubsNamespaces } = {}): HubInfo {
  const runtime = readRuntime(config.dataDir);
  const hostName = runtime?.hostName ?? config.hostName;
  const cs = (name: string) => {
    const policy = policies.find((p) => p.keyName === name);
    return policy ? policyConnectionString(hostName, policy) : '';
  };
  return {
    hubName: runtime?.hubName ?? config.hubName,
    hubHostName: hostName,
    running: runtime !== undefined,
    iothubownerConnectionString: cs('iothubowner'),
    serviceConnectionString: cs('service'),
    registryReadConnectionString: cs('registryRead'),
    registryReadWriteConnectionString: cs('registryReadWrite'),
    deviceConnectionString: cs('device'),
    ...eventHubConnectionStrings(config, runtime, hostName, policies.find((p) => p.keyName === 'service'), more.byName ?? false),
    caCertificatePath: caPaths(more.caDataDir ?? config.dataDir).cert,
    dataDir: config.dataDir,
    ports: runtime?.ports ?? config.ports,
    ...storageInfo(config, runtime, hostName),
    ...(dps ? { dps } : {}),
    ...(more.hubs?.length ? { hubs: more.hubs } : {}),
    ...(more.serviceBus ? { serviceBusNamespaces: serviceBusConnectionStrings(config, runtime, hostName, more.serviceBus) } : {}),
    ...(more.eventHubs && more.eventHubs.listNamespaces().length > 0 ? { eventHubsNamespaces: eventHubsInfo(config, runtime, hostName, more.eventHubs) } : {}),
  };
}

function storageInfo(config: Config, runtime: RuntimeFile | undefined, hostName: string) {
  const endpoint = config.fileUpload.storageEndpoints.$default;
  if (endpoint.connectionString) return { storageConnectionString: endpoint.connectionString, fileUploadContainer: endpoint.containerName };
  const port = runtime ? runtime.ports.storage ?? 0 : config.ports.storage;
  if (!port) return { storageConnectionString: '', fileUploadContainer: '' };
  return { storageConnectionString: embeddedStorageConnectionString(hostName, port), fileUploadContainer: endpoint.containerName || DEFAULT_UPLOAD_CONTAINER };
}

/** The loopback address of the plain AMQP (emulator) listener: the running hub's bind address, else the configured one (see listenAmqp). */
function emulatorHost(config: Config, runtime: RuntimeFile | undefined): string {
  const bind = runtime?.bind ?? config.bind;
  return /^(127\.|::1$)/.test(bind) ? bind : '127.0.0.1';
}

/** Namespaces are told apart by the key that signs the token, so the hub's own host name reaches each one. */
function eventHubsInfo(config: Config, runtime: RuntimeFile | undefined, hostName: string, namespaces: EventHubsNamespaces) {
  return eventHubsConnectionStrings(namespaces, {
    hostName,
    amqpPort: runtime?.ports.amqp ?? config.ports.amqp,
    emulatorHost: emulatorHost(config, runtime),
    emulatorPort: runtime ? runtime.ports.amqpEmulator ?? 0 : config.ports.amqpEmulator,
  });
}

function serviceBusConnectionStrings(config: Config, runtime: RuntimeFile | undefined, hostName: string, namespaces: ServiceBusNamespaces) {
  const amqp = runtime?.ports.amqp ?? config.ports.amqp;
  const emulatorPort = runtime ? runtime.ports.amqpEmulator ?? 0 : config.ports.amqpEmulator;
  const loopback = emulatorHost(config, runtime);
  return namespaces.listNamespaces().map((n) => ({
    name: n.name,
    ...rootConnectionStrings(namespaces.listAuthorizationRules(n.name), { hostName, amqpPort: amqp, emulatorHost: loopback, emulatorPort }),
  }));
}

/** `byName`: the hub shares its address's listeners with others, so the plain AMQP endpoint names it by host name (the open frame's hostname tells it). */
function eventHubConnectionStrings(config: Config, runtime: RuntimeFile | undefined, hostName: string, policy: SharedAccessPolicy | undefined, byName: boolean) {
  const hubName = runtime?.hubName ?? config.hubName;
  if (!policy) return { eventHubCompatibleConnectionString: '', eventHubCompatibleEmulatorConnectionString: '' };
  const key = `SharedAccessKeyName=${policy.keyName};SharedAccessKey=${policy.primaryKey};EntityPath=${hubName}`;
  const amqp = runtime?.ports.amqp ?? config.ports.amqp;
  const emulatorPort = runtime ? runtime.ports.amqpEmulator ?? 0 : config.ports.amqpEmulator;
  // The plain listener is bound to loopback only (see listenAmqp); default ports are left implicit.
  const loopback = byName ? hostName : emulatorHost(config, runtime);
  return {
    eventHubCompatibleConnectionString: `Endpoint=${sbEndpoint(hostName, amqp)};${key}`,
    eventHubCompatibleEmulatorConnectionString: emulatorPort
      ? `Endpoint=${sbEndpoint(loopback, emulatorPort, 5672)};${key};UseDevelopmentEmulator=true`
      : '',
  };
}
