import type { Db } from './database.js';
import { SqliteEventLogs } from './eventLog.js';
import { backlogEntity, type RoutingCheckpoints } from '../routing.js';

/** Checkpoints in `routing_checkpoints`; backlogs are entities of the `events` table. */
export class SqliteRoutingCheckpoints implements RoutingCheckpoints {
  private readonly getStmt;
  private readonly insertStmt;
  private readonly setStmt;
  private readonly backlogs;
  private readonly removeAll;
  private readonly listStmt;
  private readonly settingsStmt;
  private readonly saveSettingsStmt;

  constructor(db: Db) {
    this.getStmt = db.prepare<[string], { sequence_number: number }>('SELECT sequence_number FROM routing_checkpoints WHERE endpoint = ?');
    this.insertStmt = db.prepare<[string]>('INSERT OR IGNORE INTO routing_checkpoints (endpoint, sequence_number) VALUES (?, -1)');
    this.setStmt = db.prepare<[number, string]>('UPDATE routing_checkpoints SET sequence_number = ? WHERE endpoint = ?');
    this.backlogs = new SqliteEventLogs(db);
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

  /**
   * The checkpoint first (what it covers is delivered, and never read again), then what it covers
   * leaves the backlog a slice per statement, a turn of the event loop between (the event log's
   * deleteBelow): a storage endpoint's batch is up to 100,000 messages, and a dead endpoint's backlog
   * is dropped whole. A trim cut short (a crash) is finished by the next advance, which starts at
   * the oldest row.
   */
  async advance(endpoint: string, sequenceNumber: number): Promise<void> {
    const name = endpoint.toLowerCase();
    this.setStmt.run(sequenceNumber, name);
    await this.backlogs.entity(backlogEntity(name)).deleteBelow(0, sequenceNumber + 1);
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
