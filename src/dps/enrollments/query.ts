import { dpsErrors } from '../errors.js';

/** Page size when the caller sends no x-ms-max-item-count. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export interface QueryPage {
  pageSize: number;
  /** Where the page starts (from x-ms-continuation). */
  after?: string;
}

/**
 * DPS queries are `{"query": "SELECT * FROM enrollments"}` with paging in headers. Fleethub answers
 * `SELECT *` over the whole collection; filters are refused rather than ignored.
 */
export function parseQuery(body: unknown, maxItemCount: string | undefined, continuation: string | undefined): QueryPage {
  if (typeof body !== 'object' || body === null || typeof (body as { query?: unknown }).query !== 'string') {
    throw dpsErrors.badFormat('The query specification must be {"query": "SELECT * FROM ..."}');
  }
  const query = (body as { query: string }).query;
  if (!/^\s*select\s+\*\s+from\s+[a-z_]+\s*$/i.test(query)) {
    throw dpsErrors.invalid(`Unsupported query '${query}': Fleethub answers 'SELECT * FROM <collection>' only`);
  }
  let pageSize = DEFAULT_PAGE_SIZE;
  if (maxItemCount !== undefined && maxItemCount !== '') {
    if (!/^\d+$/.test(maxItemCount) || Number(maxItemCount) < 1) throw dpsErrors.invalid('x-ms-max-item-count must be a positive integer');
    pageSize = Math.min(Number(maxItemCount), MAX_PAGE_SIZE);
  }
  return { pageSize, after: continuation ? decodeContinuation(continuation) : undefined };
}

/** Continuation tokens are opaque to clients; ours carry the last id of the previous page. */
export function encodeContinuation(after: string): string {
  return Buffer.from(JSON.stringify({ after }), 'utf8').toString('base64url');
}

function decodeContinuation(token: string): string {
  try {
    const { after } = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof after === 'string') return after;
  } catch {
    // fall through
  }
  throw dpsErrors.invalid('x-ms-continuation is not a continuation token this service issued');
}
