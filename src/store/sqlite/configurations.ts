import type { Db } from './database.js';
import type { ConfigurationStore, WriteResult } from '../index.js';
import type { ConfigurationMetricResults, StoredConfiguration } from '../../hub/configurations/types.js';

type Row = { id: string; etag: string; doc: string; results: string | null };

function fromRow(row: Row): { configuration: StoredConfiguration; results?: ConfigurationMetricResults } {
  const configuration = JSON.parse(row.doc) as StoredConfiguration;
  return row.results ? { configuration, results: JSON.parse(row.results) as ConfigurationMetricResults } : { configuration };
}

export class SqliteConfigurationStore implements ConfigurationStore {
  private readonly listStmt;
  private readonly getStmt;
  private readonly countStmt;
  private readonly insertStmt;
  private readonly replaceStmt;
  private readonly deleteStmt;
  private readonly resultsStmt;
  private readonly insertTx;

  constructor(db: Db) {
    this.listStmt = db.prepare<[], Row>('SELECT * FROM configurations ORDER BY created_time, id');
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM configurations WHERE id = ?');
    this.countStmt = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM configurations');
    this.insertStmt = db.prepare('INSERT INTO configurations (id, etag, created_time, doc) VALUES (@id, @etag, @createdTimeUtc, @doc)');
    this.replaceStmt = db.prepare('UPDATE configurations SET etag = @etag, doc = @doc WHERE id = @id AND (@ifEtag IS NULL OR etag = @ifEtag)');
    this.deleteStmt = db.prepare('DELETE FROM configurations WHERE id = @id AND (@ifEtag IS NULL OR etag = @ifEtag)');
    this.resultsStmt = db.prepare('UPDATE configurations SET results = ? WHERE id = ?');
    this.insertTx = db.transaction((c: StoredConfiguration, maxCount: number): 'ok' | 'exists' | 'full' => {
      if (this.getStmt.get(c.id)) return 'exists';
      if (this.countStmt.get()!.n >= maxCount) return 'full';
      this.insertStmt.run({ id: c.id, etag: c.etag, createdTimeUtc: c.createdTimeUtc, doc: JSON.stringify(c) });
      return 'ok';
    });
  }

  async list() {
    return this.listStmt.all().map(fromRow);
  }

  async get(id: string) {
    const row = this.getStmt.get(id);
    return row ? fromRow(row) : undefined;
  }

  async insert(configuration: StoredConfiguration, maxCount: number) {
    return this.insertTx(configuration, maxCount);
  }

  async replace(configuration: StoredConfiguration, ifEtag?: string): Promise<WriteResult> {
    const r = this.replaceStmt.run({ id: configuration.id, etag: configuration.etag, doc: JSON.stringify(configuration), ifEtag: ifEtag ?? null });
    if (r.changes === 1) return 'ok';
    return this.getStmt.get(configuration.id) ? 'etagMismatch' : 'notFound';
  }

  async delete(id: string, ifEtag?: string): Promise<WriteResult> {
    if (this.deleteStmt.run({ id, ifEtag: ifEtag ?? null }).changes === 1) return 'ok';
    return this.getStmt.get(id) ? 'etagMismatch' : 'notFound';
  }

  async saveResults(id: string, results: ConfigurationMetricResults): Promise<void> {
    this.resultsStmt.run(JSON.stringify(results), id);
  }
}
