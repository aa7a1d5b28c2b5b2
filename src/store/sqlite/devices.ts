import type { Db } from './database.js';
import type { ConnectionState, DeviceConnectionRecord, DeviceStore, WriteResult } from '../index.js';
import type { Device } from '../../hub/registry/types.js';

export class SqliteDeviceStore implements DeviceStore {
  private readonly getStmt;
  private readonly listStmt;
  private readonly insertStmt;
  private readonly replaceStmt;
  private readonly replaceIfStmt;
  private readonly deleteStmt;
  private readonly deleteIfStmt;
  private readonly existsStmt;
  private readonly statsStmt;
  private readonly connectedStmt;
  private readonly connectionStateStmt;
  private readonly activityStmt;
  private readonly disconnectAllStmt;
  private readonly recordConnectionsTx;

  constructor(db: Db) {
    this.getStmt = db.prepare<[string], { doc: string }>('SELECT doc FROM devices WHERE device_id = ?');
    this.listStmt = db.prepare<[number], { doc: string }>('SELECT doc FROM devices ORDER BY device_id LIMIT ?');
    this.insertStmt = db.prepare(
      `INSERT INTO devices (device_id, etag, status, connection_state, doc) VALUES (@id, @etag, @status, @cs, @doc)
       ON CONFLICT(device_id) DO NOTHING`,
    );
    // A replace keeps the stored connection fields: they change under a live connection without
    // an etag change, so the caller's copy may be stale.
    const keepConnection = `json_set(@doc, '$.connectionState', json_extract(doc, '$.connectionState'),
      '$.connectionStateUpdatedTime', json_extract(doc, '$.connectionStateUpdatedTime'), '$.lastActivityTime', json_extract(doc, '$.lastActivityTime'))`;
    this.replaceStmt = db.prepare(`UPDATE devices SET etag = @etag, status = @status, doc = ${keepConnection} WHERE device_id = @id`);
    this.replaceIfStmt = db.prepare(
      `UPDATE devices SET etag = @etag, status = @status, doc = ${keepConnection} WHERE device_id = @id AND etag = @ifEtag`,
    );
    this.deleteStmt = db.prepare('DELETE FROM devices WHERE device_id = ?');
    this.deleteIfStmt = db.prepare('DELETE FROM devices WHERE device_id = ? AND etag = ?');
    this.existsStmt = db.prepare<[string], { n: number }>('SELECT 1 AS n FROM devices WHERE device_id = ?');
    this.statsStmt = db.prepare<[], { total: number; enabled: number | null }>(
      `SELECT COUNT(*) AS total, SUM(status = 'enabled') AS enabled FROM devices`,
    );
    this.connectedStmt = db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM devices WHERE connection_state = 'Connected'`);
    // Connection state and activity leave the etag alone: IoT Hub does not bump it for them.
    this.connectionStateStmt = db.prepare(
      `UPDATE devices SET connection_state = @state,
         doc = json_set(doc, '$.connectionState', @state, '$.connectionStateUpdatedTime', @at) WHERE device_id = @id`,
    );
    this.activityStmt = db.prepare(`UPDATE devices SET doc = json_set(doc, '$.lastActivityTime', @at) WHERE device_id = @id`);
    const connectedActiveStmt = db.prepare(
      `UPDATE devices SET connection_state = @state,
         doc = json_set(doc, '$.connectionState', @state, '$.connectionStateUpdatedTime', @at, '$.lastActivityTime', @at) WHERE device_id = @id`,
    );
    this.recordConnectionsTx = db.transaction((changes: readonly DeviceConnectionRecord[]) => {
      for (const c of changes) {
        if (c.state === undefined) this.activityStmt.run({ id: c.deviceId, at: c.at });
        else (c.activity ? connectedActiveStmt : this.connectionStateStmt).run({ id: c.deviceId, state: c.state, at: c.at });
      }
    });
    this.disconnectAllStmt = db.transaction((at: string) => {
      db.prepare(
        `UPDATE devices SET connection_state = 'Disconnected',
           doc = json_set(doc, '$.connectionState', 'Disconnected', '$.connectionStateUpdatedTime', ?) WHERE connection_state = 'Connected'`,
      ).run(at);
      db.prepare(
        `UPDATE modules SET doc = json_set(doc, '$.connectionState', 'Disconnected', '$.connectionStateUpdatedTime', ?)
         WHERE json_extract(doc, '$.connectionState') = 'Connected'`,
      ).run(at);
    });
  }

  async get(deviceId: string): Promise<Device | undefined> {
    const row = this.getStmt.get(deviceId);
    return row && (JSON.parse(row.doc) as Device);
  }

  async list(top: number): Promise<Device[]> {
    return this.listStmt.all(top).map((r) => JSON.parse(r.doc) as Device);
  }

  async insert(device: Device): Promise<boolean> {
    return this.insertStmt.run(params(device)).changes === 1;
  }

  async replace(device: Device, ifEtag?: string): Promise<WriteResult> {
    const changes =
      ifEtag === undefined
        ? this.replaceStmt.run(params(device)).changes
        : this.replaceIfStmt.run({ ...params(device), ifEtag }).changes;
    return changes === 1 ? 'ok' : this.missOrMismatch(device.deviceId);
  }

  async delete(deviceId: string, ifEtag?: string): Promise<WriteResult> {
    const changes = ifEtag === undefined ? this.deleteStmt.run(deviceId).changes : this.deleteIfStmt.run(deviceId, ifEtag).changes;
    return changes === 1 ? 'ok' : this.missOrMismatch(deviceId);
  }

  async statistics() {
    const { total, enabled } = this.statsStmt.get()!;
    return { totalDeviceCount: total, enabledDeviceCount: enabled ?? 0, disabledDeviceCount: total - (enabled ?? 0) };
  }

  async connectedCount(): Promise<number> {
    return this.connectedStmt.get()!.n;
  }

  async setConnectionState(deviceId: string, state: ConnectionState, at: string): Promise<void> {
    this.connectionStateStmt.run({ id: deviceId, state, at });
  }

  async setLastActivity(deviceId: string, at: string): Promise<void> {
    this.activityStmt.run({ id: deviceId, at });
  }

  async recordConnections(changes: readonly DeviceConnectionRecord[]): Promise<void> {
    this.recordConnectionsTx(changes);
  }

  async disconnectAll(at: string): Promise<void> {
    this.disconnectAllStmt(at);
  }

  private missOrMismatch(deviceId: string): WriteResult {
    return this.existsStmt.get(deviceId) ? 'etagMismatch' : 'notFound';
  }
}

function params(d: Device) {
  return { id: d.deviceId, etag: d.etag, status: d.status, cs: d.connectionState, doc: JSON.stringify(d) };
}
