import type { Store } from '../index.js';
import { openDatabase, type Db } from './database.js';
import { SqliteDeviceStore } from './devices.js';
import { SqliteModuleStore } from './modules.js';
import { SqlitePolicyStore } from './policies.js';
import { SqliteTwinStore } from './twins.js';
import { SqliteC2dQueue } from './cloudToDevice.js';
import { SqliteC2dFeedback } from './c2dFeedback.js';
import { SqliteConsumerGroups } from './consumerGroups.js';
import { MAX_CACHED_STATEMENTS, SqliteQueryStore } from './query.js';
import { QueryThread } from './queryThread.js';
import { SqliteJobStore } from './jobs.js';
import { SqliteEventLogs } from './eventLog.js';
import { BUILT_IN_ENTITY } from '../eventLog.js';
import { SqliteCaCertificateStore } from './caCertificates.js';
import { SqliteConfigurationStore } from './configurations.js';

export interface SqliteStore extends Store {
  /** The connection, for stores added by later features that share the same file. */
  readonly db: Db;
}

export interface SqliteStoreOptions {
  /**
   * Run queries' statements in a thread of their own (queryThread.ts), as the hub does: what it
   * is told when the thread fails (queries then run on the caller's thread).
   */
  queryThread?: { onError(message: string): void };
}

export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqliteStore {
  const db = openDatabase(path);
  const eventLogs = new SqliteEventLogs(db);
  const queryThread = options.queryThread && new QueryThread(db.name, options.queryThread.onError, MAX_CACHED_STATEMENTS);
  return {
    db,
    devices: new SqliteDeviceStore(db),
    modules: new SqliteModuleStore(db),
    policies: new SqlitePolicyStore(db),
    twins: new SqliteTwinStore(db),
    cloudToDevice: new SqliteC2dQueue(db),
    cloudToDeviceFeedback: new SqliteC2dFeedback(db),
    consumerGroups: new SqliteConsumerGroups(db),
    queries: new SqliteQueryStore(db, queryThread),
    jobs: new SqliteJobStore(db),
    eventLog: eventLogs.entity(BUILT_IN_ENTITY),
    eventLogs,
    caCertificates: new SqliteCaCertificateStore(db),
    configurations: new SqliteConfigurationStore(db),
    close: () => {
      queryThread?.stop();
      db.close();
    },
  };
}
