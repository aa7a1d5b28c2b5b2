import type { FastifyInstance } from 'fastify';
import { errors } from '../../core/errors.js';
import type { Authorizer } from '../../hub/auth/authorizer.js';
import type { CloudToDevice, CloudToDeviceSend } from '../../hub/messaging/cloudToDevice.js';
import type { AckMode } from '../../hub/messaging/cloudToDeviceMessage.js';
import { guard, sendJson } from './common.js';

type DeviceParams = { deviceId: string };

/**
 * Fleethub's own route to queue a cloud-to-device message (IoT Hub takes them over AMQP only):
 * `POST /fleethub/devices/{id}/messages/devicebound` with a JSON description of the message.
 */
export function cloudToDeviceAdminApi(cloudToDevice: CloudToDevice, authorizer: Authorizer) {
  const auth = guard(authorizer);
  return async (app: FastifyInstance) => {
    app.post<{ Params: DeviceParams }>('/fleethub/devices/:deviceId/messages/devicebound', async (req, reply) => {
      await auth(req, 'ServiceConnect', `/devices/${req.params.deviceId}`);
      const result = await cloudToDevice.send(req.params.deviceId, parseSend(req.body));
      return sendJson(reply.code(201), result);
    });
  };
}

function parseSend(body: unknown): CloudToDeviceSend {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.argument('The request body must be a JSON object');
  const b = body as Record<string, unknown>;
  const text = (name: string): string | undefined => {
    const v = b[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.length === 0 || v.length > 128) throw errors.argument(`${name} must be a string of 1 to 128 characters`);
    return v;
  };
  if (b.body !== undefined && typeof b.body !== 'string') throw errors.argument('body must be a string');
  const encoding = b.bodyEncoding ?? 'utf8';
  if (encoding !== 'utf8' && encoding !== 'base64') throw errors.argument("bodyEncoding must be 'utf8' or 'base64'");
  const properties: Record<string, string> = {};
  if (b.properties !== undefined) {
    if (typeof b.properties !== 'object' || b.properties === null || Array.isArray(b.properties)) throw errors.argument('properties must be an object');
    for (const [k, v] of Object.entries(b.properties)) {
      if (typeof v !== 'string') throw errors.argument(`property ${k} must have a string value`);
      if (k.startsWith('$.') || k.startsWith('iothub-')) throw errors.argument(`property name ${k} is reserved`);
      properties[k] = v;
    }
  }
  if (b.ttlSeconds !== undefined && typeof b.ttlSeconds !== 'number') throw errors.argument('ttlSeconds must be a number');
  return {
    body: Buffer.from((b.body as string | undefined) ?? '', encoding),
    messageId: text('messageId'),
    correlationId: text('correlationId'),
    userId: text('userId'),
    contentType: text('contentType'),
    contentEncoding: text('contentEncoding'),
    ack: text('ack') as AckMode | undefined,
    ttlSeconds: b.ttlSeconds as number | undefined,
    properties,
  };
}
