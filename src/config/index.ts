import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { defaultFileUploadSettings, durationSeconds, type FileUploadSettings } from '../hub/files/settings.js';

/** Everything Fleethub can be told. Sources, later wins: defaults, file, environment, flags. */
export interface Config {
  /** The hub's name (the first label of an Azure hub's host name). */
  hubName: string;
  /** The host name devices and services use; it appears in connection strings and SAS audiences. */
  hostName: string;
  /** More names the server certificate covers and SAS audiences may use. */
  extraHostNames: string[];
  dataDir: string;
  /** Address to listen on; '::' (all interfaces, IPv4 too) by default. */
  bind: string;
  ports: {
    /** 'auto': 443, falling back to 8443 when 443 cannot be bound. */
    https: number | 'auto';
    mqtt: number;
    amqp: number;
    /** Plain (no TLS) AMQP for Event Hubs' UseDevelopmentEmulator connection strings; loopback only; 0 turns it off. */
    amqpEmulator: number;
    /** The embedded blob storage (Azurite) for file upload and import/export; 0 turns it off. Unused when `fileUpload` names a storage account. */
    storage: number;
  };
  /** Consumer groups of the built-in Event Hub-compatible endpoint besides $Default. */
  consumerGroups: string[];
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Jobs' device operations (twin updates, method calls) per second, as IoT Hub throttles them. */
  jobDeviceOperationsPerSecond: number;
  /** How long a cloud-to-device message received over HTTPS stays locked (IoT Hub: one minute); tests shorten it. */
  cloudToDeviceLockSeconds: number;
  /** The device-to-cloud event log (what the Event Hub-compatible endpoint serves). */
  eventLog: {
    /** Fixed when the data directory is created, as an Event Hub's partition count is. */
    partitions: number;
    retentionHours: number;
  };
  /** The Device Provisioning Service beside the hub. */
  dps: DpsConfig;
  /** Automatic device management (configurations). */
  configurations: {
    /** How often every twin is checked against every configuration (IoT Hub: five minutes). */
    evaluationIntervalSeconds: number;
  };
  /**
   * More hubs hosted by this process besides the primary one, each with its own database under
   * `${dataDir}/hubs/${hubName}` and a certificate from the same CA, on the primary's listeners
   * (told apart by host name) or, with `bind`, on listeners of its own. The DPS links all of them.
   */
  hubs: ExtraHubConfig[];
  /** Hubs created through the control plane (ARM PUT) get the host name `{name}.{hubDomain}`. */
  hubDomain: string;
  /** Managed identities of the hubs' outbound connections. */
  identity: IdentityConfig;
  /**
   * File upload, as the hub resource's properties have it (`storageEndpoints.$default`,
   * `enableFileUploadNotifications`, `messagingEndpoints.fileNotifications`); the embedded storage
   * when no connection string is given.
   */
  fileUpload: FileUploadSettings;
  /**
   * Local Service Bus namespaces created (or updated) at start, with their queues, topics,
   * subscriptions and rules, served on the primary hub's AMQP listeners; keys are generated on
   * first start and kept in `<dataDir>/servicebus.db`.
   */
  serviceBusNamespaces: ServiceBusNamespaceConfig[];
  /** How often Service Bus looks for expired locks, due scheduled messages and expired messages (ms). */
  serviceBusTimerMs: number;
  /**
   * Local Event Hubs namespaces created (or updated) at start, with their event hubs, consumer
   * groups and authorization rules, served on the primary hub's AMQP listeners; keys are generated
   * on first start and kept in the primary hub's database.
   */
  eventHubsNamespaces: EventHubsNamespaceConfig[];
  /** Message routing's delivery to custom endpoints (the routes themselves are the hub resource's `properties.routing`). */
  routing: RoutingConfig;
  /** Limits that keep slow and hostile clients from holding the device listeners' sockets and memory. */
  connections: ConnectionsConfig;
}

export interface ConnectionsConfig {
  /** A TLS handshake not finished by then is cut (HTTPS, MQTT and AMQP listeners; Node's own default is two minutes). */
  handshakeTimeoutMs: number;
  /** After TLS, a connection that has not sent MQTT CONNECT, or the AMQP open, or its first HTTP request's headers by then is closed. */
  connectTimeoutMs: number;
  /** A connection whose unsent output (PUBACKs, messages to the device) is above this many bytes is not read from until it drains. */
  writeBufferHighBytes: number;
  /** An MQTT connection whose unsent output grows beyond this many bytes (a peer that does not read at all) is closed (AMQP: link credit bounds it). */
  writeBufferMaxBytes: number;
  /** What all MQTT connections together may have read and not yet committed (payload bytes + 1 KiB a message); above it they stop reading until half of it has committed. */
  ingestBufferBytes: number;
  /** MQTT packets all connections together are handled in one event-loop turn; past it, reads wait their turn (first come, first served). */
  packetsPerTurn: number;
  /** MQTT packets (AMQP: frames) one connection's read may hand over in one event-loop turn; the rest of the read waits for a coming turn. */
  packetsPerConnectionTurn: number;
  /** MQTT packets the hub reads from one connection per second at most (its reading pauses past it: traffic shaping, nothing refused), and the most AMQP telemetry credit a device's connection is given a second; 0: no ceiling. */
  packetsPerConnectionSecond: number;
  /** Failed connections (TLS, garbage, bad credentials) from one address within `addressFailureWindowMs` after which its connections are refused for `addressBlockMs`; 0: never. */
  addressFailureLimit: number;
  addressFailureWindowMs: number;
  addressBlockMs: number;
}

export interface RoutingConfig {
  /** Continuous failure after which an endpoint is `dead` and its backlog dropped (IoT Hub: one hour). */
  deadAfterMs: number;
  /** The first retry's wait after a failed delivery; doubled per failure up to `retryMaxMs`. */
  retryMinMs: number;
  retryMaxMs: number;
  /** How often a dead endpoint is tried again (also at once when its settings change). */
  deadProbeMs: number;
  /** Storage endpoints: the shortest `batchFrequencyInSeconds` allowed (IoT Hub: 60). */
  minBatchFrequencySeconds: number;
  /** How often routing's counters are logged when they changed (seconds; 0 never). */
  statusLogSeconds: number;
}

/** ARM-shaped entity settings plus `name`, nested as the entities are. */
export interface EventHubsNamespaceConfig {
  name: string;
  eventHubs?: {
    name: string;
    partitionCount?: number;
    messageRetentionInDays?: number;
    /** Consumer groups besides $Default. */
    consumerGroups?: string[];
    /** The event hub's own rules: { name, rights: ['Send'|'Listen'|'Manage'] }. */
    authorizationRules?: { name: string; rights: string[] }[];
  }[];
  /** Namespace rules besides RootManageSharedAccessKey. */
  authorizationRules?: { name: string; rights: string[] }[];
}

export interface IdentityConfig {
  /**
   * Where tokens for the hubs' identities come from: `local` (Fleethub's own token service) or
   * `azure` (Fleethub runs on an Azure VM or in AKS: Azure's managed-identity endpoint).
   */
  provider: 'local' | 'azure';
}

/** ARM-shaped entity settings (lockDuration 'PT1M', …) plus `name`, nested as the entities are. */
export interface ServiceBusNamespaceConfig {
  name: string;
  queues?: ({ name: string } & Record<string, unknown>)[];
  topics?: ({ name: string; subscriptions?: ({ name: string; rules?: ({ name: string } & Record<string, unknown>)[] } & Record<string, unknown>)[] } & Record<string, unknown>)[];
  /** Namespace authorization rules besides RootManageSharedAccessKey: { name, rights: ['Send'|'Listen'|'Manage'] }. */
  authorizationRules?: { name: string; rights: string[] }[];
}

export interface ExtraHubConfig {
  hubName: string;
  hostName: string;
  /**
   * An address of its own, where it has listeners of its own. Unset: it shares the primary hub's
   * listeners, which tell hubs apart by host name (TLS SNI, HTTP Host, AMQP hostname).
   */
  bind?: string;
}

export interface DpsConfig {
  /** The DPS service host name; the hub's host name when unset. */
  hostName?: string;
  /** Hubs besides the local one that devices may be assigned to. */
  linkedHubs: { hostName: string; connectionString?: string; allocationWeight?: number; applyAllocationPolicy?: boolean }[];
  allocationPolicy: 'hashed' | 'geoLatency' | 'static' | 'custom';
  /**
   * The `retry-after` (seconds) a device is told while its registration is `assigning`. DPS sends
   * a few seconds; Fleethub assigns before it answers, so 0 makes registration instant (CI).
   */
  retryAfterSeconds: number;
}

export type ConfigInput = {
  [K in keyof Config]?: K extends 'ports' | 'eventLog' | 'dps' | 'configurations' | 'identity' | 'routing' | 'connections' ? Partial<Config[K]> : K extends 'fileUpload' ? FileUploadInput : Config[K];
};

/** `fileUpload` as written: any part may be left out. */
export interface FileUploadInput {
  storageEndpoints?: { $default?: Partial<FileUploadSettings['storageEndpoints']['$default']> };
  enableFileUploadNotifications?: boolean;
  messagingEndpoints?: { fileNotifications?: Partial<FileUploadSettings['messagingEndpoints']['fileNotifications']> };
}

/** The whole settings from what was written over what was there. */
export function mergeFileUpload(base: FileUploadSettings, input: FileUploadInput | undefined): FileUploadSettings {
  if (!input) return base;
  return {
    storageEndpoints: { $default: { ...base.storageEndpoints.$default, ...stripUndefined(input.storageEndpoints?.$default ?? {}) } },
    enableFileUploadNotifications: input.enableFileUploadNotifications ?? base.enableFileUploadNotifications,
    messagingEndpoints: { fileNotifications: { ...base.messagingEndpoints.fileNotifications, ...stripUndefined(input.messagingEndpoints?.fileNotifications ?? {}) } },
  };
}

export const defaults: Config = {
  hubName: 'fleethub',
  hostName: 'localhost',
  extraHostNames: [],
  dataDir: './.fleethub',
  bind: '::',
  ports: { https: 'auto', mqtt: 8883, amqp: 5671, amqpEmulator: 5672, storage: 10000 },
  consumerGroups: [],
  logLevel: 'info',
  jobDeviceOperationsPerSecond: 1000,
  cloudToDeviceLockSeconds: 60,
  eventLog: { partitions: 4, retentionHours: 24 },
  dps: { linkedHubs: [], allocationPolicy: 'hashed', retryAfterSeconds: 1 },
  configurations: { evaluationIntervalSeconds: 300 },
  hubs: [],
  hubDomain: 'localhost',
  identity: { provider: 'local' },
  fileUpload: defaultFileUploadSettings(),
  serviceBusNamespaces: [],
  serviceBusTimerMs: 1000,
  eventHubsNamespaces: [],
  routing: { deadAfterMs: 3_600_000, retryMinMs: 1000, retryMaxMs: 60_000, deadProbeMs: 300_000, minBatchFrequencySeconds: 60, statusLogSeconds: 60 },
  connections: { handshakeTimeoutMs: 10_000, connectTimeoutMs: 30_000, writeBufferHighBytes: 64 * 1024, writeBufferMaxBytes: 8 * 1024 * 1024, ingestBufferBytes: 128 * 1024 * 1024, packetsPerTurn: 1000, packetsPerConnectionTurn: 8, packetsPerConnectionSecond: 2500, addressFailureLimit: 100, addressFailureWindowMs: 10_000, addressBlockMs: 30_000 },
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const configFiles = ['fleethub.json', 'fleethub.yaml', 'fleethub.yml'];

/** The environment variables Fleethub reads, and the setting each one sets. */
export const environment: Record<string, (v: string) => ConfigInput> = {
  FLEETHUB_DATA: (v) => ({ dataDir: v }),
  FLEETHUB_HUB_NAME: (v) => ({ hubName: v }),
  FLEETHUB_HOST_NAME: (v) => ({ hostName: v }),
  FLEETHUB_EXTRA_HOST_NAMES: (v) => ({ extraHostNames: v.split(',').map((s) => s.trim()).filter(Boolean) }),
  FLEETHUB_BIND: (v) => ({ bind: v }),
  FLEETHUB_HTTPS_PORT: (v) => ({ ports: { https: v === 'auto' ? 'auto' : portNumber(v, 'FLEETHUB_HTTPS_PORT') } }),
  FLEETHUB_MQTT_PORT: (v) => ({ ports: { mqtt: portNumber(v, 'FLEETHUB_MQTT_PORT') } }),
  FLEETHUB_AMQP_PORT: (v) => ({ ports: { amqp: portNumber(v, 'FLEETHUB_AMQP_PORT') } }),
  FLEETHUB_AMQP_EMULATOR_PORT: (v) => ({ ports: { amqpEmulator: portNumber(v, 'FLEETHUB_AMQP_EMULATOR_PORT') } }),
  FLEETHUB_CONSUMER_GROUPS: (v) => ({ consumerGroups: v.split(',').map((s) => s.trim()).filter(Boolean) }),
  FLEETHUB_LOG_LEVEL: (v) => ({ logLevel: v as Config['logLevel'] }),
  FLEETHUB_EVENT_LOG_PARTITIONS: (v) => ({ eventLog: { partitions: Number(v) } }),
  FLEETHUB_EVENT_LOG_RETENTION_HOURS: (v) => ({ eventLog: { retentionHours: Number(v) } }),
  FLEETHUB_DPS_HOST_NAME: (v) => ({ dps: { hostName: v } }),
  FLEETHUB_DPS_RETRY_AFTER_SECONDS: (v) => ({ dps: { retryAfterSeconds: Number(v) } }),
  FLEETHUB_HUB_DOMAIN: (v) => ({ hubDomain: v }),
  FLEETHUB_STORAGE_PORT: (v) => ({ ports: { storage: portNumber(v, 'FLEETHUB_STORAGE_PORT') } }),
  FLEETHUB_FILE_UPLOAD_CONNECTION_STRING: (v) => ({ fileUpload: { storageEndpoints: { $default: { connectionString: v } } } }),
  FLEETHUB_FILE_UPLOAD_CONTAINER: (v) => ({ fileUpload: { storageEndpoints: { $default: { containerName: v } } } }),
  FLEETHUB_FILE_UPLOAD_NOTIFICATIONS: (v) => ({ fileUpload: { enableFileUploadNotifications: v === 'true' || v === '1' } }),
  FLEETHUB_IDENTITY_PROVIDER: (v) => ({ identity: { provider: v as IdentityConfig['provider'] } }),
  FLEETHUB_CONFIGURATIONS_EVALUATION_INTERVAL_SECONDS: (v) => ({ configurations: { evaluationIntervalSeconds: Number(v) } }),
  FLEETHUB_ROUTING_DEAD_AFTER_MS: (v) => ({ routing: { deadAfterMs: Number(v) } }),
  FLEETHUB_TLS_HANDSHAKE_TIMEOUT_MS: (v) => ({ connections: { handshakeTimeoutMs: Number(v) } }),
  FLEETHUB_CONNECT_TIMEOUT_MS: (v) => ({ connections: { connectTimeoutMs: Number(v) } }),
  FLEETHUB_WRITE_BUFFER_HIGH_BYTES: (v) => ({ connections: { writeBufferHighBytes: Number(v) } }),
  FLEETHUB_WRITE_BUFFER_MAX_BYTES: (v) => ({ connections: { writeBufferMaxBytes: Number(v) } }),
  FLEETHUB_INGEST_BUFFER_BYTES: (v) => ({ connections: { ingestBufferBytes: Number(v) } }),
  FLEETHUB_ADDRESS_FAILURE_LIMIT: (v) => ({ connections: { addressFailureLimit: Number(v) } }),
};

/**
 * Loads the configuration. `file` is an explicit config file (error if missing); otherwise the
 * first of fleethub.json / fleethub.yaml / fleethub.yml in `cwd` (or $FLEETHUB_CONFIG) is read.
 */
export function loadConfig(options: { file?: string; flags?: ConfigInput; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicit = options.file ?? env.FLEETHUB_CONFIG;
  const file = explicit ? resolve(cwd, explicit) : configFiles.map((f) => resolve(cwd, f)).find(existsSync);
  if (explicit && !existsSync(file!)) throw new ConfigError(`Config file not found: ${file}`);
  const layers: ConfigInput[] = [];
  if (file) layers.push(check(readConfigFile(file), file));
  for (const [name, apply] of Object.entries(environment)) {
    if (env[name] !== undefined && env[name] !== '') layers.push(check(apply(env[name]!), `environment variable ${name}`));
  }
  if (options.flags) layers.push(check(options.flags, 'command-line flags'));
  const config = layers.reduce<Config>(
    (acc, layer) =>
      ({
        ...acc,
        ...stripUndefined(layer),
        ports: { ...acc.ports, ...stripUndefined(layer.ports ?? {}) },
        eventLog: { ...acc.eventLog, ...stripUndefined(layer.eventLog ?? {}) },
        dps: { ...acc.dps, ...stripUndefined(layer.dps ?? {}) },
        identity: { ...acc.identity, ...stripUndefined(layer.identity ?? {}) },
        configurations: { ...acc.configurations, ...stripUndefined(layer.configurations ?? {}) },
        routing: { ...acc.routing, ...stripUndefined(layer.routing ?? {}) },
        connections: { ...acc.connections, ...stripUndefined(layer.connections ?? {}) },
        fileUpload: mergeFileUpload(acc.fileUpload, layer.fileUpload),
      }) as Config,
    { ...defaults, ports: { ...defaults.ports }, eventLog: { ...defaults.eventLog }, dps: { ...defaults.dps }, configurations: { ...defaults.configurations }, identity: { ...defaults.identity }, routing: { ...defaults.routing }, connections: { ...defaults.connections }, fileUpload: defaultFileUploadSettings() },
  );
  const resolved = { ...config, dataDir: resolve(cwd, config.dataDir) };
  checkHubs(resolved);
  return resolved;
}

const wildcard = (bind: string) => bind === '::' || bind === '0.0.0.0' || bind === '' || bind === '[::]';

/**
 * Checks the extra hubs against the whole configuration (after all layers are merged): names
 * and host names distinct. A hub without `bind` shares the primary hub's listeners, told apart by
 * host name; one with `bind` has listeners of its own on that address, which must then be
 * distinct from every other hub's, since every hub listens on the same ports (443, 8883, 5671:
 * the Azure SDKs dial those).
 */
export function checkHubs(config: Pick<Config, 'hubName' | 'hostName' | 'extraHostNames' | 'bind' | 'dps' | 'hubs'>): void {
  const fail = (msg: string): never => {
    throw new ConfigError(msg);
  };
  const hubNames = new Map<string, string>([[config.hubName.toLowerCase(), `'hubName'`]]);
  const hostNames = new Map<string, string>([[config.hostName.toLowerCase(), `'hostName'`]]);
  config.extraHostNames.forEach((h, i) => hostNames.set(h.toLowerCase(), `'extraHostNames[${i}]'`));
  if (config.dps.hostName && config.dps.hostName.toLowerCase() !== config.hostName.toLowerCase()) hostNames.set(config.dps.hostName.toLowerCase(), `'dps.hostName'`);
  const binds = new Map<string, string>([[config.bind, `'bind'`]]);
  config.hubs.forEach((hub, i) => {
    const at = `'hubs[${i}]`;
    const sameName = hubNames.get(hub.hubName.toLowerCase());
    if (sameName) fail(`${at}.hubName' is '${hub.hubName}', already the name of ${sameName}: every hub needs its own name`);
    hubNames.set(hub.hubName.toLowerCase(), `${at}.hubName'`);
    const sameHost = hostNames.get(hub.hostName.toLowerCase());
    if (sameHost) fail(`${at}.hostName' is '${hub.hostName}', already used by ${sameHost}: every hub needs its own host name`);
    hostNames.set(hub.hostName.toLowerCase(), `${at}.hostName'`);
    if (hub.bind === undefined) {
      // Sharing the primary's listeners, it is found by name: TLS clients send no SNI for an IP address.
      if (isIP(hub.hostName) || hub.hostName.toLowerCase() === 'localhost') {
        fail(`${at}.hostName' is '${hub.hostName}': a hub without an address of its own ('bind') is told apart by host name, so it needs a DNS name (e.g. ${hub.hubName}.localhost), not an IP address or localhost`);
      }
      return;
    }
    if (wildcard(config.bind)) {
      fail(`'bind' is '${config.bind}' (every address), which leaves no address for ${at}' ('${hub.hubName}'): give the primary hub a specific address too`);
    }
    if (wildcard(hub.bind!)) fail(`${at}.bind' must be a specific address, not '${hub.bind}' (every address is what the other hubs need too)`);
    const sameBind = binds.get(hub.bind!);
    if (sameBind) fail(`${at}.bind' is '${hub.bind}', already the address of ${sameBind}: hubs share the ports, so each needs its own address`);
    binds.set(hub.bind!, `${at}.bind'`);
  });
}

function readConfigFile(file: string): unknown {
  const text = readFileSync(file, 'utf8');
  try {
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError(`${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
}

/** Validates one layer, naming the source and the setting in every error. */
export function check(input: unknown, source: string): ConfigInput {
  const fail = (msg: string): never => {
    throw new ConfigError(`${source}: ${msg}`);
  };
  if (input === null || input === undefined) return {};
  if (typeof input !== 'object' || Array.isArray(input)) fail('must be an object of settings');
  const o = input as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!(key in defaults)) fail(`unknown setting '${key}' (known: ${Object.keys(defaults).join(', ')})`);
  }
  const str = (key: string, pattern?: RegExp, hint?: string) => {
    const v = o[key];
    if (v === undefined) return;
    if (typeof v !== 'string' || v.length === 0) fail(`'${key}' must be a non-empty string`);
    if (pattern && !pattern.test(v as string)) fail(`'${key}' ${hint}`);
  };
  str('hubName', /^[A-Za-z0-9][A-Za-z0-9-]{1,48}[A-Za-z0-9]$/, 'must be 3-50 letters, digits or hyphens, as an IoT hub name');
  str('hostName', /^[A-Za-z0-9.:-]+$/, 'must be a host name or IP address');
  str('dataDir');
  str('hubDomain', /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/, 'must be a DNS domain (hubs created at run time are named {hubName}.{hubDomain})');
  str('bind');
  if (o.extraHostNames !== undefined && (!Array.isArray(o.extraHostNames) || !o.extraHostNames.every((n) => typeof n === 'string' && n))) {
    fail(`'extraHostNames' must be a list of host names`);
  }
  if (
    o.consumerGroups !== undefined &&
    (!Array.isArray(o.consumerGroups) || !o.consumerGroups.every((n) => typeof n === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$/.test(n)))
  ) {
    fail(`'consumerGroups' must be a list of consumer group names (1-50 letters, digits, '.', '_' or '-')`);
  }
  if (o.logLevel !== undefined && !logLevels.includes(o.logLevel as string)) fail(`'logLevel' must be one of ${logLevels.join(', ')}`);
  const rate = o.jobDeviceOperationsPerSecond;
  if (rate !== undefined && (typeof rate !== 'number' || !(rate > 0) || rate > 1e6)) fail(`'jobDeviceOperationsPerSecond' must be a number above 0`);
  const lock = o.cloudToDeviceLockSeconds;
  if (lock !== undefined && (!Number.isInteger(lock) || (lock as number) < 1 || (lock as number) > 300)) fail(`'cloudToDeviceLockSeconds' must be an integer 1-300`);
  if (o.ports !== undefined) {
    if (typeof o.ports !== 'object' || o.ports === null) fail(`'ports' must be an object`);
    const ports = o.ports as Record<string, unknown>;
    for (const [k, v] of Object.entries(ports)) {
      if (!(k in defaults.ports)) fail(`unknown port 'ports.${k}' (known: ${Object.keys(defaults.ports).join(', ')})`);
      if (v === undefined) continue;
      if (k === 'https' && v === 'auto') continue;
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) fail(`'ports.${k}' must be a port number (0-65535)`);
    }
  }
  if (o.eventLog !== undefined) {
    if (typeof o.eventLog !== 'object' || o.eventLog === null) fail(`'eventLog' must be an object`);
    const log = o.eventLog as Record<string, unknown>;
    for (const k of Object.keys(log)) {
      if (!(k in defaults.eventLog)) fail(`unknown setting 'eventLog.${k}' (known: ${Object.keys(defaults.eventLog).join(', ')})`);
    }
    // IoT Hub's built-in endpoint has 2-128 partitions; one is allowed here for small setups.
    const p = log.partitions;
    if (p !== undefined && (!Number.isInteger(p) || (p as number) < 1 || (p as number) > 128)) fail(`'eventLog.partitions' must be an integer from 1 to 128`);
    // IoT Hub retains device-to-cloud messages for 1 to 7 days.
    const r = log.retentionHours;
    if (r !== undefined && (typeof r !== 'number' || !Number.isFinite(r) || r <= 0 || r > 168)) fail(`'eventLog.retentionHours' must be a number of hours above 0, at most 168`);
  }
  if (o.dps !== undefined) checkDps(o.dps, fail);
  if (o.configurations !== undefined) {
    if (typeof o.configurations !== 'object' || o.configurations === null || Array.isArray(o.configurations)) fail(`'configurations' must be an object`);
    const c = o.configurations as Record<string, unknown>;
    for (const k of Object.keys(c)) {
      if (!(k in defaults.configurations)) fail(`unknown setting 'configurations.${k}' (known: ${Object.keys(defaults.configurations).join(', ')})`);
    }
    const s = c.evaluationIntervalSeconds;
    if (s !== undefined && (typeof s !== 'number' || !Number.isFinite(s) || s < 0.1 || s > 86400)) {
      fail(`'configurations.evaluationIntervalSeconds' must be a number of seconds from 0.1 to 86400`);
    }
  }
  if (o.routing !== undefined) {
    if (typeof o.routing !== 'object' || o.routing === null || Array.isArray(o.routing)) fail(`'routing' must be an object`);
    const r = o.routing as Record<string, unknown>;
    for (const [k, v] of Object.entries(r)) {
      if (!(k in defaults.routing)) fail(`unknown setting 'routing.${k}' (known: ${Object.keys(defaults.routing).join(', ')})`);
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) fail(`'routing.${k}' must be a number of at least 0`);
    }
    if (typeof r.retryMinMs === 'number' && r.retryMinMs < 1) fail(`'routing.retryMinMs' must be at least 1`);
    if (typeof r.deadProbeMs === 'number' && r.deadProbeMs < 1) fail(`'routing.deadProbeMs' must be at least 1`);
  }
  if (o.connections !== undefined) {
    if (typeof o.connections !== 'object' || o.connections === null || Array.isArray(o.connections)) fail(`'connections' must be an object`);
    for (const [k, v] of Object.entries(o.connections as Record<string, unknown>)) {
      if (!(k in defaults.connections)) fail(`unknown setting 'connections.${k}' (known: ${Object.keys(defaults.connections).join(', ')})`);
      const least = k === 'addressFailureLimit' || k === 'packetsPerConnectionSecond' ? 0 : 1;
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < least)) fail(`'connections.${k}' must be a number of at least ${least}`);
    }
  }
  if (o.hubs !== undefined) checkHubList(o.hubs, fail);
  if (o.identity !== undefined) {
    if (typeof o.identity !== 'object' || o.identity === null || Array.isArray(o.identity)) fail(`'identity' must be an object`);
    const id = o.identity as Record<string, unknown>;
    for (const k of Object.keys(id)) if (k !== 'provider') fail(`unknown setting 'identity.${k}' (known: provider)`);
    if (id.provider !== undefined && id.provider !== 'local' && id.provider !== 'azure') fail(`'identity.provider' must be local or azure`);
  }
  if (o.fileUpload !== undefined) checkFileUpload(o.fileUpload, fail);
  if (o.serviceBusNamespaces !== undefined) checkServiceBusNamespaces(o.serviceBusNamespaces, fail);
  if (o.eventHubsNamespaces !== undefined) checkEventHubsNamespaces(o.eventHubsNamespaces, fail);
  const timer = o.serviceBusTimerMs;
  if (timer !== undefined && (!Number.isInteger(timer) || (timer as number) < 10 || (timer as number) > 60_000)) fail(`'serviceBusTimerMs' must be an integer from 10 to 60000`);
  return o as ConfigInput;
}

function checkFileUpload(v: unknown, fail: (msg: string) => never): void {
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  const only = (o: Record<string, unknown>, at: string, known: string[]) => {
    for (const k of Object.keys(o)) if (!known.includes(k)) fail(`unknown setting '${at}.${k}' (known: ${known.join(', ')})`);
  };
  const duration = (x: unknown, at: string) => {
    if (x === undefined) return;
    try {
      if (typeof x !== 'string' || durationSeconds(x) <= 0) throw new Error();
    } catch {
      fail(`'${at}' must be an ISO 8601 duration such as PT1H`);
    }
  };
  if (!isObj(v)) fail(`'fileUpload' must be an object`);
  const f = v as Record<string, unknown>;
  only(f, 'fileUpload', ['storageEndpoints', 'enableFileUploadNotifications', 'messagingEndpoints']);
  if (f.enableFileUploadNotifications !== undefined && typeof f.enableFileUploadNotifications !== 'boolean') fail(`'fileUpload.enableFileUploadNotifications' must be true or false`);
  if (f.storageEndpoints !== undefined) {
    if (!isObj(f.storageEndpoints)) fail(`'fileUpload.storageEndpoints' must be an object`);
    const se = f.storageEndpoints as Record<string, unknown>;
    only(se, 'fileUpload.storageEndpoints', ['$default']);
    if (se.$default !== undefined) {
      if (!isObj(se.$default)) fail(`'fileUpload.storageEndpoints.$default' must be an object`);
      const d = se.$default as Record<string, unknown>;
      const at = 'fileUpload.storageEndpoints.$default';
      only(d, at, ['connectionString', 'containerName', 'sasTtlAsIso8601', 'authenticationType', 'identity']);
      for (const k of ['connectionString', 'containerName']) if (d[k] !== undefined && typeof d[k] !== 'string') fail(`'${at}.${k}' must be a string`);
      if (typeof d.containerName === 'string' && d.containerName && !/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(d.containerName)) fail(`'${at}.containerName' must be a blob container name (3-63 lowercase letters, digits and hyphens)`);
      duration(d.sasTtlAsIso8601, `${at}.sasTtlAsIso8601`);
      if (d.authenticationType !== undefined && !['keyBased', 'identityBased'].includes(d.authenticationType as string)) fail(`'${at}.authenticationType' must be keyBased or identityBased`);
      if (d.identity !== undefined && d.identity !== null) {
        if (!isObj(d.identity)) fail(`'${at}.identity' must be an object { userAssignedIdentity }`);
        const u = (d.identity as Record<string, unknown>).userAssignedIdentity;
        if (u !== undefined && u !== null && typeof u !== 'string') fail(`'${at}.identity.userAssignedIdentity' must be a resource id`);
      }
    }
  }
  if (f.messagingEndpoints !== undefined) {
    if (!isObj(f.messagingEndpoints)) fail(`'fileUpload.messagingEndpoints' must be an object`);
    const me = f.messagingEndpoints as Record<string, unknown>;
    only(me, 'fileUpload.messagingEndpoints', ['fileNotifications']);
    if (me.fileNotifications !== undefined) {
      if (!isObj(me.fileNotifications)) fail(`'fileUpload.messagingEndpoints.fileNotifications' must be an object`);
      const fn = me.fileNotifications as Record<string, unknown>;
      const at = 'fileUpload.messagingEndpoints.fileNotifications';
      only(fn, at, ['ttlAsIso8601', 'lockDurationAsIso8601', 'maxDeliveryCount']);
      duration(fn.ttlAsIso8601, `${at}.ttlAsIso8601`);
      duration(fn.lockDurationAsIso8601, `${at}.lockDurationAsIso8601`);
      const m = fn.maxDeliveryCount;
      if (m !== undefined && (!Number.isInteger(m) || (m as number) < 1 || (m as number) > 100)) fail(`'${at}.maxDeliveryCount' must be an integer 1-100`);
    }
  }
}

const allocationPolicies = ['hashed', 'geoLatency', 'static', 'custom'];

function checkDps(dps: unknown, fail: (msg: string) => never): void {
  if (typeof dps !== 'object' || dps === null || Array.isArray(dps)) fail(`'dps' must be an object`);
  const d = dps as Record<string, unknown>;
  const known = ['hostName', 'linkedHubs', 'allocationPolicy', 'retryAfterSeconds'];
  for (const k of Object.keys(d)) if (!known.includes(k)) fail(`unknown setting 'dps.${k}' (known: ${known.join(', ')})`);
  const hostName = /^[A-Za-z0-9.:-]+$/;
  if (d.hostName !== undefined && (typeof d.hostName !== 'string' || !hostName.test(d.hostName))) fail(`'dps.hostName' must be a host name or IP address`);
  if (d.allocationPolicy !== undefined && !allocationPolicies.includes(d.allocationPolicy as string)) {
    fail(`'dps.allocationPolicy' must be one of ${allocationPolicies.join(', ')}`);
  }
  const r = d.retryAfterSeconds;
  if (r !== undefined && (!Number.isInteger(r) || (r as number) < 0 || (r as number) > 60)) fail(`'dps.retryAfterSeconds' must be an integer 0-60`);
  if (d.linkedHubs === undefined) return;
  if (!Array.isArray(d.linkedHubs)) fail(`'dps.linkedHubs' must be a list`);
  (d.linkedHubs as unknown[]).forEach((h, i) => {
    const at = `'dps.linkedHubs[${i}]`;
    if (typeof h !== 'object' || h === null) fail(`${at}' must be an object`);
    const hub = h as Record<string, unknown>;
    for (const k of Object.keys(hub)) {
      if (!['hostName', 'connectionString', 'allocationWeight', 'applyAllocationPolicy'].includes(k)) fail(`unknown setting ${at}.${k}'`);
    }
    if (typeof hub.hostName !== 'string' || !hostName.test(hub.hostName)) fail(`${at}.hostName' must be a host name`);
    if (
      hub.connectionString !== undefined &&
      (typeof hub.connectionString !== 'string' || ![/(^|;)HostName=[^;]+/i, /(^|;)SharedAccessKeyName=[^;]+/i, /(^|;)SharedAccessKey=[^;]+/i].every((re) => re.test(hub.connectionString as string)))
    ) {
      fail(`${at}.connectionString' must be an IoT hub connection string (HostName=…;SharedAccessKeyName=…;SharedAccessKey=…, a policy with registry write rights)`);
    }
    const w = hub.allocationWeight;
    if (w !== undefined && (!Number.isInteger(w) || (w as number) < 0 || (w as number) > 1000)) fail(`${at}.allocationWeight' must be an integer 0-1000`);
    if (hub.applyAllocationPolicy !== undefined && typeof hub.applyAllocationPolicy !== 'boolean') fail(`${at}.applyAllocationPolicy' must be a boolean`);
  });
}

/** The shape only; entity settings are checked by the namespace service when they are applied at start. */
function checkServiceBusNamespaces(list: unknown, fail: (msg: string) => never): void {
  const named = (v: unknown, at: string) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof (v as { name?: unknown }).name !== 'string') fail(`${at}' must be an object with a 'name'`);
    return v as Record<string, unknown>;
  };
  const items = (v: unknown, at: string) => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) fail(`${at}' must be a list`);
    return (v as unknown[]).map((x, i) => named(x, `${at}[${i}]`));
  };
  if (!Array.isArray(list)) fail(`'serviceBusNamespaces' must be a list of { name, queues, topics }`);
  (list as unknown[]).forEach((n, i) => {
    const at = `'serviceBusNamespaces[${i}]`;
    const ns = named(n, at);
    for (const k of Object.keys(ns)) if (!['name', 'queues', 'topics', 'authorizationRules'].includes(k)) fail(`unknown setting ${at}.${k}' (known: name, queues, topics, authorizationRules)`);
    items(ns.queues, `${at}.queues`);
    items(ns.authorizationRules, `${at}.authorizationRules`);
    items(ns.topics, `${at}.topics`).forEach((t, j) =>
      items(t.subscriptions, `${at}.topics[${j}].subscriptions`).forEach((s, k) => items(s.rules, `${at}.topics[${j}].subscriptions[${k}].rules`)),
    );
  });
}

/** The shape only; names and values are checked by the namespace service when they are applied at start. */
function checkEventHubsNamespaces(list: unknown, fail: (msg: string) => never): void {
  const object = (v: unknown, at: string, known: string[]) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof (v as { name?: unknown }).name !== 'string') fail(`${at}' must be an object with a 'name'`);
    for (const k of Object.keys(v as object)) if (!known.includes(k)) fail(`unknown setting ${at}.${k}' (known: ${known.join(', ')})`);
    return v as Record<string, unknown>;
  };
  const items = (v: unknown, at: string) => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) fail(`${at}' must be a list`);
    return v as unknown[];
  };
  const rules = (v: unknown, at: string) =>
    items(v, at).forEach((r, i) => {
      const rule = object(r, `${at}[${i}]`, ['name', 'rights']);
      if (!Array.isArray(rule.rights) || rule.rights.some((x) => !['Send', 'Listen', 'Manage'].includes(x as string))) fail(`${at}[${i}].rights' must be a list of Send, Listen, Manage`);
    });
  if (!Array.isArray(list)) fail(`'eventHubsNamespaces' must be a list of { name, eventHubs, authorizationRules }`);
  (list as unknown[]).forEach((n, i) => {
    const at = `'eventHubsNamespaces[${i}]`;
    const ns = object(n, at, ['name', 'eventHubs', 'authorizationRules']);
    rules(ns.authorizationRules, `${at}.authorizationRules`);
    items(ns.eventHubs, `${at}.eventHubs`).forEach((h, j) => {
      const hub = object(h, `${at}.eventHubs[${j}]`, ['name', 'partitionCount', 'messageRetentionInDays', 'consumerGroups', 'authorizationRules']);
      for (const k of ['partitionCount', 'messageRetentionInDays']) if (hub[k] !== undefined && !Number.isInteger(hub[k])) fail(`${at}.eventHubs[${j}].${k}' must be an integer`);
      if (items(hub.consumerGroups, `${at}.eventHubs[${j}].consumerGroups`).some((g) => typeof g !== 'string')) fail(`${at}.eventHubs[${j}].consumerGroups' must be a list of names`);
      rules(hub.authorizationRules, `${at}.eventHubs[${j}].authorizationRules`);
    });
  });
}

function checkHubList(hubs: unknown, fail: (msg: string) => never): void {
  if (!Array.isArray(hubs)) fail(`'hubs' must be a list of { hubName, hostName, bind }`);
  (hubs as unknown[]).forEach((h, i) => {
    const at = `'hubs[${i}]`;
    if (typeof h !== 'object' || h === null || Array.isArray(h)) fail(`${at}' must be an object { hubName, hostName, bind }`);
    const hub = h as Record<string, unknown>;
    for (const k of Object.keys(hub)) if (!['hubName', 'hostName', 'bind'].includes(k)) fail(`unknown setting ${at}.${k}' (known: hubName, hostName, bind)`);
    if (typeof hub.hubName !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9-]{1,48}[A-Za-z0-9]$/.test(hub.hubName)) {
      fail(`${at}.hubName' must be 3-50 letters, digits or hyphens, as an IoT hub name`);
    }
    if (typeof hub.hostName !== 'string' || !/^[A-Za-z0-9.:-]+$/.test(hub.hostName)) fail(`${at}.hostName' must be a host name or IP address`);
    if (hub.bind !== undefined && (typeof hub.bind !== 'string' || hub.bind.length === 0)) fail(`${at}.bind' must be an address`);
  });
}

function portNumber(v: string, name: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new ConfigError(`${name} must be a port number, not '${v}'`);
  return Number(v);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
