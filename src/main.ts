import { IngestBudget, TurnBudget } from './protocols/mqtt/ingestBudget.js';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { checkHubs, type Config } from './config/index.js';
import { openSqliteStore, type SqliteStore } from './store/sqlite/index.js';
import { startBackgroundCheckpoints } from './store/sqlite/checkpoints.js';
import { ensureDefaultPolicies } from './hub/auth/policies.js';
import { Authorizer } from './hub/auth/authorizer.js';
import { Registry } from './hub/registry/registry.js';
import { ensureTlsMaterial, serverPaths, type TlsMaterial } from './protocols/tls/ca.js';
import { createHttpApp } from './protocols/http/server.js';
import { registryApi } from './protocols/http/registry.js';
import { AppendNotifier, notifyingAppends } from './hub/eventhub/appends.js';
import { RecentEvents } from './hub/eventhub/recentEvents.js';
import { BuiltInEndpoint } from './hub/eventhub/builtInEndpoint.js';
import { ConsumerGroups } from './hub/eventhub/consumerGroups.js';
import { CloudToDeviceFeedback, notifyingOutcomes, startC2dExpiry } from './hub/messaging/feedback.js';
import { acceptAmqpWebSockets } from './protocols/amqp/websocket.js';
import type { AmqpHub } from './protocols/amqp/server.js';
import { amqpRoutes, type AmqpServices } from './protocols/amqp/routes.js';
import { Twins } from './hub/twins/twins.js';
import { DirectMethods } from './hub/methods/methods.js';
import { CloudToDevice } from './hub/messaging/cloudToDevice.js';
import { twinsApi } from './protocols/http/twins.js';
import { cloudToDeviceAdminApi } from './protocols/http/cloudToDevice.js';
import { deviceApi } from './protocols/http/device.js';
import type { TopicHandler } from './protocols/mqtt/handler.js';
import { twinTopics } from './protocols/mqtt/twin.js';
import { methodTopics } from './protocols/mqtt/methods.js';
import { cloudToDeviceTopics } from './protocols/mqtt/cloudToDevice.js';
import { openSqliteDpsStore } from './store/sqlite/dps.js';
import { describeDps, prepareDps } from './dps/setup.js';
import { DpsAuthorizer } from './dps/auth/authorizer.js';
import { Enrollments } from './dps/enrollments/enrollments.js';
import { RegistrationStates } from './dps/registrations/registrations.js';
import { DpsCertificates } from './dps/certificates/certificates.js';
import { dpsEnrollmentsApi } from './protocols/http/dpsEnrollments.js';
import { dpsEnrollmentGroupsApi } from './protocols/http/dpsEnrollmentGroups.js';
import { dpsRegistrationsApi } from './protocols/http/dpsRegistrations.js';
import { dpsCertificatesApi } from './protocols/http/dpsCertificates.js';
import { DeviceRegistrations } from './dps/registration/registration.js';
import { LocalHubTarget, type HubTarget } from './dps/registration/hubTarget.js';
import { HttpAllocationWebhook } from './protocols/webhook/allocationWebhook.js';
import { dpsDeviceApi } from './protocols/http/dpsDevice.js';
import { RemoteHubTarget } from './protocols/http/remoteHub.js';
import { dpsMqtt } from './protocols/mqtt/dps.js';
import { dpsRegistrationAmqp } from './protocols/amqp/dps/registration.js';
import { Queries } from './hub/query/queries.js';
import { queryApi } from './protocols/http/query.js';
import { Jobs } from './hub/jobs/jobs.js';
import { jobsApi } from './protocols/http/jobs.js';
import { databasePath, hubInfo, runtimePath, type HubInfo, type RuntimeFile } from './info.js';
import { DeviceConnections } from './hub/connections/deviceConnections.js';
import { closingConnectionsOnChange } from './hub/connections/identityChanges.js';
import { EventLogWriter, startRetention } from './hub/messaging/eventLogWriter.js';
import { Telemetry } from './hub/messaging/telemetry.js';
import { mqttSessions } from './protocols/mqtt/server.js';
import type { Front } from './hosting/front.js';
import { ProcessHubHost } from './hosting/host.js';
import type { HubHost } from './hosting/types.js';
import { telemetryTopics } from './protocols/mqtt/telemetry.js';
import { HubCertificates } from './hub/certificates/certificates.js';
import { certificatesApi } from './protocols/http/certificates.js';
import { openControlDatabase } from './store/sqlite/control.js';
import { openSqliteControlResources } from './store/sqlite/controlResources.js';
import { controlArea, type ControlArea } from './control/index.js';
import { BUILT_IN_ROLES, findRole } from './identity/roles.js';
import { Configurations } from './hub/configurations/configurations.js';
import { ConfigurationEvaluation } from './hub/configurations/evaluation.js';
import { configurationsApi } from './protocols/http/configurations.js';
import { identityArea, type IdentityArea } from './identity/index.js';
import { resourceIds } from './identity/resourceIds.js';
import { managementBaseUrl, withIdentityInfo } from './identity/info.js';
import { FileUploads } from './hub/files/fileUploads.js';
import { HeldFileUploadSettings } from './hub/files/settings.js';
import { HeldCloudToDeviceSettings } from './hub/messaging/cloudToDeviceSettings.js';
import { SqliteFileNotifications, SqliteFileUploads } from './store/sqlite/files.js';
import { AzureBlobStorage } from './egress/blobStorage.js';
import { startEmbeddedAzurite, type EmbeddedAzurite } from './storage/azurite.js';
import { fileUploadApi } from './protocols/http/fileUpload.js';
import { BulkJobs } from './hub/importExport/bulkJobs.js';
import { SqliteBulkJobs } from './store/sqlite/bulkJobs.js';
import { bulkJobsApi } from './protocols/http/bulkJobs.js';
import { serviceBusArea, type ServiceBusArea } from './namespaces/serviceBus/area.js';
import { eventHubsArea, type EventHubsArea } from './namespaces/eventHubs/area.js';
import { SqliteEventHubsStore } from './store/sqlite/eventHubs.js';
import { telemetryApi } from './protocols/http/telemetry.js';
import { Portal } from './portal/server.js';
import { MessageRouting } from './hub/routing/routing.js';
import { createEndpointSinkFactory } from './egress/routing/index.js';
import { compileRouteCondition } from './hub/routing/query/index.js';
import type { EndpointSinkFactory, RoutingIngest, RoutingSettings, RoutingStatus } from './hub/routing/types.js';
import { SqliteRoutingCheckpoints } from './store/sqlite/routing.js';
import { BUILT_IN_ENTITY, type StoredEvent } from './store/eventLog.js';
import { lifecycleEventsOnChange, routingEventSources, RoutingEvents } from './hub/routing/events/index.js';

import { StartupError } from './hosting/front.js';
export { FALLBACK_HTTPS_PORT, StartupError } from './hosting/front.js';

export interface RunningHub {
  config: Config;
  /** The ports actually bound (by the listeners of the hub's address). */
  ports: RuntimeFile['ports'];
  tls: TlsMaterial;
  store: SqliteStore;
  registry: Registry;
  twins: Twins;
  methods: DirectMethods;
  cloudToDevice: CloudToDevice;
  queries: Queries;
  jobs: Jobs;
  configurations: Configurations;
  /** The MQTT topic families for twins, methods and cloud-to-device, for the MQTT session layer. */
  twinMethodAndC2dTopics: TopicHandler[];
  connections: DeviceConnections;
  telemetry: Telemetry;
  http: FastifyInstance;
  amqp: AmqpHub;
  logger: Logger;
  /**
   * The other hubs this process hosts (config `hubs` in configured order, then those created at
   * run time); empty on those hubs themselves.
   */
  hubs: RunningHub[];
  /** The process's identity area (token service, principals, RBAC, hub identities, egress seam). */
  identity: IdentityArea;
  /** File upload: SAS per upload, completion, notifications for the service. */
  fileUploads: FileUploads;
  /** The hub's file-upload settings; the control plane is to be their writer (today: config `fileUpload`). */
  fileUploadSettings: HeldFileUploadSettings;
  /** The hub's cloud-to-device and feedback settings, written by the control plane (`properties.cloudToDevice`). */
  cloudToDeviceSettings: HeldCloudToDeviceSettings;
  /** Bulk import/export of the identity registry. */
  bulkJobs: BulkJobs;
  /** Blob storage as the hub reaches it (keys or its identity). */
  blobStorage: AzureBlobStorage;
  /** The embedded Azurite, when no storage account is configured and `ports.storage` is not 0. */
  storage?: EmbeddedAzurite;
  /** Local Service Bus namespaces (config `serviceBusNamespaces`), on the primary hub only. */
  serviceBus?: ServiceBusArea;
  /** Local Event Hubs namespaces (config `eventHubsNamespaces`), on the primary hub only. */
  eventHubs?: EventHubsArea;
  /** The portal at https://{host}/portal (primary hub only). */
  portal?: Portal;
  info(): Promise<HubInfo>;
  /** Closes this hub (the whole process, with its listeners, on the hub startFleethub returned). */
  close(): Promise<void>;
  /** The control plane (ARM), on the primary hub only. */
  control?: ControlArea;
  /**
   * The non-telemetry event sources (twin changes, lifecycle, connection state, device jobs):
   * they hand their events to the routing ingest attached with `routingEvents.attach(ingest)`.
   */
  routingEvents: RoutingEvents;
  /** Message routing (issue 16): the hub resource's `properties.routing`, acted upon. */
  routing: HubRouting;
}

/** Message routing as the rest of the process uses it. */
export interface HubRouting {
  /** Endpoint health (`routingEndpointsHealth`) and counters. */
  status: RoutingStatus;
  /** Where non-telemetry events (twin changes, lifecycle, connection state, jobs) enter routing. */
  ingest: RoutingIngest;
  /** Applies the hub resource's `properties.routing` (the control plane calls it at start and on every PUT). */
  apply(settings: RoutingSettings): Promise<void>;
  /** Replaces how custom endpoints' sinks are made (the egress sinks; tests' own). */
  useSinks(factory: EndpointSinkFactory): Promise<void>;
}

/** The process: its primary hub, and the host of all its hubs (which the control plane creates hubs through). */
export interface RunningFleethub extends RunningHub {
  host: HubHost;
}

/**
 * Starts the process from the configuration: the listeners of each address (the primary's, and
 * those of configured hubs with an address of their own), the configured hubs on them, then the
 * primary hub with the Device Provisioning Service, which links and provisions into all of them.
 */
export async function startFleethub(config: Config, logger: Logger = pino({ level: config.logLevel })): Promise<RunningFleethub> {
  checkHubs(config);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // Process-level data (identity, ARM resources) lives in one database, control.db.
  const controlDb = openControlDatabase(config.dataDir);
  let control: ControlArea | undefined;
  let host: ProcessHubHost | undefined;
  let identity: IdentityArea | undefined;
  let started: RunningFleethub | undefined;
  try {
    identity = await identityArea({
      dataDir: config.dataDir,
      db: controlDb,
      provider: config.identity?.provider,
      hubResourceId: (hubName) => control?.iotHubs.resourceIdOf(hubName),
    });
    const id = identity;
    const hubHost = new ProcessHubHost(config, logger, (hubConfig, front, hubLogger) => startHub(hubConfig, hubLogger, { caDataDir: config.dataDir, front, identity: id }));
    host = hubHost;
    // The control plane (ARM) is process-level, served on the primary hub's HTTPS listener; it
    // creates and removes hubs through the host.
    let primary: RunningHub | undefined;
    control = controlArea({
      tenancy: id.tenancy,
      tokens: id.tokens,
      principals: id.principals,
      hubIdentities: id.hubIdentities,
      roleAssignments: id.roleAssignments,
      roleDefinitions: { list: () => [...BUILT_IN_ROLES], get: (roleId) => findRole(roleId) },
      access: id.accessControl,
      hubs: hubHost,
      store: openSqliteControlResources(controlDb),
      hubDomain: config.hubDomain,
      logger,
      primary: () => primary,
      configuredNamespaces: { eventHubs: config.eventHubsNamespaces.map((n) => n.name), serviceBus: config.serviceBusNamespaces.map((n) => n.name) },
    });
    const namespaceResources = control;
    const armApi = control.armApi;
    await hubHost.listen();
    for (const hub of config.hubs) await hubHost.startConfigured(hub);
    primary = await startHub(config, logger, {
      caDataDir: config.dataDir,
      front: hubHost.primaryFront,
      dps: { hubs: hubHost.others, byHostName: (h) => hubHost.byHostName(h) },
      identity: id,
      identityEndpoints: true,
      namespaceResources,
      beforeReady: async (http) => {
        await http.register(armApi);
      },
    });
    const running = Object.assign(hubHost.started(primary), { host: hubHost, control });
    // The identity area and control.db outlive every hub (their authorizers verify its tokens): closed last.
    const closeHubs = running.close;
    let closed = false;
    running.close = async () => {
      if (closed) return;
      closed = true;
      try {
        await closeHubs();
      } finally {
        id.close();
        if (controlDb.open) controlDb.close();
      }
    };
    started = running;
    // Records for the running hubs; hubs created through the control plane are started again (the host does not remember them).
    await control.start();
    return running;
  } catch (e) {
    if (started) {
      await started.close();
    } else {
      await host?.close();
      identity?.close();
      if (controlDb.open) controlDb.close();
    }
    throw e;
  }
}

interface HubOptions {
  /** The data directory whose CA signs this hub's server certificate. */
  caDataDir: string;
  /** The listeners of the hub's address, which hand it the connections meant for it. */
  front: Front;
  /** The provisioning service, on the primary hub only; it provisions into this hub and the process's other hubs. */
  dps?: { hubs: () => RunningHub[]; byHostName(hostName: string): RunningHub | undefined };
  /** The control plane's namespace resources (on the primary): what the configuration may still seed, and the namespaces' ARM ids. */
  namespaceResources?: Pick<ControlArea, 'eventHubsNamespaces' | 'serviceBusNamespaces'>;
  /** Registers more API groups on the hub's HTTPS app before it is ready (the control plane's, on the primary). */
  beforeReady?: (http: FastifyInstance) => Promise<unknown>;
  identity: IdentityArea;
  /** Serve the Azure AD and managed-identity endpoints (on the primary hub only). */
  identityEndpoints?: boolean;
}

/** Composes one hub from its configuration: the only place that wires things together. */
async function startHub(config: Config, logger: Logger, options: HubOptions): Promise<RunningHub> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const hostNames = [config.hostName, ...config.extraHostNames, ...(options.dps && config.dps.hostName ? [config.dps.hostName] : [])];
  // The primary hub's certificate also covers the local namespaces' host names ({name}.servicebus.{hubDomain}).
  const tls = await ensureTlsMaterial(config.dataDir, options.dps ? [...hostNames, `*.servicebus.${config.hubDomain}`] : hostNames, options.caDataDir);
  const store = openSqliteStore(databasePath(config.dataDir), {
    queryThread: { onError: (message) => logger.warn({ message }, 'the query thread failed: queries run on the event loop') },
  });
  const checkpoints = startBackgroundCheckpoints(store.db, (message) => logger.warn({ message }, 'background checkpoint of the database failed'));
  let serviceBus: ServiceBusArea | undefined;
  let eventHubs: EventHubsArea | undefined;
  let storage: EmbeddedAzurite | undefined;
  try {
    await ensureDefaultPolicies(store.policies);
    const authorizer = new Authorizer(
      [...new Set([...hostNames, 'localhost', '127.0.0.1', '::1', '[::1]'])],
      store.policies,
      store.devices,
      store.modules,
      Date.now,
      options.identity.bearerFor(config.hubName),
    );
    const twins = new Twins(store.twins, store.devices, store.modules);
    const methods = new DirectMethods(store.devices, store.modules);
    // Written by the control plane from the hub resource's properties.cloudToDevice.
    const cloudToDeviceSettings = new HeldCloudToDeviceSettings();
    const c2dFeedback = new CloudToDeviceFeedback(store.cloudToDeviceFeedback, cloudToDeviceSettings);
    const c2dQueue = notifyingOutcomes(store.cloudToDevice, c2dFeedback);
    const cloudToDevice = new CloudToDevice(c2dQueue, Date.now, config.cloudToDeviceLockSeconds * 1000, cloudToDeviceSettings);
    const queries = new Queries(store.queries);
    const jobs = new Jobs(store.jobs, twins, methods, { deviceOperationsPerSecond: config.jobDeviceOperationsPerSecond });
    // Automatic device management: CRUD wakes the background evaluation, which writes the twins.
    const configurationEvaluation = new ConfigurationEvaluation(store.configurations, store.queries, twins, queries, logger, config.configurations.evaluationIntervalSeconds);
    const configurations = new Configurations(store.configurations, store.devices, store.modules, twins, () => configurationEvaluation.request());
    const twinMethodAndC2dTopics = [twinTopics(twins), methodTopics(methods), cloudToDeviceTopics(cloudToDevice)];
    const hubCertificates = new HubCertificates(store.caCertificates);
    const connections = new DeviceConnections(authorizer, store.devices, store.modules, logger, hubCertificates);
    await connections.start();
    const watched = closingConnectionsOnChange(store.devices, store.modules, connections);
    // Non-telemetry events for routing; routing attaches its ingest (routingEvents.attach).
    const routingEvents = new RoutingEvents(config.hubName, logger);
    const identities = lifecycleEventsOnChange(watched.devices, watched.modules, store.twins, routingEvents);
    const registry = new Registry(identities.devices, identities.modules);
    routingEventSources({ hubName: config.hubName, logger, twins, connections, jobs, events: routingEvents });
    const partitions = await store.eventLog.ensurePartitions(config.eventLog.partitions);
    if (partitions !== config.eventLog.partitions) {
      throw new StartupError(
        `eventLog.partitions is ${config.eventLog.partitions} but the event log in ${config.dataDir} has ${partitions} partitions ` +
          '(fixed when it was created, as an Event Hub\'s partition count is)',
      );
    }
    // Live Event Hub receivers are woken by each committed append instead of polling.
    const appends = new AppendNotifier();
    // What was just committed, for live receivers to read without a query (src/hub/eventhub/recentEvents.ts).
    const recentEvents = new RecentEvents((partition) => appends.listened(partition));
    const builtInLog = recentEvents.over(store.eventLog);
    // Every commit to the built-in endpoint, routed or not: kept for live readers, then they are woken.
    const builtInCommitted = (events: StoredEvent[]) => {
      recentEvents.add(events);
      appends.appended(events.map((e) => e.partition));
    };
    // Routed messages are appended to the built-in endpoint and custom endpoints' backlogs in one commit.
    let routing: MessageRouting | undefined;
    const eventLogWriter = new EventLogWriter(notifyingAppends(builtInLog, builtInCommitted), logger, {
      logs: store.eventLogs,
      committed: (stored) => {
        builtInCommitted(stored.filter((s) => s.entity === BUILT_IN_ENTITY).map((s) => s.event));
        routing?.committed(stored);
      },
    });
    const stopRetention = startRetention(builtInLog, config.eventLog.retentionHours, logger);
    // Blob clients (key or identity, trusting Fleethub's CA): file upload, import/export, storage endpoints.
    const blobStorage = new AzureBlobStorage(tls.caCertificatePem);
    routing = new MessageRouting({
      hubName: config.hubName,
      partitions,
      writer: eventLogWriter,
      logs: store.eventLogs,
      checkpoints: new SqliteRoutingCheckpoints(store.db),
      twins,
      credential: (endpoint) => options.identity.egress.forConnection(options.identity.hubResourceId(config.hubName) ?? config.hubName, endpoint),
      // Local namespaces are reached by AMQP over WebSocket on the primary hub's HTTPS listener.
      sinks: createEndpointSinkFactory({ caPem: tls.caCertificatePem, blobStorage, webSocketPort: () => { const p = options.front.ports.https; return typeof p === 'number' && p > 0 ? p : 443; } }),
      compile: compileRouteCondition,
      options: config.routing,
      logger: logger.child({ area: 'routing' }),
    });
    const messageRouting = routing;
    await messageRouting.start();
    routingEvents.attach(messageRouting);
    const telemetry = new Telemetry(eventLogWriter, partitions, Date.now, routing);

    const http = createHttpApp({ logger });
    if (options.identityEndpoints) await http.register(options.identity.plugin);
    await http.register(registryApi(registry, authorizer));
    await http.register(certificatesApi(hubCertificates, authorizer));
    await http.register(twinsApi(twins, methods, authorizer));
    await http.register(cloudToDeviceAdminApi(cloudToDevice, authorizer));
    // The device side of HTTPS (azure-iot-device-http): the same services as MQTT and AMQP.
    await http.register(deviceApi(telemetry, cloudToDevice, connections));

    // The provisioning service lives beside the primary hub (in its database and on its listeners).
    const dpsStore = options.dps ? openSqliteDpsStore(store.db) : undefined;
    let deviceRegistrations: DeviceRegistrations | undefined;
    if (dpsStore && options.dps) {
      const dps = await prepareDps(dpsStore, config);
      const dpsAuthorizer = new DpsAuthorizer([...new Set([dps.hostName, ...hostNames, 'localhost', '127.0.0.1', '::1', '[::1]'])], dpsStore.policies);
      const { enrollments, enrollmentGroups, registrations, operations, certificates } = dpsStore;
      const dpsEnrollments = new Enrollments(dps, enrollments, enrollmentGroups, registrations, certificates);
      await http.register(dpsEnrollmentsApi(dpsEnrollments, dpsAuthorizer));
      await http.register(dpsEnrollmentGroupsApi(dpsEnrollments, dpsAuthorizer));
      await http.register(dpsRegistrationsApi(new RegistrationStates(registrations), dpsAuthorizer));
      await http.register(dpsCertificatesApi(new DpsCertificates(certificates, enrollmentGroups), dpsAuthorizer));
      // Devices register through the DPS host; they are provisioned into whichever hub of this process allocation picks.
      const self = new LocalHubTarget(registry, twins);
      const hubs = options.dps;
      // Linked hubs outside this process are written over the IoT Hub REST API, when given a connection string.
      const remote = new Map<string, HubTarget>();
      for (const linked of dps.linkedHubs) {
        if (linked.connectionString) remote.set(linked.hostName.toLowerCase(), new RemoteHubTarget(linked.connectionString));
      }
      const target = (hostName: string): HubTarget | undefined => {
        if (hostName.toLowerCase() === config.hostName.toLowerCase()) return self;
        const local = hubs.byHostName(hostName);
        return local ? new LocalHubTarget(local.registry, local.twins) : remote.get(hostName.toLowerCase());
      };
      deviceRegistrations = new DeviceRegistrations(dps, enrollments, enrollmentGroups, registrations, operations, certificates, target, new HttpAllocationWebhook({ extraCaPems: [tls.caCertificatePem] }));
      await http.register(dpsDeviceApi(deviceRegistrations));
    }
    await http.register(queryApi(queries, authorizer));
    await http.register(jobsApi(jobs, authorizer));
    await http.register(configurationsApi(configurations, authorizer));
    // File upload over the configured storage account, or the embedded Azurite when none is.
    const fileUploadSettings = new HeldFileUploadSettings(config.fileUpload);
    storage = await startStorage(config, blobStorage, logger, Boolean(options.identityEndpoints));
    const fileUploads = new FileUploads(
      fileUploadSettings,
      new SqliteFileUploads(store.db),
      new SqliteFileNotifications(store.db),
      blobStorage,
      options.identity.egress,
      () => options.identity.hubResourceId(config.hubName) ?? config.hubName,
      () => storage,
    );
    await http.register(fileUploadApi(fileUploads, connections));
    const bulkJobs = new BulkJobs(new SqliteBulkJobs(store.db), registry, twins, blobStorage, options.identity.egress, () => options.identity.hubResourceId(config.hubName) ?? config.hubName, (e) =>
      logger.warn({ err: e }, 'import/export job runner failed'),
    );
    await http.register(bulkJobsApi(bulkJobs, authorizer));
    await http.register(telemetryApi({ eventLog: store.eventLog, appends, partitions, authorizer }));
    // The portal: static files and the one-time sign-in link, on the primary hub's listener.
    let portal: Portal | undefined;
    if (options.identityEndpoints) {
      const identity = options.identity;
      portal = new Portal({
        settings: async () => {
          const dps = dpsStore ? await describeDps(dpsStore, config) : undefined;
          return {
            hubName: config.hubName,
            hubHostName: config.hostName,
            tenantId: identity.tenancy.tenantId,
            subscriptionId: identity.tenancy.subscriptionId,
            resourceGroup: identity.tenancy.defaultResourceGroup,
            // The control plane names the process's DPS after the primary hub.
            ...(dps ? { dpsHostName: dps.hostName, idScope: dps.idScope, dpsName: `${config.hubName}-dps` } : {}),
          };
        },
        administratorToken: async () => {
          const admin = await identity.principals.get(identity.tenancy.administrator.principalId);
          if (!admin) throw new Error('the administrator service principal is missing');
          return {
            hub: await identity.tokens.issue(admin, 'https://iothubs.azure.net'),
            management: await identity.tokens.issue(admin, 'https://management.azure.com/'),
          };
        },
      });
      await http.register(portal.plugin());
    }
    if (options.beforeReady) await options.beforeReady(http);
    await http.ready();

    // The device plane's MQTT topic families, first match wins.
    const topicHandlers: TopicHandler[] = [telemetryTopics(telemetry), ...twinMethodAndC2dTopics];
    const mqtt = mqttSessions({
      connections,
      handlers: topicHandlers,
      ...(deviceRegistrations ? { dps: dpsMqtt(deviceRegistrations) } : {}),
      hostNames: new Set([...hostNames, 'localhost', '127.0.0.1', '::1'].map((h) => h.toLowerCase())),
      logger,
      connectTimeoutMs: config.connections.connectTimeoutMs,
      writeBuffer: { highBytes: config.connections.writeBufferHighBytes, maxBytes: config.connections.writeBufferMaxBytes },
      ingestBudget: new IngestBudget(config.connections.ingestBufferBytes),
      turnBudget: new TurnBudget(config.connections.packetsPerTurn, config.connections.packetsPerConnectionTurn),
      packetsPerConnectionSecond: config.connections.packetsPerConnectionSecond,
    });
    mqtt.acceptWebSockets(http.server);

    // The AMQP link families: the same domain services as MQTT and HTTPS behind them.
    // DPS registration shares the primary hub's AMQP listener, as it shares its MQTT and HTTPS ones.
    const dpsAmqp = deviceRegistrations ? dpsRegistrationAmqp(deviceRegistrations) : undefined;
    // Service Bus namespaces are process-level: served on the primary hub's AMQP listeners.
    if (options.dps) {
      // Azure AD on the namespaces: Fleethub's tokens, data roles at the namespace's ARM resource id.
      const { tenancy } = options.identity;
      // The control plane's record names the namespace's resource group; a namespace without one is in the default group.
      const namespaceAzureAd = (family: 'eventHubs' | 'serviceBus', provider: 'Microsoft.EventHub' | 'Microsoft.ServiceBus') => ({
        tokens: options.identity.namespaceTokens(family),
        resourceIdOf: (namespace: string) =>
          options.namespaceResources?.[family === 'eventHubs' ? 'eventHubsNamespaces' : 'serviceBusNamespaces']?.resourceIdOf(namespace) ??
          resourceIds.namespace(tenancy.subscriptionId, tenancy.defaultResourceGroup, provider, namespace),
      });
      try {
        // The configuration seeds a namespace only until the control plane has its record (then it is the writer).
        const resources = options.namespaceResources?.serviceBusNamespaces;
        serviceBus = serviceBusArea({
          dataDir: config.dataDir,
          namespaces: config.serviceBusNamespaces.filter((n) => resources?.shouldSeed(n.name) ?? true),
          timerMs: config.serviceBusTimerMs,
          logger,
          namespaceResourceId: (name) => resources?.resourceIdOf(name),
          azureAd: namespaceAzureAd('serviceBus', 'Microsoft.ServiceBus'),
        });
      } catch (e) {
        await mqtt.close();
        await http.close();
        throw new StartupError(`serviceBusNamespaces: ${(e as Error).message}`);
      }
      // Event Hubs namespaces too; their events are entities of this hub's event log.
      try {
        const resources = options.namespaceResources?.eventHubsNamespaces;
        eventHubs = await eventHubsArea({
          store: new SqliteEventHubsStore(store.db),
          logs: store.eventLogs,
          namespaces: config.eventHubsNamespaces.filter((n) => resources?.shouldSeed(n.name) ?? true),
          logger,
          namespaceResourceId: (name) => resources?.resourceIdOf(name),
          azureAd: namespaceAzureAd('eventHubs', 'Microsoft.EventHub'),
        });
      } catch (e) {
        await mqtt.close();
        await http.close();
        throw new StartupError(`eventHubsNamespaces: ${(e as Error).message}`);
      }
    }
    const amqpServices: AmqpServices = {
      ...(serviceBus ? { serviceBus: serviceBus.amqp } : {}),
      ...(eventHubs ? { eventHubs: eventHubs.amqp } : {}),
      ...(dpsAmqp ? { dps: dpsAmqp } : {}),
      hubName: config.hubName,
      connections,
      telemetry,
      twins,
      methods,
      cloudToDevice,
      feedback: c2dFeedback,
      fileUploads,
      eventHub: new BuiltInEndpoint(config.hubName, partitions, hubCreatedAt(config.dataDir), new ConsumerGroups(config.consumerGroups, store.consumerGroups), builtInLog, appends),
    };
    const amqp: AmqpHub = { hubName: config.hubName, authorizer, routes: amqpRoutes(amqpServices), ...(dpsAmqp ? { plainUsers: [dpsAmqp.plainUsers], saslMechanisms: dpsAmqp.saslMechanisms } : {}) };
    const front = options.front;
    const stopAmqpWebSockets = acceptAmqpWebSockets(http.server, front.amqp, amqp);

    // Jobs that were scheduled or running when the hub last stopped carry on.
    await jobs.resume();
    await bulkJobs.resume();

    const ports = { ...front.ports, storage: storage?.port ?? 0 };
    const runtime: RuntimeFile = { pid: process.pid, hubName: config.hubName, hostName: config.hostName, bind: config.bind, ports, startedAt: new Date().toISOString() };
    writeFileSync(runtimePath(config.dataDir), JSON.stringify(runtime, null, 2));

    // Started last, so that a failed start leaves no timer on a closed store.
    configurationEvaluation.start();
    const stopC2dExpiry = startC2dExpiry(c2dQueue, c2dFeedback, 1000, (e) => logger.warn({ err: e }, 'expiring cloud-to-device messages failed'));
    const fileExpiry = setInterval(() => void fileUploads.expire().catch((e) => logger.warn({ err: e }, 'expiring file uploads failed')), 1000);
    fileExpiry.unref();
    // From here on, the address's listeners hand this hub the connections that name it.
    front.attach({ hubName: config.hubName, hostNames: [...hostNames, 'localhost'], tls: { key: tls.serverKeyPem, cert: tls.serverCertificatePem }, http: http.server, mqtt, amqp });
    let closed = false;
    const closeOne = async () => {
      // Jobs stop taking devices first; their in-flight calls end as methods and the server close.
      const jobsStopped = jobs.stop();
      const bulkJobsStopped = bulkJobs.stop();
      const evaluationStopped = configurationEvaluation.stop();
      stopAmqpWebSockets();
      stopC2dExpiry();
      await front.amqp.close(amqp);
      await mqtt.close();
      await connections.closeAll('the hub is shutting down');
      // The disconnect events of the connections just closed reach routing first (briefly: a stalled ingest does not hold the shutdown).
      await Promise.race([routingEvents.idle(), new Promise((r) => setTimeout(r, 2000).unref())]);
      await eventLogWriter.close();
      await messageRouting.close();
      stopRetention();
      methods.close();
      await http.close();
      clearInterval(fileExpiry);
      await storage?.close();
      front.detach(config.hubName);
      await jobsStopped;
      await bulkJobsStopped;
      await evaluationStopped;
      rmSync(runtimePath(config.dataDir), { force: true });
      serviceBus?.close();
      eventHubs?.close();
      await checkpoints.stop();
      store.close();
    };
    return {
      config,
      ports,
      tls,
      store,
      registry,
      twins,
      methods,
      cloudToDevice,
      queries,
      jobs,
      configurations,
      twinMethodAndC2dTopics,
      connections,
      telemetry,
      http,
      amqp,
      logger,
      hubs: [],
      identity: options.identity,
      fileUploads,
      fileUploadSettings,
      cloudToDeviceSettings,
      bulkJobs,
      blobStorage,
      routing: {
        status: messageRouting,
        ingest: messageRouting,
        apply: (settings) => messageRouting.apply(settings),
        useSinks: (factory) => messageRouting.useSinks(factory),
      },
      routingEvents,
      ...(storage ? { storage } : {}),
      ...(serviceBus ? { serviceBus } : {}),
      ...(eventHubs ? { eventHubs } : {}),
      ...(portal ? { portal } : {}),
      info: async () => {
        const info = hubInfo(config, await store.policies.list(), dpsStore ? await describeDps(dpsStore, config) : undefined, {
          caDataDir: options.caDataDir,
          hubs: await Promise.all((options.dps?.hubs() ?? []).map((h) => h.info())),
          byName: front.hubFor(undefined)?.hubName !== config.hubName,
          ...(serviceBus ? { serviceBus: serviceBus.namespaces } : {}),
          ...(eventHubs ? { eventHubs: eventHubs.namespaces } : {}),
        });
        // The Azure AD, ARM and managed-identity endpoints are served by the primary hub's HTTPS listener.
        if (!options.identityEndpoints) return info;
        const baseUrl = managementBaseUrl(config.hostName, ports.https);
        return { ...(await withIdentityInfo(info, options.identity, baseUrl)), portalUrl: `${baseUrl.replace(/\/+$/, '')}/portal/` };
      },
      async close() {
        if (closed) return;
        closed = true;
        await closeOne();
      },
    };
  } catch (e) {
    serviceBus?.close();
    eventHubs?.close();
    await storage?.close().catch(() => undefined);
    await checkpoints.stop();
    store.close();
    throw e;
  }
}

/**
 * The embedded blob storage (Azurite), when the hub has no storage account configured and
 * `ports.storage` is not 0: HTTPS with the hub's certificate, OAuth on, the upload container made.
 */
async function startStorage(config: Config, blobStorage: AzureBlobStorage, logger: Logger, primary: boolean): Promise<EmbeddedAzurite | undefined> {
  if (config.fileUpload.storageEndpoints.$default.connectionString || !config.ports.storage) return undefined;
  const paths = serverPaths(config.dataDir);
  let azurite: EmbeddedAzurite;
  try {
    azurite = await startEmbeddedAzurite({ dataDir: config.dataDir, bind: config.bind, hostName: config.hostName, port: config.ports.storage, certPath: paths.cert, keyPath: paths.key });
  } catch (e) {
    const why = `Cannot start the embedded blob storage (Azurite) on ${config.bind}:${config.ports.storage}: ${(e as Error).message}`;
    // A hub sharing the primary's address finds the port taken: it goes without (file upload then needs a storage account).
    if (!primary && (e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      logger.warn(`${why}; hub '${config.hubName}' has no embedded storage (configure fileUpload.storageEndpoints.$default)`);
      return undefined;
    }
    throw new StartupError(why);
  }
  try {
    const containerName = config.fileUpload.storageEndpoints.$default.containerName || azurite.defaultContainer;
    await blobStorage.ensureContainer({ connectionString: azurite.connectionString, credential: { kind: 'key', connectionString: azurite.connectionString }, containerName });
  } catch (e) {
    await azurite.close();
    throw new StartupError(`The embedded blob storage (Azurite) does not answer: ${(e as Error).message}`);
  }
  return azurite;
}

/** When the hub's data directory was created: the Event Hub-compatible endpoint's created_at. */
function hubCreatedAt(dataDir: string): Date {
  const stat = statSync(databasePath(dataDir));
  return stat.birthtimeMs > 0 ? stat.birthtime : stat.ctime;
}
