import type { FastifyInstance } from 'fastify';
import { errors } from '../../core/errors.js';
import type { DeviceConnections } from '../../hub/connections/deviceConnections.js';
import type { FileUploads } from '../../hub/files/fileUploads.js';
import { requireApiVersion } from './common.js';
import { authenticateDeviceRequest } from './deviceAuth.js';

type Body = Record<string, unknown>;

function jsonBody(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.argument('The request body must be a JSON object');
  return body as Body;
}

/**
 * File upload, device side (what azure-iot-device's FileUploadApi calls, whatever the transport
 * of the rest of the client): a SAS for one blob, then the completion call that frees the slot
 * and, when enabled, notifies the service.
 */
export function fileUploadApi(fileUploads: FileUploads, connections: DeviceConnections) {
  return async (app: FastifyInstance) => {
    app.post<{ Params: { deviceId: string } }>('/devices/:deviceId/files', async (req, reply) => {
      requireApiVersion(req);
      const { deviceId } = req.params;
      await authenticateDeviceRequest(connections, req, deviceId);
      const started = await fileUploads.start(deviceId, jsonBody(req.body).blobName);
      return reply.code(200).send(started);
    });

    const complete = async (deviceId: string, correlationId: unknown, body: Body) => fileUploads.complete(deviceId, correlationId, body);
    // IoT Hub's REST reference puts the correlation id in the body; the Node SDK puts it in the path.
    app.post<{ Params: { deviceId: string } }>('/devices/:deviceId/files/notifications', async (req, reply) => {
      requireApiVersion(req);
      const { deviceId } = req.params;
      await authenticateDeviceRequest(connections, req, deviceId);
      const body = jsonBody(req.body);
      await complete(deviceId, body.correlationId, body);
      return reply.code(204).send();
    });
    app.post<{ Params: { deviceId: string; correlationId: string } }>('/devices/:deviceId/files/notifications/:correlationId', async (req, reply) => {
      requireApiVersion(req);
      const { deviceId, correlationId } = req.params;
      await authenticateDeviceRequest(connections, req, deviceId);
      await complete(deviceId, correlationId, jsonBody(req.body));
      return reply.code(204).send();
    });
  };
}
