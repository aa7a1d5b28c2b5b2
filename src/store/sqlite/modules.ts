import type { Db } from './database.js';
import type { ConnectionState, ModuleStore, WriteResult } from '../index.js';
import type { Module } from '../../hub/registry/types.js';

export class SqliteModuleStore implements ModuleStore {
  private readonly getStmt;
  private readonly listStmt;
  private readonly countStmt;
  private readonly insertStmt;
  private readonly replaceStmt;
  private readonly replaceIfStmt;
  private readonly deleteStmt;
  private readonly deleteIfStmt;
  private readonly existsStmt;
  private readonly connectionStateStmt;
  private readonly activityStmt;

  constructor(db: Db) {
    this.getStmt = db.prepare<[string, string], { doc: string }>('SELECT doc FROM modules WHERE device_id = ? AND module_id = ?');
    this.listStmt = db.prepare<[string], { doc: string }>('SELECT doc FROM modules WHERE device_id = ? ORDER BY module_id');
    this.countStmt = db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM modules WHERE device_id = ?');
    this.insertStmt = db.prepare(
      `INSERT INTO modules (device_id, module_id, etag, doc) VALUES (@deviceId, @moduleId, @etag, @doc)
       ON CONFLICT(device_id, module_id) DO NOTHING`,
    );
    // As for devices, a replace keeps the stored connection fields.
    const keepConnection = `json_set(@doc, '$.connectionState', json_extract(doc, '$.connectionState'),
      '$.connectionStateUpdatedTime', json_extract(doc, '$.connectionStateUpdatedTime'), '$.lastActivityTime', json_extract(doc, '$.lastActivityTime'))`;
    this.replaceStmt = db.prepare(`UPDATE modules SET etag = @etag, doc = ${keepConnection} WHERE device_id = @deviceId AND module_id = @moduleId`);
    this.replaceIfStmt = db.prepare(
      `UPDATE modules SET etag = @etag, doc = ${keepConnection} WHERE device_id = @deviceId AND module_id = @moduleId AND etag = @ifEtag`,
    );
    this.deleteStmt = db.prepare('DELETE FROM modules WHERE device_id = ? AND module_id = ?');
    this.deleteIfStmt = db.prepare('DELETE FROM modules WHERE device_id = ? AND module_id = ? AND etag = ?');
    this.existsStmt = db.prepare<[string, string], { n: number }>('SELECT 1 AS n FROM modules WHERE device_id = ? AND module_id = ?');
    // As for devices: connection state and activity leave the etag alone.
    this.connectionStateStmt = db.prepare(
      `UPDATE modules SET doc = json_set(doc, '$.connectionState', @state, '$.connectionStateUpdatedTime', @at)
       WHERE device_id = @deviceId AND module_id = @moduleId`,
    );
    this.activityStmt = db.prepare(
      `UPDATE modules SET doc = json_set(doc, '$.lastActivityTime', @at) WHERE device_id = @deviceId AND module_id = @moduleId`,
    );
  }

  async get(deviceId: string, moduleId: string): Promise<Module | undefined> {
    const row = this.getStmt.get(deviceId, moduleId);
    return row && (JSON.parse(row.doc) as Module);
  }

  async listForDevice(deviceId: string): Promise<Module[]> {
    return this.listStmt.all(deviceId).map((r) => JSON.parse(r.doc) as Module);
  }

  async countForDevice(deviceId: string): Promise<number> {
    return this.countStmt.get(deviceId)!.n;
  }

  async setConnectionState(deviceId: string, moduleId: string, state: ConnectionState, at: string): Promise<void> {
    this.connectionStateStmt.run({ deviceId, moduleId, state, at });
  }

  async setLastActivity(deviceId: string, moduleId: string, at: string): Promise<void> {
    this.activityStmt.run({ deviceId, moduleId, at });
  }

  async insert(module: Module): Promise<boolean> {
    return this.insertStmt.run(params(module)).changes === 1;
  }

  async replace(module: Module, ifEtag?: string): Promise<WriteResult> {
    const changes =
      ifEtag === undefined ? this.replaceStmt.run(params(module)).changes : this.replaceIfStmt.run({ ...params(module), ifEtag }).changes;
    return changes === 1 ? 'ok' : this.existsStmt.get(module.deviceId, module.moduleId) ? 'etagMismatch' : 'notFound';
  }

  async delete(deviceId: string, moduleId: string, ifEtag?: string): Promise<WriteResult> {
    const changes =
      ifEtag === undefined ? this.deleteStmt.run(deviceId, moduleId).changes : this.deleteIfStmt.run(deviceId, moduleId, ifEtag).changes;
    return changes === 1 ? 'ok' : this.existsStmt.get(deviceId, moduleId) ? 'etagMismatch' : 'notFound';
  }
}

function params(m: Module) {
  return { deviceId: m.deviceId, moduleId: m.moduleId, etag: m.etag, doc: JSON.stringify(m) };
}
