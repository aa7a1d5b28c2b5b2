import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { HubError } from '../../core/errors.js';
import { CLIENT_CERTIFICATE_TLS_OPTIONS } from '../tls/peerChain.js';
import { sendHubError, toHubError } from './errors.js';

/** IoT Hub's service API takes bodies up to 256 KB (a bulk request of 100 devices fits easily). */
export const BODY_LIMIT = 256 * 1024;

export interface HttpsOptions {
  key: string;
  cert: string;
  logger: Logger;
}

/**
 * The HTTPS listener shared by every REST API group (and, later, MQTT/AMQP over WebSocket).
 * API groups register as plugins; this file owns only what is common to all of them.
 */
export function createHttpsServer(options: HttpsOptions): FastifyInstance {
  const app = Fastify({
    // DPS devices (HTTPS, and MQTT/AMQP over WebSocket) and hub devices over WebSocket may present a
    // TLS client certificate (checked by the registration service or the registry, not by a trust
    // store); clients without one are unaffected.
    https: { key: options.key, cert: options.cert, ...CLIENT_CERTIFICATE_TLS_OPTIONS },
    loggerInstance: options.logger,
    // Per-request info logs would dominate the log at fleet rates; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Ids are up to 128 characters, and each may arrive percent-encoded (3 bytes): leave room so
    // that too-long ids reach our validation and get IoT Hub's error, not the router's 414.
    // ARM SDKs put `//` in paths (`/{scope}/providers/…` with a scope that starts with `/`).
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 1024 },
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  // Our own JSON parser so that malformed JSON gets IoT Hub's error, not Fastify's.
  app.removeContentTypeParser(['application/json']);
  app.addContentTypeParser(/^application\/(.+\+)?json/, { parseAs: 'string' }, (_req, body, done) => {
    if (body === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (e) {
      done(new HubError('IotHubFormatError', `The request body is not valid JSON: ${(e as Error).message}`), undefined);
    }
  });

  app.setErrorHandler((error, request, reply) => {
    const hubError = toHubError(error);
    if (hubError.status >= 500) request.log.error({ err: error }, 'request failed');
    return sendHubError(reply, hubError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendHubError(reply, new HubError('NotFound', `No such resource: ${request.method} ${request.url.split('?')[0]}`)),
  );
  return app;
}
