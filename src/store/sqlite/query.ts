import type { Db } from './database.js';
import type { QueryCursor, QueryRows, QueryStore, TwinRecord } from '../index.js';
import type { Query } from '../../hub/query/ast.js';
import type { Device, Module } from '../../hub/registry/types.js';
import type { DeviceJob } from '../../hub/jobs/types.js';
import type { JsonObject, TwinState } from '../../hub/twins/types.js';
import { createHash } from 'node:crypto';
import { QueryCompiler, sargable, sourceOf, sqlString, whereSql, type Sargable } from './queryCompiler.js';
import { QueryThreadGone, type QueryThread, type Row } from './queryThread.js';

/** Prepared statements are cached by their SQL: applications repeat the same queries. */
export const MAX_CACHED_STATEMENTS = 256;

/**
 * Twin paths that queries keep filtering on get an expression index, the way IoT Hub's document
 * store indexes every path. Bounded, since each index costs every twin write a little.
 */
export const AUTO_INDEX = { afterUses: 3, minTwins: 5000, maxIndexes: 16, maxShare: 0.1 } as const;

export class SqliteQueryStore implements QueryStore {
  private readonly statements = new Map<string, ReturnType<Db['prepare']>>();
  private readonly pathUses = new Map<string, number>();
  /** Indexed paths, with the rows an equality on each is expected to match (from ANALYZE). */
  private readonly indexed = new Map<string, { rows: number; perValue: number }>();

  /**
   * @param thread where the SELECTs run, when given (the hub's: off its event loop); the store's
   * own connection otherwise, and once the thread has failed.
   */
  constructor(
    private readonly db: Db,
    private readonly thread?: QueryThread,
  ) {
    for (const { sql } of db.prepare<[], { sql: string }>(`SELECT sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'twins_path_%'`).all()) {
      const m = /json_extract\(doc, '(.*)'\)/.exec(sql);
      if (m) this.indexed.set(m[1]!.replace(/''/g, "'"), this.statistics(indexName(m[1]!.replace(/''/g, "'"))));
    }
  }

  /**
   * An index serves equalities that pick out few twins; for broad ones a scan in key order, which
   * stops as soon as a page is full, is faster than collecting and sorting every match.
   */
  private useIndex = (s: Sargable): boolean => {
    const stats = this.indexed.get(s.path);
    return !!stats && s.equalities > 0 && s.equalities * stats.perValue <= AUTO_INDEX.maxShare * stats.rows;
  };

  private statistics(index: string): { rows: number; perValue: number } {
    const row = this.db.prepare<[string], { stat: string }>('SELECT stat FROM sqlite_stat1 WHERE idx = ?').get(index);
    const [rows, perValue] = (row?.stat ?? '').split(' ').map(Number);
    return { rows: rows ?? 0, perValue: perValue ?? Infinity };
  }

  async run(query: Query, limit: number, cursor: QueryCursor = {}): Promise<QueryRows & { next?: QueryCursor }> {
    if (query.where) this.noteFilteredPaths(sargable(query.from, query.where).map((s) => s.path));
    const source = sourceOf(query.from);
    const where = whereSql(query, this.useIndex);
    const compiler = new QueryCompiler(query.from);

    if (query.select !== '*' && (query.groupBy || query.select.some((s) => s.expr.kind === 'aggregate'))) {
      const items = query.select;
      const columns = items.map((s, i) => `${compiler.json(s.expr)} AS c${i}`).join(', ');
      if (!query.groupBy) {
        // One row of aggregates over the whole filtered collection.
        if ((cursor.offset ?? 0) > 0 || limit < 1) return { type: 'raw', items: [] };
        const row = (await this.all(`SELECT ${columns} FROM ${source.fromFor(columns + where)} WHERE ${where}`, []))[0]!;
        return { type: 'raw', items: [rawItem(row, items.map((s) => s.name))] };
      }
      const keys = query.groupBy.map((g) => compiler.json(g));
      const offset = cursor.offset ?? 0;
      const rows = await this.all(
        `SELECT ${columns} FROM ${source.fromFor(columns + where + keys.join())} WHERE ${where} GROUP BY ${keys.join(', ')} ORDER BY ${keys.join(', ')} LIMIT ? OFFSET ?`,
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

    const rows = await this.all(`SELECT ${keyColumns}, ${select} FROM ${source.fromFor(select + where)} WHERE ${where}${keyset}${order}`, params);
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

  private noteFilteredPaths(paths: string[]): void {
    for (const path of new Set(paths)) {
      if (this.indexed.has(path) || this.indexed.size >= AUTO_INDEX.maxIndexes) continue;
      const uses = (this.pathUses.get(path) ?? 0) + 1;
      this.pathUses.set(path, uses);
      if (uses < AUTO_INDEX.afterUses) continue;
      if (this.db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM twin_query_docs').get()!.n < AUTO_INDEX.minTwins) continue;
      const name = indexName(path);
      this.db.exec(`CREATE INDEX IF NOT EXISTS ${name} ON twin_query_docs (json_extract(doc, ${sqlString(path)}))`);
      // Statistics tell a selective index from one that is not (for us and SQLite's planner).
      this.db.exec(`ANALYZE ${name}`);
      this.indexed.set(path, this.statistics(name));
    }
  }

  private async all(sql: string, params: unknown[]): Promise<Row[]> {
    if (this.thread?.available) {
      try {
        return await this.thread.all(sql, params);
      } catch (e) {
        if (!(e instanceof QueryThreadGone)) throw e;
      }
    }
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      if (this.statements.size >= MAX_CACHED_STATEMENTS) this.statements.delete(this.statements.keys().next().value!);
      this.statements.set(sql, stmt);
    }
    return (stmt as unknown as { all(...p: unknown[]): Row[] }).all(...params);
  }
}

function indexName(path: string): string {
  return `twins_path_${createHash('sha1').update(path).digest('hex').slice(0, 12)}`;
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
  const doc = JSON.parse(r.twin as string) as Pick<TwinState, 'tags' | 'desired' | 'reported' | 'configurations' | 'configurationContent'>;
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
