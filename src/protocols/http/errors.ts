import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { HubError } from '../../core/errors.js';

/**
 * Writes an error the way IoT Hub does over HTTP: the status, an `iothub-errorcode` header and
 * `{"Message":"ErrorCode:<code>;<message>","ExceptionMessage":"Tracking ID:…"}`, the body shape
 * the Azure SDKs parse into their own error classes.
 */
export function sendHubError(reply: FastifyReply, error: HubError): FastifyReply {
  const trackingId = randomUUID().replace(/-/g, '');
  const stamp = new Date().toISOString().replace('T', ' ').slice(0, 19);
  return reply
    .code(error.status)
    .header('iothub-errorcode', error.code)
    .type('application/json; charset=utf-8')
    .send({
      Message: `ErrorCode:${error.code};${error.message}`,
      ExceptionMessage: `Tracking ID:${trackingId}-G:0-TimeStamp:${stamp}`,
    });
}

/** Maps Fastify's own errors (body parsing, limits) onto IoT Hub's codes. */
export function toHubError(error: unknown): HubError {
  if (error instanceof HubError) return error;
  const e = error as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HubError('MessageTooLarge', 'The request body is larger than the hub accepts', 413);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new HubError('IotHubFormatError', `The request body is not valid JSON: ${e.message}`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HubError('ArgumentInvalid', 'Unsupported Content-Type: send application/json', 415);
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new HubError('ArgumentInvalid', e.message ?? 'Bad request', e.statusCode);
  }
  return new HubError('ServerError', 'Internal server error', 500);
}
