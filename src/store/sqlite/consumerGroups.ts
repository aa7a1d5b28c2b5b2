import type { Db } from './database.js';
import type { ConsumerGroupStore } from '../index.js';

export class SqliteConsumerGroups implements ConsumerGroupStore {
  private readonly listStmt;
  private readonly addStmt;
  private readonly deleteStmt;

  constructor(db: Db) {
    this.listStmt = db.prepare<[], { name: string }>('SELECT name FROM consumer_groups ORDER BY created_at, name');
    this.addStmt = db.prepare<[string, number]>('INSERT OR IGNORE INTO consumer_groups (name, created_at) VALUES (?, ?)');
    this.deleteStmt = db.prepare<[string]>('DELETE FROM consumer_groups WHERE name = ?');
  }

  async list(): Promise<string[]> {
    return this.listStmt.all().map((r) => r.name);
  }

  async add(name: string): Promise<boolean> {
    return this.addStmt.run(name, Date.now()).changes === 1;
  }

  async delete(name: string): Promise<boolean> {
    return this.deleteStmt.run(name).changes === 1;
  }
}
