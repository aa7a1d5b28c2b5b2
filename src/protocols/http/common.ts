import type { FastifyReply, FastifyRequest } from 'fastify';
import { HubError } from '../../core/errors.js';
import { unquoteEtag } from '../../core/ids.js';
import type { Authorizer, Principal } from '../../hub/auth/authorizer.js';
import type { Permission } from '../../hub/auth/types.js';
import { httpDataActions } from '../../hub/auth/dataActions.js';

/** IoT Hub rejects requests without an api-version. */
export function requireApiVersion(request: FastifyRequest): string {
  const v = (request.query as Record<string, unknown>)['api-version'];
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}(-preview)?$/.test(v)) {
    throw new HubError('InvalidProtocolVersion', 'The api-version query parameter is missing or invalid (e.g. api-version=2021-04-12)');
  }
  return v;
}

/**
 * Checks api-version and the SAS token in the Authorization header for `permission` (or any one
 * of a list) on `resourcePath`; a bearer token instead needs the data actions of the route.
 */
export function guard(authorizer: Authorizer) {
  return (request: FastifyRequest, permission: Permission | readonly Permission[], resourcePath = ''): Promise<Principal> => {
    requireApiVersion(request);
    const dataActions = httpDataActions(request.method, request.routeOptions.url ?? request.url.split('?')[0]!);
    return authorizer.authorize(request.headers.authorization, permission, resourcePath, dataActions);
  };
}

export function ifMatch(request: FastifyRequest): string | undefined {
  const value = request.headers['if-match'];
  return unquoteEtag(Array.isArray(value) ? value[0] : value);
}

export function sendJson(reply: FastifyReply, body: unknown, etag?: string): FastifyReply {
  if (etag) reply.header('etag', `"${etag}"`);
  return reply.type('application/json; charset=utf-8').send(body);
}
