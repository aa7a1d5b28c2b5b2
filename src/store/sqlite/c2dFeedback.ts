import type { Db } from './database.js';
import type { C2dFeedbackRecord, C2dFeedbackStore } from '../index.js';
import type { CloudToDeviceOutcome } from '../../hub/messaging/cloudToDeviceMessage.js';

type Row = { id: number; device_id: string; generation_id: string | null; original_message_id: string; outcome: string; enqueued_time: number };

/** Reads the c2d_outcomes table SqliteC2dQueue writes. */
export class SqliteC2dFeedback implements C2dFeedbackStore {
  private readonly pendingStmt;
  private readonly removeTx;

  constructor(db: Db) {
    this.pendingStmt = db.prepare<[number], Row>(
      `SELECT o.id, o.device_id, json_extract(d.doc, '$.generationId') AS generation_id, o.original_message_id, o.outcome, o.at AS enqueued_time
       FROM c2d_outcomes o LEFT JOIN devices d ON d.device_id = o.device_id ORDER BY o.id LIMIT ?`,
    );
    const remove = db.prepare<[number]>('DELETE FROM c2d_outcomes WHERE id = ?');
    this.removeTx = db.transaction((ids: number[]) => {
      for (const id of ids) remove.run(id);
    });
  }

  async pending(max: number, exclude: ReadonlySet<number>): Promise<C2dFeedbackRecord[]> {
    return this.pendingStmt
      .all(max + exclude.size)
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
}
