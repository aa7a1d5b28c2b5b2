import type { Db } from './database.js';
import type { CaCertificateStore, StoredCaCertificate } from '../caCertificates.js';

export class SqliteCaCertificateStore implements CaCertificateStore {
  private readonly getStmt;
  private readonly listStmt;
  private readonly upsertStmt;
  private readonly updateIfStmt;
  private readonly deleteStmt;
  private readonly deleteIfStmt;

  constructor(db: Db) {
    this.getStmt = db.prepare<[string], { doc: string }>('SELECT doc FROM ca_certificates WHERE name = ?');
    this.listStmt = db.prepare<[], { doc: string }>('SELECT doc FROM ca_certificates ORDER BY name');
    this.upsertStmt = db.prepare(
      'INSERT INTO ca_certificates (name, etag, doc) VALUES (@name, @etag, @doc) ON CONFLICT(name) DO UPDATE SET etag = @etag, doc = @doc',
    );
    this.updateIfStmt = db.prepare('UPDATE ca_certificates SET etag = @etag, doc = @doc WHERE name = @name AND etag = @ifEtag');
    this.deleteStmt = db.prepare('DELETE FROM ca_certificates WHERE name = ?');
    this.deleteIfStmt = db.prepare('DELETE FROM ca_certificates WHERE name = ? AND etag = ?');
  }

  async get(name: string): Promise<StoredCaCertificate | undefined> {
    const row = this.getStmt.get(name);
    return row && (JSON.parse(row.doc) as StoredCaCertificate);
  }

  async list(): Promise<StoredCaCertificate[]> {
    return this.listStmt.all().map((r) => JSON.parse(r.doc) as StoredCaCertificate);
  }

  async put(c: StoredCaCertificate, ifEtag?: string): Promise<'ok' | 'etagMismatch'> {
    const params = { name: c.name, etag: c.etag, doc: JSON.stringify(c) };
    if (ifEtag === undefined) {
      this.upsertStmt.run(params);
      return 'ok';
    }
    return this.updateIfStmt.run({ ...params, ifEtag }).changes === 1 ? 'ok' : 'etagMismatch';
  }

  async delete(name: string, ifEtag?: string): Promise<'ok' | 'notFound' | 'etagMismatch'> {
    const changes = ifEtag === undefined ? this.deleteStmt.run(name).changes : this.deleteIfStmt.run(name, ifEtag).changes;
    if (changes === 1) return 'ok';
    return this.getStmt.get(name) ? 'etagMismatch' : 'notFound';
  }
}
