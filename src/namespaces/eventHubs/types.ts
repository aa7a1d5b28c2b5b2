/**
 * Local Event Hubs namespaces, described as ARM describes them (Microsoft.EventHub/namespaces,
 * .../eventhubs, .../consumergroups, .../authorizationRules `properties` bags), so that the
 * control plane maps them one to one.
 */
export type AccessRight = 'Send' | 'Listen' | 'Manage';

export interface NamespaceDescription {
  name: string;
  /** ISO 8601. */
  createdAt: string;
}

export interface EventHubProperties {
  /** 1 to 32, fixed at creation (as on the Standard tier). */
  partitionCount: number;
  /** 1 to 7 days. */
  messageRetentionInDays: number;
  status: 'Active';
  /** Read-only: '0' … 'partitionCount-1'. */
  partitionIds: string[];
  createdAt: string;
  updatedAt: string;
}

export interface EventHubDescription {
  namespace: string;
  name: string;
  properties: EventHubProperties;
}

export interface ConsumerGroupDescription {
  name: string;
  properties: { userMetadata?: string; createdAt: string; updatedAt: string };
}

/** A namespace rule (`eventHub` undefined) or an event hub's own. */
export interface AuthorizationRule {
  name: string;
  eventHub?: string;
  rights: AccessRight[];
  primaryKey: string;
  secondaryKey: string;
}

export const eventHubDefaults = { partitionCount: 4, messageRetentionInDays: 1 };

export const DEFAULT_CONSUMER_GROUP = '$Default';
export const ROOT_RULE = 'RootManageSharedAccessKey';
