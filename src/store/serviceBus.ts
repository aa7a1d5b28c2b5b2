import type { MessageState, StoredMessage } from '../namespaces/serviceBus/types.js';

/**
 * A namespace's configuration records by kind and path (queues `q`, topics `t`, subscriptions
 * `t/subscriptions/s`, rules `t/subscriptions/s/rules/r`, authorization rules by name, with the
 * entity they belong to or '' for the namespace); `doc` is the description as JSON.
 */
export type ServiceBusRecordKind = 'namespace' | 'queue' | 'topic' | 'subscription' | 'rule' | 'authorizationRule';

export interface ServiceBusRecord {
  namespace: string;
  kind: ServiceBusRecordKind;
  path: string;
  doc: string;
}

/** A message to store: `entity` is the path of the queue, subscription or topic (for scheduled topic messages). */
export interface NewMessage {
  entity: string;
  payload: Buffer;
  state: MessageState;
  enqueuedTime: number;
  /** When it may be delivered (the scheduled time, or the enqueued time). */
  visibleAt: number;
  expiresAt?: number;
}

export interface LockRequest {
  namespace: string;
  entity: string;
  max: number;
  now: number;
  lockedUntil: number;
  /** receiveAndDelete: the messages are deleted in the same transaction instead of locked. */
  remove: boolean;
}

export interface ExpiredLock {
  namespace: string;
  entity: string;
  sequenceNumber: number;
  deliveryCount: number;
}

/** The Service Bus messages and entity records of all local namespaces (one database). */
export interface ServiceBusStore {
  records(): ServiceBusRecord[];
  putRecord(record: ServiceBusRecord): void;
  /** Deletes the record and every record (and message) under its path. */
  deleteRecord(namespace: string, kind: ServiceBusRecordKind, path: string): void;
  deleteNamespace(namespace: string): void;

  /** Stores messages in one transaction; returns their sequence numbers. */
  enqueue(namespace: string, messages: NewMessage[]): number[];
  /** Locks (or removes) up to `max` deliverable messages of an entity, in sequence order. */
  lockNext(request: LockRequest): StoredMessage[];
  /** Locks (or removes) the deferred messages with these sequence numbers. */
  lockDeferred(request: Omit<LockRequest, 'max'> & { sequenceNumbers: number[] }): StoredMessage[];
  /** The message holding this live lock (locked_until > now), if any. */
  findLocked(namespace: string, lockToken: string, now: number): (StoredMessage & { entity: string }) | undefined;
  /** Deletes a message by sequence number; false when it is gone. */
  remove(namespace: string, sequenceNumber: number, lockToken?: string): boolean;
  /** Unlocks a message; `deliveryCountDelta` 1 for abandon / lock expiry. */
  unlock(namespace: string, sequenceNumber: number, changes: { deliveryCountDelta: number; state?: MessageState; overrides?: Record<string, unknown> }): void;
  /** Moves a message into another entity (its dead-letter queue), unlocked and active. */
  move(namespace: string, sequenceNumber: number, toEntity: string, overrides: Record<string, unknown>, deadLetterSource: string): void;
  renewLock(namespace: string, lockToken: string, now: number, lockedUntil: number): boolean;
  peek(namespace: string, entity: string, fromSequenceNumber: number, max: number): StoredMessage[];
  /** Cancels scheduled messages; returns how many were. */
  cancelScheduled(namespace: string, entity: string, sequenceNumbers: number[]): number;

  /** Locks that ran out (locked_until <= now). */
  expiredLocks(now: number, max: number): ExpiredLock[];
  /** Scheduled messages now due, with their entity: removed from scheduling by activate/fan-out. */
  dueScheduled(now: number, max: number): { namespace: string; entity: string; message: StoredMessage }[];
  activate(namespace: string, sequenceNumber: number): void;
  /** Unlocked active or deferred messages past their expiry. */
  expiredMessages(now: number, max: number): { namespace: string; entity: string; sequenceNumber: number }[];
  /** Runs `work` in one transaction (fan-out of a scheduled topic message, moves with bookkeeping). */
  transaction<T>(work: () => T): T;
  close(): void;
}
