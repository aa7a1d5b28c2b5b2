import type { FastifyInstance } from 'fastify';
import type { Authorizer } from '../../hub/auth/authorizer.js';
import type { Configurations } from '../../hub/configurations/configurations.js';
import { errors } from '../../core/errors.js';
import { guard, ifMatch, sendJson } from './common.js';

type ConfigurationParams = { id: string };

/** Configurations (`/configurations`) and applying edge content, as azure-iothub's Registry calls them. */
export function configurationsApi(configurations: Configurations, authorizer: Authorizer) {
  const auth = guard(authorizer);
  return async (app: FastifyInstance) => {
    app.get('/configurations', async (req, reply) => {
      await auth(req, 'RegistryRead');
      const top = (req.query as Record<string, string | undefined>).top;
      if (top !== undefined && !/^\d+$/.test(top)) throw errors.argument('top must be a positive integer');
      return sendJson(reply, await configurations.list(top === undefined ? undefined : Number(top)));
    });

    app.get<{ Params: ConfigurationParams }>('/configurations/:id', async (req, reply) => {
      await auth(req, 'RegistryRead');
      const configuration = await configurations.get(req.params.id);
      return sendJson(reply, configuration, configuration.etag);
    });

    app.put<{ Params: ConfigurationParams }>('/configurations/:id', async (req, reply) => {
      await auth(req, 'RegistryWrite');
      const configuration = await configurations.put(req.params.id, req.body, ifMatch(req));
      return sendJson(reply, configuration, configuration.etag);
    });

    app.delete<{ Params: ConfigurationParams }>('/configurations/:id', async (req, reply) => {
      await auth(req, 'RegistryWrite');
      await configurations.delete(req.params.id, ifMatch(req) ?? '*');
      return reply.code(204).send();
    });

    app.post<{ Params: { deviceId: string } }>('/devices/:deviceId/applyConfigurationContent', async (req, reply) => {
      await auth(req, 'RegistryWrite', `/devices/${req.params.deviceId}`);
      await configurations.applyOnEdgeDevice(req.params.deviceId, req.body);
      return reply.code(204).send();
    });
  };
}
