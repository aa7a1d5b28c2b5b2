import Database from 'better-sqlite3';
import type { MessageState, StoredMessage } from '../../namespaces/serviceBus/types.js';
import type { ExpiredLock, LockRequest, NewMessage, ServiceBusRecord, ServiceBusRecordKind, ServiceBusStore } from '../serviceBus.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS sb_records (
  namespace TEXT NOT NULL COLLATE NOCASE,
  kind TEXT NOT NULL,
  path TEXT NOT NULL COLLATE NOCASE,
  doc TEXT NOT NULL,
  PRIMARY KEY (namespace, kind, path)
);
CREATE TABLE IF NOT EXISTS sb_messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  namespace TEXT NOT NULL COLLATE NOCASE,
  entity TEXT NOT NULL COLLATE NOCASE,
  state INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  enqueued_at INTEGER NOT NULL,
  expires_at INTEGER,
  delivery_count INTEGER NOT NULL DEFAULT 0,
  lock_token TEXT,
  locked_until INTEGER,
  overrides TEXT,
  dead_letter_source TEXT,
  payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS sb_messages_ready ON sb_messages(namespace, entity, state, seq) WHERE lock_token IS NULL;
CREATE INDEX IF NOT EXISTS sb_messages_entity ON sb_messages(namespace, entity, seq);
CREATE UNIQUE INDEX IF NOT EXISTS sb_messages_lock ON sb_messages(lock_token) WHERE lock_token IS NOT NULL;
CREATE INDEX IF NOT EXISTS sb_messages_locked_until ON sb_messages(locked_until) WHERE lock_token IS NOT NULL;
CREATE INDEX IF NOT EXISTS sb_messages_scheduled ON sb_messages(visible_at) WHERE state = 2;
CREATE INDEX IF NOT EXISTS sb_messages_expiry ON sb_messages(expires_at) WHERE expires_at IS NOT NULL;
`;

const STATES: MessageState[] = ['active', 'deferred', 'scheduled'];

interface Row {
  seq: number;
  namespace: string;
  entity: string;
  state: number;
  visible_at: number;
  enqueued_at: number;
  expires_at: number | null;
  delivery_count: number;
  lock_token: string | null;
  locked_until: number | null;
  overrides: string | null;
  dead_letter_source: string | null;
  payload: Buffer;
}

function toMessage(r: Row): StoredMessage {
  return {
    sequenceNumber: r.seq,
    payload: r.payload,
    state: STATES[r.state]!,
    enqueuedTime: r.enqueued_at,
    ...(r.expires_at !== null ? { expiresAt: r.expires_at } : {}),
    deliveryCount: r.delivery_count,
    ...(r.lock_token !== null ? { lockToken: r.lock_token } : {}),
    ...(r.locked_until !== null ? { lockedUntil: r.locked_until } : {}),
    overrides: r.overrides ? (JSON.parse(r.overrides) as Record<string, unknown>) : {},
    ...(r.dead_letter_source ? { deadLetterSource: r.dead_letter_source } : {}),
    ...(r.state === 2 ? { scheduledEnqueueTime: r.visible_at } : {}),
  };
}

/**
 * Service Bus in its own database (`<dataDir>/servicebus.db`), WAL with synchronous NORMAL like
 * the hub's store: a committed write survives a crash of the process.
 */
export function openSqliteServiceBusStore(path: string, newLockToken: () => string): ServiceBusStore {
  const db = new Database(path);
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(SCHEMA);

  const insert = db.prepare(
    'INSERT INTO sb_messages (namespace, entity, state, visible_at, enqueued_at, expires_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const nextReady = db.prepare<[string, string, number, number, number], Row>(
    `SELECT * FROM sb_messages WHERE namespace = ? AND entity = ? AND state = 0 AND lock_token IS NULL
       AND visible_at <= ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq LIMIT ?`,
  );
  const setLock = db.prepare('UPDATE sb_messages SET lock_token = ?, locked_until = ? WHERE seq = ?');
  const deleteSeq = db.prepare('DELETE FROM sb_messages WHERE seq = ? AND namespace = ?');
  const deleteLocked = db.prepare('DELETE FROM sb_messages WHERE seq = ? AND namespace = ? AND lock_token = ?');
  const bySeq = db.prepare<[number, string], Row>('SELECT * FROM sb_messages WHERE seq = ? AND namespace = ?');
  const byLock = db.prepare<[string, string, number], Row>('SELECT * FROM sb_messages WHERE lock_token = ? AND namespace = ? AND locked_until > ?');
  const unlockSeq = db.prepare('UPDATE sb_messages SET lock_token = NULL, locked_until = NULL, delivery_count = delivery_count + ?, state = ?, overrides = ? WHERE seq = ?');
  const moveSeq = db.prepare(
    'UPDATE sb_messages SET entity = ?, state = 0, lock_token = NULL, locked_until = NULL, expires_at = NULL, overrides = ?, dead_letter_source = ? WHERE seq = ?',
  );
  const renew = db.prepare('UPDATE sb_messages SET locked_until = ? WHERE lock_token = ? AND namespace = ? AND locked_until > ?');

  const lockRows = (rows: Row[], request: Omit<LockRequest, 'max'>): StoredMessage[] => {
    for (const r of rows) {
      if (request.remove) deleteSeq.run(r.seq, request.namespace);
      else {
        r.lock_token = newLockToken();
        r.locked_until = request.lockedUntil;
        setLock.run(r.lock_token, r.locked_until, r.seq);
      }
    }
    return rows.map(toMessage);
  };

  return {
    records: () => db.prepare<[], ServiceBusRecord>('SELECT namespace, kind, path, doc FROM sb_records ORDER BY rowid').all(),
    putRecord(r) {
      db.prepare('INSERT INTO sb_records (namespace, kind, path, doc) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET doc = excluded.doc').run(
        r.namespace,
        r.kind,
        r.path,
        r.doc,
      );
    },
    deleteRecord(namespace: string, kind: ServiceBusRecordKind, path: string) {
      db.transaction(() => {
        db.prepare('DELETE FROM sb_records WHERE namespace = ? AND kind = ? AND path = ?').run(namespace, kind, path);
        if (kind === 'queue' || kind === 'topic' || kind === 'subscription') {
          const prefix = path.replace(/[\\%_]/g, '\\$&') + '/%';
          db.prepare(`DELETE FROM sb_records WHERE namespace = ? AND kind <> 'authorizationRule' AND path LIKE ? ESCAPE '\\'`).run(namespace, prefix);
          db.prepare(`DELETE FROM sb_records WHERE namespace = ? AND kind = 'authorizationRule' AND (path LIKE ? ESCAPE '\\')`).run(namespace, path.replace(/[\\%_]/g, '\\$&') + '#%');
          db.prepare(`DELETE FROM sb_messages WHERE namespace = ? AND (entity = ? OR entity LIKE ? ESCAPE '\\')`).run(namespace, path, prefix);
        }
      })();
    },
    deleteNamespace(namespace) {
      db.transaction(() => {
        db.prepare('DELETE FROM sb_records WHERE namespace = ?').run(namespace);
        db.prepare('DELETE FROM sb_messages WHERE namespace = ?').run(namespace);
      })();
    },
    enqueue(namespace: string, messages: NewMessage[]) {
      return db.transaction(() =>
        messages.map(
          (m) =>
            Number(
              insert.run(namespace, m.entity, STATES.indexOf(m.state), m.visibleAt, m.enqueuedTime, m.expiresAt ?? null, m.payload).lastInsertRowid,
            ),
        ),
      )();
    },
    lockNext(request) {
      return db.transaction(() =>
        lockRows(nextReady.all(request.namespace, request.entity, request.now, request.now, request.max), request),
      )();
    },
    lockDeferred(request) {
      return db.transaction(() => {
        const rows: Row[] = [];
        for (const seq of request.sequenceNumbers) {
          const r = bySeq.get(seq, request.namespace);
          if (r && r.entity.toLowerCase() === request.entity.toLowerCase() && r.state === 1 && (r.lock_token === null || (r.locked_until ?? 0) <= request.now)) rows.push(r);
        }
        return lockRows(rows, request);
      })();
    },
    findLocked(namespace, lockToken, now) {
      const r = byLock.get(lockToken, namespace, now);
      return r ? { ...toMessage(r), entity: r.entity } : undefined;
    },
    remove(namespace, sequenceNumber, lockToken) {
      return (lockToken === undefined ? deleteSeq.run(sequenceNumber, namespace) : deleteLocked.run(sequenceNumber, namespace, lockToken)).changes > 0;
    },
    unlock(namespace, sequenceNumber, changes) {
      const r = bySeq.get(sequenceNumber, namespace);
      if (!r) return;
      const overrides = changes.overrides ? JSON.stringify({ ...(r.overrides ? JSON.parse(r.overrides) : {}), ...changes.overrides }) : r.overrides;
      unlockSeq.run(
        changes.deliveryCountDelta,
        changes.state ? STATES.indexOf(changes.state) : r.state,
        overrides,
        sequenceNumber,
      );
    },
    move(namespace, sequenceNumber, toEntity, overrides, deadLetterSource) {
      const r = bySeq.get(sequenceNumber, namespace);
      if (!r) return;
      const merged = JSON.stringify({ ...(r.overrides ? JSON.parse(r.overrides) : {}), ...overrides });
      // A dead-lettered message does not expire.
      moveSeq.run(toEntity, merged, deadLetterSource, sequenceNumber);
    },
    renewLock(namespace, lockToken, now, lockedUntil) {
      return renew.run(lockedUntil, lockToken, namespace, now).changes > 0;
    },
    peek(namespace, entity, fromSequenceNumber, max) {
      return db
        .prepare<[string, string, number, number], Row>('SELECT * FROM sb_messages WHERE namespace = ? AND entity = ? AND seq >= ? ORDER BY seq LIMIT ?')
        .all(namespace, entity, fromSequenceNumber, max)
        .map(toMessage);
    },
    cancelScheduled(namespace, entity, sequenceNumbers) {
      const del = db.prepare('DELETE FROM sb_messages WHERE seq = ? AND namespace = ? AND entity = ? AND state = 2');
      return db.transaction(() => sequenceNumbers.reduce((n, s) => n + del.run(s, namespace, entity).changes, 0))();
    },
    expiredLocks(now, max): ExpiredLock[] {
      return db
        .prepare<[number, number], { seq: number; namespace: string; entity: string; delivery_count: number }>(
          'SELECT seq, namespace, entity, delivery_count FROM sb_messages WHERE lock_token IS NOT NULL AND locked_until <= ? ORDER BY locked_until LIMIT ?',
        )
        .all(now, max)
        .map((r) => ({ namespace: r.namespace, entity: r.entity, sequenceNumber: r.seq, deliveryCount: r.delivery_count }));
    },
    dueScheduled(now, max) {
      return db
        .prepare<[number, number], Row>('SELECT * FROM sb_messages WHERE state = 2 AND visible_at <= ? ORDER BY visible_at LIMIT ?')
        .all(now, max)
        .map((r) => ({ namespace: r.namespace, entity: r.entity, message: toMessage(r) }));
    },
    activate(namespace, sequenceNumber) {
      db.prepare('UPDATE sb_messages SET state = 0 WHERE seq = ? AND namespace = ?').run(sequenceNumber, namespace);
    },
    expiredMessages(now, max) {
      return db
        .prepare<[number, number], { seq: number; namespace: string; entity: string }>(
          'SELECT seq, namespace, entity FROM sb_messages WHERE expires_at IS NOT NULL AND expires_at <= ? AND lock_token IS NULL AND state IN (0, 1) LIMIT ?',
        )
        .all(now, max)
        .map((r) => ({ namespace: r.namespace, entity: r.entity, sequenceNumber: r.seq }));
    },
    transaction: <T>(work: () => T): T => db.transaction(work)(),
    close: () => db.close(),
  };
}
