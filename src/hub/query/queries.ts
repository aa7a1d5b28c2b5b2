import { createHash } from 'node:crypto';
import { errors } from '../../core/errors.js';
import type { QueryCursor, QueryStore } from '../../store/index.js';
import { toTwin } from '../twins/twins.js';
import { parseQuery } from './parser.js';

/** IoT Hub returns 100 items per page unless asked (x-ms-max-item-count), and at most 1000. */
export const QUERY_PAGE = { defaultSize: 100, maxSize: 1000 } as const;
/** IoT Hub's limit on the length of a query. */
export const MAX_QUERY_LENGTH = 8192;

/** What `x-ms-item-type` tells the SDK about the items. */
export type QueryItemType = 'Twin' | 'DeviceJob' | 'JobResponse' | 'Raw';

export interface QueryPage {
  itemType: QueryItemType;
  items: unknown[];
  /** Set when more results follow; the client sends it back as `x-ms-continuation`. */
  continuationToken?: string;
}

interface Token {
  /** A digest of the query the token belongs to. */
  q: string;
  c: QueryCursor;
  /** Items returned so far (for TOP). */
  n: number;
}

/** Runs IoT Hub queries over twins, module twins and device jobs; the store does the filtering. */
export class Queries {
  constructor(private readonly store: QueryStore) {}

  async run(text: unknown, pageSize?: number, continuationToken?: string): Promise<QueryPage> {
    if (typeof text !== 'string' || text.trim() === '') throw errors.argument('The request body must be {"query": "<query text>"}');
    if (text.length > MAX_QUERY_LENGTH) throw errors.argument(`The query is longer than ${MAX_QUERY_LENGTH} characters`);
    const size = pageSize ?? QUERY_PAGE.defaultSize;
    if (!Number.isInteger(size) || size < 1) throw errors.argument('x-ms-max-item-count must be a positive integer');
    const query = parseQuery(text);
    const digest = createHash('sha256').update(text).digest('base64url').slice(0, 12);
    const token = continuationToken === undefined ? { q: digest, c: {}, n: 0 } : decode(continuationToken, digest);

    const limit = Math.min(size, QUERY_PAGE.maxSize, (query.top ?? Infinity) - token.n);
    const page = limit > 0 ? await this.store.run(query, limit, token.c) : { type: 'raw' as const, items: [], next: undefined };
    const returned = token.n + page.items.length;
    const more = page.next && (query.top === undefined || returned < query.top);
    const continuation = more ? encode({ q: digest, c: page.next!, n: returned }) : undefined;

    switch (page.type) {
      case 'twins':
        return {
          itemType: 'Twin',
          items: page.items.map((r) => toTwin(r.state, r.module ? { ...r.module, device: r.device } : r.device)),
          continuationToken: continuation,
        };
      case 'deviceJobs':
        return { itemType: 'DeviceJob', items: page.items, continuationToken: continuation };
      case 'raw':
        return { itemType: 'Raw', items: page.items, continuationToken: continuation };
    }
  }
}

function encode(token: Token): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

function decode(text: string, digest: string): Token {
  try {
    const t = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Token;
    const validCursor =
      typeof t.c === 'object' && t.c !== null &&
      (t.c.after === undefined || (Array.isArray(t.c.after) && t.c.after.every((k) => typeof k === 'string'))) &&
      (t.c.offset === undefined || (Number.isInteger(t.c.offset) && t.c.offset >= 0));
    if (t.q === digest && validCursor && Number.isInteger(t.n) && t.n >= 0) return t;
  } catch {
    // fall through
  }
  throw errors.argument('The continuation token is not valid for this query');
}
