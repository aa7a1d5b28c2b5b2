import type { Db } from './database.js';
import type { PolicyStore } from '../index.js';
import type { SharedAccessPolicy } from '../../hub/auth/types.js';

export class SqlitePolicyStore implements PolicyStore {
  private readonly listStmt;
  private readonly getStmt;
  private readonly putStmt;

  constructor(db: Db) {
    this.listStmt = db.prepare<[], { doc: string }>('SELECT doc FROM policies ORDER BY rowid');
    this.getStmt = db.prepare<[string], { doc: string }>('SELECT doc FROM policies WHERE key_name = ?');
    this.putStmt = db.prepare(
      'INSERT INTO policies (key_name, doc) VALUES (@keyName, @doc) ON CONFLICT(key_name) DO UPDATE SET doc = excluded.doc',
    );
  }

  async list(): Promise<SharedAccessPolicy[]> {
    return this.listStmt.all().map((r) => JSON.parse(r.doc) as SharedAccessPolicy);
  }

  async get(keyName: string): Promise<SharedAccessPolicy | undefined> {
    const row = this.getStmt.get(keyName);
    return row && (JSON.parse(row.doc) as SharedAccessPolicy);
  }

  async put(policy: SharedAccessPolicy): Promise<void> {
    this.putStmt.run({ keyName: policy.keyName, doc: JSON.stringify(policy) });
  }
}
