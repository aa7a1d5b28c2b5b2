import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Db } from './database.js';
import type { C2dFeedbackRecord, C2dFeedbackStore } from '../index.js';
import type { CloudToDeviceOutcome } from '../../hub/messaging/cloudToDeviceMessage.js';

type Row = { id: number; device_id: string; generation_id: string | null; original_message_id: string; outcome: string; enqueued_time: number };

/** Records purged per statement, with a turn of the event loop between (the hub's devices wait on that loop). */
export const FEEDBACK_PURGE_SLICE = 500;

/** Reads the c2d_outcomes table SqliteC2dQueue writes. */
export class SqliteC2dFeedback implements C2dFeedbackStore {
  private readonly pendingStmt;
  private readonly removeTx;
  private readonly deliveredTx;
  private readonly removeExhaustedTx;
  private readonly purgeStmt;

  constructor(db: Db) {
    this.pendingStmt = db.prepare<[number, number, number], Row>(
      `SELECT o.id, o.device_id, json_extract(d.doc, '$.generationId') AS generation_id, o.original_message_id, o.outcome, o.at AS enqueued_time
       FROM c2d_outcomes o LEFT JOIN devices d ON d.device_id = o.device_id
       WHERE o.at > ? AND o.delivery_count < ? ORDER BY o.id LIMIT ?`,
    );
    const each = (sql: string) => {
      const stmt = db.prepare(sql);
      return db.transaction((ids: number[], ...more: number[]) => {
        for (const id of ids) stmt.run(id, ...more);
      });
    };
    this.removeTx = each('DELETE FROM c2d_outcomes WHERE id = ?');
    this.deliveredTx = each('UPDATE c2d_outcomes SET delivery_count = delivery_count + 1 WHERE id = ?');
    this.removeExhaustedTx = each('DELETE FROM c2d_outcomes WHERE id = ? AND delivery_count >= ?');
    this.purgeStmt = db.prepare<[number, number]>(
      'DELETE FROM c2d_outcomes WHERE id IN (SELECT id FROM c2d_outcomes WHERE at <= ? ORDER BY at LIMIT ?)',
    );
  }

  async pending(max: number, exclude: ReadonlySet<number>, notBefore: number, maxDeliveries: number): Promise<C2dFeedbackRecord[]> {
    return this.pendingStmt
      .all(notBefore, maxDeliveries, max + exclude.size)
      .filter((r) => !exclude.has(r.id))
      .slice(0, max)
      .map((r) => ({
        id: r.id,
        deviceId: r.device_id,
        deviceGenerationId: r.generation_id ?? '',
        originalMessageId: r.original_message_id,
        outcome: r.outcome as CloudToDeviceOutcome,
        enqueuedTime: r.enqueued_time,
      }));
  }

  async remove(ids: number[]): Promise<void> {
    this.removeTx(ids);
  }

  async delivered(ids: number[]): Promise<void> {
    this.deliveredTx(ids);
  }

  async removeExhausted(ids: number[], maxDeliveries: number): Promise<void> {
    this.removeExhaustedTx(ids, maxDeliveries);
  }

  /**
   * By the index on the outcome's time, FEEDBACK_PURGE_SLICE at a time: feedback for a command sent
   * with `ack: full` to a whole fleet ages out all at once.
   */
  async purge(upTo: number): Promise<number> {
    let purged = 0;
    for (;;) {
      const n = this.purgeStmt.run(upTo, FEEDBACK_PURGE_SLICE).changes;
      purged += n;
      if (n < FEEDBACK_PURGE_SLICE) return purged;
      await nextTurn();
    }
  }
}
