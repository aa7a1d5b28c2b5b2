import Database from 'better-sqlite3';
import { dpsGroupIdsNocaseMigrationSql, dpsMigrationSql, dpsOperationsMigrationSql } from './dps.js';
import { eventHubsMigrationSql } from './eventHubs.js';

export type Db = Database.Database;

/**
 * Schema migrations by name, applied once each in list order and recorded in `schema_migrations`.
 * Names (not positions) identify them so that features built in parallel can each add their own.
 * Append only: never edit a migration that has shipped.
 */
/** base64 of version 1 as an 8-byte big-endian number: IoT Hub's twin etag style. */
const FIRST_TWIN_ETAG = 'AAAAAAAAAAE=';
const NEW_TWIN_SECTION = `json_object('$metadata', json_object('$lastUpdated', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), '$version', 1)`;
const NEW_TWIN_DOC = `json_object('tags', json_object(), 'desired', ${NEW_TWIN_SECTION}, 'reported', ${NEW_TWIN_SECTION})`;

export const migrations: { name: string; sql: string }[] = [
  {
    name: '001-registry',
    sql: `CREATE TABLE devices (
            device_id TEXT PRIMARY KEY,
            etag TEXT NOT NULL,
            status TEXT NOT NULL,
            connection_state TEXT NOT NULL,
            doc TEXT NOT NULL
          );
          CREATE TABLE modules (
            device_id TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
            module_id TEXT NOT NULL,
            etag TEXT NOT NULL,
            doc TEXT NOT NULL,
            PRIMARY KEY (device_id, module_id)
          );
          CREATE TABLE policies (
            key_name TEXT PRIMARY KEY,
            doc TEXT NOT NULL
          );`,
  },
  {
    // Device-to-cloud event log: per-partition state, and the events (rowid table: bodies up to 256 KB
    // stay out of the index b-trees).
    name: '100-event-log',
    sql: `CREATE TABLE event_partitions (
            partition INTEGER PRIMARY KEY,
            last_sequence_number INTEGER NOT NULL,
            last_offset INTEGER NOT NULL,
            next_offset INTEGER NOT NULL,
            last_enqueued_time INTEGER NOT NULL
          );
          CREATE TABLE events (
            partition INTEGER NOT NULL,
            sequence_number INTEGER NOT NULL,
            byte_offset INTEGER NOT NULL,
            enqueued_time INTEGER NOT NULL,
            body BLOB NOT NULL,
            system_properties TEXT NOT NULL,
            properties TEXT NOT NULL
          );
          CREATE UNIQUE INDEX events_by_sequence ON events (partition, sequence_number);
          CREATE INDEX events_by_offset ON events (partition, byte_offset);
          CREATE INDEX events_by_time ON events (partition, enqueued_time);`,
  },
  {
    // One twin per identity, created and dropped with it by the store itself so that every
    // device and module has a twin to query. doc = {tags, desired, reported} as JSON.
    name: '200-twins',
    sql: `CREATE TABLE twins (
            device_id TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
            module_id TEXT NOT NULL DEFAULT '',
            version INTEGER NOT NULL,
            etag TEXT NOT NULL,
            doc TEXT NOT NULL,
            PRIMARY KEY (device_id, module_id)
          );
          CREATE TRIGGER twins_for_new_device AFTER INSERT ON devices BEGIN
            INSERT INTO twins (device_id, module_id, version, etag, doc) VALUES (NEW.device_id, '', 1, '${FIRST_TWIN_ETAG}', ${NEW_TWIN_DOC});
          END;
          CREATE TRIGGER twins_for_new_module AFTER INSERT ON modules BEGIN
            INSERT INTO twins (device_id, module_id, version, etag, doc) VALUES (NEW.device_id, NEW.module_id, 1, '${FIRST_TWIN_ETAG}', ${NEW_TWIN_DOC});
          END;
          CREATE TRIGGER twins_of_deleted_module AFTER DELETE ON modules BEGIN
            DELETE FROM twins WHERE device_id = OLD.device_id AND module_id = OLD.module_id;
          END;
          INSERT INTO twins (device_id, module_id, version, etag, doc) SELECT device_id, '', 1, '${FIRST_TWIN_ETAG}', ${NEW_TWIN_DOC} FROM devices;
          INSERT INTO twins (device_id, module_id, version, etag, doc) SELECT device_id, module_id, 1, '${FIRST_TWIN_ETAG}', ${NEW_TWIN_DOC} FROM modules;`,
  },
  {
    // Cloud-to-device queue; outcomes are kept for the feedback receiver (issue 4).
    name: '201-cloud-to-device',
    sql: `CREATE TABLE c2d_messages (
            sequence_number INTEGER PRIMARY KEY AUTOINCREMENT,
            device_id TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
            message_id TEXT NOT NULL,
            ack TEXT NOT NULL,
            enqueued_time INTEGER NOT NULL,
            expiry_time INTEGER NOT NULL,
            delivery_count INTEGER NOT NULL DEFAULT 0,
            doc TEXT NOT NULL
          );
          CREATE INDEX c2d_messages_by_device ON c2d_messages (device_id, sequence_number);
          CREATE TABLE c2d_outcomes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            device_id TEXT NOT NULL,
            original_message_id TEXT NOT NULL,
            ack TEXT NOT NULL,
            outcome TEXT NOT NULL,
            enqueued_time INTEGER NOT NULL,
            at INTEGER NOT NULL
          );`,
  },
  {
    // Jobs (issue 5): the job document, and one record per device a job reaches (`devices.jobs`).
    name: '400-jobs',
    sql: `CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            status TEXT NOT NULL,
            created_time TEXT NOT NULL,
            doc TEXT NOT NULL
          );
          CREATE INDEX jobs_by_created ON jobs (created_time, job_id);
          CREATE TABLE device_jobs (
            device_id TEXT NOT NULL,
            job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
            status TEXT NOT NULL,
            doc TEXT NOT NULL,
            PRIMARY KEY (device_id, job_id)
          );
          CREATE INDEX device_jobs_by_job ON device_jobs (job_id, status);`,
  },
  {
    // The query language's copy of each twin as JSONB (SQLite reads it several times faster than
    // JSON text), kept in step with the twins table by triggers; automatic indexes live on it.
    name: '401-twin-query-docs',
    sql: `CREATE TABLE twin_query_docs (
            device_id TEXT NOT NULL,
            module_id TEXT NOT NULL,
            doc BLOB NOT NULL,
            PRIMARY KEY (device_id, module_id)
          );
          CREATE TRIGGER twin_query_docs_insert AFTER INSERT ON twins BEGIN
            INSERT OR REPLACE INTO twin_query_docs (device_id, module_id, doc) VALUES (NEW.device_id, NEW.module_id, jsonb(NEW.doc));
          END;
          CREATE TRIGGER twin_query_docs_update AFTER UPDATE OF doc ON twins BEGIN
            UPDATE twin_query_docs SET doc = jsonb(NEW.doc) WHERE device_id = NEW.device_id AND module_id = NEW.module_id;
          END;
          CREATE TRIGGER twin_query_docs_delete AFTER DELETE ON twins BEGIN
            DELETE FROM twin_query_docs WHERE device_id = OLD.device_id AND module_id = OLD.module_id;
          END;
          INSERT INTO twin_query_docs (device_id, module_id, doc) SELECT device_id, module_id, jsonb(doc) FROM twins;`,
  },
  {
    name: '101-ca-certificates',
    sql: `CREATE TABLE ca_certificates (
            name TEXT PRIMARY KEY,
            etag TEXT NOT NULL,
            doc TEXT NOT NULL
          );`,
  },
  { name: '300-dps', sql: dpsMigrationSql },
  {
    // Consumer groups of the built-in Event Hub-compatible endpoint added at run time (issue 4).
    name: '400-consumer-groups',
    sql: `CREATE TABLE consumer_groups (name TEXT PRIMARY KEY COLLATE NOCASE, created_at INTEGER NOT NULL);`,
  },
  // Device registration operations, so that an operation id a device was given survives a restart (issue 7).
  { name: '301-dps-operations', sql: dpsOperationsMigrationSql },
  {
    // Automatic device management configurations (issue 14); results = the last evaluation's metrics.
    name: '500-configurations',
    sql: `CREATE TABLE configurations (
            id TEXT PRIMARY KEY,
            etag TEXT NOT NULL,
            created_time TEXT NOT NULL,
            doc TEXT NOT NULL,
            results TEXT
          );`,
  },
  {
    // Cloud-to-device locks for pull delivery over HTTPS (issue 13): a received message is invisible
    // under its lock token until completed, rejected, abandoned or the lock times out.
    name: '202-cloud-to-device-locks',
    sql: `ALTER TABLE c2d_messages ADD COLUMN lock_token TEXT;
          ALTER TABLE c2d_messages ADD COLUMN locked_until INTEGER;`,
  },
  // Enrollment group ids compare without regard to case, as DPS's do (issue 14).
  { name: '302-dps-group-ids-nocase', sql: dpsGroupIdsNocaseMigrationSql },
  {
    // The event log becomes a log of many entities (the built-in endpoint and the event hubs of
    // local Event Hubs namespaces), keyed by entity and partition. Existing rows become the
    // built-in endpoint's ('$builtin'); their properties (JSON strings) stay readable as they are,
    // the typed property encoding being a superset of the old one.
    name: '102-event-log-entities',
    sql: `CREATE TABLE event_partitions_by_entity (
            entity TEXT NOT NULL,
            partition INTEGER NOT NULL,
            last_sequence_number INTEGER NOT NULL,
            last_offset INTEGER NOT NULL,
            next_offset INTEGER NOT NULL,
            last_enqueued_time INTEGER NOT NULL,
            PRIMARY KEY (entity, partition)
          );
          INSERT INTO event_partitions_by_entity (entity, partition, last_sequence_number, last_offset, next_offset, last_enqueued_time)
            SELECT '$builtin', partition, last_sequence_number, last_offset, next_offset, last_enqueued_time FROM event_partitions;
          DROP TABLE event_partitions;
          ALTER TABLE event_partitions_by_entity RENAME TO event_partitions;
          ALTER TABLE events ADD COLUMN entity TEXT NOT NULL DEFAULT '$builtin';
          DROP INDEX events_by_sequence;
          DROP INDEX events_by_offset;
          DROP INDEX events_by_time;
          CREATE UNIQUE INDEX events_by_sequence ON events (entity, partition, sequence_number);
          CREATE INDEX events_by_offset ON events (entity, partition, byte_offset);
          CREATE INDEX events_by_time ON events (entity, partition, enqueued_time);`,
  },
  // Local Event Hubs namespaces (their events are entities of the event log).
  { name: '600-eventhubs-namespaces', sql: eventHubsMigrationSql },
  {
    // File upload (issue 17): uploads in progress (at most 10 per device, freed by completion or
    // SAS expiry) and the notifications waiting for the service.
    name: '700-file-uploads',
    sql: `CREATE TABLE file_uploads (
            correlation_id TEXT PRIMARY KEY,
            device_id TEXT NOT NULL,
            blob_name TEXT NOT NULL,
            container_name TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            created_at INTEGER NOT NULL
          );
          CREATE INDEX file_uploads_device ON file_uploads (device_id, expires_at);
          CREATE TABLE file_notifications (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            doc TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            delivery_count INTEGER NOT NULL
          );`,
  },
  {
    // Bulk import/export jobs (issue 17): properties as the REST API shows them, and the import's
    // checkpoint (bytes and lines of the input blob done) so that a restart resumes it.
    name: '701-bulk-jobs',
    sql: `CREATE TABLE bulk_jobs (
            job_id TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL,
            properties TEXT NOT NULL,
            checkpoint TEXT NOT NULL
          );`,
  },
  {
    // Message routing (issue 16): how far each custom endpoint's backlog (an event log entity
    // `$endpoint/{name}`) was delivered, so that a restart resumes there; and the routing settings
    // last applied, so that a restart routes as before from its first message.
    name: '800-routing-checkpoints',
    sql: `CREATE TABLE routing_checkpoints (
            endpoint TEXT PRIMARY KEY,
            sequence_number INTEGER NOT NULL
          );
          CREATE TABLE routing_settings (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            doc TEXT NOT NULL
          );`,
  },
  {
    // Issue 20: the event log keeps one index, by sequence number. Offsets and enqueued times grow
    // with it, so positions by offset or time are binary searches over it (src/store/sqlite/eventLog.ts);
    // the two indexes that found them cost every append ~40% more.
    name: '900-event-log-one-index',
    sql: `DROP INDEX IF EXISTS events_by_offset;
          DROP INDEX IF EXISTS events_by_time;`,
  },
  {
    // Issue 20: the expiry sweep (every second) found expired cloud-to-device messages by reading
    // every queued one: 100,000 messages queued for offline devices held the event loop each second.
    name: '901-c2d-messages-by-expiry',
    sql: `CREATE INDEX c2d_messages_by_expiry ON c2d_messages (expiry_time);`,
  },
  {
    // Feedback records honour the hub's feedback settings: each delivery to the service is counted
    // (feedback.maxDeliveryCount), and records older than feedback.ttlAsIso8601 are purged by time.
    name: '902-c2d-feedback-retention',
    sql: `ALTER TABLE c2d_outcomes ADD COLUMN delivery_count INTEGER NOT NULL DEFAULT 0;
          CREATE INDEX c2d_outcomes_by_time ON c2d_outcomes (at);`,
  },
];

export function openDatabase(path: string, options: { readonly?: boolean } = {}): Db {
  const db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  db.pragma('busy_timeout = 5000');
  if (!options.readonly) {
    db.pragma('journal_mode = WAL');
    // WAL + NORMAL is durable against process crashes (what an acknowledged write must survive);
    // FULL also survives power loss at the cost of an fsync per commit. Configurable later.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
  }
  return db;
}

function migrate(db: Db): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  const applied = new Set(db.prepare<[], { name: string }>('SELECT name FROM schema_migrations').all().map((r) => r.name));
  const record = db.prepare('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)');
  for (const m of migrations) {
    if (applied.has(m.name)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.name, new Date().toISOString());
    })();
  }
}
