import { Worker } from 'node:worker_threads';

export type Row = Record<string, string | number | null>;
export interface QueryRequest {
  id: number;
  sql: string;
  params: unknown[];
}
export type QueryReply = { id: number; rows: Row[] } | { id: number; error: { message: string; code?: string } };

/** Why a query did not run in the thread: the thread is gone. The caller runs it itself. */
export class QueryThreadGone extends Error {}

/**
 * The query store's SELECTs in a thread of their own (queryWorker.ts), with its own read-only
 * connection. The hub has one event loop: every device's PUBACK, method response and twin update
 * waits while a statement runs on it, and a query's statement runs as long as the fleet is large
 * (COUNT() ... GROUP BY over 100,000 twins: over 200 ms). Queries wait for each other in the
 * thread instead, in the order asked. If the thread fails, `available` turns false and the
 * queries it had not answered reject with QueryThreadGone, for the store to run them itself.
 */
export class QueryThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve(rows: Row[]): void; reject(e: Error): void }>();
  private nextId = 1;
  private gone = false;
  private stopping = false;

  constructor(path: string, onError: (message: string) => void, maxStatements: number) {
    this.worker = new Worker(new URL('./queryWorker.js', import.meta.url), { workerData: { path, maxStatements } });
    // Kept alive only while it owes an answer (see all()).
    this.worker.unref();
    this.worker.on('message', (m: QueryReply) => {
      const waiting = this.pending.get(m.id);
      if (!waiting) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if ('rows' in m) waiting.resolve(m.rows);
      else waiting.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
    });
    this.worker.on('error', (e) => onError(e.message));
    this.worker.on('exit', () => {
      this.gone = true;
      for (const waiting of this.pending.values()) waiting.reject(new QueryThreadGone('the query thread has stopped'));
      this.pending.clear();
    });
  }

  get available(): boolean {
    return !this.gone && !this.stopping;
  }

  all(sql: string, params: unknown[]): Promise<Row[]> {
    if (!this.available) return Promise.reject(new QueryThreadGone('the query thread has stopped'));
    const id = this.nextId++;
    if (this.pending.size === 0) this.worker.ref();
    return new Promise<Row[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, sql, params } satisfies QueryRequest);
    });
  }

  /** Queries already asked are answered first; the thread then closes its connection and ends. */
  stop(): void {
    if (!this.available) return;
    this.stopping = true;
    this.worker.postMessage('stop');
  }
}
