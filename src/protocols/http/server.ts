import { createServer, type Server } from 'node:http';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { HubError } from '../../core/errors.js';
import { sendHubError, toHubError } from './errors.js';

/** IoT Hub's service API takes bodies up to 256 KB (a bulk request of 100 devices fits easily). */
export const BODY_LIMIT = 256 * 1024;

export interface HttpOptions {
  logger: Logger;
}

/**
 * One hub's HTTP application, shared by every REST API group; MQTT and AMQP over WebSocket take
 * the 'upgrade' requests of its server. The server never listens: the HTTPS listener of the hub's
 * address terminates TLS (with the hub's certificate, by SNI) and emits each request meant for
 * this hub on it. Start it with `app.ready()`. API groups register as plugins; this file owns only
 * what is common to all of them.
 */
export function createHttpApp(options: HttpOptions): FastifyInstance {
  const app = Fastify({
    serverFactory: (handler) => createServer(handler),
    loggerInstance: options.logger,
    // Per-request info logs would dominate the log at fleet rates; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Ids are up to 128 characters, and each may arrive percent-encoded (3 bytes): leave room so
    // that too-long ids reach our validation and get IoT Hub's error, not the router's 414.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
    return503OnClosing: true,
  }) as unknown as FastifyInstance & { server: Server };

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
