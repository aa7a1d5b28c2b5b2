import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Db } from './database.js';

export const controlDatabasePath = (dataDir: string) => join(dataDir, 'control.db');

/**
 * The process-level database (`<dataDir>/control.db`): tenancy, principals, signing keys, role
 * assignments and ARM resources, shared by every hub of the process. Each store module creates
 * its own tables (`CREATE TABLE IF NOT EXISTS`) when it opens on it.
 */
export function openControlDatabase(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = new Database(controlDatabasePath(dataDir));
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}
