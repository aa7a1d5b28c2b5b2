import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Db } from './database.js';
import type { C2dQueue } from '../index.js';
import type { CloudToDeviceMessage, CloudToDeviceOutcome } from '../../hub/messaging/cloudToDeviceMessage.js';

type Row = {
  sequence_number: number;
  device_id: string;
  message_id: string;
  ack: string;
  enqueued_time: number;
  expiry_time: number;
  delivery_count: number;
  doc: string;
  lock_token: string | null;
  locked_until: number | null;
};
/** Expired messages removed per transaction (and per turn of the event loop). */
export const EXPIRE_SLICE = 500;

type Doc = Pick<CloudToDeviceMessage, 'correlationId' | 'userId' | 'contentType' | 'contentEncoding' | 'properties'> & { body: string };

/**
 * The queue as a table; each operation is one transaction. The device's
 * `cloudToDeviceMessageCount` is kept in step in the same transaction (without changing its etag,
 * as IoT Hub does not either).
 */
export class SqliteC2dQueue implements C2dQueue {
  private readonly enqueueTx;
  private readonly nextTx;
  private readonly settleLockTx;
  private readonly completeTx;
  private readonly expireTx;
  private readonly depthStmt;

  constructor(db: Db) {
    const depth = db.prepare<[string, number], { n: number }>('SELECT COUNT(*) AS n FROM c2d_messages WHERE device_id = ? AND expiry_time > ?');
    const deviceExists = db.prepare<[string], { n: number }>('SELECT 1 AS n FROM devices WHERE device_id = ?');
    const insert = db.prepare(
      `INSERT INTO c2d_messages (device_id, message_id, ack, enqueued_time, expiry_time, delivery_count, doc)
       VALUES (@deviceId, @messageId, @ack, @enqueuedTime, @expiryTime, 0, @doc)`,
    );
    const syncCount = db.prepare(
      `UPDATE devices SET doc = json_set(doc, '$.cloudToDeviceMessageCount', (SELECT COUNT(*) FROM c2d_messages WHERE device_id = @deviceId))
       WHERE device_id = @deviceId`,
    );
    // Messages locked by a pull receiver (HTTPS) are invisible to every receiver until the lock ends.
    const oldest = db.prepare<[string, number], Row>(
      'SELECT * FROM c2d_messages WHERE device_id = ? AND (locked_until IS NULL OR locked_until <= ?) ORDER BY sequence_number LIMIT 1',
    );
    const setLock = db.prepare<[string | null, number | null, number]>('UPDATE c2d_messages SET lock_token = ?, locked_until = ? WHERE sequence_number = ?');
    const byLock = db.prepare<[string, string, number], Row>('SELECT * FROM c2d_messages WHERE device_id = ? AND lock_token = ? AND locked_until > ?');
    const remove = db.prepare<[number]>('DELETE FROM c2d_messages WHERE sequence_number = ?');
    const bump = db.prepare<[number]>('UPDATE c2d_messages SET delivery_count = delivery_count + 1 WHERE sequence_number = ?');
    const byId = db.prepare<[number, string], Row>('SELECT * FROM c2d_messages WHERE sequence_number = ? AND device_id = ?');
    const record = db.prepare(
      `INSERT INTO c2d_outcomes (device_id, original_message_id, ack, outcome, enqueued_time, at)
       VALUES (@deviceId, @messageId, @ack, @outcome, @enqueuedTime, @at)`,
    );
    const finish = (row: Row, outcome: CloudToDeviceOutcome, now: number) => {
      remove.run(row.sequence_number);
      // Only what a sender asked feedback for is worth keeping.
      const wanted = row.ack === 'full' || (row.ack === 'positive' && outcome === 'Success') || (row.ack === 'negative' && outcome !== 'Success');
      if (wanted) {
        record.run({ deviceId: row.device_id, messageId: row.message_id, ack: row.ack, outcome, enqueuedTime: row.enqueued_time, at: now });
      }
    };

    this.depthStmt = depth;
    this.enqueueTx = db.transaction((m: Omit<CloudToDeviceMessage, 'sequenceNumber' | 'deliveryCount'>, maxDepth: number, now: number) => {
      if (!deviceExists.get(m.deviceId)) return 'notFound' as const;
      if (depth.get(m.deviceId, now)!.n >= maxDepth) return 'full' as const;
      const doc: Doc = {
        correlationId: m.correlationId,
        userId: m.userId,
        contentType: m.contentType,
        contentEncoding: m.contentEncoding,
        properties: m.properties,
        body: m.body.toString('base64'),
      };
      insert.run({ deviceId: m.deviceId, messageId: m.messageId, ack: m.ack, enqueuedTime: m.enqueuedTime, expiryTime: m.expiryTime, doc: JSON.stringify(doc) });
      syncCount.run({ deviceId: m.deviceId });
      return 'ok' as const;
    });
    this.nextTx = db.transaction((deviceId: string, now: number, maxDeliveryCount: number, lock?: { token: string; until: number }) => {
      let removed = false;
      try {
        for (let row = oldest.get(deviceId, now); row; row = oldest.get(deviceId, now)) {
          if (row.expiry_time <= now) finish(row, 'Expired', now);
          else if (row.delivery_count >= maxDeliveryCount) finish(row, 'DeliveryCountExceeded', now);
          else {
            bump.run(row.sequence_number);
            // A lock that timed out is replaced; a push delivery clears it.
            setLock.run(lock?.token ?? null, lock?.until ?? null, row.sequence_number);
            return toMessage({ ...row, delivery_count: row.delivery_count + 1 });
          }
          removed = true;
        }
        return undefined;
      } finally {
        if (removed) syncCount.run({ deviceId });
      }
    });
    const expired = db.prepare<[number, number], Row>('SELECT * FROM c2d_messages WHERE expiry_time <= ? ORDER BY expiry_time LIMIT ?');
    this.expireTx = db.transaction((now: number, limit: number) => {
      const rows = expired.all(now, limit);
      for (const row of rows) finish(row, 'Expired', now);
      for (const deviceId of new Set(rows.map((r) => r.device_id))) syncCount.run({ deviceId });
      return rows.length;
    });
    this.settleLockTx = db.transaction((deviceId: string, lockToken: string, action: 'complete' | 'reject' | 'abandon', now: number) => {
      const row = byLock.get(deviceId, lockToken, now);
      if (!row) return false;
      if (action === 'abandon') {
        setLock.run(null, null, row.sequence_number);
        return true;
      }
      finish(row, action === 'complete' ? 'Success' : 'Rejected', now);
      syncCount.run({ deviceId });
      return true;
    });
    this.completeTx = db.transaction((deviceId: string, sequenceNumber: number, outcome: CloudToDeviceOutcome, now: number) => {
      const row = byId.get(sequenceNumber, deviceId);
      if (!row) return false;
      finish(row, outcome, now);
      syncCount.run({ deviceId });
      return true;
    });
  }

  async enqueue(message: Omit<CloudToDeviceMessage, 'sequenceNumber' | 'deliveryCount'>, maxDepth: number, now: number) {
    return this.enqueueTx(message, maxDepth, now);
  }

  async next(deviceId: string, now: number, maxDeliveryCount: number): Promise<CloudToDeviceMessage | undefined> {
    return this.nextTx(deviceId, now, maxDeliveryCount);
  }

  async lock(deviceId: string, now: number, maxDeliveryCount: number, lockToken: string, lockedUntil: number): Promise<CloudToDeviceMessage | undefined> {
    return this.nextTx(deviceId, now, maxDeliveryCount, { token: lockToken, until: lockedUntil });
  }

  async settleLock(deviceId: string, lockToken: string, action: 'complete' | 'reject' | 'abandon', now: number): Promise<boolean> {
    return this.settleLockTx(deviceId, lockToken, action, now);
  }

  async complete(deviceId: string, sequenceNumber: number, outcome: CloudToDeviceOutcome, now: number): Promise<boolean> {
    return this.completeTx(deviceId, sequenceNumber, outcome, now);
  }

  /**
   * A slice of EXPIRE_SLICE messages per transaction and per turn of the event loop: a fleet's
   * worth of messages sent at once expires at once (a command to 100,000 offline devices), and
   * one transaction over all of them would hold the devices' PUBACKs for seconds.
   */
  async expire(now: number): Promise<number> {
    let expired = 0;
    for (;;) {
      const n = this.expireTx(now, EXPIRE_SLICE);
      expired += n;
      if (n < EXPIRE_SLICE) return expired;
      await nextTurn();
    }
  }

  async depth(deviceId: string, now: number): Promise<number> {
    return this.depthStmt.get(deviceId, now)!.n;
  }
}

function toMessage(row: Row): CloudToDeviceMessage {
  const doc = JSON.parse(row.doc) as Doc;
  return {
    deviceId: row.device_id,
    sequenceNumber: row.sequence_number,
    messageId: row.message_id,
    correlationId: doc.correlationId,
    userId: doc.userId,
    contentType: doc.contentType,
    contentEncoding: doc.contentEncoding,
    ack: row.ack as CloudToDeviceMessage['ack'],
    properties: doc.properties,
    body: Buffer.from(doc.body, 'base64'),
    enqueuedTime: row.enqueued_time,
    expiryTime: row.expiry_time,
    deliveryCount: row.delivery_count,
  };
}
