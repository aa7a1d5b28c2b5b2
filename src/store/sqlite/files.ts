import type { FileNotification, FileNotificationRecord, FileNotificationStore, FileUploadRecord, FileUploadStore } from '../files.js';
import type { Db } from './database.js';

type UploadRow = { correlation_id: string; device_id: string; blob_name: string; container_name: string; expires_at: number; created_at: number };

export class SqliteFileUploads implements FileUploadStore {
  private readonly startTx;
  private readonly getStmt;
  private readonly endStmt;
  private readonly expireStmt;

  constructor(db: Db) {
    const count = db.prepare<[string, number], { n: number }>('SELECT count(*) AS n FROM file_uploads WHERE device_id = ? AND expires_at > ?');
    const insert = db.prepare('INSERT INTO file_uploads (correlation_id, device_id, blob_name, container_name, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)');
    // Counting and inserting in one transaction: concurrent requests cannot both take the last slot.
    this.startTx = db.transaction((u: FileUploadRecord, maxActive: number, now: number) => {
      if (count.get(u.deviceId, now)!.n >= maxActive) return false;
      insert.run(u.correlationId, u.deviceId, u.blobName, u.containerName, u.expiresAt, u.createdAt);
      return true;
    });
    this.getStmt = db.prepare<[string, string], UploadRow>('SELECT * FROM file_uploads WHERE device_id = ? AND correlation_id = ?');
    this.endStmt = db.prepare<[string, string]>('DELETE FROM file_uploads WHERE device_id = ? AND correlation_id = ?');
    this.expireStmt = db.prepare<[number]>('DELETE FROM file_uploads WHERE expires_at <= ?');
  }

  async start(upload: FileUploadRecord, maxActive: number, now: number): Promise<boolean> {
    return this.startTx(upload, maxActive, now);
  }
  async get(deviceId: string, correlationId: string): Promise<FileUploadRecord | undefined> {
    const r = this.getStmt.get(deviceId, correlationId);
    return r && { correlationId: r.correlation_id, deviceId: r.device_id, blobName: r.blob_name, containerName: r.container_name, expiresAt: r.expires_at, createdAt: r.created_at };
  }
  async end(deviceId: string, correlationId: string): Promise<boolean> {
    return this.endStmt.run(deviceId, correlationId).changes > 0;
  }
  async expire(now: number): Promise<number> {
    return this.expireStmt.run(now).changes;
  }
}

export class SqliteFileNotifications implements FileNotificationStore {
  private readonly addStmt;
  private readonly pendingStmt;
  private readonly removeTx;
  private readonly deliveredTx;
  private readonly purgeStmt;

  constructor(db: Db) {
    this.addStmt = db.prepare('INSERT INTO file_notifications (doc, expires_at, delivery_count) VALUES (?, ?, 0)');
    this.pendingStmt = db.prepare<[number, number, number], { id: number; doc: string }>(
      'SELECT id, doc FROM file_notifications WHERE expires_at > ? AND delivery_count < ? ORDER BY id LIMIT ?',
    );
    const remove = db.prepare<[number]>('DELETE FROM file_notifications WHERE id = ?');
    this.removeTx = db.transaction((ids: number[]) => {
      for (const id of ids) remove.run(id);
    });
    const delivered = db.prepare<[number]>('UPDATE file_notifications SET delivery_count = delivery_count + 1 WHERE id = ?');
    this.deliveredTx = db.transaction((ids: number[]) => {
      for (const id of ids) delivered.run(id);
    });
    this.purgeStmt = db.prepare<[number, number]>('DELETE FROM file_notifications WHERE expires_at <= ? OR delivery_count >= ?');
  }

  async add(n: FileNotification, expiresAt: number): Promise<void> {
    this.addStmt.run(JSON.stringify(n), expiresAt);
  }
  async pending(max: number, exclude: ReadonlySet<number>, now: number, maxDeliveries: number): Promise<FileNotificationRecord[]> {
    return this.pendingStmt
      .all(now, maxDeliveries, max + exclude.size)
      .filter((r) => !exclude.has(r.id))
      .slice(0, max)
      .map((r) => ({ id: r.id, ...(JSON.parse(r.doc) as FileNotification) }));
  }
  async remove(ids: number[]): Promise<void> {
    this.removeTx(ids);
  }
  async delivered(ids: number[]): Promise<void> {
    this.deliveredTx(ids);
  }
  async purge(now: number, maxDeliveries: number): Promise<number> {
    return this.purgeStmt.run(now, maxDeliveries).changes;
  }
}
