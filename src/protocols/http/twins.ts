import type { FastifyInstance } from 'fastify';
import type { Authorizer } from '../../hub/auth/authorizer.js';
import type { Permission } from '../../hub/auth/types.js';
import type { Twins } from '../../hub/twins/twins.js';
import type { DirectMethods } from '../../hub/methods/methods.js';
import { guard, ifMatch, sendJson } from './common.js';

type DeviceParams = { deviceId: string };
type ModuleParams = { deviceId: string; moduleId: string };

/**
 * Twins and direct methods (`/twins/...`), as azure-iothub's Registry, Twin and Client call them.
 * IoT Hub lets ServiceConnect read and update twins and invoke methods; the registry rights also
 * read (RegistryRead) and update (RegistryWrite) twins.
 */
export function twinsApi(twins: Twins, methods: DirectMethods, authorizer: Authorizer) {
  const auth = guard(authorizer);
  const read: Permission[] = ['ServiceConnect', 'RegistryRead'];
  const write: Permission[] = ['ServiceConnect', 'RegistryWrite'];
  const devicePath = (p: DeviceParams) => `/devices/${p.deviceId}`;
  const modulePath = (p: ModuleParams) => `/devices/${p.deviceId}/modules/${p.moduleId}`;

  return async (app: FastifyInstance) => {
    app.get<{ Params: DeviceParams }>('/twins/:deviceId', async (req, reply) => {
      await auth(req, read, devicePath(req.params));
      const twin = await twins.getTwin(req.params.deviceId);
      return sendJson(reply, twin, twin.etag);
    });
    app.patch<{ Params: DeviceParams }>('/twins/:deviceId', async (req, reply) => {
      await auth(req, write, devicePath(req.params));
      const twin = await twins.updateTwin(req.params.deviceId, undefined, req.body, ifMatch(req));
      return sendJson(reply, twin, twin.etag);
    });
    app.put<{ Params: DeviceParams }>('/twins/:deviceId', async (req, reply) => {
      await auth(req, write, devicePath(req.params));
      const twin = await twins.replaceTwin(req.params.deviceId, undefined, req.body, ifMatch(req));
      return sendJson(reply, twin, twin.etag);
    });

    app.get<{ Params: ModuleParams }>('/twins/:deviceId/modules/:moduleId', async (req, reply) => {
      await auth(req, read, modulePath(req.params));
      const twin = await twins.getTwin(req.params.deviceId, req.params.moduleId);
      return sendJson(reply, twin, twin.etag);
    });
    app.patch<{ Params: ModuleParams }>('/twins/:deviceId/modules/:moduleId', async (req, reply) => {
      await auth(req, write, modulePath(req.params));
      const twin = await twins.updateTwin(req.params.deviceId, req.params.moduleId, req.body, ifMatch(req));
      return sendJson(reply, twin, twin.etag);
    });
    app.put<{ Params: ModuleParams }>('/twins/:deviceId/modules/:moduleId', async (req, reply) => {
      await auth(req, write, modulePath(req.params));
      const twin = await twins.replaceTwin(req.params.deviceId, req.params.moduleId, req.body, ifMatch(req));
      return sendJson(reply, twin, twin.etag);
    });

    app.post<{ Params: DeviceParams }>('/twins/:deviceId/methods', async (req, reply) => {
      await auth(req, 'ServiceConnect', devicePath(req.params));
      return sendJson(reply, await methods.invoke(req.params.deviceId, undefined, req.body));
    });
    app.post<{ Params: ModuleParams }>('/twins/:deviceId/modules/:moduleId/methods', async (req, reply) => {
      await auth(req, 'ServiceConnect', modulePath(req.params));
      return sendJson(reply, await methods.invoke(req.params.deviceId, req.params.moduleId, req.body));
    });
  };
}
