/**
 * The control plane area: ARM-shaped resources over the process's hubs, identities and role
 * assignments, and the Fastify plugin that serves them (registered on the primary hub's listener).
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ControlResourceStore } from '../store/control.js';
import type { RunningHub } from '../main.js';
import { armApi } from '../protocols/http/arm/armApi.js';
import { Authorization } from './authorization.js';
import { IotHubs } from './iotHubs/iotHubs.js';
import { ControlPlane } from './plane.js';
import type { ControlDependencies } from './ports.js';
import { UserAssignedIdentities } from './userAssignedIdentities.js';
import { ProvisioningServices } from './provisioningServices.js';
import { Deployments } from './deployments/deployments.js';
import { deploymentsRoute, isDeploymentsUrl } from '../protocols/http/arm/deploymentsApi.js';
import { administratorMsi } from '../protocols/http/arm/administratorMsi.js';
import { EventHubsNamespaceResources } from './namespaces/eventHubs.js';
import { ServiceBusNamespaceResources } from './namespaces/serviceBus.js';

export interface ControlArea {
  plane: ControlPlane;
  iotHubs: IotHubs;
  userAssignedIdentities: UserAssignedIdentities;
  deployments: Deployments;
  /** `Microsoft.EventHub/namespaces` and `Microsoft.ServiceBus/namespaces` (their `resourceIdOf(name)` is what role checks scope by). */
  eventHubsNamespaces: EventHubsNamespaceResources;
  serviceBusNamespaces: ServiceBusNamespaceResources;
  /** The ARM REST API, for the primary hub's Fastify app (before it listens). */
  armApi: (app: FastifyInstance) => Promise<void>;
  /** What it was composed from (the identity services, the hub host). */
  deps: ControlDependencies;
  /** Records for the running hubs; hubs created by PUT started again. Call once the hubs run. */
  start(): Promise<void>;
}

export function controlArea(
  deps: ControlDependencies & {
    store: ControlResourceStore;
    logger: Logger;
    /** The primary hub (where the provisioning service lives); the first the host lists by default. */
    primary?: () => RunningHub | undefined;
    /** The namespace names of the configuration file (they seed namespaces without a record, and cannot be deleted through ARM). */
    configuredNamespaces?: { eventHubs: string[]; serviceBus: string[] };
  },
): ControlArea {
  const iotHubs = new IotHubs({ ...deps });
  const userAssignedIdentities = new UserAssignedIdentities({ ...deps, attachedTo: (id) => iotHubs.hubsUsingIdentity(id) });
  const authorization = new Authorization({ tenancy: deps.tenancy, assignments: deps.roleAssignments, definitions: deps.roleDefinitions, principals: deps.principals });
  // The provisioning service lives beside the primary hub (the first the host lists).
  const provisioningServices = new ProvisioningServices({ store: deps.store, tenancy: deps.tenancy, primary: deps.primary ?? (() => deps.hubs.list()[0]) });
  const primary = deps.primary ?? (() => deps.hubs.list()[0]);
  // Namespaces are reached as `{name}.servicebus.{hubDomain}` on the primary hub's AMQP listeners.
  const endpoints = { domain: deps.hubDomain, amqpPort: () => primary()?.ports.amqp ?? 5671 };
  const eventHubsNamespaces = new EventHubsNamespaceResources({ store: deps.store, tenancy: deps.tenancy, service: () => primary()?.eventHubs?.namespaces, endpoints, configured: () => deps.configuredNamespaces?.eventHubs ?? [] });
  const serviceBusNamespaces = new ServiceBusNamespaceResources({ store: deps.store, tenancy: deps.tenancy, service: () => primary()?.serviceBus?.namespaces, endpoints, configured: () => deps.configuredNamespaces?.serviceBus ?? [] });
  const plane = new ControlPlane({ tenancy: deps.tenancy, store: deps.store, access: deps.access, authorization, providers: [iotHubs, userAssignedIdentities, provisioningServices, eventHubsNamespaces, serviceBusNamespaces] });
  const deployments = new Deployments({ plane, store: deps.store, tenancy: deps.tenancy, access: deps.access, logger: deps.logger });
  plane.providers.push(deployments);
  return {
    plane,
    deployments,
    deps,
    iotHubs,
    userAssignedIdentities,
    eventHubsNamespaces,
    serviceBusNamespaces,
    armApi: async (app) => {
      await app.register(armApi(plane, deps.tokens, [{ route: deploymentsRoute(plane, deployments), lenientBody: isDeploymentsUrl }]));
      // `az login --identity` (MSI_ENDPOINT / MSI_SECRET) signs in as the administrator here.
      await app.register(administratorMsi({ tenancy: deps.tenancy, principals: deps.principals, tokens: deps.tokens }));
    },
    async start() {
      plane.ensureDefaultGroup();
      deployments.markInterrupted();
      await iotHubs.sync();
      provisioningServices.sync();
      eventHubsNamespaces.sync();
      serviceBusNamespaces.sync();
    },
  };
}
