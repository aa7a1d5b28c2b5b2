import type { Store } from '../index.js';
import { openDatabase, type Db } from './database.js';
import { SqliteDeviceStore } from './devices.js';
import { SqliteModuleStore } from './modules.js';
import { SqlitePolicyStore } from './policies.js';
import { SqliteTwinStore } from './twins.js';
import { SqliteC2dQueue } from './cloudToDevice.js';
import { SqliteC2dFeedback } from './c2dFeedback.js';
import { SqliteConsumerGroups } from './consumerGroups.js';
import { SqliteQueryStore } from './query.js';
import { SqliteJobStore } from './jobs.js';
import { SqliteEventLog } from './eventLog.js';
import { SqliteCaCertificateStore } from './caCertificates.js';
import { SqliteConfigurationStore } from './configurations.js';

export interface SqliteStore extends Store {
  /** The connection, for stores added by later features that share the same file. */
  readonly db: Db;
}

export function openSqliteStore(path: string): SqliteStore {
  const db = openDatabase(path);
  return {
    db,
    devices: new SqliteDeviceStore(db),
    modules: new SqliteModuleStore(db),
    policies: new SqlitePolicyStore(db),
    twins: new SqliteTwinStore(db),
    cloudToDevice: new SqliteC2dQueue(db),
    cloudToDeviceFeedback: new SqliteC2dFeedback(db),
    consumerGroups: new SqliteConsumerGroups(db),
    queries: new SqliteQueryStore(db),
    jobs: new SqliteJobStore(db),
    eventLog: new SqliteEventLog(db),
    caCertificates: new SqliteCaCertificateStore(db),
    configurations: new SqliteConfigurationStore(db),
    close: () => db.close(),
  };
}
