import type { Db } from './database.js';
import type { TwinStore, WriteResult } from '../index.js';
import type { TwinState } from '../../hub/twins/types.js';

type Row = { device_id: string; module_id: string; version: number; etag: string; doc: string };

export class SqliteTwinStore implements TwinStore {
  private readonly getStmt;
  private readonly replaceStmt;

  constructor(db: Db) {
    this.getStmt = db.prepare<[string, string], Row>('SELECT * FROM twins WHERE device_id = ? AND module_id = ?');
    this.replaceStmt = db.prepare(
      `UPDATE twins SET version = @version, etag = @etag, doc = @doc
       WHERE device_id = @deviceId AND module_id = @moduleId AND version = @ifVersion`,
    );
  }

  async get(deviceId: string, moduleId = ''): Promise<TwinState | undefined> {
    const row = this.getStmt.get(deviceId, moduleId);
    if (!row) return undefined;
    const doc = JSON.parse(row.doc) as Pick<TwinState, 'tags' | 'desired' | 'reported' | 'configurations' | 'configurationContent'>;
    return { deviceId, moduleId, version: row.version, etag: row.etag, ...doc };
  }

  async replace(twin: TwinState, ifVersion: number): Promise<WriteResult> {
    const { tags, desired, reported, configurations, configurationContent } = twin;
    const doc = JSON.stringify({ tags, desired, reported, configurations, configurationContent });
    const { deviceId, moduleId, version, etag } = twin;
    if (this.replaceStmt.run({ deviceId, moduleId, version, etag, doc, ifVersion }).changes === 1) return 'ok';
    return this.getStmt.get(deviceId, moduleId) ? 'etagMismatch' : 'notFound';
  }
}
