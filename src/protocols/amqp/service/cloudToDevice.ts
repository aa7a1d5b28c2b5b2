import type { Message, Receiver } from 'rhea';
import { HubError } from '../../../core/errors.js';
import type { CloudToDevice, CloudToDeviceSend } from '../../../hub/messaging/cloudToDevice.js';
import type { AckMode } from '../../../hub/messaging/cloudToDeviceMessage.js';
import { amqpError } from '../errors.js';
import type { IncomingLink, LinkRoute } from '../link.js';
import { authorizeLink } from '../linkAuth.js';
import { messageBody, messageId, stringProperties } from '../messages.js';
import { IotHubDataActions } from '../../../hub/auth/dataActions.js';

const ackModes = new Set(['none', 'positive', 'negative', 'full']);

/**
 * The service's cloud-to-device sender (`/messages/devicebound`): each message names its device
 * in `to` (`/devices/{id}/messages/devicebound`); it is accepted once queued, or rejected with
 * IoT Hub's condition (amqp:not-found for an unknown device, amqp:resource-limit-exceeded for a
 * full queue, which azure-iothub raises as DeviceMaximumQueueDepthExceededError).
 */
export function cloudToDeviceSendRoute(cloudToDevice: CloudToDevice): LinkRoute {
  return {
    role: 'receive',
    address: /^\/messages\/devicebound$/i,
    async open(incoming: IncomingLink<Receiver>) {
      const { link } = incoming;
      link.set_target(link.target);
      if (!(await authorizeLink(incoming, 'ServiceConnect', '', [IotHubDataActions.cloudToDeviceSend]))) return;
      link.on('message', (context) => {
        const delivery = context.delivery!;
        void send(cloudToDevice, context.message!).then(
          () => delivery.accept(),
          (e) => delivery.reject(e instanceof HubError ? amqpError(e) : { condition: 'amqp:internal-error', description: 'Internal error' }),
        );
      });
    },
  };
}

async function send(cloudToDevice: CloudToDevice, message: Message): Promise<void> {
  const to = typeof message.to === 'string' ? message.to : '';
  const m = /^\/devices\/([^/]+)\/messages\/devicebound$/i.exec(to);
  if (!m) throw new HubError('ArgumentInvalid', `'to' must be /devices/{deviceId}/messages/devicebound, not '${to}'`);
  const deviceId = decodeURIComponent(m[1]!);
  const properties = stringProperties(message.application_properties);
  const ack = properties['iothub-ack'] ?? 'none';
  delete properties['iothub-ack'];
  if (!ackModes.has(ack)) throw new HubError('ArgumentInvalid', `iothub-ack must be none, positive, negative or full, not '${ack}'`);
  const input: CloudToDeviceSend = {
    body: messageBody(message),
    messageId: messageId(message.message_id),
    correlationId: messageId(message.correlation_id),
    userId: message.user_id === undefined ? undefined : Buffer.isBuffer(message.user_id) ? message.user_id.toString('utf8') : String(message.user_id),
    contentType: message.content_type,
    contentEncoding: message.content_encoding,
    ack: ack as AckMode,
    properties,
  };
  if (message.absolute_expiry_time !== undefined) {
    const expiry = new Date(message.absolute_expiry_time as unknown as Date).getTime();
    input.ttlSeconds = Math.max(1, Math.ceil((expiry - Date.now()) / 1000));
  }
  await cloudToDevice.send(deviceId, input);
}

