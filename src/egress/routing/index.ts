/**
 * Routing's endpoint sinks (egress): Event Hubs, Service Bus queues and topics, and storage
 * containers, through the official @azure/* clients, with the endpoint's key or the hub's
 * identity, trusting Fleethub's CA as well as the system's.
 */
import type { EndpointSettings, EndpointSink, EndpointSinkFactory, SinkContext } from '../../hub/routing/types.js';
import { SinkError } from '../../hub/routing/types.js';
import type { AzureBlobStorage } from '../blobStorage.js';
import { EventHubsSink } from './eventHubsSink.js';
import { ServiceBusSink } from './serviceBusSink.js';
import { StorageSink } from './storageSink.js';

export { fileNameFormatError, blobName, storageEncoding, DEFAULT_FILE_NAME_FORMAT, FILE_NAME_TOKENS } from '../../hub/routing/storageEndpoint.js';
export { MESSAGE_SCHEMA } from './storageRecords.js';
export { sinkError, scrubSecrets } from './errors.js';

export interface EndpointSinkDeps {
  /** Fleethub's CA certificate (PEM): trusted for outbound connections besides the system's CAs. */
  caPem: string;
  /**
   * The HTTPS port WebSocket connections to namespaces outside Azure's clouds go to (this Fleethub's
   * listener, whose local namespaces they are): 443 unless `ports.https` says otherwise.
   */
  webSocketPort?: () => number;
  /** The blob clients (key or identity, TLS trust) the hub's other storage uses. */
  blobStorage: AzureBlobStorage;
  /** Storage sinks' clock (blob names); tests pin it. */
  now?: () => Date;
}

/** A sink that fails every delivery: settings no target can be made of. */
class RefusingSink implements EndpointSink {
  constructor(private readonly error: SinkError) {}
  async deliver(): Promise<void> {
    throw this.error;
  }
  async close(): Promise<void> {}
}

export function createEndpointSinkFactory(deps: EndpointSinkDeps): EndpointSinkFactory {
  return {
    create(endpoint: EndpointSettings, context: SinkContext): EndpointSink {
      switch (endpoint.kind) {
        case 'eventHubs':
          return new EventHubsSink(endpoint, context, deps.caPem, deps.webSocketPort);
        case 'serviceBusQueues':
        case 'serviceBusTopics':
          return new ServiceBusSink(endpoint, context, deps.caPem, deps.webSocketPort);
        case 'storageContainers':
          return new StorageSink(endpoint, context, deps.blobStorage, deps.now);
        default:
          return new RefusingSink(new SinkError('invalid', `Endpoint '${String((endpoint as EndpointSettings).name)}': unknown endpoint kind '${String((endpoint as EndpointSettings).kind)}'`));
      }
    },
  };
}
