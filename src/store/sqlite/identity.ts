import type { Db } from './database.js';
import type { HubIdentityRecord, IdentityStore } from '../identity.js';
import type { Principal, RoleAssignment, Tenancy } from '../../identity/types.js';

const schema = `
  CREATE TABLE IF NOT EXISTS identity_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS identity_principals (
    principal_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    resource_id_lower TEXT,
    doc TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS identity_principals_by_resource ON identity_principals (resource_id_lower);
  CREATE TABLE IF NOT EXISTS identity_role_assignments (id_lower TEXT PRIMARY KEY, doc TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS identity_hub_identities (hub_resource_id_lower TEXT PRIMARY KEY, doc TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS identity_hub_headers (hub_name_lower TEXT PRIMARY KEY, header TEXT NOT NULL);`;

/** The identity area's tables on control.db. */
export function openSqliteIdentityStore(db: Db): IdentityStore {
  db.exec(schema);
  const getSetting = db.prepare<[string], { value: string }>('SELECT value FROM identity_settings WHERE name = ?');
  const putSetting = db.prepare('INSERT OR IGNORE INTO identity_settings (name, value) VALUES (?, ?)');
  const principalById = db.prepare<[string], { doc: string }>('SELECT doc FROM identity_principals WHERE principal_id = ?');
  const principalByClient = db.prepare<[string], { doc: string }>('SELECT doc FROM identity_principals WHERE client_id = ?');
  const principalByResource = db.prepare<[string], { doc: string }>('SELECT doc FROM identity_principals WHERE resource_id_lower = ?');
  const insertPrincipal = db.prepare('INSERT INTO identity_principals (principal_id, client_id, resource_id_lower, doc) VALUES (?, ?, ?, ?)');
  const deletePrincipal = db.prepare('DELETE FROM identity_principals WHERE principal_id = ?');
  const assignmentById = db.prepare<[string], { doc: string }>('SELECT doc FROM identity_role_assignments WHERE id_lower = ?');
  const allAssignments = db.prepare<[], { doc: string }>('SELECT doc FROM identity_role_assignments ORDER BY rowid');
  const insertAssignment = db.prepare('INSERT OR IGNORE INTO identity_role_assignments (id_lower, doc) VALUES (?, ?)');
  const deleteAssignment = db.prepare('DELETE FROM identity_role_assignments WHERE id_lower = ?');
  const hubById = db.prepare<[string], { doc: string }>('SELECT doc FROM identity_hub_identities WHERE hub_resource_id_lower = ?');
  const putHub = db.prepare('INSERT OR REPLACE INTO identity_hub_identities (hub_resource_id_lower, doc) VALUES (?, ?)');
  const headerOf = db.prepare<[string], { header: string }>('SELECT header FROM identity_hub_headers WHERE hub_name_lower = ?');
  const putHeader = db.prepare('INSERT OR IGNORE INTO identity_hub_headers (hub_name_lower, header) VALUES (?, ?)');

  const parse = <T>(row: { doc: string } | undefined): T | undefined => (row ? (JSON.parse(row.doc) as T) : undefined);
  const setting = <T>(name: string, create: () => T): T => {
    const existing = getSetting.get(name);
    if (existing) return JSON.parse(existing.value) as T;
    putSetting.run(name, JSON.stringify(create()));
    return JSON.parse(getSetting.get(name)!.value) as T;
  };
  const addPrincipal = (p: Principal) => insertPrincipal.run(p.principalId, p.clientId, p.resourceId?.toLowerCase() ?? null, JSON.stringify(p));

  return {
    async tenancy(create: () => Tenancy) {
      return db.transaction(() => setting('tenancy', create))();
    },
    async signingKey(create) {
      const existing = getSetting.get('signingKey');
      if (existing) return JSON.parse(existing.value) as Record<string, unknown>;
      const key = await create();
      putSetting.run('signingKey', JSON.stringify(key));
      return JSON.parse(getSetting.get('signingKey')!.value) as Record<string, unknown>;
    },
    async principal(id) {
      return parse<Principal>(principalById.get(id.toLowerCase()));
    },
    async principalByClientId(clientId) {
      return parse<Principal>(principalByClient.get(clientId.toLowerCase()));
    },
    async principalByResourceId(resourceId) {
      return parse<Principal>(principalByResource.get(resourceId.toLowerCase()));
    },
    async insertPrincipal(p) {
      addPrincipal(p);
    },
    async deletePrincipal(id) {
      return deletePrincipal.run(id.toLowerCase()).changes > 0;
    },
    async roleAssignment(id) {
      return parse<RoleAssignment>(assignmentById.get(id.toLowerCase()));
    },
    async roleAssignments() {
      return allAssignments.all().map((r) => JSON.parse(r.doc) as RoleAssignment);
    },
    async insertRoleAssignment(a) {
      return insertAssignment.run(a.id.toLowerCase(), JSON.stringify(a)).changes > 0;
    },
    async deleteRoleAssignment(id) {
      return deleteAssignment.run(id.toLowerCase()).changes > 0;
    },
    async hubIdentity(hubResourceId) {
      return parse<HubIdentityRecord>(hubById.get(hubResourceId.toLowerCase()));
    },
    async putHubIdentity(record: HubIdentityRecord, deletePrincipalIds: string[], createPrincipals: Principal[]) {
      db.transaction(() => {
        for (const id of deletePrincipalIds) deletePrincipal.run(id.toLowerCase());
        for (const p of createPrincipals) addPrincipal(p);
        putHub.run(record.hubResourceId.toLowerCase(), JSON.stringify(record));
      })();
    },
    async identityHeader(hubName, create) {
      const key = hubName.toLowerCase();
      const existing = headerOf.get(key);
      if (existing) return existing.header;
      putHeader.run(key, create());
      return headerOf.get(key)!.header;
    },
  };
}
