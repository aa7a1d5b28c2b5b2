import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HubError } from '../../core/errors.js';
import type { DpsAuthorizer } from '../../dps/auth/authorizer.js';
import { DpsError, dpsErrors } from '../../dps/errors.js';
import type { DpsPermission } from '../../dps/types.js';

/**
 * Writes an error the way DPS does: the status and
 * `{"errorCode":401002,"trackingId":…,"message":…,"timestampUtc":…}`.
 */
export function sendDpsError(reply: FastifyReply, error: DpsError): FastifyReply {
  const now = new Date();
  const trackingId = `${randomUUID().replace(/-/g, '')}-G:0-TimeStamp:${now.toISOString().replace('T', ' ').slice(0, 19)}`;
  return reply
    .code(error.status)
    .type('application/json; charset=utf-8')
    .send({ errorCode: error.errorCode, trackingId, message: error.message, timestampUtc: now.toISOString() });
}

/** Maps what the shared listener raises (body parsing, limits) onto DPS's errors. */
export function toDpsError(error: unknown): DpsError {
  if (error instanceof DpsError) return error;
  if (error instanceof HubError) {
    if (error.status === 413) return dpsErrors.tooLarge(error.message);
    if (error.status === 415) return dpsErrors.unsupportedMediaType(error.message);
    return error.status < 500 ? dpsErrors.badFormat(error.message) : dpsErrors.internal();
  }
  const e = error as { code?: string; statusCode?: number; message?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return dpsErrors.tooLarge('The request body is larger than the service accepts');
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return dpsErrors.unsupportedMediaType('Unsupported Content-Type: send application/json');
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return dpsErrors.badFormat(e.message ?? 'Bad request');
  return dpsErrors.internal();
}

/** Every DPS API group: DPS's error form for everything its routes raise. */
export function dpsApiGroup(routes: (app: FastifyInstance) => void | Promise<void>) {
  return async (app: FastifyInstance) => {
    app.setErrorHandler((error, request, reply) => {
      const dpsError = toDpsError(error);
      if (dpsError.status >= 500) request.log.error({ err: error }, 'request failed');
      return sendDpsError(reply, dpsError);
    });
    await routes(app);
  };
}

/** Checks the api-version and the DPS service SAS token for `permission`. */
export function dpsGuard(authorizer: DpsAuthorizer) {
  return async (request: FastifyRequest, permission: DpsPermission): Promise<void> => {
    const v = (request.query as Record<string, unknown>)['api-version'];
    if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}(-preview)?$/.test(v)) {
      throw dpsErrors.invalid('The api-version query parameter is missing or invalid (e.g. api-version=2021-10-01)');
    }
    await authorizer.authorize(request.headers.authorization, permission);
  };
}

export function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Query answers: the page as an array, the next page's token in x-ms-continuation. */
export function sendPage(reply: FastifyReply, itemType: string, page: { items: unknown[]; continuation?: string }): FastifyReply {
  reply.header('x-ms-item-type', itemType);
  if (page.continuation) reply.header('x-ms-continuation', page.continuation);
  return reply.type('application/json; charset=utf-8').send(page.items);
}
