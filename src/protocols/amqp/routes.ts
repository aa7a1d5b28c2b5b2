import type { BuiltInEndpoint } from '../../hub/eventhub/builtInEndpoint.js';
import { cbsNode } from './cbs.js';
import type { EventHubsAmqp } from './eventHubs/index.js';
import type { ServiceBusAmqp } from './serviceBus/index.js';
import { managementRoutes } from './eventhub/management.js';
import { partitionReceiverRoute } from './eventhub/partitionReceiver.js';
import { builtInAccess } from './eventhub/access.js';
import type { LinkRoute } from './link.js';
import type { CloudToDevice } from '../../hub/messaging/cloudToDevice.js';
import type { CloudToDeviceFeedback } from '../../hub/messaging/feedback.js';
import { cloudToDeviceSendRoute } from './service/cloudToDevice.js';
import { feedbackRoute } from './service/feedback.js';
import { fileNotificationRoute } from './service/fileNotifications.js';
import type { FileUploads } from '../../hub/files/fileUploads.js';
import type { DeviceConnections } from '../../hub/connections/deviceConnections.js';
import type { Telemetry } from '../../hub/messaging/telemetry.js';
import { telemetryRoute } from './device/telemetry.js';
import { cloudToDeviceReceiveRoute } from './device/cloudToDevice.js';
import type { Twins } from '../../hub/twins/twins.js';
import type { DirectMethods } from '../../hub/methods/methods.js';
import { twinRoutes } from './device/twin.js';
import { methodRoutes } from './device/methods.js';
import type { DpsAmqp } from './dps/registration.js';

export interface AmqpServices {
  hubName: string;
  eventHub?: BuiltInEndpoint;
  cloudToDevice?: CloudToDevice;
  feedback?: CloudToDeviceFeedback;
  /** File upload: the notifications the service receives. */
  fileUploads?: FileUploads;
  connections?: DeviceConnections;
  telemetry?: Telemetry;
  twins?: Twins;
  methods?: DirectMethods;
  /** DPS device registration on the same endpoint (`{idScope}/registrations/{registrationId}`). */
  dps?: DpsAmqp;
  /** Local Service Bus namespaces (on the primary hub's endpoint). */
  serviceBus?: ServiceBusAmqp;
  /** Local Event Hubs namespaces (on the primary hub's endpoint). */
  eventHubs?: EventHubsAmqp;
}

/** Every AMQP link family the hub serves, in matching order. */
export function amqpRoutes(services: AmqpServices): LinkRoute[] {
  return [
    ...cbsNode([...(services.serviceBus ? [services.serviceBus.cbs] : []), ...(services.eventHubs ? [services.eventHubs.cbs] : [])]),
    ...(services.serviceBus ? services.serviceBus.routes : []),
    ...(services.eventHubs ? services.eventHubs.routes : []),
    ...(services.eventHub ? [partitionReceiverRoute(builtInAccess(services.eventHub)), ...managementRoutes(builtInAccess(services.eventHub))] : []),
    ...(services.cloudToDevice ? [cloudToDeviceSendRoute(services.cloudToDevice)] : []),
    ...(services.feedback ? [feedbackRoute(services.feedback, services.hubName)] : []),
    fileNotificationRoute(services.fileUploads, services.hubName),
    ...(services.connections && services.telemetry ? [telemetryRoute(services.telemetry, services.connections)] : []),
    ...(services.connections && services.cloudToDevice ? [cloudToDeviceReceiveRoute(services.cloudToDevice, services.connections)] : []),
    ...(services.connections && services.twins ? twinRoutes(services.twins, services.connections) : []),
    ...(services.connections && services.methods ? methodRoutes(services.methods, services.connections) : []),
    ...(services.dps ? services.dps.routes : []),
  ];
}
