import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors } from '../../core/errors.js';
import type { Authorizer } from '../../hub/auth/authorizer.js';
import type { QueryPage, Queries } from '../../hub/query/queries.js';
import { guard, sendJson } from './common.js';

/** `x-ms-max-item-count`, as the SDKs send the page size. */
export function pageSize(req: FastifyRequest): number | undefined {
  const raw = req.headers['x-ms-max-item-count'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw errors.argument('x-ms-max-item-count must be a positive integer');
  return Number(value);
}

export function continuation(req: FastifyRequest): string | undefined {
  const raw = req.headers['x-ms-continuation'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value === undefined || value === '' ? undefined : value;
}

/** A page of results: the items, `x-ms-item-type`, and `x-ms-continuation` while more follow. */
export function sendPage(reply: FastifyReply, page: QueryPage): FastifyReply {
  reply.header('x-ms-item-type', page.itemType);
  if (page.continuationToken) reply.header('x-ms-continuation', page.continuationToken);
  return sendJson(reply, page.items);
}

/** `POST /devices/query`: the query language over twins, module twins and device jobs. */
export function queryApi(queries: Queries, authorizer: Authorizer) {
  const auth = guard(authorizer);
  return async (app: FastifyInstance) => {
    app.post('/devices/query', async (req, reply) => {
      await auth(req, ['RegistryRead', 'ServiceConnect']);
      const body = req.body as { query?: unknown } | undefined;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.argument('The request body must be {"query": "<query text>"}');
      return sendPage(reply, await queries.run(body.query, pageSize(req), continuation(req)));
    });
  };
}
