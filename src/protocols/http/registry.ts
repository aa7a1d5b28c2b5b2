import type { FastifyInstance } from 'fastify';
import type { Authorizer } from '../../hub/auth/authorizer.js';
import type { Registry } from '../../hub/registry/registry.js';
import { errors } from '../../core/errors.js';
import { guard, ifMatch, sendJson } from './common.js';

type DeviceParams = { deviceId: string };
type ModuleParams = { deviceId: string; moduleId: string };

/** The identity registry REST API (`/devices`, `/statistics`), as azure-iothub's Registry calls it. */
export function registryApi(registry: Registry, authorizer: Authorizer) {
  const auth = guard(authorizer);
  return async (app: FastifyInstance) => {
    app.get('/devices', async (req, reply) => {
      await auth(req, 'RegistryRead');
      const top = (req.query as Record<string, string | undefined>).top;
      if (top !== undefined && !/^\d+$/.test(top)) throw errors.argument('top must be a positive integer');
      return sendJson(reply, await registry.listDevices(top === undefined ? undefined : Number(top)));
    });

    app.post('/devices', async (req, reply) => {
      await auth(req, 'RegistryWrite');
      return sendJson(reply, await registry.bulk(req.body));
    });

    app.get<{ Params: DeviceParams }>('/devices/:deviceId', async (req, reply) => {
      await auth(req, 'RegistryRead', `/devices/${req.params.deviceId}`);
      const device = await registry.getDevice(req.params.deviceId);
      return sendJson(reply, device, device.etag);
    });

    app.put<{ Params: DeviceParams }>('/devices/:deviceId', async (req, reply) => {
      await auth(req, 'RegistryWrite', `/devices/${req.params.deviceId}`);
      const device = await registry.putDevice(req.params.deviceId, req.body, ifMatch(req));
      return sendJson(reply, device, device.etag);
    });

    app.delete<{ Params: DeviceParams }>('/devices/:deviceId', async (req, reply) => {
      await auth(req, 'RegistryWrite', `/devices/${req.params.deviceId}`);
      await registry.deleteDevice(req.params.deviceId, ifMatch(req) ?? '*');
      return reply.code(204).send();
    });

    app.get<{ Params: DeviceParams }>('/devices/:deviceId/modules', async (req, reply) => {
      await auth(req, 'RegistryRead', `/devices/${req.params.deviceId}`);
      return sendJson(reply, await registry.listModules(req.params.deviceId));
    });

    app.get<{ Params: ModuleParams }>('/devices/:deviceId/modules/:moduleId', async (req, reply) => {
      await auth(req, 'RegistryRead', `/devices/${req.params.deviceId}/modules/${req.params.moduleId}`);
      const module = await registry.getModule(req.params.deviceId, req.params.moduleId);
      return sendJson(reply, module, module.etag);
    });

    app.put<{ Params: ModuleParams }>('/devices/:deviceId/modules/:moduleId', async (req, reply) => {
      await auth(req, 'RegistryWrite', `/devices/${req.params.deviceId}/modules/${req.params.moduleId}`);
      const module = await registry.putModule(req.params.deviceId, req.params.moduleId, req.body, ifMatch(req));
      return sendJson(reply, module, module.etag);
    });

    app.delete<{ Params: ModuleParams }>('/devices/:deviceId/modules/:moduleId', async (req, reply) => {
      await auth(req, 'RegistryWrite', `/devices/${req.params.deviceId}/modules/${req.params.moduleId}`);
      await registry.deleteModule(req.params.deviceId, req.params.moduleId, ifMatch(req) ?? '*');
      return reply.code(204).send();
    });

    app.get('/statistics/devices', async (req, reply) => {
      await auth(req, 'RegistryRead');
      return sendJson(reply, await registry.statistics());
    });

    app.get('/statistics/service', async (req, reply) => {
      await auth(req, 'ServiceConnect');
      return sendJson(reply, await registry.serviceStatistics());
    });
  };
}
