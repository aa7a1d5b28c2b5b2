import type { Db } from './database.js';
import type { ControlResourceStore, ResourceGroupRecord, ResourceRecord } from '../control.js';

const schema = `
  CREATE TABLE IF NOT EXISTS arm_resource_groups (
    name_key TEXT PRIMARY KEY,
    doc TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS arm_resources (
    id_key TEXT PRIMARY KEY,
    group_key TEXT NOT NULL,
    type_key TEXT NOT NULL,
    doc TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS arm_resources_by_group ON arm_resources (group_key, type_key);
  CREATE TABLE IF NOT EXISTS arm_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);`;

/** ARM resource groups and resources in control.db; keys are lower-cased ids, documents keep the spelling. */
export function openSqliteControlResources(db: Db): ControlResourceStore {
  db.exec(schema);
  const key = (s: string) => s.toLowerCase();
  const getGroup = db.prepare<[string], { doc: string }>('SELECT doc FROM arm_resource_groups WHERE name_key = ?');
  const listGroups = db.prepare<[], { doc: string }>('SELECT doc FROM arm_resource_groups ORDER BY name_key');
  const putGroup = db.prepare<[string, string]>('INSERT OR REPLACE INTO arm_resource_groups (name_key, doc) VALUES (?, ?)');
  const deleteGroup = db.prepare<[string]>('DELETE FROM arm_resource_groups WHERE name_key = ?');
  const getResource = db.prepare<[string], { doc: string }>('SELECT doc FROM arm_resources WHERE id_key = ?');
  const listAll = db.prepare<[], { doc: string }>('SELECT doc FROM arm_resources ORDER BY id_key');
  const putResource = db.prepare<[string, string, string, string]>(
    'INSERT OR REPLACE INTO arm_resources (id_key, group_key, type_key, doc) VALUES (?, ?, ?, ?)',
  );
  const deleteResource = db.prepare<[string]>('DELETE FROM arm_resources WHERE id_key = ?');
  const getSetting = db.prepare<[string], { value: string }>('SELECT value FROM arm_settings WHERE name = ?');
  const setSetting = db.prepare<[string, string]>('INSERT OR REPLACE INTO arm_settings (name, value) VALUES (?, ?)');
  return {
    groups: {
      get: (name) => parse<ResourceGroupRecord>(getGroup.get(key(name))?.doc),
      list: () => listGroups.all().map((r) => JSON.parse(r.doc) as ResourceGroupRecord),
      put: (group) => void putGroup.run(key(group.name), JSON.stringify(group)),
      delete: (name) => deleteGroup.run(key(name)).changes > 0,
    },
    resources: {
      get: (id) => parse<ResourceRecord>(getResource.get(key(id))?.doc),
      list: (filter = {}) =>
        listAll
          .all()
          .map((r) => JSON.parse(r.doc) as ResourceRecord)
          .filter((r) => (filter.resourceGroup === undefined || key(r.resourceGroup) === key(filter.resourceGroup)) && (filter.type === undefined || key(r.type) === key(filter.type))),
      put: (r) => void putResource.run(key(r.id), key(r.resourceGroup), key(r.type), JSON.stringify(r)),
      delete: (id) => deleteResource.run(key(id)).changes > 0,
    },
    transaction: <T>(fn: () => T) => db.transaction(fn)(),
    settings: {
      get: (name) => getSetting.get(name)?.value,
      set: (name, value) => void setSetting.run(name, value),
    },
  };
}

function parse<T>(doc: string | undefined): T | undefined {
  return doc === undefined ? undefined : (JSON.parse(doc) as T);
}
