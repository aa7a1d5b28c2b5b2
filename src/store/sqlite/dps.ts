import type { Db } from './database.js';
import type { WriteResult } from '../index.js';
import type {
  DpsCertificateStore,
  DpsPolicyStore,
  DpsSettingsStore,
  DpsStore,
  EnrollmentGroupStore,
  EnrollmentStore,
  EnrollmentWrite,
  Page,
  RegistrationOperationRecord,
  RegistrationOperationStore,
  RegistrationStore,
} from '../dps.js';
import type {
  DeviceRegistrationState,
  DpsCertificate,
  DpsSharedAccessPolicy,
  EnrollmentGroup,
  IndividualEnrollment,
  RegistrationRecord,
} from '../../dps/types.js';

export const dpsMigrationSql = `
  CREATE TABLE dps_enrollments (registration_id TEXT PRIMARY KEY, etag TEXT NOT NULL, doc TEXT NOT NULL);
  CREATE TABLE dps_enrollment_groups (enrollment_group_id TEXT PRIMARY KEY, etag TEXT NOT NULL, doc TEXT NOT NULL);
  CREATE TABLE dps_registrations (
    registration_id TEXT PRIMARY KEY,
    enrollment_group_id TEXT,
    etag TEXT NOT NULL,
    doc TEXT NOT NULL
  );
  CREATE INDEX dps_registrations_by_group ON dps_registrations (enrollment_group_id, registration_id);
  CREATE TABLE dps_certificates (name TEXT PRIMARY KEY, etag TEXT NOT NULL, doc TEXT NOT NULL);
  CREATE TABLE dps_policies (key_name TEXT PRIMARY KEY, doc TEXT NOT NULL);
  CREATE TABLE dps_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);`;

/**
 * Enrollment group ids are case-insensitive in DPS (kept as given): the group table's key and the
 * registrations' group column compare without regard to case (issue 14). SQLite cannot change a
 * column's collation in place, so both tables are rebuilt.
 */
export const dpsGroupIdsNocaseMigrationSql = `
  CREATE TABLE dps_enrollment_groups_nocase (enrollment_group_id TEXT PRIMARY KEY COLLATE NOCASE, etag TEXT NOT NULL, doc TEXT NOT NULL);
  INSERT INTO dps_enrollment_groups_nocase (enrollment_group_id, etag, doc) SELECT enrollment_group_id, etag, doc FROM dps_enrollment_groups;
  DROP TABLE dps_enrollment_groups;
  ALTER TABLE dps_enrollment_groups_nocase RENAME TO dps_enrollment_groups;
  CREATE TABLE dps_registrations_nocase (
    registration_id TEXT PRIMARY KEY,
    enrollment_group_id TEXT COLLATE NOCASE,
    etag TEXT NOT NULL,
    doc TEXT NOT NULL
  );
  INSERT INTO dps_registrations_nocase (registration_id, enrollment_group_id, etag, doc) SELECT registration_id, enrollment_group_id, etag, doc FROM dps_registrations;
  DROP TABLE dps_registrations;
  ALTER TABLE dps_registrations_nocase RENAME TO dps_registrations;
  CREATE INDEX dps_registrations_by_group ON dps_registrations (enrollment_group_id, registration_id);`;

/** Registration operations (issue 7): polled by devices, kept until they expire. */
export const dpsOperationsMigrationSql = `
  CREATE TABLE dps_operations (
    operation_id TEXT PRIMARY KEY,
    registration_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    doc TEXT NOT NULL
  );
  CREATE INDEX dps_operations_by_expiry ON dps_operations (expires_at);`;

/** A table of JSON documents keyed by one id column, with etag-conditional writes. */
class DocumentTable<T> {
  private readonly getStmt;
  private readonly pageStmt;
  private readonly pageAfterStmt;
  private readonly allStmt;
  private readonly insertStmt;
  private readonly replaceStmt;
  private readonly replaceIfStmt;
  private readonly deleteStmt;
  private readonly deleteIfStmt;

  constructor(
    readonly db: Db,
    table: string,
    key: string,
    private readonly idOf: (doc: T) => string,
  ) {
    this.getStmt = db.prepare<[string], { doc: string }>(`SELECT doc FROM ${table} WHERE ${key} = ?`);
    this.pageStmt = db.prepare<[number], { doc: string }>(`SELECT doc FROM ${table} ORDER BY ${key} LIMIT ?`);
    this.pageAfterStmt = db.prepare<[string, number], { doc: string }>(
      `SELECT doc FROM ${table} WHERE ${key} > ? ORDER BY ${key} LIMIT ?`,
    );
    this.allStmt = db.prepare<[], { doc: string }>(`SELECT doc FROM ${table} ORDER BY ${key}`);
    this.insertStmt = db.prepare(`INSERT INTO ${table} (${key}, etag, doc) VALUES (@id, @etag, @doc) ON CONFLICT(${key}) DO NOTHING`);
    this.replaceStmt = db.prepare(`UPDATE ${table} SET etag = @etag, doc = @doc WHERE ${key} = @id`);
    this.replaceIfStmt = db.prepare(`UPDATE ${table} SET etag = @etag, doc = @doc WHERE ${key} = @id AND etag = @ifEtag`);
    this.deleteStmt = db.prepare(`DELETE FROM ${table} WHERE ${key} = ?`);
    this.deleteIfStmt = db.prepare(`DELETE FROM ${table} WHERE ${key} = ? AND etag = ?`);
  }

  get(id: string): T | undefined {
    const row = this.getStmt.get(id);
    return row && (JSON.parse(row.doc) as T);
  }

  all(): T[] {
    return this.allStmt.all().map((r) => JSON.parse(r.doc) as T);
  }

  page(pageSize: number, after?: string): Page<T> {
    // One extra row tells whether another page follows.
    const rows = after === undefined ? this.pageStmt.all(pageSize + 1) : this.pageAfterStmt.all(after, pageSize + 1);
    const items = rows.slice(0, pageSize).map((r) => JSON.parse(r.doc) as T);
    return rows.length > pageSize ? { items, continuation: this.idOf(items[items.length - 1]!) } : { items };
  }

  insert(doc: T & { etag: string }): boolean {
    return this.insertStmt.run({ id: this.idOf(doc), etag: doc.etag, doc: JSON.stringify(doc) }).changes === 1;
  }

  replace(doc: T & { etag: string }, ifEtag?: string): WriteResult {
    const params = { id: this.idOf(doc), etag: doc.etag, doc: JSON.stringify(doc) };
    const changes = ifEtag === undefined ? this.replaceStmt.run(params).changes : this.replaceIfStmt.run({ ...params, ifEtag }).changes;
    return changes === 1 ? 'ok' : this.missOrMismatch(params.id);
  }

  delete(id: string, ifEtag?: string): WriteResult {
    const changes = ifEtag === undefined ? this.deleteStmt.run(id).changes : this.deleteIfStmt.run(id, ifEtag).changes;
    return changes === 1 ? 'ok' : this.missOrMismatch(id);
  }

  private missOrMismatch(id: string): WriteResult {
    return this.getStmt.get(id) ? 'etagMismatch' : 'notFound';
  }
}

class SqliteEnrollmentStore implements EnrollmentStore {
  private readonly t: DocumentTable<IndividualEnrollment>;
  constructor(private readonly db: Db) {
    this.t = new DocumentTable(db, 'dps_enrollments', 'registration_id', (e) => e.registrationId);
  }
  async get(id: string) {
    return this.t.get(id);
  }
  async list(pageSize: number, after?: string) {
    return this.t.page(pageSize, after);
  }
  async insert(e: IndividualEnrollment) {
    return this.t.insert(e);
  }
  async replace(e: IndividualEnrollment, ifEtag?: string) {
    return this.t.replace(e, ifEtag);
  }
  async delete(id: string, ifEtag?: string) {
    return this.t.delete(id, ifEtag);
  }
  async applyEach(writes: EnrollmentWrite[]): Promise<(WriteResult | 'exists')[]> {
    const run = this.db.transaction(() =>
      writes.map((w) => {
        // Each write on its own is atomic (one statement), so a failure leaves nothing to undo.
        switch (w.kind) {
          case 'insert':
            return this.t.insert(w.enrollment) ? 'ok' : 'exists';
          case 'replace':
            return this.t.replace(w.enrollment, w.ifEtag);
          case 'delete':
            return this.t.delete(w.registrationId, w.ifEtag);
        }
      }),
    );
    return run();
  }
}

class SqliteEnrollmentGroupStore implements EnrollmentGroupStore {
  private readonly t: DocumentTable<EnrollmentGroup>;
  private readonly refStmt;
  constructor(db: Db) {
    this.t = new DocumentTable(db, 'dps_enrollment_groups', 'enrollment_group_id', (g) => g.enrollmentGroupId);
    this.refStmt = db.prepare<[string, string], { n: number }>(
      `SELECT 1 AS n FROM dps_enrollment_groups
       WHERE json_extract(doc, '$.attestation.x509.caReferences.primary') = ?
          OR json_extract(doc, '$.attestation.x509.caReferences.secondary') = ? LIMIT 1`,
    );
  }
  async get(id: string) {
    return this.t.get(id);
  }
  async list(pageSize: number, after?: string) {
    return this.t.page(pageSize, after);
  }
  async insert(g: EnrollmentGroup) {
    return this.t.insert(g);
  }
  async replace(g: EnrollmentGroup, ifEtag?: string) {
    return this.t.replace(g, ifEtag);
  }
  async delete(id: string, ifEtag?: string) {
    return this.t.delete(id, ifEtag);
  }
  async referencesCertificate(name: string) {
    return this.refStmt.get(name, name) !== undefined;
  }
}

class SqliteRegistrationStore implements RegistrationStore {
  private readonly getStmt;
  private readonly pageStmt;
  private readonly upsertStmt;
  private readonly upsertIfStmt;
  private readonly t: DocumentTable<RegistrationRecord>;

  constructor(db: Db) {
    this.t = new DocumentTable(db, 'dps_registrations', 'registration_id', (r) => r.state.registrationId);
    this.getStmt = db.prepare<[string], { doc: string }>('SELECT doc FROM dps_registrations WHERE registration_id = ?');
    this.pageStmt = db.prepare<[string, string, number], { doc: string }>(
      `SELECT doc FROM dps_registrations WHERE enrollment_group_id = ? AND registration_id > ? ORDER BY registration_id LIMIT ?`,
    );
    this.upsertStmt = db.prepare(
      `INSERT INTO dps_registrations (registration_id, enrollment_group_id, etag, doc) VALUES (@id, @group, @etag, @doc)
       ON CONFLICT(registration_id) DO UPDATE SET enrollment_group_id = excluded.enrollment_group_id, etag = excluded.etag, doc = excluded.doc`,
    );
    this.upsertIfStmt = db.prepare(
      `UPDATE dps_registrations SET enrollment_group_id = @group, etag = @etag, doc = @doc WHERE registration_id = @id AND etag = @ifEtag`,
    );
  }
  async get(id: string) {
    const row = this.getStmt.get(id);
    return row && (JSON.parse(row.doc) as RegistrationRecord);
  }
  async listForGroup(groupId: string, pageSize: number, after?: string): Promise<Page<DeviceRegistrationState>> {
    const rows = this.pageStmt.all(groupId, after ?? '', pageSize + 1).map((r) => (JSON.parse(r.doc) as RegistrationRecord).state);
    const items = rows.slice(0, pageSize);
    return rows.length > pageSize ? { items, continuation: items[items.length - 1]!.registrationId } : { items };
  }
  async put(record: RegistrationRecord, ifEtag?: string): Promise<WriteResult> {
    const params = { id: record.state.registrationId, group: record.enrollmentGroupId ?? null, etag: record.state.etag, doc: JSON.stringify(record) };
    if (ifEtag === undefined) {
      this.upsertStmt.run(params);
      return 'ok';
    }
    if (this.upsertIfStmt.run({ ...params, ifEtag }).changes === 1) return 'ok';
    return (await this.get(params.id)) ? 'etagMismatch' : 'notFound';
  }
  async delete(id: string, ifEtag?: string) {
    return this.t.delete(id, ifEtag);
  }
}

class SqliteRegistrationOperationStore implements RegistrationOperationStore {
  private readonly putStmt;
  private readonly getStmt;
  private readonly sweepStmt;
  constructor(db: Db) {
    this.putStmt = db.prepare(
      `INSERT INTO dps_operations (operation_id, registration_id, expires_at, doc) VALUES (@id, @registrationId, @expiresAt, @doc)
       ON CONFLICT(operation_id) DO UPDATE SET registration_id = excluded.registration_id, expires_at = excluded.expires_at, doc = excluded.doc`,
    );
    this.getStmt = db.prepare<[string, string, number], { doc: string }>(
      'SELECT doc FROM dps_operations WHERE operation_id = ? AND registration_id = ? AND expires_at >= ?',
    );
    this.sweepStmt = db.prepare<[number]>('DELETE FROM dps_operations WHERE expires_at < ?');
  }
  async put(op: RegistrationOperationRecord) {
    this.putStmt.run({ id: op.operationId, registrationId: op.registrationId, expiresAt: op.expiresAt, doc: JSON.stringify(op) });
  }
  async get(operationId: string, registrationId: string, now: number) {
    const row = this.getStmt.get(operationId, registrationId, now);
    return row && (JSON.parse(row.doc) as RegistrationOperationRecord);
  }
  async sweep(now: number) {
    return this.sweepStmt.run(now).changes;
  }
}

class SqliteDpsCertificateStore implements DpsCertificateStore {
  private readonly t: DocumentTable<DpsCertificate>;
  constructor(db: Db) {
    this.t = new DocumentTable(db, 'dps_certificates', 'name', (c) => c.name);
  }
  async get(name: string) {
    return this.t.get(name);
  }
  async list() {
    return this.t.all();
  }
  async insert(c: DpsCertificate) {
    return this.t.insert(c);
  }
  async replace(c: DpsCertificate, ifEtag?: string) {
    return this.t.replace(c, ifEtag);
  }
  async delete(name: string, ifEtag?: string) {
    return this.t.delete(name, ifEtag);
  }
}

class SqliteDpsPolicyStore implements DpsPolicyStore {
  private readonly listStmt;
  private readonly getStmt;
  private readonly putStmt;
  constructor(db: Db) {
    this.listStmt = db.prepare<[], { doc: string }>('SELECT doc FROM dps_policies ORDER BY rowid');
    this.getStmt = db.prepare<[string], { doc: string }>('SELECT doc FROM dps_policies WHERE key_name = ?');
    this.putStmt = db.prepare(
      'INSERT INTO dps_policies (key_name, doc) VALUES (@keyName, @doc) ON CONFLICT(key_name) DO UPDATE SET doc = excluded.doc',
    );
  }
  async list() {
    return this.listStmt.all().map((r) => JSON.parse(r.doc) as DpsSharedAccessPolicy);
  }
  async get(keyName: string) {
    const row = this.getStmt.get(keyName);
    return row && (JSON.parse(row.doc) as DpsSharedAccessPolicy);
  }
  async put(policy: DpsSharedAccessPolicy) {
    this.putStmt.run({ keyName: policy.keyName, doc: JSON.stringify(policy) });
  }
}

class SqliteDpsSettingsStore implements DpsSettingsStore {
  private readonly getStmt;
  private readonly insertStmt;
  constructor(db: Db) {
    this.getStmt = db.prepare<[string], { value: string }>('SELECT value FROM dps_settings WHERE name = ?');
    this.insertStmt = db.prepare('INSERT INTO dps_settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING');
  }
  async get(name: string) {
    return this.getStmt.get(name)?.value;
  }
  async setOnce(name: string, value: string) {
    this.insertStmt.run(name, value);
    return this.getStmt.get(name)!.value;
  }
}

export function openSqliteDpsStore(db: Db): DpsStore {
  return {
    enrollments: new SqliteEnrollmentStore(db),
    enrollmentGroups: new SqliteEnrollmentGroupStore(db),
    registrations: new SqliteRegistrationStore(db),
    operations: new SqliteRegistrationOperationStore(db),
    certificates: new SqliteDpsCertificateStore(db),
    policies: new SqliteDpsPolicyStore(db),
    settings: new SqliteDpsSettingsStore(db),
  };
}
