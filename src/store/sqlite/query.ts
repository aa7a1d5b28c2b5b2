import type { Db } from './database.js';
import type { QueryCursor, QueryRows, QueryStore, TwinRecord } from '../index.js';
import type { Query } from '../../hub/query/ast.js';
import type { Device, Module } from '../../hub/registry/types.js';
import type { DeviceJob } from '../../hub/jobs/types.js';
import type { JsonObject, TwinState } from '../../hub/twins/types.js';
import { QueryCompiler, sourceOf, whereSql } from './queryCompiler.js';

type Row = Record<string, string | number | null>;

/** Prepared statements are cached by their SQL: applications repeat the same queries. */
const MAX_CACHED_STATEMENTS = 256;

export class SqliteQueryStore implements QueryStore {
  private readonly statements = new Map<string, ReturnType<Db['prepare']>>();

  constructor(private readonly db: Db) {}

  async run(query: Query, limit: number, cursor: QueryCursor = {}): Promise<QueryRows & { next?: QueryCursor }> {
    const source = sourceOf(query.from);
    const where = whereSql(query);
    const compiler = new QueryCompiler(query.from);

    if (query.select !== '*' && (query.groupBy || query.select.some((s) => s.expr.kind === 'aggregate'))) {
      const items = query.select;
      const columns = items.map((s, i) => `${compiler.json(s.expr)} AS c${i}`).join(', ');
      if (!query.groupBy) {
        // One row of aggregates over the whole filtered collection.
        if ((cursor.offset ?? 0) > 0 || limit < 1) return { type: 'raw', items: [] };
        const row = this.all(`SELECT ${columns} FROM ${source.from} WHERE ${where}`, [])[0]!;
        return { type: 'raw', items: [rawItem(row, items.map((s) => s.name))] };
      }
      const keys = query.groupBy.map((g) => compiler.json(g));
      const offset = cursor.offset ?? 0;
      const rows = this.all(
        `SELECT ${columns} FROM ${source.from} WHERE ${where} GROUP BY ${keys.join(', ')} ORDER BY ${keys.join(', ')} LIMIT ? OFFSET ?`,
        [limit + 1, offset],
      );
      const more = rows.length > limit;
      return {
        type: 'raw',
        items: rows.slice(0, limit).map((r) => rawItem(r, items.map((s) => s.name))),
        next: more ? { offset: offset + limit } : undefined,
      };
    }

    const keyColumns = source.keys.map((k, i) => `${k} AS k${i}`).join(', ');
    const params: unknown[] = [];
    let keyset = '';
    if (cursor.after) {
      if (cursor.after.length !== source.keys.length) return { type: 'raw', items: [] };
      keyset = ` AND (${source.keys.join(', ')}) > (${source.keys.map(() => '?').join(', ')})`;
      params.push(...cursor.after);
    }
    params.push(limit + 1);
    const order = ` ORDER BY ${source.keys.join(', ')} LIMIT ?`;
    let select: string;
    if (query.select !== '*') select = query.select.map((s, i) => `${compiler.json(s.expr)} AS c${i}`).join(', ');
    else if (query.from === 'devices.jobs') select = 'j.doc AS job';
    else if (query.from === 'devices') select = 't.version, t.etag, t.doc AS twin, d.doc AS device';
    else select = 't.version, t.etag, t.doc AS twin, d.doc AS device, m.doc AS module';

    const rows = this.all(`SELECT ${keyColumns}, ${select} FROM ${source.from} WHERE ${where}${keyset}${order}`, params);
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const next = more && last ? { after: source.keys.map((_, i) => String(last[`k${i}`])) } : undefined;

    if (query.select !== '*') {
      const names = query.select.map((s) => s.name);
      return { type: 'raw', items: page.map((r) => rawItem(r, names)), next };
    }
    if (query.from === 'devices.jobs') {
      return { type: 'deviceJobs', items: page.map((r) => JSON.parse(r.job as string) as DeviceJob), next };
    }
    return { type: 'twins', items: page.map(twinRecord), next };
  }

  private all(sql: string, params: unknown[]): Row[] {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      if (this.statements.size >= MAX_CACHED_STATEMENTS) this.statements.delete(this.statements.keys().next().value!);
      this.statements.set(sql, stmt);
    }
    return (stmt as unknown as { all(...p: unknown[]): Row[] }).all(...params);
  }
}

function rawItem(row: Row, names: string[]): JsonObject {
  const item: JsonObject = {};
  names.forEach((name, i) => {
    const v = row[`c${i}`];
    // Undefined values are left out of the result, as IoT Hub does.
    if (v !== null && v !== undefined) item[name] = JSON.parse(String(v));
  });
  return item;
}

function twinRecord(r: Row): TwinRecord {
  const doc = JSON.parse(r.twin as string) as Pick<TwinState, 'tags' | 'desired' | 'reported'>;
  const state: TwinState = {
    deviceId: r.k0 as string,
    moduleId: (r.k1 as string | undefined) ?? '',
    version: r.version as number,
    etag: r.etag as string,
    ...doc,
  };
  const record: TwinRecord = { state, device: JSON.parse(r.device as string) as Device };
  if (r.module) record.module = JSON.parse(r.module as string) as Module;
  return record;
}
