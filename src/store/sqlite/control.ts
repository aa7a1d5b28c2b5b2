import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Db } from './database.js';

/**
 * The process-level database `<dataDir>/control.db`: ARM resources (control plane) and, beside
 * them, identity's tables. Each store module creates its own tables (`CREATE TABLE IF NOT EXISTS`).
 */
export function openControlDatabase(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = new Database(join(dataDir, 'control.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  return db;
}
