import type { Db } from './database.js';
import { backlogEntity, type RoutingCheckpoints } from '../routing.js';

/** Checkpoints in `routing_checkpoints`; backlogs are entities of the `events` table. */
export class SqliteRoutingCheckpoints implements RoutingCheckpoints {
  private readonly getStmt;
  private readonly insertStmt;
  private readonly advanceAll;
  private readonly removeAll;
  private readonly listStmt;
  private readonly settingsStmt;
  private readonly saveSettingsStmt;

  constructor(db: Db) {
    this.getStmt = db.prepare<[string], { sequence_number: number }>('SELECT sequence_number FROM routing_checkpoints WHERE endpoint = ?');
    this.insertStmt = db.prepare<[string]>('INSERT OR IGNORE INTO routing_checkpoints (endpoint, sequence_number) VALUES (?, -1)');
    const setStmt = db.prepare<[number, string]>('UPDATE routing_checkpoints SET sequence_number = ? WHERE endpoint = ?');
    const trimStmt = db.prepare<[string, number]>('DELETE FROM events WHERE entity = ? AND partition = 0 AND sequence_number <= ?');
    this.advanceAll = db.transaction((endpoint: string, seq: number) => {
      setStmt.run(seq, endpoint);
      trimStmt.run(backlogEntity(endpoint), seq);
    });
    const deleteStmt = db.prepare<[string]>('DELETE FROM routing_checkpoints WHERE endpoint = ?');
    const dropEvents = db.prepare<[string]>('DELETE FROM events WHERE entity = ?');
    const dropPartitions = db.prepare<[string]>('DELETE FROM event_partitions WHERE entity = ?');
    this.removeAll = db.transaction((endpoint: string) => {
      deleteStmt.run(endpoint);
      dropEvents.run(backlogEntity(endpoint));
      dropPartitions.run(backlogEntity(endpoint));
    });
    this.listStmt = db.prepare<[], { endpoint: string }>('SELECT endpoint FROM routing_checkpoints ORDER BY endpoint');
    this.settingsStmt = db.prepare<[], { doc: string }>('SELECT doc FROM routing_settings WHERE id = 1');
    this.saveSettingsStmt = db.prepare<[string]>('INSERT INTO routing_settings (id, doc) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc');
  }

  async checkpoint(endpoint: string): Promise<number> {
    return this.getStmt.get(endpoint.toLowerCase())?.sequence_number ?? -1;
  }

  async ensure(endpoint: string): Promise<number> {
    this.insertStmt.run(endpoint.toLowerCase());
    return this.checkpoint(endpoint);
  }

  async advance(endpoint: string, sequenceNumber: number): Promise<void> {
    this.advanceAll(endpoint.toLowerCase(), sequenceNumber);
  }

  async remove(endpoint: string): Promise<void> {
    this.removeAll(endpoint.toLowerCase());
  }

  async list(): Promise<string[]> {
    return this.listStmt.all().map((r) => r.endpoint);
  }

  async lastSettings(): Promise<string | undefined> {
    return this.settingsStmt.get()?.doc;
  }

  async saveSettings(json: string): Promise<void> {
    this.saveSettingsStmt.run(json);
  }
}
