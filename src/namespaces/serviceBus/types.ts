/**
 * Service Bus entities, described as ARM describes them (Microsoft.ServiceBus/namespaces/...
 * `properties` bags), so that the control plane maps them one to one.
 */
export type EntityStatus = 'Active' | 'Disabled';

export interface QueueProperties {
  /** ISO 8601 duration, e.g. 'PT1M' (at most 5 minutes). */
  lockDuration: string;
  maxDeliveryCount: number;
  /** ISO 8601 duration; 'P10675199DT2H48M5.4775807S' (TimeSpan.MaxValue) means never. */
  defaultMessageTimeToLive: string;
  deadLetteringOnMessageExpiration: boolean;
  maxSizeInMegabytes: number;
  requiresSession: boolean;
  status: EntityStatus;
}

export interface TopicProperties {
  defaultMessageTimeToLive: string;
  maxSizeInMegabytes: number;
  status: EntityStatus;
}

export interface SubscriptionProperties {
  lockDuration: string;
  maxDeliveryCount: number;
  defaultMessageTimeToLive: string;
  deadLetteringOnMessageExpiration: boolean;
  requiresSession: boolean;
  status: EntityStatus;
}

export interface CorrelationFilter {
  correlationId?: string;
  messageId?: string;
  to?: string;
  replyTo?: string;
  label?: string;
  sessionId?: string;
  replyToSessionId?: string;
  contentType?: string;
  properties?: Record<string, string | number | boolean>;
}

export interface RuleProperties {
  filterType: 'SqlFilter' | 'CorrelationFilter';
  sqlFilter?: { sqlExpression: string };
  correlationFilter?: CorrelationFilter;
  /** Rule actions are not supported yet: a rule that has one is refused. */
  action?: { sqlExpression?: string };
}

export type AccessRight = 'Send' | 'Listen' | 'Manage';

export interface AuthorizationRule {
  name: string;
  rights: AccessRight[];
  primaryKey: string;
  secondaryKey: string;
}

export interface QueueDescription {
  name: string;
  properties: QueueProperties;
  createdAt: string;
}
export interface TopicDescription {
  name: string;
  properties: TopicProperties;
  createdAt: string;
}
export interface SubscriptionDescription {
  topic: string;
  name: string;
  properties: SubscriptionProperties;
  createdAt: string;
}
export interface RuleDescription {
  topic: string;
  subscription: string;
  name: string;
  properties: RuleProperties;
}

export interface NamespaceDescription {
  name: string;
  createdAt: string;
}

/** 'P10675199DT2H48M5.4775807S': .NET's TimeSpan.MaxValue, Service Bus's "never". */
export const NEVER = 'P10675199DT2H48M5.4775807S';

export const queueDefaults: QueueProperties = {
  lockDuration: 'PT1M',
  maxDeliveryCount: 10,
  defaultMessageTimeToLive: NEVER,
  deadLetteringOnMessageExpiration: false,
  maxSizeInMegabytes: 1024,
  requiresSession: false,
  status: 'Active',
};

export const topicDefaults: TopicProperties = { defaultMessageTimeToLive: NEVER, maxSizeInMegabytes: 1024, status: 'Active' };

export const subscriptionDefaults: SubscriptionProperties = {
  lockDuration: 'PT1M',
  maxDeliveryCount: 10,
  defaultMessageTimeToLive: NEVER,
  deadLetteringOnMessageExpiration: false,
  requiresSession: false,
  status: 'Active',
};

/** What the receive side sees of a message for filters and expiry (the adapter extracts it). */
export interface IncomingMessage {
  /** The message as the client sent it, opaque to the domain (the AMQP bare message). */
  payload: Buffer;
  /** Milliseconds, from the message's header; undefined: the entity's default. */
  timeToLive?: number;
  /** Milliseconds since the epoch; set for scheduled messages. */
  scheduledEnqueueTime?: number;
  /** System properties by Service Bus's SQL names (MessageId, Label, To, …). */
  system: Record<string, string | number | boolean | Date | undefined>;
  /** Application properties. */
  properties: Record<string, unknown>;
}

export type MessageState = 'active' | 'deferred' | 'scheduled';

/** A stored message as a receiver gets it. */
export interface StoredMessage {
  sequenceNumber: number;
  payload: Buffer;
  state: MessageState;
  enqueuedTime: number;
  expiresAt?: number;
  deliveryCount: number;
  lockToken?: string;
  lockedUntil?: number;
  /** Application properties to set over the sent ones (propertiesToModify, dead-letter reason). */
  overrides: Record<string, unknown>;
  /** The entity a dead-lettered message came from (its path). */
  deadLetterSource?: string;
  scheduledEnqueueTime?: number;
}
